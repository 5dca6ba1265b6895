"""ADSP: nobody waits; each worker's local steps are set so all commit at the same rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import boolean, integer, real, spec, text
from .base import Strategy, StrategyParams


@dataclass(frozen=True)
class ADSPParams(StrategyParams):
    name: str = spec("adsp", text)
    min_commit_steps: int = spec(8, integer(1), "the slowest worker's local steps per commit")
    search: bool = spec(True, boolean, "tune the commit rate online")
    search_interval_s: float = spec(5.0, real(0, exclusive_min=True), "s per trial commit rate")
    search_factor: float = spec(2.0, real(1, exclusive_min=True), "trial rates: x or / this")
    smoothing: float = spec(0.3, real(0, 1, exclusive_min=True), "EMA weight of a new timing")
    average: bool = spec(True, boolean, "divide each commit by N (false: apply it whole)")


class ADSP(Strategy):
    """ADSP (Hu, Wang & Wu, AAAI 2020, "Distributed Machine Learning through Heterogeneous Edge
    Systems"). Workers never wait for each other; worker i commits (pushes its accumulated
    delta, applied on arrival) every ``H_i`` local steps, with ``H_i`` chosen from its measured
    iteration and communication times so that every worker's commit takes the same
    ``commit_s``: all commit at one common rate, the fast ones doing more steps per commit.

    The common rate is tuned online, as in the paper, by trying rates and keeping the one whose
    loss falls fastest. Simplified here: a hill climb that, every ``search_interval_s``, compares
    the loss decrease per second under the current commit period with the last trial and moves
    the period by ``search_factor`` in the better direction (the paper searches a grid of rates
    with a more elaborate schedule). Timings are exponential moving averages of what each worker
    actually took, so the plan follows speed changes. The first commit of each worker is a
    single-step probe; the initial period gives the slowest worker ``min_commit_steps`` steps.

    The PS applies ``w += server_lr * delta / N`` on arrival (``average``): a commit carries many
    local steps, and adding N such deltas at full weight diverges where their mean does not.
    This scaling is our reading, stated as a parameter; ``average: false`` applies them whole.
    """

    name = "adsp"
    Params = ADSPParams

    def start(self):
        super().start()
        self.t_iter = [math.nan] * self.n
        self.t_comm = [math.nan] * self.n
        self.commit_s = math.nan  # the common commit period, once every worker was measured
        self.steps = [1] * self.n
        self.trials: list[dict] = []  # (time, commit_s, loss slope) of the search
        self._trial = None  # (start time, start loss, commit_s)
        self._direction = 1.0
        self._best_slope = math.nan

    def local_steps(self, worker):
        if math.isnan(self.commit_s) or math.isnan(self.t_iter[worker]):
            return 1
        h = (self.commit_s - self.t_comm[worker]) / self.t_iter[worker]
        self.steps[worker] = max(1, int(h + 0.5))
        return self.steps[worker]

    def receive(self, update):
        p = self.params
        self.sim.server.apply([update], 1.0 / self.n if p.average else 1.0)
        w, a = update.worker, p.smoothing
        t_iter, t_comm = update.compute_s / update.steps, update.pull_s + update.push_s
        if math.isnan(self.t_iter[w]):
            self.t_iter[w], self.t_comm[w] = t_iter, t_comm
        else:
            self.t_iter[w] += a * (t_iter - self.t_iter[w])
            self.t_comm[w] += a * (t_comm - self.t_comm[w])
        if math.isnan(self.commit_s) and not any(math.isnan(t) for t in self.t_iter):
            k = self.params.min_commit_steps
            self.commit_s = max(
                k * ti + tc for ti, tc in zip(self.t_iter, self.t_comm, strict=True)
            )

    def observe(self, record):
        p, loss, now = self.params, record["loss"], record["time_s"]
        if not p.search or math.isnan(self.commit_s) or not math.isfinite(loss):
            return
        if self._trial is None:
            self._trial = (now, loss, self.commit_s)
            return
        start, loss_0, commit_s = self._trial
        if now - start < p.search_interval_s:
            return
        slope = (loss_0 - loss) / (now - start)  # loss decrease per simulated second
        self.trials.append({"time_s": now, "commit_s": commit_s, "loss_slope": slope})
        if not math.isnan(self._best_slope) and slope < self._best_slope:
            self._direction = -self._direction  # worse than the last trial: turn back
        self._best_slope = slope
        floor = max(ti + tc for ti, tc in zip(self.t_iter, self.t_comm, strict=True) if ti == ti)
        self.commit_s = max(floor, commit_s * p.search_factor**self._direction)
        self._trial = (now, loss, self.commit_s)

    def worker_columns(self):
        return {"commit_steps": list(self.steps)}
