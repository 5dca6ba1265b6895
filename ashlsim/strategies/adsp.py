"""ADSP: nobody waits; each worker's local steps are set so all commit at the same rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import boolean, choice, integer, real, spec, text
from .base import MAX_LOCAL_STEPS, Evaluation, Strategy, StrategyParams


@dataclass(frozen=True)
class ADSPParams(StrategyParams):
    name: str = spec("adsp", text)
    variant: str = spec(
        "paper",
        choice("paper", "authors"),
        "paper: our reading of Hu et al.; authors: the ASHL authors' re-implementation",
    )
    # --- variant: paper ---
    min_commit_steps: int = spec(
        8, integer(1, MAX_LOCAL_STEPS), "paper: the slowest worker's steps per commit"
    )
    search: bool = spec(True, boolean, "paper: tune the commit rate online")
    search_interval_s: float = spec(5.0, real(0, exclusive_min=True), "paper: s per trial rate")
    search_factor: float = spec(2.0, real(1, exclusive_min=True), "paper: trial rates x or /")
    smoothing: float = spec(0.3, real(0, 1, exclusive_min=True), "EMA weight of a new timing")
    average: bool = spec(True, boolean, "paper: divide each commit by N (false: apply it whole)")
    # --- variant: authors ---
    period_s: float = spec(60.0, real(0, exclusive_min=True), "authors: T, s per period")
    search_periods: int = spec(20, integer(1), "authors: periods per search cycle (their T_c)")


class ADSP(Strategy):
    """ADSP (Hu, Wang & Wu, AAAI 2020, "Distributed Machine Learning through Heterogeneous Edge
    Systems"): workers never wait for each other; each commits (pushes its accumulated update,
    applied on arrival) at a common rate, the fast ones doing more local steps per commit.

    ``variant: paper`` (default), our reading of the paper, whose full text is not reachable
    from here: worker i takes ``H_i = (commit_s - T_comm_i) / T_iter_i`` steps per commit, from
    exponential moving averages of the times it actually took, so that every commit takes the
    common ``commit_s``; the first commit of each worker is a one-step probe, then the slowest
    worker gets ``min_commit_steps``. The rate is tuned online by a hill climb: every
    ``search_interval_s`` the loss decrease per second is compared with the last trial and
    ``commit_s`` moves by ``search_factor`` in the better direction, between one iteration
    with its commit and one trial's length. The PS applies
    ``w += delta / N`` (``average``; a commit carries many steps, and N whole commits diverge
    where their mean does not).

    ``variant: authors``, the ASHL authors' re-implementation (their ``ADSP/`` code), against
    which their 27-71.8 % was measured: a commit is ``lr * sum of gradients`` at the pulled
    parameters (the worker does not step), applied whole through the PS's optimizer (their
    momentum 0.9: ``server_optimizer``); time runs in periods of ``period_s``; in a period
    worker i commits ``m_i`` times, each after ``period_s / m_i - T1_i`` seconds of training
    (``T1_i``: its mean commit time over the last 10). A search cycle of ``search_periods``
    periods opens with a barrier that aligns commit counts (``m_i = max_j l_j + 1 - l_i``);
    after each period, a barrier compares the loss-curve reward with the best so far: better
    adds a commit per period and searches on, else removes one and stops for the cycle. Their
    reward ``x^2 / (1/(l3 - z) - y)`` of the fit ``l(t) = 1/(x^2 t + y) + z`` through three
    losses is identically 1 whenever the fit exists, so the search adds one commit, then takes
    it back (``docs/FIDELITY.md``); we evaluate it in closed form on the recorded loss.
    """

    name = "adsp"
    Params = ADSPParams

    @property
    def accumulates(self):
        return self.params.variant == "authors"

    def start(self):
        super().start()
        self.t_iter = [math.nan] * self.n
        self.t_comm = [math.nan] * self.n
        self.steps = [1] * self.n
        self.trials: list[dict] = []  # the commit-rate search, one row per decision
        # the variant's policy: how many steps a commit, when to wait, how to search
        schedule = _AuthorsSchedule if self.params.variant == "authors" else _PaperSchedule
        self.schedule = schedule(self)

    # ---- the hooks ----------------------------------------------------------------------------
    def local_steps(self, worker):
        return self.schedule.local_steps(worker)

    def gate(self, worker):
        return self.schedule.gate(worker)

    def receive(self, update):
        p, w = self.params, update.worker
        whole = p.variant == "authors" or not p.average
        self.port.apply([update], 1.0 if whole else 1.0 / self.n)
        first = math.isnan(self.t_iter[w])
        self._measure(w, update.compute_s / update.steps, update.pull_s + update.push_s)
        self.schedule.committed(w, first, update.pull_s + update.push_s)

    def observe(self, record: Evaluation) -> None:
        self.schedule.observe(record)

    def worker_down(self, worker):
        self.schedule.worker_down(worker)

    def worker_up(self, worker):
        self.schedule.worker_up(worker)

    def worker_columns(self):
        return {"commit_steps": list(self.steps)}

    def _measure(self, w: int, t_iter: float, t_comm: float) -> None:
        """Exponential moving averages of a worker's iteration and commit times."""
        a = self.params.smoothing
        if math.isnan(self.t_iter[w]):
            self.t_iter[w], self.t_comm[w] = t_iter, t_comm
        else:
            self.t_iter[w] += a * (t_iter - self.t_iter[w])
            self.t_comm[w] += a * (t_comm - self.t_comm[w])


class _PaperSchedule:
    """``variant: paper`` (see ``ADSP``): steps so that every commit takes ``commit_s``, set
    once every running worker was measured and tuned by a hill climb on the loss."""

    def __init__(self, strategy: ADSP):
        self.s = strategy
        self.commit_s = math.nan  # the common commit period, once every worker was measured
        self._down: set[int] = set()  # workers down now (nobody waits for their probe)
        self._unmeasured = strategy.n  # running workers not measured yet (a count: O(1) a push)
        self._trial = None  # (start time, start loss, commit_s)
        self._direction = 1.0
        self._best_slope = math.nan

    def local_steps(self, worker: int) -> int:
        s = self.s
        if math.isnan(self.commit_s) or math.isnan(s.t_iter[worker]):
            return 1
        h = (self.commit_s - s.t_comm[worker]) / s.t_iter[worker]
        s.steps[worker] = max(1, int(h + 0.5))
        return s.steps[worker]

    def gate(self, worker: int):
        return None  # nobody waits

    def committed(self, worker: int, first: bool, t_comm: float) -> None:
        if first and worker not in self._down:
            self._unmeasured -= 1
        self._maybe_plan()

    def worker_down(self, worker: int) -> None:
        if worker not in self._down and math.isnan(self.s.t_iter[worker]):
            self._unmeasured -= 1
        self._down.add(worker)
        self._maybe_plan()

    def worker_up(self, worker: int) -> None:
        if worker in self._down and math.isnan(self.s.t_iter[worker]):
            self._unmeasured += 1
        self._down.discard(worker)

    def _maybe_plan(self) -> None:
        """Set the common commit period once every running worker has been measured (a worker
        that died before its first commit is planned when it comes back)."""
        if not math.isnan(self.commit_s) or self._unmeasured:
            return
        s = self.s
        measured = [
            (ti, tc)
            for w, (ti, tc) in enumerate(zip(s.t_iter, s.t_comm, strict=True))
            if w not in self._down
        ]
        if measured and not any(math.isnan(ti) for ti, _ in measured):
            k = s.params.min_commit_steps
            self.commit_s = max(k * ti + tc for ti, tc in measured)

    def observe(self, record: Evaluation) -> None:
        """The hill climb: every ``search_interval_s``, compare the loss decrease per second
        with the last trial's and move ``commit_s`` by ``search_factor`` the better way."""
        s, p, loss, now = self.s, self.s.params, record.loss, record.time_s
        if not p.search or math.isnan(self.commit_s) or not math.isfinite(loss):
            return
        if self._trial is None:
            self._trial = (now, loss, self.commit_s)
            return
        start, loss_0, commit_s = self._trial
        if now - start < p.search_interval_s:
            return
        slope = (loss_0 - loss) / (now - start)  # loss decrease per simulated second
        s.trials.append({"time_s": now, "commit_s": commit_s, "loss_slope": slope})
        if not math.isnan(self._best_slope) and slope < self._best_slope:
            self._direction = -self._direction  # worse than the last trial: turn back
        self._best_slope = slope
        measured = [
            ti + tc for ti, tc in zip(s.t_iter, s.t_comm, strict=True) if not math.isnan(ti)
        ]
        # at least one iteration and its commit; at most a trial, whose slope measures nothing
        # if no commit lands in it
        longest = max(p.search_interval_s, max(measured))
        self.commit_s = min(
            longest, max(max(measured), commit_s * p.search_factor**self._direction)
        )
        self._trial = (now, loss, self.commit_s)


def fit_reward(l1: float, l2: float, l3: float) -> float | None:
    """The ASHL authors' ADSP reward: fit ``l(t) = 1/(x^2 t + y) + z`` through the losses at
    t = 0, 1/2, 1 and return ``x^2 / (1/(l3 - z) - y)``; None when the fit has no solution
    (their ``solve`` returns nothing and the reward keeps its last value).

    1/(l - z) is linear in t, so ``2/(l2 - z) = 1/(l1 - z) + 1/(l3 - z)``, whose z^2 terms
    cancel: ``z = (l2 (l1 + l3) - 2 l1 l3) / (2 l2 - l1 - l3)``. Then ``y = 1/(l1 - z)`` and
    ``x^2 = 1/(l3 - z) - y``, which is the reward's denominator: the reward is exactly 1
    whenever the fit exists. It measures nothing; we return that 1 rather than its rounding.
    """
    fit = fit_loss_curve(l1, l2, l3)
    return None if fit is None or fit[0] == 0.0 else 1.0


def fit_loss_curve(l1: float, l2: float, l3: float) -> tuple[float, float, float] | None:
    """``(x^2, y, z)`` of ``l(t) = 1/(x^2 t + y) + z`` through (0, l1), (1/2, l2), (1, l3),
    or None when no such curve exists."""
    denominator = 2.0 * l2 - l1 - l3
    if denominator == 0.0:
        return None
    z = (l2 * (l1 + l3) - 2.0 * l1 * l3) / denominator
    if not math.isfinite(z) or z in (l1, l2, l3):
        return None
    y = 1.0 / (l1 - z)
    return 1.0 / (l3 - z) - y, y, z


class _AuthorsSchedule:
    """The periods, commits and barriers of the authors' ADSP (see ``ADSP``)."""

    def __init__(self, strategy: ADSP):
        self.s, n = strategy, strategy.n
        self.commits = [0] * n  # l_i: commits so far
        self.planned = [1] * n  # m_i: commits in the current period
        self.done = [0] * n  # commits made in the current period
        self.t1 = [[] for _ in range(n)]  # the last 10 commit times
        self.best_reward = 0.0
        self.last_reward = 0.0  # a period whose fit fails keeps the last reward
        self.searching = True
        self.period = 0  # periods into the current search cycle
        self.losses: list[float] = []  # recorded losses in the current period
        self.down = [False] * n
        self.owing = n  # running workers with commits left in the period (O(1) a commit)
        self.probing = [True] * n  # a worker's first commit measures its iteration time
        self._barrier = strategy.port.event()
        self.period_ends: list[float] = []  # simulated time of each barrier

    def local_steps(self, worker: int) -> int:
        s, p = self.s, self.s.params
        t_iter = s.t_iter[worker]
        if self.probing[worker]:
            return 1  # a probe, outside the periods: the iteration time is unknown
        t1 = sum(self.t1[worker]) / len(self.t1[worker]) if self.t1[worker] else 0.0
        train_s = p.period_s / self.planned[worker] - t1
        s.steps[worker] = max(1, int(train_s / t_iter + 0.5))
        return s.steps[worker]

    def gate(self, worker: int):
        """Wait at the period's barrier once this worker made its commits."""
        return self._barrier if self.done[worker] >= self.planned[worker] else None

    def committed(self, worker: int, first: bool, t_comm: float) -> None:
        self.commits[worker] += 1
        if self.probing[worker]:
            self.probing[worker] = False
            return
        self.done[worker] += 1
        if self.done[worker] == self.planned[worker] and not self.down[worker]:
            self.owing -= 1
        t1 = self.t1[worker]
        t1.append(t_comm)
        del t1[:-10]
        self._maybe_release()

    def observe(self, record: Evaluation) -> None:
        if math.isfinite(record.loss):
            self.losses.append(record.loss)

    def worker_down(self, worker: int) -> None:
        if not self.down[worker] and self.done[worker] < self.planned[worker]:
            self.owing -= 1
        self.down[worker] = True  # nobody waits for a crashed worker at a barrier
        self._maybe_release()

    def worker_up(self, worker: int) -> None:
        if self.down[worker]:
            self.owing += 1  # (planned >= 1 > done)
        elif self.done[worker] >= self.planned[worker]:
            self.owing += 1
        self.down[worker] = False
        self.done[worker] = 0  # it joins the current period

    def _maybe_release(self) -> None:
        if self.owing:  # a running worker has commits left in this period
            return
        self._end_of_period()
        self.period_ends.append(self.s.port.now())
        released, self._barrier = self._barrier, self.s.port.event()
        released.succeed()

    def _end_of_period(self) -> None:
        """The reward barrier (while searching), then the next period's commit counts."""
        s, p, now = self.s, self.s.params, self.s.port.now()
        self.period += 1
        self.done = [0] * s.n
        self.owing = self.down.count(False)  # every running worker owes >= 1 commit again
        if self.period >= p.search_periods:  # a new search cycle: align the commit counts
            self.period, self.searching, self.best_reward = 0, True, 0.0
            target = max(self.commits) + 1
            self.planned = [max(1, target - c) for c in self.commits]
            s.trials.append({"time_s": now, "event": "align", "commits": list(self.planned)})
        elif self.searching:
            reward = self._reward()
            improved = reward > self.best_reward
            room = all(
                p.period_s / (m + 1) > (sum(t) / len(t) if t else 0.0)
                for m, t in zip(self.planned, self.t1, strict=True)
            )
            if improved and room:
                self.best_reward = reward
                self.planned = [m + 1 for m in self.planned]
            else:
                self.searching, self.best_reward = False, 0.0
                if not improved:
                    self.planned = [max(1, m - 1) for m in self.planned]
            s.trials.append(
                {"time_s": now, "event": "reward", "reward": reward, "commits": list(self.planned)}
            )
        self.losses = []

    def _reward(self) -> float:
        losses = self.losses
        if len(losses) >= 3:
            fitted = fit_reward(losses[0], losses[len(losses) // 2], losses[-1])
            if fitted is not None:
                self.last_reward = fitted
        return self.last_reward
