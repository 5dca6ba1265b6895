"""Local SGD: H local steps from the pulled model, then the PS averages the N deltas."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import integer, real, spec, text
from .base import RoundBarrier, Strategy, StrategyParams


@dataclass(frozen=True)
class LocalSGDParams(StrategyParams):
    name: str = spec("local_sgd", text)
    local_steps: int = spec(2, integer(1), "H: local SGD steps per round")
    server_lr: float = spec(1.0, real(0, exclusive_min=True), "PS applies server_lr * mean")


class LocalSGD(Strategy):
    """Local SGD / periodic averaging (Stich, ICLR 2019; Lin et al., ICLR 2020): every worker
    takes H steps, the PS applies the mean of the N deltas, a barrier ends the round."""

    name = "local_sgd"
    Params = LocalSGDParams

    def start(self):
        super().start()
        self.barrier = RoundBarrier(self.sim, self.n, self.params.server_lr)

    def local_steps(self, worker):
        return self.params.local_steps

    def gate(self, worker):
        return self.barrier.gate(worker)

    def receive(self, update):
        self.barrier.receive(update)
