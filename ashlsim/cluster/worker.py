"""A worker: gate -> pull -> compute -> push, forever (``Iterations``: callbacks on the event
queue, or a SimPy process under faults).

The strategy decides only who waits (``gate``), how many local steps (``local_steps``) and what the
PS does with what arrives (``receive``); everything else is the same for every scheme.
"""

from __future__ import annotations

import heapq

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from ..compression import identity, message_bytes
from ..rng import Deferred
from ..strategies.base import Exchange, Update, check_local_steps


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

    def exchanged(self, start: float, now: float, nbytes: int) -> None:
        """Communication among the workers (``strategies.base.Exchange``): ``nbytes`` sent and
        as many received."""
        self.comm_s += now - start
        self.served(nbytes)

    def served(self, nbytes: int) -> None:
        """Bytes sent and received for another worker's exchange, while this one went on
        (the passive side of a neighbour's averaging): no time of its own."""
        self.bytes_up += nbytes
        self.bytes_down += nbytes
        self.totals.bytes_up += nbytes
        self.totals.bytes_down += nbytes

    def computing(self, start: float, end: float, steps: int, samples: int) -> None:
        """A computation that will end at ``end`` without an event of its own (its push is
        the same timeout): recorded by ``settle`` when the push ends, or when the run stops,
        if it has ended by then, as ``computed`` would have recorded it at ``end``."""
        self.pending = (start, end, steps, samples)

    def settle(self, now: float) -> None:
        pending, self.pending = self.pending, None
        if pending is not None and pending[1] <= now:
            self.computed(*pending)

    def cut(self, kind: str, start: float, now: float) -> None:
        """A phase (``wait``, ``pull``, ``compute`` or ``push``) still under way when the run
        stops at ``now``: its seconds so far count, its counts and bytes do not (nothing was
        delivered)."""
        if kind == "wait":
            self.wait_s += now - start
        elif kind == "compute":
            self.compute_s += now - start
        else:
            self.comm_s += now - start


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

    def exchanged(self, start, now, nbytes):
        super().exchanged(start, now, nbytes)
        self.log(self.index, "exchange", start, now)

    def cut(self, kind, start, now):
        super().cut(kind, start, now)
        self.log(self.index, kind, start, now)


def offload_overhead(pull_end: float, now: float, busy_s: float) -> float:
    """The time between a pull's end and its computation's result arriving at ``now`` that the
    computation (``busy_s``, measured where it ran) does not account for."""
    return max(now - pull_end - busy_s, 0.0)


def is_steady(strategy) -> bool:
    """Whether ``strategy``'s class declares it ``steady`` (its own declaration: a subclass
    may vary its local steps or compressors)."""
    return type(strategy).__dict__.get("steady", False)


class Worker:
    """Simulated worker ``index`` with base ``speed`` (samples/s) and per-iteration jitter."""

    # A computation followed by a push that nothing can slow is one timeout (``Iterations``);
    # False: two, as in the model's definition (the tests compare the two).
    joins_compute_and_push = True
    # A pull that nothing can slow, with a computation after it that nothing can change, has
    # it drawn at the pull's start (``Iterations``); False: at its end (the tests compare)
    draws_early = True
    # Where computations are done instead of drawn here: None, or an object with
    # ``send(iteration, now) -> event`` and ``received(iteration, now) -> (message, busy_s)``
    # (the emulator's worker processes; ``Iterations._send_at``)
    offload = None
    # The iterations run as a SimPy process only under faults (a crash interrupts a process);
    # True: always, as the tests' reference (``Iterations``)
    in_process = False

    __slots__ = (  # thousands of workers: compact, and their hot fields close together
        "index",
        "speed",
        "batch_s",
        "jitter",
        "_rng_jitter",
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
        "iteration",
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
        self._rng_jitter = rng_jitter  # a Generator, or a ``rng.Deferred`` made when drawn from
        self.sampler = sampler
        self.trainer = trainer  # a training.NullTrainer in timing-only mode
        self.sim = sim
        self.slowdown = 1.0  # > 1 during a straggler episode
        self.velocity = None  # momentum buffer
        self.last_work = None  # the last work started (its buffer is the next one's start)
        self.optimizer_resets = 0
        self.set_compressor(identity(), None)
        # statistics (simulated seconds, bytes, counts), and the event log when asked
        records, log = sim.records, sim.records.log
        self.stats = (
            Recorder(index, records) if log is None else LoggingRecorder(index, records, log)
        )
        # faults: a crash interrupts ``process``; ``recovered`` restarts it
        self.process = None
        self.phase = "gate"
        self.down = self.will_recover = False
        self.down_s = self.down_since = 0.0
        self.lost_pushes = 0
        self.dropped = 0  # pushes the strategy dropped on arrival (backup workers)
        self.recovered: simpy.Event | None = None
        self.iteration: Iterations | None = None  # the iterations under way
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

    @property
    def rng_jitter(self) -> np.random.Generator:
        """The worker's jitter stream (a constant jitter never draws from it)."""
        if isinstance(self._rng_jitter, Deferred):
            self._rng_jitter = self._rng_jitter.generator()
        return self._rng_jitter

    def compute_time(self, steps: int) -> float:
        """Seconds for ``steps`` local iterations: batch / speed * jitter each, * slowdown."""
        base = self.batch_s * self.slowdown
        jitter = self.jitter
        if jitter.kind == "constant":
            return base * jitter.value * steps
        return base * float(np.sum(jitter.sample(self.rng_jitter, steps)))

    def run(self):
        """The worker's life, as a SimPy process: iterations, and restarts after crashes."""
        env, strategy = self.sim.env, self.sim.strategy
        while True:
            try:
                yield from self._iterate()
            except simpy.Interrupt:  # crashed: the iteration in flight is lost
                self.sim.network.drop(self.index)
                self.stats.settle(env.now)  # its time so far counts
                if self.iteration is not None:
                    self.iteration.cut(env.now)
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

    def start(self, faults: bool) -> None:
        """Start iterating: as a SimPy process if ``faults`` may interrupt it (or the class
        says ``in_process``), else as callbacks on the event queue (``Iterations``)."""
        if faults or self.in_process:
            self.process = self.sim.env.process(self.run())
        else:
            self.iteration = Iterations(self, on_queue=True)
            self.iteration.start()

    def report(self, elapsed: float) -> dict:
        """This worker's row of ``Result.workers`` (its own books) after a run of
        ``elapsed`` seconds; the PS's books add the rest."""
        stats = self.stats
        return {
            "worker": self.index,
            "speed": self.speed,
            "compute_s": stats.compute_s,
            "comm_s": stats.comm_s,
            "wait_s": stats.wait_s,
            "down_s": self.down_s + (elapsed - self.down_since if self.down else 0.0),
            "idle_share": stats.wait_s / elapsed if elapsed > 0 else 0.0,
            "iterations": stats.iterations,
            "samples": stats.samples,
            "pushes": stats.pushes,
            "lost_pushes": self.lost_pushes,
            "dropped": self.dropped,
            "bytes_up": stats.bytes_up,
            "bytes_down": stats.bytes_down,
        }

    def stopped(self, now: float) -> None:
        """The run stopped at ``now``: record the phase under way, if the worker is up (a
        crash recorded it when it came)."""
        self.stats.settle(now)  # a computation that ended with no event of its own
        if not self.down and self.iteration is not None:
            self.iteration.cut(now)

    def _iterate(self):
        """The iterations as a SimPy process: the steps of ``Iterations``, each timeout it
        asks for made an event (``timeout_at``: at that very time, numbered now)."""
        steps, timeout_at = Iterations(self), self.sim.env.timeout_at
        self.iteration = steps
        while True:
            wait = steps.next()
            yield timeout_at(wait) if isinstance(wait, float) else wait


class Iterations:
    """A worker's loop, gate -> pull -> compute -> push -> the PS receives, forever, as steps
    between the events it waits for. Each step does what happens at one instant and returns
    what to wait for: an event, or a time (a timeout ending then, numbered when the step asks
    for it, as ``env.timeout`` numbers it). ``next`` is the step to run when the wait is over.

    Two drivers run the steps, with the same events in the same order (tests/test_worker.py
    compares them, bit for bit):
    - on the queue (``start``): this object is itself the timeout it waits for (``step``
      calls its ``callbacks``) and ``resume`` is the callback it gives an event. No process:
      with thousands of workers a process's generator, frame and ``Process`` are cold memory
      at every event (benchmarks/README.md);
    - in a SimPy process (``Worker._iterate``): under faults, a crash interrupts the process
      wherever it waits (``Worker.run``).

    What a step computes elsewhere instead of drawing it (the emulator: ``Worker.offload``)
    it sends, then awaits; the rest of the loop is the same for both engines."""

    __slots__ = (
        # what ``Environment.step`` reads of an event, when this object is its own timeout
        "callbacks",
        "_ok",
        "_value",
        "own",
        "next",
        "resume",
        # set once
        "status",
        "worker",
        "index",
        "env",
        "sim",
        "network",
        "server",
        "strategy",
        "record",
        "prepare",
        "pull_bytes",
        "batch",
        "pull_fixed",
        "local",
        "cached",
        "join",
        "push_fixed_for",
        "early",
        "steady_steps",
        "compute_fixed",
        "offload",
        "after_pull",
        "compute_from",
        # the iteration under way
        "phase",
        "seq",
        "since",  # the phase under way started then
        "end",
        "params",
        "version",
        "chain",
        "pull_s",
        "steps",
        "compute_s",
        "work",
        "push_bytes",
        "fixed",
        "pull_from",
        "then",
        "due",
        "message",
        "gate_event",
        "snapshot",
    )

    def __init__(self, worker: Worker, on_queue: bool = False):
        sim = worker.sim
        self.callbacks, self._ok, self._value = None, True, None
        self.resume = self._resume  # bound once: given to every event it waits for
        self.own = (self.resume,)
        self.next = self._gate
        self.worker, self.index, self.sim, self.env = worker, worker.index, sim, sim.env
        self.network, self.server, self.strategy = sim.network, sim.server, sim.strategy
        self.record = worker.stats
        self.prepare = worker.trainer.prepare if sim.model.trains else None  # timing only
        self.batch = worker.sampler.batch_size
        # a scheme that moves its own bytes (an all-reduce): pulls and pushes are free, local
        self.local = not sim.strategy.through_server
        self.pull_bytes = 0 if self.local else sim.dense_bytes
        # None: the pull goes through a card that can be shared
        self.pull_fixed = self._transfer_time(self.pull_bytes, "pull")
        # what a pull reads: the PS's model, or the worker's own (``Strategy.own_models``)
        self.snapshot = self.server.snapshot if sim.replicas is None else self._own_model
        self.cached = sim.strategy.cached_reads  # may compute on its own model, not pull
        self.join = worker.joins_compute_and_push
        self.push_fixed_for = (None, None)  # (bytes, seconds): recomputed when the size changes
        # Where the phase under way is written: only a crash reads it (``Worker.run``), and a
        # crash needs a process; on the queue it goes to this object, not to the worker's
        self.status = self if on_queue else worker
        self._plan_shortcuts(worker, sim)
        self.seq = 0
        self.work = self.params = self.chain = self.message = None
        worker.last_local = None  # after a restart the first iteration pulls

    def _plan_shortcuts(self, worker: Worker, sim) -> None:
        """What can be known ahead of each iteration, and so read once or drawn early. None of
        it changes a run (tests/test_worker.py compares each with its absence, bit for bit)."""
        # The computation after a pull is drawn at the pull's start when nothing that decides
        # it can change while the pull lasts: no SGD to fix as of the pull's end (timing
        # only), a strategy whose class declares itself ``steady`` (its local steps and
        # compressors never change), no straggler episodes to change the speed. The pull's
        # end then only records it, while the worker's state is still in the cache.
        steady = is_steady(sim.strategy)
        self.steady_steps = self._local_steps() if steady else None
        self.early = (
            worker.draws_early
            and self.pull_fixed is not None
            and self.prepare is None
            and steady
            and sim.scenario.cluster.stragglers is None
        )
        # A steady scheme never changes a worker's compressor: its push's size and (through a
        # card nothing shares) time are those of now. With a constant jitter and nothing to
        # change the speed (straggler episodes, faults) its compute time is too: read once,
        # the worker's object is not touched at every iteration
        if steady:
            self.push_bytes = 0 if self.local else worker.push_bytes
            self.fixed = self._transfer_time(self.push_bytes, "push")
        self.compute_fixed = (
            worker.compute_time(self.steady_steps)
            if steady
            and worker.jitter.kind == "constant"
            and type(worker).compute_time is Worker.compute_time
            and sim.scenario.cluster.stragglers is None
            and not sim.scenario.faults
            else None
        )
        # A computation done elsewhere (the emulator's worker process) instead of drawn: its
        # result is awaited, and nothing about it is known before it arrives
        self.offload = worker.offload
        if self.offload is not None:
            self.join = self.early = False
            self.compute_fixed = None
        self.after_pull = self._pulled if self.offload is None else self._send
        self.compute_from = self._compute if self.offload is None else self._send_at

    # ---- the queue driver -----------------------------------------------------------------------
    def start(self) -> None:
        """Run from now on the queue, first as a new process would (SimPy's ``Initialize``)."""
        env = self.env
        self.callbacks = self.own
        heapq.heappush(env._queue, (env.now, URGENT, next(env._eid), self))

    def _resume(self, event) -> None:
        """What ``simpy.Process._resume`` does for a process: run steps until one waits."""
        if not event._ok:  # nothing here handles a failure: ``step`` raises it
            return
        while True:
            wait = self.next()
            if isinstance(wait, float):  # this object is the timeout
                env = self.env
                self.callbacks = self.own
                heapq.heappush(env._queue, (wait, NORMAL, next(env._eid), self))
                return
            if wait.callbacks is not None:
                wait.callbacks.append(self.resume)
                return
            if not wait._ok:  # (already processed: a process goes on at once)
                raise wait._value

    def cut(self, now: float) -> None:
        """Record the phase under way at ``now``, when the run stops: what it is follows from
        the step that would run at its end."""
        step, record = self.next, self.record
        if step == self._gated:
            record.cut("wait", self.since, now)
        elif step == self._pulled or step == self._pull_flow or step == self._send:
            record.cut("pull", self.since, now)
        elif step == self._received:  # computed elsewhere, its result not back yet
            if self.params is not None:
                record.cut("pull", self.since, self.end)
            record.cut("compute", self.end, now)
        elif step == self._pulled_early:  # (the computation starts at the pull's end)
            record.cut("pull", self.pull_from, now)
        elif step == self._computed:
            record.cut("compute", self.since, now)
        elif step == self._pushed_joined:  # one timeout: the computation, then the push
            if now < self.end:
                record.cut("compute", self.since, now)
            else:  # (the computation was settled)
                record.cut("push", self.end, now)
        elif step == self._pushed or step == self._push_flow or step == self._applied:
            record.cut("push", self.since, now)

    # ---- the steps ----------------------------------------------------------------------------
    def _gate(self):
        self.status.phase = "gate"
        gate = self.strategy.gate(self.index)
        if gate is None:
            return self._pull()
        self.since, self.next, self.gate_event = self.env.now, self._gated, gate
        return gate

    def _gated(self):
        now, exchange = self.env.now, self.gate_event._value
        self.gate_event = None
        sent = exchange.nbytes.get(self.index) if isinstance(exchange, Exchange) else None
        if sent is None:
            self.record.waited(self.since, now)
        else:  # the scheme's own communication ended the wait (an all-reduce)
            start = max(self.since, exchange.start_s)
            self.record.waited(self.since, start)
            self.record.exchanged(start, now, round(sent))
        return self._pull()

    def _pull(self):
        self.status.phase = "pull"
        worker = self.worker
        if self.cached and self.strategy.reads_cache(self.index):
            # a cached read: continue from its own model (the last pull plus its own updates
            # since), no transfer
            self.version, self.chain, self.pull_s = worker.cache_version, worker.last_local, 0.0
            return self.compute_from(self.env.now)
        self.params, self.version = self.snapshot()
        if self.cached:  # (only a cached read reads it)
            worker.cache_version = self.version
        self.since = now = self.env.now
        self.next = self.after_pull
        if self.pull_fixed is not None:
            end = now + self.pull_fixed
            if not self.early:
                return end
            self.pull_from, self.pull_s = now, end - now
            self.due = self._compute(end)  # (the step after the computation: ``next``)
            self.then, self.next = self.next, self._pulled_early
            return end
        return self._through_card(self.pull_bytes, "pull", self._pull_flow)

    def _through_card(self, nbytes, direction: str, flow_step):
        """A transfer through a PS card that can be shared: its ``begin`` event, after which
        ``flow_step`` joins the card unless the latency and the flow were reserved as one."""
        event, whole = self.network.begin(self.index, nbytes, direction)
        if not whole:
            self.next = flow_step
        return event

    def _own_model(self):
        return self.sim.replicas.read(self.index), self.server.version

    def _pull_flow(self):
        self.next = self.after_pull
        return self.network.flow(self.index, self.pull_bytes, "pull")

    def _pulled(self):
        now = self.env.now
        self.pull_s = self.record.pulled(self.since, now, self.pull_bytes)
        return self._compute(now)

    def _pulled_early(self):
        self.record.pulled(self.pull_from, self.env.now, self.pull_bytes)
        self.next = self.then
        return self.due

    def _compute(self, now: float):
        """Start computing at ``now`` (the pull's end, which may be later: ``early``)."""
        worker, batch = self.worker, self.batch
        self.status.phase = "compute"
        steps = self.steps = self.steady_steps or self._local_steps()
        compute_s = self.compute_s = self.compute_fixed or worker.compute_time(steps)
        # the SGD is fixed as of the computation's start (docs/DESIGN.md section 1)
        prepare = self.prepare
        if prepare is not None:
            worker.last_local = self.work = prepare(
                self.params,
                steps,
                worker.sampler,
                self.sim.schedule_clock(),
                worker,
                self.strategy.accumulates,
                self.chain,
                self.cached,
            )
            self.params = self.chain = None
        if self.steady_steps is None:  # (steady: the push's size and time were read once)
            self._size_push()
        fixed = self.fixed
        self.since, end = now, now + compute_s
        if fixed is not None and self.join:
            # Nothing can slow the push (no sharing, no faults), so nothing happens at the end
            # of the computation but this worker's books: the computation and the push are one
            # timeout, ending at the very time the two would have (tests/test_worker.py
            # compares every scheme with ``join`` off); the computation is recorded when the
            # push ends (or when the run stops)
            self.record.computing(now, end, steps, steps * batch)
            self.end, self.next = end, self._pushed_joined
            return end + fixed
        self.next = self._computed
        return end

    def _local_steps(self) -> int:
        return check_local_steps(
            self.strategy.local_steps(self.index), self.sim.scenario.strategy.name, self.index
        )

    def _size_push(self) -> None:
        """The push's bytes (the compressor's as of the computation's start) and its time
        when nothing can slow it."""
        push_bytes = self.push_bytes = 0 if self.local else self.worker.push_bytes
        if self.push_fixed_for[0] != push_bytes:
            self.push_fixed_for = (push_bytes, self._transfer_time(push_bytes, "push"))
        self.fixed = self.push_fixed_for[1]

    def _transfer_time(self, nbytes: int, direction: str) -> float | None:
        """A transfer's seconds when nothing can slow it (none: ``local``), else None."""
        return 0.0 if self.local else self.network.fixed_time(self.index, nbytes, direction)

    def _computed(self):
        now, steps = self.env.now, self.steps
        self.record.computed(self.since, now, steps, steps * self.batch)
        return self._push(now)

    def _push(self, now: float):
        self.status.phase = "push"
        self.since, self.next = now, self._pushed
        if self.fixed is not None:
            return now + self.fixed
        return self._through_card(self.push_bytes, "push", self._push_flow)

    # ---- a computation done elsewhere (``Worker.offload``) ------------------------------------
    def _send(self):
        return self._send_at(self.env.now)

    def _send_at(self, now: float):
        """The pull has ended at ``now`` (or there was none: a cached read): the work goes to
        where it is computed (``offload.send``), and its result is awaited."""
        self.status.phase = "compute"
        self.steps = self.steady_steps or self._local_steps()
        self._size_push()
        self.end, self.next = now, self._received
        return self.offload.send(self, now)

    def _received(self):
        """The result arrived: ``(message, busy_s)``, the computation's measured length. The
        rest of the time since the pull's end (serializing, sockets, the PS's loop) goes half
        to the pull, half to the push; the push starts now."""
        now, steps, pull_end = self.env.now, self.steps, self.end
        self.message, busy_s = self.offload.received(self, now)
        start = pull_end + offload_overhead(pull_end, now, busy_s) / 2
        if self.params is not None:  # (a cached read moved nothing)
            self.pull_s = self.record.pulled(self.since, start, self.pull_bytes)
        self.params = None
        self.compute_s = busy_s
        self.record.computed(start, start + busy_s, steps, steps * self.batch)
        return self._push_at(start + busy_s, now)

    def _push_at(self, since: float, now: float):
        """The push starts moving now; its time counts from ``since``."""
        wait = self._push(now)
        self.since = since
        return wait

    def _push_flow(self):
        self.next = self._pushed
        return self.network.flow(self.index, self.push_bytes, "push")

    def _pushed_joined(self):
        self.record.settle(self.end)
        self.status.phase = "push"
        self.since = self.end
        return self._pushed()

    def _pushed(self):
        server = self.server
        if server.apply_s:  # the PS handles one push at a time
            now = self.env.now
            server.free_at = max(now, server.free_at) + server.apply_s
            self.next = self._applied
            return now + (server.free_at - now)  # (as ``env.timeout`` adds its delay)
        return self._applied()

    def _applied(self):
        push_bytes, steps = self.push_bytes, self.steps
        push_s = self.record.pushed(self.since, self.env.now, push_bytes)
        update = Update(  # in field order: keywords cost more on this path (benchmarks/README.md)
            self.index,
            self.seq,
            self.message,
            self.work,
            self.version,
            steps,
            steps * self.batch,
            self.pull_s,
            self.compute_s,
            push_s,
            push_bytes,
        )
        self.seq += 1
        self.work = self.message = None
        self.sim.pushed(update)
        self.strategy.receive(update)
        return self._gate()
