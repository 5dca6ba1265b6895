"""ADACOMM: Local SGD whose communication period shrinks as the loss falls."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import integer, real, spec, text
from .base import MAX_LOCAL_STEPS, BarrierParams, BarrierStrategy, Evaluation


@dataclass(frozen=True)
class ADACOMMParams(BarrierParams):
    name: str = spec("adacomm", text)
    tau_0: int = spec(20, integer(1, MAX_LOCAL_STEPS), "initial local steps per round (paper: 20)")
    tau_max: int = spec(100, integer(1, MAX_LOCAL_STEPS), "largest period allowed")
    interval_s: float = spec(1.0, real(0, exclusive_min=True), "T0: s between adaptations")


class ADACOMM(BarrierStrategy):
    """ADACOMM (Wang & Joshi, MLSys 2019, "Adaptive Communication Strategies to Achieve the Best
    Error-Runtime Trade-off in Local-Update SGD"). Local SGD(tau) with, at the start of every
    adaptation interval of ``interval_s`` simulated seconds,
    ``tau_l = ceil(sqrt(eta_0 F(x_l) / (eta_l F(x_0))) * tau_0)`` clipped to ``[1, tau_max]``:
    ``F`` is the training loss the observer records (never extra simulated work), ``eta`` the
    worker learning rate (its factor is 1 without a schedule). A new period starts with the next
    round, so every worker of a round takes the same number of steps."""

    name = "adacomm"
    Params = ADACOMMParams

    def start(self):
        super().start()
        p = self.params
        self.tau = self.next_tau = min(p.tau_0, p.tau_max)
        self.history: list[tuple[float, int]] = [(0.0, self.tau)]  # (time, tau) when it changed
        self._loss_0 = None
        self._next_adapt = 0.0
        self._round = -1

    def local_steps(self, worker):
        if self.barrier.rounds != self._round:  # a new round: adopt the latest period
            self._round, self.tau = self.barrier.rounds, self.next_tau
        return self.tau

    def observe(self, record: Evaluation) -> None:
        loss = record.loss
        if not math.isfinite(loss) or record.time_s < self._next_adapt:
            return
        self._next_adapt = record.time_s + self.params.interval_s
        if self._loss_0 is None:
            self._loss_0 = loss
            return
        eta_ratio = 1.0 / max(self.port.lr_factor(), 1e-12)  # eta_0 / eta_l
        p = self.params
        tau = math.ceil(math.sqrt(eta_ratio * loss / self._loss_0) * p.tau_0 - 1e-12)
        tau = max(1, min(p.tau_max, tau))
        if tau != self.next_tau:
            self.next_tau = tau
            self.history.append((record.time_s, tau))

    def worker_columns(self):
        return {"tau_final": [self.tau] * self.n}
