"""The run loop of a simulation: run until a stop condition, observe, and never spin without
bound. ``RunLoop`` is the part of ``engine.Simulation`` that runs what the engine built; the
observer evaluates the global model every ``eval.every_s`` simulated seconds at host cost only
(docs/DESIGN.md section 1) and hands each record to the strategy."""

from __future__ import annotations

import contextlib
import gc
import math
import time

import numpy as np
import simpy

from .cluster.server import VersionTrail
from .dist import PerWorker
from .errors import ScenarioError
from .faults import inject_fault, straggler
from .results import Result
from .scenario import Scenario
from .strategies.base import Evaluation


class RunLoop:
    """Running, observing and guarding a built ``engine.Simulation``."""

    # ---- observing --------------------------------------------------------------------------
    def evaluate(self) -> dict:
        """Record the global model's loss and accuracy now (host time only)."""
        self.server.flush()  # deferred training maths is simulation, not observation
        started = time.perf_counter()
        params = self.server.params
        test_loss, accuracy = self.model.evaluate(params, self.data.X_test, self.data.y_test)
        loss = self.model.loss(params, *self._train_eval)
        record = {
            "time_s": self.env.now,
            "updates": self.server.applied_pushes,
            "version": self.server.version,
            "epoch": self.records.samples / self.data.n_train,
            "loss": loss,
            "test_loss": test_loss,
            "accuracy": accuracy,
            "bytes_up": self.records.bytes_up,
            "bytes_down": self.records.bytes_down,
            "stage": self.strategy.stage,
        }
        self.records.history.append(record)
        self.records.eval_host_s += time.perf_counter() - started
        return record

    def _watch_target(self) -> None:
        """Keep every version's parameters between evaluations while the target is not
        reached, so that its crossing is located to the version that made it (``_reached``)."""
        self.target_crossing = None
        if self.model.trains and self.scenario.stop.target_accuracy is not None:
            per_version = self.model.size * np.dtype(self.model.dtype).itemsize
            self.server.trail = VersionTrail(lambda: self.env.now, TRAIL_BYTES // per_version)

    def _reached(self, record: dict) -> bool:
        """Whether ``record`` (the evaluation just made) reached the target; the first time,
        locate the crossing: the first version applied since the previous evaluation whose
        test accuracy reaches the target. The global model changes only when a version is
        applied, so its time is exact (resolution 0) unless the trail had to be thinned; then
        it lies between the kept version before it and itself (the resolution)."""
        target, trail = self.scenario.stop.target_accuracy, self.server.trail
        if target is None or record["accuracy"] < target:
            if trail is not None:
                trail.clear()  # (evaluate flushed: every applied version is computed)
            return False
        if self.target_crossing is not None:
            return True
        started = time.perf_counter()
        found = (record["time_s"], record["updates"])
        history = self.records.history
        below = history[-2]["time_s"] if len(history) > 1 else 0.0
        for time_s, pushes, params in trail.versions() if trail is not None else ():
            if self.model.evaluate(params, self.data.X_test, self.data.y_test)[1] >= target:
                found = (time_s, pushes)
                break
            below = time_s
        thinned = trail is not None and trail.thinned
        self.target_crossing = {
            "time_to_target_s": found[0],
            "updates_to_target": found[1],
            "time_to_target_resolution_s": found[0] - below if thinned else 0.0,
        }
        self.server.trail = None
        self.records.eval_host_s += time.perf_counter() - started
        return True

    def _observer(self):
        every = self.scenario.eval.every_s
        while True:
            record = self.evaluate()
            if self.model.trains and not math.isfinite(record["loss"]):
                self.stop("diverged")
            elif self._reached(record):
                self.stop("target_accuracy")
            else:
                self.strategy.observe(Evaluation(**record))
            if self.progress_callback is not None:
                self.progress_callback(self.env.now)
            yield self.env.timeout(every)

    # ---- running ------------------------------------------------------------------------------
    def drive(self) -> None:
        """Step the events until the stop: what differs between engines (the emulator's
        waits for the wall clock and its sockets). Here, ``env.run(until=stop)`` that cannot
        spin without bound: every WINDOW events it checks
        how much simulated time they covered, and stops with a ScenarioError naming the
        scenario's fastest clock when the run is going nowhere (events at one instant) or would
        need more than MAX_EVENTS at that pace."""
        env, step = self.env, self.env.step
        self.stop_event.callbacks.append(simpy.core.StopSimulation.callback)
        limit = self.scenario.stop.time_s
        # every worker may have a few events at one instant (its start, a barrier's release,
        # a shared transfer's end): a burst of them is not a run going nowhere
        window = max(WINDOW, BURST_PER_WORKER * self.n_workers)
        try:
            while True:
                start = env.now
                for _ in range(window):
                    step()
                covered = env.now - start
                if covered * MAX_RATE >= window:
                    continue
                rate = window / covered if covered > 0 else math.inf
                left = math.inf if limit is None else (limit - env.now) * rate
                if left > MAX_EVENTS:
                    seconds, field = min(_suspects(self.scenario))
                    raise ScenarioError(
                        field,
                        f"{seconds:.3g} s",
                        f"a longer time: the run's fastest clock; {window} events covered only "
                        f"{covered:.3g} simulated s, so the run would need over {MAX_EVENTS:.0e} "
                        "events",
                    )
        except simpy.core.StopSimulation:
            return
        except simpy.core.EmptySchedule:
            raise RuntimeError("the simulation ran out of events before it stopped") from None

    def _start(self) -> None:
        """The strategy, the workers' iterations (and their straggler episodes), the faults, the
        time limit and the observer."""
        env, s = self.env, self.scenario
        self.strategy.start()
        for worker in self.workers:
            # nothing but an injected fault interrupts a worker: without one, its iterations
            # are callbacks on the queue, not a process (``cluster.worker.Iterations``)
            worker.start(faults=bool(s.faults))
            if s.cluster.stragglers is not None:
                env.process(straggler(self, worker, s.cluster.stragglers))
        for spec in s.faults:
            env.process(inject_fault(self, spec))
        if s.stop.time_s is not None:
            env.timeout(s.stop.time_s).callbacks.append(lambda _: self.stop("time_limit"))
        self._watch_target()
        env.process(self._observer())

    def run(self) -> Result:
        env = self.env
        # Divergence shows up as inf/nan in the arrays; the observer detects it, so the
        # floating-point warnings on the way there are expected, not errors.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            with no_gc():  # thousands of workers start: the collector would rescan them all
                self._start()  # (benchmarks/README.md, gctime.py)
            # ... and they are frozen with the rest of the long-lived objects
            with _quiet_gc(gc_threshold(self.n_workers)):
                self.drive()
            for worker in self.workers:  # phases under way, and computations that ended
                worker.stopped(env.now)  # with no event of their own
            records = self.records
            for row in records.faults:  # a permanent crash, or a fault still going at the end
                if math.isinf(row["end_s"]) and records.log:
                    records.log(row["worker"], row["kind"], row["start_s"], env.now)
            if not records.history or records.history[-1]["time_s"] < env.now:
                record = self.evaluate()
                if self.model.trains and not math.isfinite(record["loss"]):
                    self.stop_reason = "diverged"
                else:
                    self._reached(record)
        return Result.from_simulation(self)


TRAIL_BYTES = 64 << 20  # parameters kept to locate the target's crossing (``_watch_target``)

# The run guard (``RunLoop.drive``): a run whose events come faster than this per
# simulated second, and would need more than MAX_EVENTS, cannot finish in any sensible time.
WINDOW = 1 << 14  # events between two checks (a check costs nothing next to them) ...
BURST_PER_WORKER = 4  # ... and at least this many per worker
MAX_RATE = 1e8  # events per simulated second (10,000 workers at 1 ms iterations make ~6e7)
MAX_EVENTS = 1e9  # about 20 host minutes at the engine's speed


def _suspects(s: Scenario) -> list[tuple[float, str]]:
    """(seconds, field) of every clock in a scenario, to name the one that makes a run
    infeasible: the evaluation period, straggler episodes, iteration and transfer times."""
    c, b = s.cluster, s.training.batch_size
    out = [(s.eval.every_s, "eval.every_s")]
    if c.stragglers is not None:
        out += [
            (_values(c.stragglers.interval_s)[0], "cluster.stragglers.interval_s"),
            (_values(c.stragglers.duration_s)[0], "cluster.stragglers.duration_s"),
        ]
    if c.flops is None:
        out.append((b / max(_values(c.speed)), "cluster.speed"))
    for side in ("uplink", "downlink"):
        link = getattr(c, side)
        out.append(
            (min(_values(link.latency)) + 1.0 / max(_values(link.bandwidth)), f"cluster.{side}")
        )
    return out


def _values(dist) -> list[float]:
    if isinstance(dist, PerWorker):
        return list(dist.values)
    mean = dist.mean  # a method, or the field of a distribution given by its mean
    return [mean() if callable(mean) else mean]


@contextlib.contextmanager
def no_gc():
    """No cycle collection inside the block (it allocates much and frees nothing): a full
    collection rescans everything alive, so building N objects with it on costs O(N^2)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def gc_threshold(workers: int) -> int:
    """Container objects allocated (net) between two collections of the young generation during a
    run: 50,000, or 100 a worker. A collection scans the young objects still alive, and a round
    of a barrier scheme keeps a few per worker alive until it closes (its pushes, their work):
    collected every 50,000, 10,000 workers paid 0.19-0.29 s of a 4.5 s softmax run to scan them
    mid-round, 0.05-0.08 s at 100 a worker (benchmarks/gctime.py). Runs make no cyclic garbage
    to speak of (none found by those collections), so waiting longer holds no memory."""
    return max(50_000, 100 * workers)


@contextlib.contextmanager
def _quiet_gc(threshold: int):
    """Keep Python's cycle collector from rescanning the simulation's long-lived objects (the
    workers, their processes, the data) every few hundred allocations: a cost that grows with
    the cluster. The objects alive at the start are frozen out of collection, and young
    objects are collected in larger batches; both are restored afterwards."""
    old = gc.get_threshold()
    gc.freeze()  # no collect first: a full collection of a big heap costs more than it saves
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
