"""Local SGD: H local steps from the pulled model, then the PS averages the N deltas."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import integer, spec, text
from .base import BarrierParams, RoundBarrier, Strategy


@dataclass(frozen=True)
class LocalSGDParams(BarrierParams):
    name: str = spec("local_sgd", text)
    local_steps: int = spec(2, integer(1), "H: local SGD steps per round")


class LocalSGD(Strategy):
    """Local SGD / periodic averaging (Stich, ICLR 2019; Lin et al., ICLR 2020): every worker
    takes H steps, the PS applies the mean of the N deltas, a barrier ends the round."""

    name = "local_sgd"
    Params = LocalSGDParams

    def start(self):
        super().start()
        p = self.params
        self.barrier = RoundBarrier(
            self.sim, self.n, p.server_lr, p.on_failure, p.failure_timeout_s
        )

    def local_steps(self, worker):
        return self.params.local_steps

    def gate(self, worker):
        return self.barrier.gate(worker)

    def receive(self, update):
        self.barrier.receive(update)

    def worker_down(self, worker):
        self.barrier.worker_down(worker)

    def worker_up(self, worker):
        self.barrier.worker_up(worker)
