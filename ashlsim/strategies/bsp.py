"""Bulk synchronous parallel: one gradient step per worker, the PS applies the mean of all N."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import real, spec, text
from .base import RoundBarrier, Strategy, StrategyParams


@dataclass(frozen=True)
class BSPParams(StrategyParams):
    name: str = spec("bsp", text)
    server_lr: float = spec(1.0, real(0, exclusive_min=True), "PS applies server_lr * mean")


class BSP(Strategy):
    """BSP (Valiant 1990; synchronous data-parallel SGD): every round each worker pushes one
    gradient step from the same parameters; the PS applies their mean; nobody starts the next
    round before that."""

    name = "bsp"
    Params = BSPParams

    def start(self):
        super().start()
        self.barrier = RoundBarrier(self.sim, self.n, self.params.server_lr)

    def gate(self, worker):
        return self.barrier.gate(worker)

    def receive(self, update):
        self.barrier.receive(update)
