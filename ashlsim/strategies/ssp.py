"""Stale synchronous parallel: asynchronous apply, but nobody runs more than s clocks ahead."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import integer, spec, text
from .base import ClockGate, Strategy, StrategyParams


@dataclass(frozen=True)
class SSPParams(StrategyParams):
    name: str = spec("ssp", text)
    staleness: int = spec(3, integer(0), "max clocks ahead of the slowest worker")
    local_steps: int = spec(1, integer(1), "local SGD steps per clock (push)")


class SSP(Strategy):
    """SSP(s) (Ho et al., NIPS 2013): each push applied on arrival; a worker whose clock
    (completed pushes) is more than ``staleness`` ahead of the slowest worker's waits."""

    name = "ssp"
    Params = SSPParams

    def start(self):
        super().start()
        self.clocks = ClockGate(self.sim.env, self.n, self.params.staleness)

    def local_steps(self, worker):
        return self.params.local_steps

    def gate(self, worker):
        return self.clocks.gate(worker)

    def worker_down(self, worker):
        self.clocks.leave(worker)

    def worker_up(self, worker):
        self.clocks.join(worker)

    def receive(self, update):
        self.sim.server.apply([update])
        self.clocks.tick(update.worker)
