"""The ``Strategy`` interface: the only places where synchronization schemes differ.

A worker's loop is fixed (``cluster.worker``): gate -> pull -> compute ``local_steps`` -> push ->
``receive``. A strategy answers, through its hooks (docs/DESIGN.md section 3; docs/extending.md):
may this worker start its next iteration (``gate``), may it compute on its own model instead of
pulling (``reads_cache``, with ``cached_reads``), how many local steps does it take
(``local_steps``), and what does the PS do with a push that arrives (``receive``); it reacts to
each evaluation (``observe``). The records it gets are ``Update`` (a push) and ``Evaluation``.

Two mechanisms are shared: ``RoundBarrier`` (BSP, Local SGD: apply the mean of all N deltas once a
round, then release everybody) and ``ClockGate`` (SSP, ASHL: hold a worker whose clock is more
than a bound ahead of the slowest worker's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from ..compression import CompressionSpec
from ..config import boolean, choice, real, section, spec, text
from ..errors import ScenarioError

if TYPE_CHECKING:
    import pandas as pd

# Local steps in one computation: more is no training anyone runs, and its batches (drawn when
# the computation starts) would take the host's memory and minutes before the run could end.
MAX_LOCAL_STEPS = 100_000


def check_local_steps(steps: int, name: str, worker: int) -> int:
    """``steps``, if one computation may take that many; else a ScenarioError naming the
    scheme that chose them."""
    if steps > MAX_LOCAL_STEPS:
        raise ScenarioError(
            f"strategy ({name}): local steps of worker {worker}",
            steps,
            f"at most {MAX_LOCAL_STEPS:,} in one computation",
        )
    return steps


@dataclass(frozen=True)
class ServerOptimizerSpec:
    """``server_optimizer:`` the PS applies what a scheme merges (BSP's mean, ASP's each push,
    ASHL's ``D[i] * delta_i``) as ``v = momentum*v + g; W += lr*v``. The default is plain
    merging. ``server_lr: x`` in a strategy block is shorthand for ``server_optimizer: {lr: x}``.
    """

    lr: float = spec(1.0, real(0, exclusive_min=True), "server learning rate lr_s")
    momentum: float = spec(0.0, real(0, 0.999), "server momentum (kept on the PS)")
    nesterov: bool = spec(False, boolean, "Nesterov server momentum")


@dataclass(frozen=True)
class StrategyParams:
    """Parameters every scheme takes; subclasses add their own (each with the paper's default)."""

    name: str = spec("", text)
    compression: CompressionSpec = spec(CompressionSpec(), section(CompressionSpec))
    server_optimizer: ServerOptimizerSpec = spec(
        ServerOptimizerSpec(), section(ServerOptimizerSpec)
    )

    def check(self, scenario) -> None:
        """Rules that need the rest of the scenario (e.g. the number of workers); raise a
        ``ScenarioError`` naming the field."""

    def merges(self) -> str | None:
        """How the PS takes the pushes, at the workers' learning rate: ``"mean"`` (a round's
        deltas averaged: one step for N pushes), ``"each"`` (every push applied whole), or
        None (neither throughout). Schemes of the two kinds compared at one untuned learning
        rate differ in step size by about N (``compare.step_size_warning`` says so)."""
        return None


@dataclass(frozen=True)
class BarrierParams(StrategyParams):
    """Parameters of the round-based schemes (BSP, Local SGD)."""

    lr_scaling: str = spec(
        "none",
        choice("none", "linear"),
        "linear: apply the sum of the round's deltas, not their mean (Goyal et al. 2017)",
    )
    on_failure: str = spec("wait", choice("wait", "drop"), "a crashed worker: wait or drop it")
    failure_timeout_s: float = spec(5.0, real(0), "drop: s after a crash before dropping")

    def merges(self) -> str | None:
        return "mean" if self.lr_scaling == "none" else None  # (linear: the sum, a round)


@dataclass(slots=True, eq=False)
class Update:
    """One push, as it arrives at the PS and as ``Strategy.receive`` gets it: a record the
    strategy reads (the engine alone sets ``message`` when it computes a deferred delta, and
    ``applied`` when the PS applies it)."""

    worker: int
    seq: int  # this worker's push number, from 0
    message: object  # compression.Message once computed (None: pending, or timing-only)
    work: object  # training.Work whose delta the message carries (None in timing-only mode)
    pulled_version: int
    steps: int
    samples: int
    pull_s: float
    compute_s: float
    push_s: float
    nbytes: int = 0  # bytes the push moved
    weight: float = 1.0
    applied: bool = False

    @property
    def key(self) -> tuple[int, int]:
        return (self.worker, self.seq)


@dataclass(frozen=True, slots=True)
class Exchange:
    """What a scheme that moves its own bytes (no PS transfers: ``through_server`` False) gives
    the workers it releases, as the value of its gate's event: the communication among them
    began at ``start_s`` (their wait at the gate ended then) and each worker sent, and
    received, ``nbytes[worker]`` bytes. A worker the dict leaves out only waited."""

    start_s: float
    nbytes: dict


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the global model, as ``Strategy.observe`` receives it (a row of
    ``Result.history``): simulated ``time_s``; pushes applied (``updates``) and the PS's
    ``version``; ``epoch``s of samples pushed; training ``loss`` (on a fixed subset),
    ``test_loss`` and ``accuracy``; bytes moved so far; the scheme's ``stage`` then.
    ``evaluation["loss"]`` reads a field too (strategies written against the dict it was)."""

    time_s: float
    updates: int
    version: int
    epoch: float
    loss: float
    test_loss: float
    accuracy: float
    bytes_up: int
    bytes_down: int
    stage: str

    def __getitem__(self, field: str):
        return getattr(self, field)


class Port(Protocol):
    """All a strategy sees of the cluster it schedules: the one, narrow way in. The simulator
    implements it (``ashlsim.simport.SimPort``); another engine (real processes) can implement
    it too and run the same strategy classes unchanged. Times are seconds; workers are indices.

    An *event* is an object with ``succeed()`` and a ``callbacks`` list of ``fn(event)`` run
    when it succeeds (SimPy's events are); a worker given one by ``gate`` waits for it."""

    n: int  # workers

    def now(self) -> float: ...
    def event(self): ...
    def call_later(self, delay_s: float, fn) -> None: ...

    # the parameter server
    @property
    def version(self) -> int: ...  # applications so far
    def apply(self, updates: list[Update], weight: float = 1.0) -> None: ...
    def discard(self, update: Update) -> None: ...
    def set_server_optimizer(self, lr: float, momentum: float, nesterov: bool) -> None: ...

    # the workers
    def set_compression(self, worker: int, spec: CompressionSpec, ratio=None) -> None: ...
    def is_down(self, worker: int) -> bool: ...
    def reset_optimizers(self) -> None: ...
    def restart_schedule(self) -> None: ...
    def lr_factor(self) -> float: ...  # the worker learning rate now over its base value
    def reshard(self, weights: list[float]) -> None: ...

    # communication among the workers (schemes without PS transfers)
    def all_reduce(self, workers: list[int], algorithm: str) -> tuple[float, dict]: ...
    def collective(self, workers: list[int], algorithm: str) -> tuple[object, dict]: ...
    def exchange(self, a: int, b: int) -> tuple[object, int]: ...  # (event, bytes each way)
    def average_with(self, update: Update, peer: int | None) -> None: ...
    def restore(self, worker: int, neighbours: list[int]) -> None: ...
    def consensus_distance(self) -> float: ...
    def random(self, name: str): ...  # a numpy Generator of the run's seed, for the strategy

    # what the run records
    def stage_changed(self, from_stage: str, to_stage: str, reason: str) -> None: ...


class Strategy:
    """A synchronization scheme. Subclasses set ``name`` and ``Params``. It reaches the cluster
    only through its ``port``, owns its ``stage`` and reports its own tables (``tables``)."""

    name: ClassVar[str]
    Params: ClassVar[type] = StrategyParams
    # workers sum lr * gradient at the pulled parameters instead of stepping (training.Work)
    accumulates: bool = False
    # workers may compute on their own model instead of pulling (``reads_cache``)
    cached_reads: bool = False
    # ``local_steps`` and every worker's compressor stay as ``start`` set them: a worker's
    # iteration is then known in full when its pull starts (``cluster.worker.Iterations``).
    # Read from the class that sets it, never inherited: a subclass may vary either.
    steady: bool = False
    # a worker's pull and push cross the network to the PS; False: they are free (the worker
    # holds the model) and the scheme moves its bytes itself, through the port (``collective``)
    through_server: bool = True
    # each worker keeps a model of its own (``Port.average_with``), which its pulls read; the model
    # evaluated is their average
    own_models: bool = False

    def __init__(self, params, port: Port):
        self.params = params
        self.port = port
        self.n = port.n
        self.stage = "main"  # the training stage, recorded with every evaluation
        opt = params.server_optimizer
        port.set_server_optimizer(opt.lr, opt.momentum, opt.nesterov)

    # ---- hooks ----------------------------------------------------------------------------
    def start(self) -> None:
        """Called once, before the workers start: set each worker's compressor."""
        for worker in range(self.n):
            self.use_compression(worker, self.params.compression)

    def local_steps(self, worker: int) -> int:
        """Local SGD steps the worker takes in its next iteration."""
        return 1

    def gate(self, worker: int) -> object | None:
        """An event to wait for before the worker's next pull, or None to go at once."""
        return None

    def reads_cache(self, worker: int) -> bool:
        """With ``cached_reads``: True to compute on the worker's own model (its last pull plus
        its own updates since) instead of pulling now."""
        return False

    def receive(self, update: Update) -> None:
        """The PS's handling of a push that has just arrived."""
        raise NotImplementedError

    def observe(self, evaluation: Evaluation) -> None:
        """Called after each evaluation of the global model (``Evaluation``)."""

    def worker_down(self, worker: int) -> None:
        """``worker`` crashed (its in-flight push is lost)."""

    def worker_up(self, worker: int) -> None:
        """``worker`` restarted; it will pull the current model next."""

    def worker_columns(self) -> dict[str, list]:
        """Extra per-worker columns for ``Result.workers`` (e.g. ASHL's H)."""
        return {}

    def tables(self) -> dict[str, pd.DataFrame]:
        """Extra tables for the ``Result`` (name -> DataFrame), e.g. ASHL's profile."""
        return {}

    def set_stage(self, stage: str, reason: str | None = None) -> None:
        """Enter ``stage``; a change with a ``reason`` is recorded (the first stage is not)."""
        if reason is not None:
            self.port.stage_changed(self.stage, stage, reason)
        self.stage = stage

    def pending(self) -> int:
        """Pushes received but not applied yet (a round's buffer, pushes held at a bound)."""
        return 0

    # ---- helpers ----------------------------------------------------------------------------
    def use_compression(self, worker: int, compression: CompressionSpec, ratio=None):
        """Give ``worker`` the compressor ``compression`` describes (``ratio`` overrides)."""
        self.port.set_compression(worker, compression, ratio)


class BarrierStrategy(Strategy):
    """A round-based scheme (BSP, Local SGD, ADACOMM): a ``RoundBarrier`` gates the workers,
    collects the round's pushes and applies their mean; subclasses choose the local steps."""

    Params: ClassVar[type] = BarrierParams
    backups: int = 0

    def start(self):
        super().start()
        p = self.params
        self.barrier = RoundBarrier(
            self.port,
            self.n,
            p.lr_scaling == "linear",
            p.on_failure,
            p.failure_timeout_s,
            self.backups,
        )

    def gate(self, worker: int) -> object | None:
        return self.barrier.gate(worker)

    def receive(self, update: Update) -> None:
        self.barrier.receive(update)

    def worker_down(self, worker):
        self.barrier.worker_down(worker)

    def worker_up(self, worker):
        self.barrier.worker_up(worker)

    def pending(self):
        return len(self.barrier._buffer)


class RoundBarrier:
    """Collects one push from each member worker, applies their mean once, releases everybody.

    Members are all workers, except one that crashed and was dropped (``on_failure: drop``,
    after ``failure_timeout_s``); with ``wait`` the round stalls until it restarts and pushes.
    ``summed``: apply the sum instead of the mean (the linear scaling rule).
    """

    def __init__(
        self, port, n: int, summed=False, on_failure="wait", failure_timeout_s=5.0, backups=0
    ):
        self.port, self.n, self.summed = port, n, summed
        self.backups = backups  # a round closes with the first len(members) - backups pushes
        self.dropped = 0  # pushes that arrived after their round had closed
        self.on_failure, self.failure_timeout_s = on_failure, failure_timeout_s
        self.members = set(range(n))
        self._arrived = 0  # pushes in this round from current members
        self.rounds = 0
        self.round_ends: list[float] = []  # simulated time each round was applied
        self._buffer: dict[int, object] = {}  # this round's pushes, by worker
        self._done = port.event()

    def gate(self, worker: int) -> object | None:
        return self._done if worker in self._buffer else None

    def receive(self, update: Update) -> None:
        # the PS version counts closed rounds: a push pulled before the last close is late
        if update.pulled_version < self.port.version:  # counted, never applied
            self.dropped += 1
            self.port.discard(update)
            return
        self._buffer[update.worker] = update
        self._arrived += update.worker in self.members
        self._maybe_close()

    def _maybe_close(self) -> None:
        if not self._buffer or self._arrived < max(1, len(self.members) - self.backups):
            return
        updates = list(self._buffer.values())
        self.port.apply(updates, 1.0 if self.summed else 1.0 / len(updates))
        self._buffer = {}
        self._arrived = 0
        self.rounds += 1
        self.round_ends.append(self.port.now())
        done, self._done = self._done, self.port.event()
        done.succeed()

    def worker_down(self, worker: int) -> None:
        if self.on_failure == "drop":
            self.port.call_later(self.failure_timeout_s, lambda: self._drop(worker))

    def _drop(self, worker: int) -> None:
        if self.port.is_down(worker) and worker in self.members:
            self.members.discard(worker)
            self._arrived -= worker in self._buffer  # its push, if any, still counts
            self._maybe_close()

    def worker_up(self, worker: int) -> None:
        if worker not in self.members:
            self.members.add(worker)
            self._arrived += worker in self._buffer


class ClockGate:
    """Clocks (completed pushes) per worker; holds a worker more than ``bound`` ahead of the
    slowest. O(1) per tick: a count of workers at each clock value finds the minimum. A crashed
    worker ``leave``s the count (nobody waits for it) and ``join``s at the slowest clock."""

    def __init__(self, port, n: int, bound: float, active=None):
        self.port = port
        self.active = [True] * n if active is None else list(active)
        self._count_from_zero(bound)

    def _count_from_zero(self, bound: float) -> None:
        n = len(self.active)
        self.bound = bound
        self.clocks = [0] * n
        self.min_clock = 0
        self._at = {0: sum(self.active)}  # clock value -> active workers at it
        self._waiting: dict[int, object] = {}  # min clock needed -> event
        self.max_gap_seen = 0  # largest clock - min clock of a worker let through

    def gate(self, worker: int) -> object | None:
        gap = self.clocks[worker] - self.min_clock
        if gap <= self.bound:
            self.max_gap_seen = max(self.max_gap_seen, gap)
            return None
        needed = self.clocks[worker] - int(self.bound)
        event = self._waiting.get(needed)
        if event is None:
            event = self._waiting[needed] = self.port.event()
        return event

    def tick(self, worker: int) -> None:
        """``worker`` completed a push."""
        clock = self.clocks[worker]
        self.clocks[worker] = clock + 1
        self._at[clock + 1] = self._at.get(clock + 1, 0) + 1
        self._remove(clock)

    def leave(self, worker: int) -> None:
        """``worker`` is down: the slowest clock is taken over the others."""
        if self.active[worker]:
            self.active[worker] = False
            self._remove(self.clocks[worker])

    def join(self, worker: int) -> None:
        """``worker`` is back, at the slowest clock of those running."""
        if not self.active[worker]:
            self.active[worker] = True
            if self._at:
                clock = self.min_clock
            else:  # nobody else is running: its own clock is the slowest
                clock = self.min_clock = self.clocks[worker]
            self.clocks[worker] = clock
            self._at[clock] = self._at.get(clock, 0) + 1

    def _remove(self, clock: int) -> None:
        """One active worker fewer at ``clock``; raise the minimum if that emptied it."""
        self._at[clock] -= 1
        if self._at[clock]:
            return
        del self._at[clock]
        if clock == self.min_clock and self._at:
            # after a tick the next clock is occupied; after a leave, search the few keys
            new = clock + 1 if clock + 1 in self._at else min(self._at)
            for needed in range(self.min_clock + 1, new + 1):
                released = self._waiting.pop(needed, None)
                if released is not None:
                    released.succeed()
            self.min_clock = new

    def reset(self, bound: float) -> None:
        """Start counting afresh (a new stage) with a new bound; release anybody held."""
        for event in self._waiting.values():
            event.succeed()
        self._count_from_zero(bound)
