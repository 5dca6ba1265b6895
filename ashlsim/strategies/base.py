"""The ``Strategy`` interface: the only places where synchronization schemes differ.

A worker's loop is fixed (``cluster.worker``): gate -> pull -> compute ``local_steps`` -> push ->
``receive``. A strategy answers three questions (DESIGN.md 3): may this worker start its next
iteration (``gate``), how many local steps does it take (``local_steps``), and what does the PS do
with a push that arrives (``receive``). Stage changes come through ``observe`` (every evaluation).

Two mechanisms are shared: ``RoundBarrier`` (BSP, Local SGD: apply the mean of all N deltas once a
round, then release everybody) and ``ClockGate`` (SSP, ASHL: hold a worker whose clock is more
than a bound ahead of the slowest worker's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import simpy

from ..compression import CompressionSpec, build_compressor
from ..config import section, spec, text


@dataclass(frozen=True)
class StrategyParams:
    """Parameters every scheme takes; subclasses add their own (each with the paper's default)."""

    name: str = spec("", text)
    compression: CompressionSpec = spec(CompressionSpec(), section(CompressionSpec))


class Strategy:
    """A synchronization scheme. Subclasses set ``name`` and ``Params``."""

    name: ClassVar[str]
    Params: ClassVar[type] = StrategyParams

    def __init__(self, params, sim):
        self.params = params
        self.sim = sim
        self.n = sim.n_workers

    # ---- hooks ----------------------------------------------------------------------------
    def start(self) -> None:
        """Called once, before the workers start: set each worker's compressor."""
        for worker in self.sim.workers:
            self.use_compression(worker, self.params.compression)

    def local_steps(self, worker: int) -> int:
        """Local SGD steps the worker takes in its next iteration."""
        return 1

    def gate(self, worker: int) -> simpy.Event | None:
        """An event to wait for before the worker's next pull, or None to go at once."""
        return None

    def receive(self, update) -> None:
        """The PS's handling of a push that has just arrived."""
        raise NotImplementedError

    def observe(self, record: dict) -> None:
        """Called after each evaluation of the global model (loss, accuracy, time_s, ...)."""

    def worker_columns(self) -> dict[str, list]:
        """Extra per-worker columns for ``Result.workers`` (e.g. ASHL's H)."""
        return {}

    # ---- helpers ----------------------------------------------------------------------------
    def use_compression(self, worker, compression: CompressionSpec, ratio: float | None = None):
        """Give ``worker`` the compressor ``compression`` describes (``ratio`` overrides)."""
        kept = compression.ratio if ratio is None else ratio
        dense = compression.name == "identity" or kept >= 1.0
        rng = self.sim.streams.get("compression", worker.index)
        worker.set_compressor(build_compressor(compression, rng, ratio), None if dense else kept)


class RoundBarrier:
    """Collects one push from each of N workers, applies their mean once, releases everybody."""

    def __init__(self, sim, n: int, server_lr: float = 1.0):
        self.sim, self.n, self.server_lr = sim, n, server_lr
        self.rounds = 0
        self.pushed = [0] * n  # pushes received per worker
        self._buffer = []
        self._done = sim.env.event()

    def gate(self, worker: int):
        return self._done if self.pushed[worker] > self.rounds else None

    def receive(self, update) -> None:
        self.pushed[update.worker] += 1
        self._buffer.append(update)
        if len(self._buffer) == self.n:
            self.sim.server.apply(self._buffer, self.server_lr / self.n)
            self._buffer = []
            self.rounds += 1
            done, self._done = self._done, self.sim.env.event()
            done.succeed()


class ClockGate:
    """Clocks (completed pushes) per worker; holds a worker more than ``bound`` ahead of the
    slowest. O(1) per tick: a count of workers at each clock value finds the minimum."""

    def __init__(self, env: simpy.Environment, n: int, bound: float):
        self.env, self.bound = env, bound
        self.clocks = [0] * n
        self.min_clock = 0
        self._at = {0: n}  # clock value -> workers at it
        self._waiting: dict[int, simpy.Event] = {}  # min clock needed -> event
        self.max_gap_seen = 0  # largest clock - min clock of a worker let through

    def gate(self, worker: int):
        gap = self.clocks[worker] - self.min_clock
        if gap <= self.bound:
            self.max_gap_seen = max(self.max_gap_seen, gap)
            return None
        needed = self.clocks[worker] - int(self.bound)
        event = self._waiting.get(needed)
        if event is None:
            event = self._waiting[needed] = self.env.event()
        return event

    def tick(self, worker: int) -> None:
        """``worker`` completed a push."""
        clock = self.clocks[worker]
        self.clocks[worker] = clock + 1
        self._at[clock] -= 1
        self._at[clock + 1] = self._at.get(clock + 1, 0) + 1
        if clock == self.min_clock and self._at[clock] == 0:
            del self._at[clock]
            self.min_clock += 1  # the worker just moved there, so it is occupied
            released = self._waiting.pop(self.min_clock, None)
            if released is not None:
                released.succeed()

    def reset(self, bound: float) -> None:
        """Start counting afresh (a new stage) with a new bound; release anybody held."""
        for event in self._waiting.values():
            event.succeed()
        self.__init__(self.env, len(self.clocks), bound)

    @property
    def unbounded(self) -> bool:
        return math.isinf(self.bound)
