"""The runner: builds the simulated cluster for a scenario, runs it, and observes it.

``run(scenario)`` is the whole story: load and split the data, draw the cluster, start every
worker's iterations on SimPy's event queue (``cluster.worker.Iterations``) plus an observer
that evaluates the global model every ``eval.every_s`` simulated seconds (host time only;
docs/DESIGN.md section 1), stop on the first stop condition, and return a ``Result``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from .blas import blas_threads
from .cluster import Environment, Network, ParameterServer, Worker
from .cluster.fabric import FabricNetwork
from .cluster.replicas import Replicas
from .cluster.server import Deltas
from .compression import dense_bytes, virtual_values
from .config import dump_section
from .data import BatchSampler, load_dataset, partition
from .dist import Constant, PerWorker
from .errors import ScenarioError
from .models import NoModel, build_model, initial_params
from .records import RunRecords
from .results import Result
from .rng import Streams
from .runloop import RunLoop, no_gc
from .scenario import Scenario
from .series import Series, replay
from .simport import SimPort
from .strategies import build_strategy
from .training import LocalTrainer, NullTrainer


class Simulation(RunLoop):
    """One run of one scenario: the cluster, the strategy, the observer and the records.

    ``worker_class`` and ``port_class`` are what another engine replaces (the emulator's
    workers are real processes, ``ashlsim.emulator``); everything else is shared."""

    engine = "simulator"  # what the times of its Result are: simulated seconds
    models_software = True  # cluster.server.message_s and apply_s are modelled (not real)
    defers_maths = True  # the PS computes an applied push's delta when a reader needs it
    worker_class = Worker
    port_class = SimPort

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        events: bool | None = None,
        data: tuple | None = None,
    ):
        self.scenario = scenario
        self._arrays = data  # the user's (X, y), for ``data.name: arrays``
        self.seed = scenario.seed if seed is None else int(seed)
        self.streams = Streams(self.seed)
        self.env = Environment()
        self.n_workers = scenario.cluster.workers
        self.workload = scenario.workload
        self._build_learning()
        self._build_server()
        self._build_network()
        self._build_records(scenario.eval.events if events is None else events)
        self._build_workers()
        self.strategy = build_strategy(scenario.strategy, self.port_class(self))
        if not self.strategy.through_server:  # no PS to queue at: the workers hold the model
            self.server.apply_s = 0.0
        self.peers = None  # workers' messages to each other (``SimPort.exchange``)
        own = self.strategy.own_models and self.model.trains  # each worker's model
        self.replicas = Replicas(self.server.params, self.n_workers) if own else None

    # ---- set-up --------------------------------------------------------------------------------
    def _build_learning(self) -> None:
        """The data, the proxy model (or none: timing only) and the worker optimizer."""
        s = self.scenario
        # a timing-only run reads the data set's sizes only, and its labels for a label skew
        features = s.model.trains or s.data.partition == "dirichlet"
        self.data = load_dataset(s.data, self.streams.get("data"), np.dtype(s.model.dtype),
                                 features=features, arrays=self._arrays)  # fmt: skip
        if self.data.sha256 is not None and s.data.sha256 is None:  # the user's data: recorded
            s = self.scenario = s.replace(data=dataclasses.replace(s.data, sha256=self.data.sha256))
        model = build_model(s.model, self.data)
        if model is None:  # timing only: message sizes come from the virtual workload
            if s.workload.param_bytes is None:
                raise ScenarioError(
                    "workload.param_bytes",
                    None,
                    f"a size in bytes when model.name is {s.model.name}",
                )
            model = NoModel(virtual_values(s.workload, 0), s.model.dtype)
        self.model = model
        if model.trains and model.size > MAX_PARAMS:  # before allocating it
            raise ScenarioError(
                "model",
                dump_section(s.model),
                f"a proxy model of at most {MAX_PARAMS:.0e} parameters (this one has "
                f"{self.model.size:.3g}); a big network's timing goes in workload",
            )
        if s.training.batch_size > self.data.n_train:
            raise ScenarioError(
                "training.batch_size",
                s.training.batch_size,
                f"at most the {self.data.n_train} training samples of {s.data.name}",
            )
        self.trainer = LocalTrainer(model, self.data, s.training) if model.trains else NullTrainer()
        m = min(s.eval.max_samples, self.data.n_train)
        subset = np.sort(self.streams.get("eval").choice(self.data.n_train, m, replace=False))
        self._train_eval = (self.data.X_train[subset], self.data.y_train[subset])

    def _build_server(self) -> None:
        """The PS with the initial parameters; it computes deltas through the workers."""
        s = self.scenario
        self.model_size = self.model.size
        params = initial_params(self.model, self.streams.get("init"))
        self.dense_bytes = dense_bytes(s.workload, self.model_size)
        maths = Deltas(self.trainer) if self.model.trains else None
        # k shards apply their parts of a push at once
        server = s.cluster.server
        apply_s = server.apply_s / server.shards if self.models_software else 0.0
        self.server = ParameterServer(params, maths, defer=self.defers_maths, apply_s=apply_s)

    def _build_network(self) -> None:
        """The links and the PS card. ``cluster.server.message_s`` (a software cost) adds to
        every transfer's latency; its ``apply_s`` queues the pushes at the PS
        (``_build_server``). An engine whose software costs are real models neither."""
        c, n, streams = self.scenario.cluster, self.n_workers, self.streams
        message_s = c.server.message_s if self.models_software else 0.0
        changing = self._changing_bandwidths()
        # k shards, each with a card of B and an even part of every transfer, move bytes as
        # one card of k*B (docs/DESIGN.md section 2; ``FabricNetwork`` with ``shards`` is the
        # reference the tests compare)
        shards = c.server.shards
        links = (
            self.env,
            c.uplink.bandwidth.per_worker(streams.get("cluster.uplink.bandwidth"), n),
            c.uplink.latency.per_worker(streams.get("cluster.uplink.latency"), n) + message_s,
            c.downlink.bandwidth.per_worker(streams.get("cluster.downlink.bandwidth"), n),
            c.downlink.latency.per_worker(streams.get("cluster.downlink.latency"), n) + message_s,
            _first(c.server.ingress) * shards,
            _first(c.server.egress) * shards,
        )
        if c.racks is not None:  # beyond the star: ``cluster.fabric``
            racks = (c.racks.size, c.racks.uplink.bandwidth, c.racks.downlink.bandwidth)
            self.network = FabricNetwork(*links, racks=racks)
        else:
            faulty = bool(self.scenario.faults)
            self.network = Network(*links, faulty=faulty, varying=bool(changing))
        for series, apply in changing:  # bandwidths replayed over time (``ashlsim.series``)
            self.env.process(replay(self.env, series, n, apply))

    def _changing_bandwidths(self) -> list:
        """``(series, apply(values))`` for each bandwidth of the scenario that changes over the
        run: the links' (one value per worker) and the PS card's."""
        c, out = self.scenario.cluster, []
        for side, direction in (("uplink", "push"), ("downlink", "pull")):
            series = getattr(c, side).bandwidth
            if isinstance(series, Series):

                def apply(values, direction=direction):
                    for worker, value in enumerate(values):
                        self.network.set_bandwidth(worker, direction, value)

                out.append((series, apply))
        shards = c.server.shards  # (one card of k times a shard's: ``_build_network``)
        for card, direction in (("ingress", "push"), ("egress", "pull")):
            series = getattr(c.server, card)
            if isinstance(series, Series):
                out.append((series, lambda v, d=direction: self.network.set_card(d, v[0] * shards)))
        return out

    def _build_workers(self) -> None:
        """Each worker with its speed, jitter, shard and streams."""
        s, n, streams = self.scenario, self.n_workers, self.streams
        speeds = self._draw_speeds()
        weights = s.data.weights if s.data.partition == "proportional" else None
        shards = partition(
            self.data.y_train,
            n,
            streams.get("data.partition"),
            s.data.partition,
            s.data.alpha,
            weights,
        )
        jitter = s.cluster.jitter
        jitters = (
            [Constant(v) for v in jitter.values]
            if isinstance(jitter, PerWorker)
            else ([jitter] * n)
        )
        self.workers: list[Worker] = []
        with no_gc():  # many workers: the collector would rescan them all (gctime.py)
            for i in range(n):
                # streams made when first drawn from: a timing-only run never draws batches,
                # a constant jitter never draws (rng.Deferred)
                rng = streams.deferred("batches", i)
                sampler = BatchSampler(shards[i], s.training.batch_size, rng)
                self.workers.append(
                    self.worker_class(
                        i,
                        speeds[i],
                        jitters[i],
                        streams.deferred("jitter", i),
                        sampler,
                        self.trainer,
                        self,
                    )
                )

    def _build_records(self, events: bool) -> None:
        """What the run records (``RunRecords``), and the state of its ending."""
        self.records = RunRecords(events)
        self.schedule_origin = 0  # applied samples the lr schedule counts from
        self.stop_reason: str | None = None
        self.stop_event = self.env.event()
        self.progress_callback: Callable[[float], None] | None = None

    def _draw_speeds(self) -> np.ndarray:
        s, n = self.scenario, self.n_workers
        if s.cluster.flops is not None:
            flops = s.cluster.flops.per_worker(self.streams.get("cluster.flops"), n)
            per_sample = s.workload.flops_per_sample or self.model.flops_per_sample
            if per_sample is None:  # timing only, and no FLOP count given
                raise ScenarioError(
                    "workload.flops_per_sample", None, "a number when cluster.flops is set"
                )
            return flops / per_sample
        return s.cluster.speed.per_worker(self.streams.get("cluster.speed"), n)

    # ---- the API strategies and workers use -----------------------------------------------------
    def schedule_clock(self) -> float:
        """The learning-rate schedule's clock: epochs of the training set applied at the PS
        (samples in applied pushes over the training-set size) since the schedule (re)started.
        The same unit for every scheme: an applied push of H local steps of b samples advances
        it by H*b samples, whether the PS averages it with others or applies it alone."""
        return (self.server.applied_samples - self.schedule_origin) / self.data.n_train

    def pushed(self, update) -> None:
        """A push arrived at the PS (before the strategy handles it)."""
        records = self.records
        records.samples += update.samples
        epochs = self.scenario.stop.epochs
        if epochs is not None and records.samples >= epochs * self.data.n_train:
            self.stop("epochs")
        training = self.scenario.training
        if training.lr_schedule == "cosine" and self.schedule_clock() >= training.schedule_epochs:
            self.stop("schedule_end")  # its lr is 0 from here: the training is over

    def stop(self, reason: str) -> None:
        if not self.stop_event.triggered:
            self.stop_reason = reason
            self.stop_event.succeed()


def _first(capacity):
    """A PS card's capacity at the start (its first value, if it changes over time)."""
    return float(capacity.row(0, 1)[0]) if isinstance(capacity, Series) else capacity


MAX_PARAMS = 20_000_000  # a NumPy proxy model beyond this would take seconds per step


def run(scenario: Scenario | dict | None = None, seed: int | None = None, **options) -> Result:
    """Simulate ``scenario`` (default: the built-in one) and return its ``Result``.

    ``seed`` overrides ``scenario.seed``; ``events=True`` records pull/compute/push/wait intervals.
    ``data=(X, y)``: train on these arrays (samples first; labels are classes) instead of the
    scenario's data set (``data.name`` becomes ``arrays``; the saved scenario records their
    digest, ``ashlsim.datafiles``).
    BLAS runs on ``blas_threads`` threads during the run (default ``ASHLSIM_BLAS_THREADS``, else
    1): a simulation's matrices are small, and several runs share the cores (``blas_threads``).
    """
    threads = options.pop("blas_threads", None)
    if options.get("data") is not None:
        if scenario is None or isinstance(scenario, dict):
            scenario = Scenario.from_dict(scenario or {})
        scenario = scenario.with_overrides({"data.name": "arrays"})
    with blas_threads(threads):
        return build(Simulation, scenario, seed, **options).run()


def build(engine: type[Simulation], scenario=None, seed: int | None = None, **options):
    """An ``engine`` (``Simulation`` or another engine's subclass) for ``scenario`` (None: the
    built-in one; a mapping: parsed), with ``options`` (``progress``: a callback of the
    simulated time; the rest the engine's own): the set-up every engine shares."""
    if scenario is None:
        scenario = Scenario()
    elif isinstance(scenario, dict):
        scenario = Scenario.from_dict(scenario)
    progress = options.pop("progress", None)
    instance = engine(scenario, seed=seed, **options)
    instance.progress_callback = progress
    return instance
