"""ASHL (Zhang et al., IEEE Transactions on Computers 2024, DOI 10.1109/TC.2023.3315847).

Profiling (Algorithm 1) gives each worker its own number of local steps ``H[i]`` and a data share
``D[i]``; training then runs an asynchronous AHL stage (large H, no clock bound) and, once the
loss falls below ``loss_preset``, a semi-asynchronous SHL stage (small H, clock bound
``s_preset``, per-worker top-K ratios from Algorithm 2). The PS applies ``W += D[i] * delta_i``
on each arrival (Algorithm 3). docs/DESIGN.md section 4 is the specification.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..compression import COMPRESSORS, CompressionSpec
from ..config import boolean, choice, integer, real, spec, text
from ..errors import ScenarioError
from .ashl_plan import compression_plan, data_shares, local_steps_plan, robust_mean
from .base import MAX_LOCAL_STEPS, ClockGate, Evaluation, Strategy, StrategyParams

SWITCH_RULES = ("loss", "epochs", "plateau", "never", "immediate")


@dataclass(frozen=True)
class ASHLParams(StrategyParams):
    """Defaults are the paper's, or the authors' code where the paper is silent
    (``docs/FIDELITY.md`` lists each choice and its alternative)."""

    name: str = spec("ashl", text)
    profile_iters: int = spec(5, integer(0), "probe iterations per worker (0: no profiling)")
    h_ahl: int = spec(
        8, integer(1, MAX_LOCAL_STEPS), "H_preset of the AHL stage (the slowest worker's H)"
    )
    h_shl: int = spec(2, integer(1, MAX_LOCAL_STEPS), "H_preset of the SHL stage")
    shl_plan: str = spec(
        "compressed",
        choice("compressed", "dense"),
        "plan H_SHL with the push compressed at r_preset (authors' get_h) or dense",
    )
    t_compress_s: float = spec(0.0, real(0), "T_compress in the SHL plan and Algorithm 2, s")
    s_ahl: float = spec(math.inf, real(0, allow_inf=True), "S_A: AHL clock-gap bound")
    s_preset: int = spec(3, integer(0), "SHL clock-gap bound (sync rounds)")
    shl_bound: str = spec(
        "push",
        choice("push", "pull"),
        "push: the PS holds a push beyond the bound (authors); pull: gate the next pull",
    )
    switch: str = spec("loss", choice(*SWITCH_RULES), "when AHL hands over to SHL")
    loss_preset: float = spec(0.3, real(0, exclusive_min=True), "switch: loss below this")
    # the paper switches "when the loss falls below loss_preset": every evaluation checks it.
    # The authors' PS checked about every 30 s of a run of hours; on runs of simulated seconds
    # that would postpone the switch past the end (docs/FIDELITY.md)
    switch_check_s: float = spec(
        0.0, real(0), "switch: s between loss checks (0: every evaluation; authors: 30)"
    )
    switch_epochs: float = spec(None, real(0, exclusive_min=True, optional=True), "switch: epochs")
    patience: int = spec(8, integer(1), "switch: plateau after this many evaluations")
    min_delta: float = spec(0.01, real(0), "switch: plateau unless loss improves by this")
    r_preset: float = spec(0.25, real(0, 1, exclusive_min=True), "SHL: slowest pusher's ratio")
    ratios: str = spec(
        "per_worker",
        choice("per_worker", "uniform"),
        "SHL ratios: Algorithm 2 per worker (paper), or r_preset for all (authors' code)",
    )
    min_ratio: float = spec(0.01, real(0, 1, exclusive_min=True), "SHL: smallest ratio used")
    compressor: str = spec("topk", choice(*COMPRESSORS), "SHL compressor")
    topk_scope: str = spec("layer", choice("layer", "vector"), "SHL top-K per tensor or overall")
    error_feedback: bool = spec(False, boolean, "SHL: keep the unsent residual (not in paper)")
    weighting: str = spec("data_share", choice("data_share", "none"), "PS weight eta_i: D[i] or 1")
    reset_optimizer: bool = spec(False, boolean, "clear momentum buffers at the switch")
    restart_schedule: bool = spec(True, boolean, "restart the lr schedule at the switch")
    reprofile_threshold: float = spec(
        None, real(0, exclusive_min=True, optional=True), "re-plan when T_iter drifts by this"
    )

    def __post_init__(self):
        if self.compression != CompressionSpec():
            raise ScenarioError(
                "strategy.compression",
                "a compression block",
                "nothing for ashl: it compresses in SHL by compressor, r_preset, error_feedback",
            )
        if self.switch == "epochs" and self.switch_epochs is None:
            raise ScenarioError("strategy.switch_epochs", None, "a number of epochs > 0")
        if self.min_ratio > self.r_preset:
            raise ScenarioError(
                "strategy.min_ratio", self.min_ratio, f"<= r_preset ({self.r_preset})"
            )


class ASHL(Strategy):
    """Profiling, then AHL (asynchronous, H_AHL), then SHL (bounded, H_SHL, top-K ratios)."""

    name = "ashl"
    Params = ASHLParams

    def start(self):
        p, n = self.params, self.n
        self.h = {"profile": [1] * n, "ahl": [p.h_ahl] * n, "shl": [p.h_shl] * n}
        self.share = np.full(n, 1.0 / n)
        self.ratio = np.full(n, p.r_preset)
        self.times = np.full((n, 3), math.nan)  # planned T_iter, T_pull, T_push
        window = max(3, p.profile_iters)
        self.recent = [deque(maxlen=window) for _ in range(n)]  # (t_iter, t_pull, t_push)
        self.rows: list[dict] = []
        self.clocks = ClockGate(self.port, n, math.inf)
        self.ratio_used = [1.0] * n  # the kept fraction each worker pushes at now
        self._replies: dict[int, object] = {}  # worker -> event: its held push was applied
        self.held_pushes = 0  # pushes the PS held at the SHL bound (shl_bound: push)
        self._holding = 0  # of which not applied yet
        self.max_applied_gap = 0  # SHL: largest clock - slowest clock at an application
        self._next_check = -math.inf  # switch: the next evaluation time the loss is checked
        self._profiled = self.port.event()
        self._probing = n if p.profile_iters else 0  # running workers short of their probes
        self._best, self._since = math.inf, 0
        for worker in range(n):
            self.use_compression(worker, CompressionSpec())
        if p.profile_iters:
            self.set_stage("profile")
        else:
            self._record_plan()
            self._enter("shl" if p.switch == "immediate" else "ahl")

    def local_steps(self, worker):
        return self.h[self.stage][worker]

    def gate(self, worker):
        if self.stage == "profile":
            done = len(self.recent[worker]) >= self.params.profile_iters
            return self._profiled if done else None
        if self._holds():  # the bound acts on pushes: wait only for the PS's reply
            return self._replies.get(worker)
        return self.clocks.gate(worker)

    def _holds(self) -> bool:
        return self.stage == "shl" and self.params.shl_bound == "push"

    def worker_down(self, worker):
        self.clocks.leave(worker)
        if self.stage == "profile" and len(self.recent[worker]) < self.params.profile_iters:
            self._probing -= 1  # nobody waits for a crashed worker's probes
            self._maybe_finish_profiling()

    def worker_up(self, worker):
        self.clocks.join(worker)
        # a restarted worker pulls the current model at once; a push of its still held at the
        # PS is applied when the bound allows (waiting for the reply could deadlock: it now
        # holds the slowest clock)
        self._replies.pop(worker, None)
        if self.stage == "profile" and len(self.recent[worker]) < self.params.profile_iters:
            self._probing += 1

    def receive(self, update):
        w, p = update.worker, self.params
        self.recent[w].append((update.compute_s / update.steps, update.pull_s, update.push_s))
        if self.stage == "profile":
            self._apply(update)
            if len(self.recent[w]) == p.profile_iters:
                self._probing -= 1
                self._maybe_finish_profiling()
            return
        self.clocks.tick(w)
        held = self.clocks.gate(w) if self._holds() else None
        if held is None:
            self._apply(update)
        else:  # Algorithm 3 as the authors run it: the PS answers once the bound allows
            self.held_pushes += 1
            self._holding += 1
            reply = self._replies[w] = self.port.event()
            held.callbacks.append(lambda _: self._release(update, reply))
        self._maybe_reprofile(w)

    def _apply(self, update) -> None:
        if self.stage == "shl":
            gap = self.clocks.clocks[update.worker] - self.clocks.min_clock
            self.max_applied_gap = max(self.max_applied_gap, gap)
        eta = self.share[update.worker] if self.params.weighting == "data_share" else 1.0
        self.port.apply([update], eta)

    def pending(self):
        return self._holding

    def _release(self, update, reply) -> None:
        self._holding -= 1
        self._apply(update)
        if self._replies.get(update.worker) is reply:
            del self._replies[update.worker]
        reply.succeed()

    def observe(self, record: Evaluation) -> None:
        if self.stage != "ahl":
            return
        p, loss = self.params, record.loss
        if p.switch == "loss" and record.time_s >= self._next_check:
            # the authors' PS checks the full training loss about every 30 s
            self._next_check = record.time_s + p.switch_check_s
            if loss < p.loss_preset:
                self._enter("shl", f"loss {loss:.4g} < loss_preset {p.loss_preset}")
        elif p.switch == "epochs" and record.epoch >= p.switch_epochs:
            self._enter("shl", f"epoch {record.epoch:.3g} >= {p.switch_epochs}")
        elif p.switch == "plateau":
            if loss < self._best - p.min_delta:
                self._best, self._since = loss, 0
            else:
                self._since += 1
            if self._since >= p.patience:
                self._enter("shl", f"loss plateau for {p.patience} evaluations")

    def worker_columns(self):
        return {
            "H": list(self.h[self.stage]),  # local steps in the stage the run ended in
            "h_ahl": list(self.h["ahl"]),
            "h_shl": list(self.h["shl"]),
            "data_share": list(self.share),
            "ratio": list(self.ratio),
            "ratio_used": list(self.ratio_used),
        }

    def tables(self):
        """``profile``: one row per worker per (re-)planning: measured times, H per stage,
        data share, ratio."""
        return {"profile": pd.DataFrame(self.rows)}

    # ---- internals --------------------------------------------------------------------------
    def _maybe_finish_profiling(self) -> None:
        """Plan once every running worker has made its probes. A worker that crashed before
        its first probe is planned as the slowest measured (its times are unknown)."""
        p = self.params
        if self._probing > 0:  # running workers still probing
            return
        nan = [math.nan] * 3
        times = np.array(
            [[robust_mean(c) for c in np.array(r).T] if r else nan for r in self.recent]
        )
        self.times = np.where(np.isnan(times), np.nanmax(times, axis=0), times)
        for r in self.recent:
            r.clear()
        self._plan()
        self._enter("shl" if p.switch == "immediate" else "ahl", "profiled")
        self._profiled.succeed()

    def _enter(self, stage: str, reason: str | None = None) -> None:
        """Start ``stage``: its clock bound, its compressors; record the change if not initial."""
        p = self.params
        self.set_stage(stage, reason)
        self.clocks.reset(p.s_preset if stage == "shl" else p.s_ahl)  # releases held pushes
        if stage == "shl":
            self._compress_for_shl()
            if reason is not None and p.reset_optimizer:
                self.port.reset_optimizers()
            if reason is not None and p.restart_schedule:
                self.port.restart_schedule()

    def _compress_for_shl(self, only=None) -> None:
        p = self.params
        block = CompressionSpec(p.compressor, p.r_preset, p.error_feedback, p.topk_scope)
        for worker in range(self.n) if only is None else only:
            ratio = float(self.ratio[worker] if p.ratios == "per_worker" else p.r_preset)
            self.use_compression(worker, block, ratio)
            self.ratio_used[worker] = ratio

    def _plan(self) -> None:
        """Algorithms 1 and 2 from ``self.times``; re-split the data by the new shares."""
        p = self.params
        t_iter, t_pull, t_push = self.times.T
        self.h["ahl"] = list(local_steps_plan(t_iter, t_pull, t_push, p.h_ahl))
        compressed = p.shl_plan == "compressed"
        self.h["shl"] = list(
            local_steps_plan(
                t_iter,
                t_pull,
                t_push,
                p.h_shl,
                p.r_preset if compressed else 1.0,
                p.t_compress_s if compressed else 0.0,
            )
        )
        self.share = data_shares(self.h["shl"])
        self.ratio = compression_plan(
            t_iter, t_pull, t_push, self.h["shl"], p.r_preset, p.min_ratio, p.t_compress_s
        )
        self.port.reshard(self.share)
        self._record_plan()

    def _record_plan(self) -> None:
        for i in range(self.n):
            self.rows.append(
                {
                    "at_s": self.port.now(),
                    "worker": i,
                    "t_iter_s": self.times[i, 0],
                    "t_pull_s": self.times[i, 1],
                    "t_push_s": self.times[i, 2],
                    "h_ahl": self.h["ahl"][i],
                    "h_shl": self.h["shl"][i],
                    "data_share": self.share[i],
                    "ratio": self.ratio[i],
                }
            )

    def _maybe_reprofile(self, w: int) -> None:
        """docs/DESIGN.md section 4.5 (off by default): when a worker's recent iteration time drifts from the
        planned one by more than ``reprofile_threshold`` (relative), re-plan with it. Only
        ``T_iter`` is re-measured: pushes after profiling may be compressed, so their times do
        not estimate the dense ``T_push`` the formulas need; communication stays as profiled."""
        threshold, recent = self.params.reprofile_threshold, self.recent[w]
        if threshold is None or len(recent) < recent.maxlen or math.isnan(self.times[w, 0]):
            return
        t_iter = robust_mean([sample[0] for sample in recent])
        if abs(t_iter / self.times[w, 0] - 1.0) <= threshold:
            return
        self.times[w, 0] = t_iter
        recent.clear()
        old_ratio = self.ratio.copy()
        self._plan()
        if self.stage == "shl":
            changed = [w for w in range(self.n) if self.ratio[w] != old_ratio[w]]
            self._compress_for_shl(changed)
