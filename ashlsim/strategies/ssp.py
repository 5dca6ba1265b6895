"""Stale synchronous parallel: asynchronous apply, but nobody runs more than s clocks ahead."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import choice, integer, spec, text
from .base import MAX_LOCAL_STEPS, ClockGate, Strategy, StrategyParams


@dataclass(frozen=True)
class SSPParams(StrategyParams):
    name: str = spec("ssp", text)
    staleness: int = spec(3, integer(0), "max clocks ahead of the slowest worker")
    local_steps: int = spec(1, integer(1, MAX_LOCAL_STEPS), "local SGD steps per clock (push)")
    reads: str = spec(
        "cached",
        choice("cached", "fresh"),
        "cached: reuse the last pull while fresh enough (Ho et al.); fresh: pull every clock",
    )

    def merges(self) -> str | None:
        return "each"


class SSP(Strategy):
    """SSP(s) (Ho et al., NIPS 2013): each push applied on arrival; a worker whose clock
    (completed pushes) is more than ``staleness`` ahead of the slowest worker's waits.

    Reads as the paper defines them (``reads: cached``): a worker at clock c must see every
    update of clocks up to c - s - 1. Its cached model (its last pull, plus its own updates since,
    read-my-writes) qualifies while the slowest clock at that pull was at least c - s; only then
    does it pull, as Petuum's SSP table does. ``reads: fresh`` pulls the newest model every
    clock (then SSP with a huge bound is ASP)."""

    steady = True
    name = "ssp"
    Params = SSPParams

    @property
    def cached_reads(self):
        return self.params.reads == "cached"

    def start(self):
        super().start()
        self.clocks = ClockGate(self.port, self.n, self.params.staleness)
        self.cache_min = [-math.inf] * self.n  # slowest clock when each worker last pulled
        self.cached = 0  # iterations computed on a cached model

    def local_steps(self, worker):
        return self.params.local_steps

    def gate(self, worker):
        return self.clocks.gate(worker)

    def reads_cache(self, worker):
        if self.cache_min[worker] >= self.clocks.clocks[worker] - self.params.staleness:
            self.cached += 1
            return True
        self.cache_min[worker] = self.clocks.min_clock  # it pulls now
        return False

    def worker_down(self, worker):
        self.clocks.leave(worker)

    def worker_up(self, worker):
        self.clocks.join(worker)
        self.cache_min[worker] = -math.inf  # a restarted machine has no cache

    def receive(self, update):
        self.port.apply([update])
        self.clocks.tick(update.worker)
