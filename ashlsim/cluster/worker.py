"""A worker: one SimPy process whose life is gate -> pull -> compute -> push, forever.

The strategy decides only who waits (``gate``), how many local steps (``local_steps``) and what the
PS does with what arrives (``receive``); everything else is the same for every scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from ..compression import identity, message_bytes
from .environment import Due, Relay


@dataclass(slots=True, eq=False)
class Update:
    """One push, as it arrives at the PS."""

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


class Recorder:
    """A worker's statistics (simulated seconds, bytes, counts) and the cluster's byte totals
    (``totals``: any object with ``bytes_up`` and ``bytes_down``). Each method records one phase
    that ended ``now`` and returns what the worker needs of it."""

    __slots__ = (
        "index",
        "totals",
        "compute_s",
        "comm_s",
        "wait_s",
        "iterations",
        "samples",
        "pushes",
        "bytes_up",
        "bytes_down",
        "pending",
    )

    def __init__(self, index: int, totals):
        self.index, self.totals = index, totals
        self.compute_s = self.comm_s = self.wait_s = 0.0
        self.iterations = self.samples = self.pushes = 0
        self.bytes_up = self.bytes_down = 0
        self.pending = None  # a computation that ends with no event of its own: ``computing``

    def waited(self, start: float, now: float) -> None:
        self.wait_s += now - start

    def pulled(self, start: float, now: float, nbytes: int) -> float:
        self.comm_s += now - start
        self.bytes_down += nbytes
        self.totals.bytes_down += nbytes
        return now - start

    def computed(self, start: float, now: float, steps: int, samples: int) -> None:
        self.compute_s += now - start
        self.iterations += steps
        self.samples += samples

    def pushed(self, start: float, now: float, nbytes: int) -> float:
        self.comm_s += now - start
        self.bytes_up += nbytes
        self.totals.bytes_up += nbytes
        self.pushes += 1
        return now - start

    def computing(self, start: float, end: float, steps: int, samples: int) -> None:
        """A computation that will end at ``end`` without an event of its own (its push is
        the same timeout): recorded by ``settle`` when the push ends, or when the run stops,
        if it has ended by then, as ``computed`` would have recorded it at ``end``."""
        self.pending = (start, end, steps, samples)

    def settle(self, now: float) -> None:
        pending, self.pending = self.pending, None
        if pending is not None and pending[1] <= now:
            self.computed(*pending)


class LoggingRecorder(Recorder):
    """A ``Recorder`` that also logs each phase as an interval (``log(worker, kind, start,
    end)``): the events of a Gantt chart."""

    __slots__ = ("log",)

    def __init__(self, index: int, totals, log):
        super().__init__(index, totals)
        self.log = log

    def waited(self, start, now):
        super().waited(start, now)
        self.log(self.index, "wait", start, now)

    def pulled(self, start, now, nbytes):
        self.log(self.index, "pull", start, now)
        return super().pulled(start, now, nbytes)

    def computed(self, start, now, steps, samples):
        super().computed(start, now, steps, samples)
        self.log(self.index, "compute", start, now)

    def pushed(self, start, now, nbytes):
        self.log(self.index, "push", start, now)
        return super().pushed(start, now, nbytes)


def is_steady(strategy) -> bool:
    """Whether ``strategy``'s class declares it ``steady`` (its own declaration: a subclass
    may vary its local steps or compressors)."""
    return type(strategy).__dict__.get("steady", False)


class Worker:
    """Simulated worker ``index`` with base ``speed`` (samples/s) and per-iteration jitter."""

    # A computation followed by a push that nothing can slow is one timeout (``_iterate``);
    # False: two, as in the model's definition (the tests compare the two).
    joins_compute_and_push = True
    # A pull that nothing can slow ends without waking the worker when the computation after
    # it is known at its start (``relays_pull``): a ``Relay`` on the queue records its end
    relays_pulls = True

    __slots__ = (  # thousands of workers: compact, and their hot fields close together
        "index",
        "speed",
        "batch_s",
        "jitter",
        "rng_jitter",
        "sampler",
        "trainer",
        "sim",
        "slowdown",
        "velocity",
        "last_work",
        "optimizer_resets",
        "compressor",
        "ratio",
        "compress_state",
        "push_bytes",
        "stats",
        "process",
        "phase",
        "down",
        "will_recover",
        "down_s",
        "down_since",
        "lost_pushes",
        "dropped",
        "recovered",
        "cache_version",
        "last_local",
    )

    def __init__(self, index, speed, jitter, rng_jitter, sampler, trainer, sim):
        self.index = index
        self.speed = float(speed)
        self.batch_s = sampler.batch_size / self.speed  # a batch at full speed (hot path)
        self.jitter = jitter
        self.rng_jitter = rng_jitter
        self.sampler = sampler
        self.trainer = trainer  # a training.NullTrainer in timing-only mode
        self.sim = sim
        self.slowdown = 1.0  # > 1 during a straggler episode
        self.velocity = None  # momentum buffer
        self.last_work = None  # the last work started (its buffer is the next one's start)
        self.optimizer_resets = 0
        self.set_compressor(identity(), None)
        # statistics (simulated seconds, bytes, counts), and the event log when asked
        log = sim.log_event
        self.stats = Recorder(index, sim) if log is None else LoggingRecorder(index, sim, log)
        # faults: a crash interrupts ``process``; ``recovered`` restarts it
        self.process = None
        self.phase = "gate"
        self.down = self.will_recover = False
        self.down_s = self.down_since = 0.0
        self.lost_pushes = 0
        self.dropped = 0  # pushes the strategy dropped on arrival (backup workers)
        self.recovered: simpy.Event | None = None
        self.cache_version = 0  # the version of the last pull (cached reads)
        self.last_local = None  # the last work started: a cached read continues from it

    def set_compressor(self, compressor, ratio: float | None, segments=None) -> None:
        """Use ``compressor`` from the next push on; its residual starts empty.
        ``ratio`` is the kept fraction (None: dense) and ``segments`` the tensor sizes it is
        taken over (None: the whole vector): together they size the push."""
        self.sim.server.flush()  # pushes already applied are compressed with the old state
        self.compressor = compressor
        self.ratio = ratio
        size = self.sim.model_size
        self.compress_state = compressor.init(size)
        self.push_bytes = message_bytes(self.sim.workload, size, ratio, segments)

    def compute_time(self, steps: int) -> float:
        """Seconds for ``steps`` local iterations: batch / speed * jitter each, * slowdown."""
        base = self.batch_s * self.slowdown
        jitter = self.jitter
        if jitter.kind == "constant":
            return base * jitter.value * steps
        return base * float(np.sum(jitter.sample(self.rng_jitter, steps)))

    def relays_pull(self, pull_fixed: float | None) -> bool:
        """Whether a pull that takes ``pull_fixed`` s (None: it can be slowed) ends without
        waking the worker. It can when nothing that decides the computation after it can
        change while it lasts, so the worker starts that computation at the pull's start:
        no SGD to fix as of the pull's end (timing only), a strategy whose class declares
        itself ``steady`` (its local steps and compressors never change), and no straggler
        episodes to change the speed."""
        sim = self.sim
        return (
            self.relays_pulls
            and pull_fixed is not None
            and not sim.model.trains
            and is_steady(sim.strategy)
            and sim.scenario.cluster.stragglers is None
        )

    def run(self):
        """The worker's life, as a SimPy process: iterations, and restarts after crashes."""
        env, strategy = self.sim.env, self.sim.strategy
        while True:
            try:
                yield from self._iterate()
            except simpy.Interrupt:  # crashed: the iteration in flight is lost
                self.sim.network.drop(self.index)
                if self.phase in ("compute", "push"):
                    self.lost_pushes += 1
                strategy.worker_down(self.index)
                yield self.recovered
                back = self.restart()  # the simulator's machine is back at once
                if back is not None:
                    yield back
                self.down_s += env.now - self.down_since
                self.down = False
                # a restarted machine has lost its optimizer state and compression residual
                self.reset_optimizer()  # (after the PS has computed the pushes it applied)
                self.compress_state = self.compressor.init(self.sim.model_size)
                strategy.worker_up(self.index)

    def restart(self):
        """Bring the machine back after a crash: None when it is back now, else an event that
        succeeds when it is (a real process has to start first)."""
        return None

    def reset_optimizer(self) -> None:
        """Forget the momentum buffer (also the one of work still being computed)."""
        self.sim.server.flush()
        self.velocity = self.last_work = None
        self.optimizer_resets += 1

    def message_for(self, delta, compressor) -> object:
        """Compress ``delta`` with the ``compressor`` the work started under (its size is what
        the push was charged). Its state advances in push order; if the worker has switched
        compressor since (a stage switch), the old one runs on a fresh state instead."""
        if compressor is self.compressor:
            message, self.compress_state = compressor.compress(delta, self.compress_state)
            return message
        return compressor.compress(delta, compressor.init(delta.size))[0]

    def crash(self, recovered: simpy.Event) -> bool:
        """Crash now; restart when ``recovered`` succeeds. False if already down."""
        if self.down:
            return False
        self.down, self.recovered, self.down_since = True, recovered, self.sim.env.now
        self.process.interrupt("crash")
        return True

    def _iterate(self):
        """Gate -> pull -> compute -> push -> the PS receives, forever."""
        sim, index, record = self.sim, self.index, self.stats
        env, network, server, strategy = sim.env, sim.network, sim.server, sim.strategy
        # bound once: the loop below runs millions of times
        waited, pulled, computed, pushed = (
            record.waited,
            record.pulled,
            record.computed,
            (record.pushed),
        )
        prepare = self.trainer.prepare if sim.model.trains else None  # timing only: no work
        pull_bytes, batch = sim.dense_bytes, self.sampler.batch_size
        pull_fixed = network.fixed_time(index, pull_bytes, "pull")  # None: contended
        cached = strategy.cached_reads  # a worker may compute on its own model instead of pulling
        self.last_local = None  # after a restart the first iteration pulls
        push_fixed_for = (None, None)  # (bytes, seconds): recomputed when the size changes
        join = self.joins_compute_and_push
        # the pull's end would wake the worker only to record it and start computing: when
        # the computation is known at the pull's start, the worker starts it then and a relay
        # on the queue records the pull's end, taking the event numbers the worker would have
        # taken (events at one time keep their order; tests/test_worker.py compares, bit for
        # bit). Started then, while this worker's data is in the cache: done by the relay at
        # the pull's end instead, an iteration cost a quarter more at 10,000 workers
        # (measured), more than the wake-up it saves.
        relayed_pulls = self.relays_pull(pull_fixed)
        relay = Relay(env, pulled) if relayed_pulls else None
        steady_steps = strategy.local_steps(index) if is_steady(strategy) else None
        seq = 0
        while True:
            self.phase = "gate"
            gate = strategy.gate(index)
            if gate is not None:
                start = env.now
                yield gate
                waited(start, env.now)

            self.phase = "pull"
            if cached and strategy.reads_cache(index):
                # a cached read: continue from its own model (the last pull plus its own
                # updates since), no transfer
                params, version, chain, pull_s = None, self.cache_version, self.last_local, 0.0
                now, relayed = env.now, None
            else:
                params, version = server.snapshot()
                chain, self.cache_version, start = None, version, env.now
                # each transfer is ``Network.move`` inlined: a generator of its own would
                # cost ~0.6 us of the ~11 us an iteration's events cost (measured)
                if relayed_pulls:
                    now = start + pull_fixed
                    pull_s = now - start
                    relayed = (start, now, pull_bytes)
                else:
                    if pull_fixed is None:
                        event, whole = network.begin(index, pull_bytes, "pull")
                        yield event
                        if not whole:
                            yield network.flow(index, pull_bytes, "pull")
                    else:
                        yield env.timeout(pull_fixed)
                    now, relayed = env.now, None
                    pull_s = pulled(start, now, pull_bytes)

            self.phase = "compute"
            steps = steady_steps or strategy.local_steps(index)
            compute_s = self.compute_time(steps)
            # the SGD is fixed as of the computation's start (docs/DESIGN.md section 1)
            work = self.last_local = prepare and prepare(
                params,
                steps,
                self.sampler,
                sim.progress(),
                self,
                strategy.accumulates,
                chain,
                cached,
            )
            push_bytes = self.push_bytes
            if push_fixed_for[0] != push_bytes:
                push_fixed_for = (push_bytes, network.fixed_time(index, push_bytes, "push"))
            fixed = push_fixed_for[1]
            start, end = now, now + compute_s
            joined = fixed is not None and join
            if joined:
                # Nothing can slow the push (no sharing, no faults), so nothing happens at
                # the end of the computation but this worker's books: the computation and
                # the push are one timeout, ending at the very time the two would have
                # (tests/test_worker.py compares every scheme with ``join`` off); the
                # computation is recorded when the push ends (or when the run stops)
                record.computing(now, end, steps, steps * batch)
                due = end + fixed
            else:
                due = end
            if relayed is None:
                yield env.timeout_at(due)
            else:  # the pull's end records it and puts ``done`` on the queue
                done = Due(env)
                relay.schedule(now, relayed, done, due)
                yield done
            if joined:
                record.settle(end)
                self.phase = "push"
                start = end
            else:
                computed(start, env.now, steps, steps * batch)

                self.phase = "push"
                start = env.now
                if fixed is None:
                    event, whole = network.begin(index, push_bytes, "push")
                    yield event
                    if not whole:
                        yield network.flow(index, push_bytes, "push")
                else:
                    yield env.timeout(fixed)
            if sim.apply_s:  # the PS handles one push at a time
                sim.ps_free_at = max(env.now, sim.ps_free_at) + sim.apply_s
                yield env.timeout(sim.ps_free_at - env.now)
            push_s = pushed(start, env.now, push_bytes)
            update = Update(
                index,
                seq,
                None,
                work,
                version,
                steps,
                steps * batch,
                pull_s,
                compute_s,
                push_s,
                push_bytes,
            )
            seq += 1
            sim.pushed(update)
            strategy.receive(update)
            # freed now, while in the cache: kept until the next iteration rebinds it, it is
            # a cold object to free at 10,000 workers (8.3 -> 8.0 us an iteration, measured)
            del update
