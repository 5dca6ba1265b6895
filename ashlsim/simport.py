"""The simulator's side of the strategy port (``strategies.base.Port``): what a strategy may
see of the simulated cluster, and nothing more. Strategies import nothing from SimPy or the
engine; events, timers and every change to the cluster come through here."""

from __future__ import annotations

import math

import numpy as np

from .cluster import collectives
from .cluster.fabric import PeerLinks
from .compression import build_compressor, layer_segments
from .data import partition


class SimPort:
    """``Port`` for one ``engine.Simulation``."""

    def __init__(self, sim):
        self._sim = sim
        self.n = sim.n_workers
        self._priced: dict = {}  # all-reduces priced so far (``all_reduce``)

    # ---- time and events ----------------------------------------------------------------------
    def now(self) -> float:
        return self._sim.env.now

    def event(self):
        return self._sim.env.event()

    def call_later(self, delay_s: float, fn) -> None:
        self._sim.env.timeout(delay_s).callbacks.append(lambda _: fn())

    # ---- the parameter server -----------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._sim.server.version

    def apply(self, updates, weight: float = 1.0) -> None:
        self._sim.server.apply(updates, weight)

    def discard(self, update) -> None:
        """A push the strategy drops (a backup worker's late one): the worker did compute it, so
        its optimizer and compression state advance, but the PS never applies it."""
        self._sim.server.discard(update)
        self._sim.workers[update.worker].dropped += 1

    def set_server_optimizer(self, lr: float, momentum: float, nesterov: bool) -> None:
        self._sim.server.set_optimizer(lr, momentum, nesterov)

    # ---- the workers --------------------------------------------------------------------------
    def set_compression(self, worker: int, spec, ratio=None) -> None:
        """Give ``worker`` the compressor ``spec`` describes from its next push on (``ratio``
        overrides the block's; top-K per layer takes the model's tensor sizes)."""
        sim = self._sim
        kept = spec.ratio if ratio is None else ratio
        dense = spec.name == "identity" or kept >= 1.0
        segments = layer_segments(spec, sim.model.segments)
        compressor = build_compressor(
            spec, lambda: sim.streams.get("compression", worker), ratio, segments
        )
        sim.workers[worker].set_compressor(compressor, None if dense else kept, segments)

    def is_down(self, worker: int) -> bool:
        return self._sim.workers[worker].down

    def reset_optimizers(self) -> None:
        for worker in self._sim.workers:
            worker.reset_optimizer()

    def restart_schedule(self) -> None:
        """The learning-rate schedule starts afresh from now."""
        sim = self._sim
        sim.schedule_origin = sim.server.applied_samples

    def lr_factor(self) -> float:
        """The worker learning rate now over its base value (1 without a model)."""
        trainer = self._sim.trainer  # a NullTrainer's factor is 1
        return trainer.learning_rate(self._sim.schedule_clock()) / trainer.lr

    def reshard(self, weights) -> None:
        """Re-split the training data across workers in proportion to ``weights``."""
        sim = self._sim
        shards = partition(
            sim.data.y_train,
            sim.n_workers,
            sim.streams.get("data.reshard"),
            "proportional",
            weights=weights,
        )
        for worker, shard in zip(sim.workers, shards, strict=True):
            worker.sampler.reshard(shard)

    # ---- communication among the workers ------------------------------------------------------
    def all_reduce(self, workers, algorithm: str) -> tuple[float, dict]:
        """(seconds, bytes each sends) of an all-reduce of the dense delta among ``workers`` by
        ``algorithm`` (``cluster.collectives``), over their links as they are now."""
        sim = self._sim
        key = (tuple(workers), algorithm, sim.network.changes)
        priced = self._priced.get(key)
        if priced is None:  # (the same members over the same links: the same price)
            if len(self._priced) > 64:
                self._priced.clear()
            priced = self._priced[key] = collectives.all_reduce(
                sim.network, list(workers), sim.dense_bytes, algorithm
            )
        return priced

    def collective(self, workers, algorithm: str):
        """An all-reduce among ``workers`` starting now: ``(event, bytes each sends)``, the
        event succeeding when it is over. It is priced by ``all_reduce`` at the links of the
        moment, again whenever a link changes, and stalls while a member's link is down
        (``collectives.Running``)."""
        sim, workers = self._sim, list(workers)
        seconds, sent = self.all_reduce(workers, algorithm)
        running = collectives.Running(
            sim.env, sim.network, workers, lambda: self.all_reduce(workers, algorithm)[0], seconds
        )
        return running.done, sent

    def exchange(self, a: int, b: int):
        """Workers ``a`` and ``b`` send each other their models over their links (max-min
        fair with every other exchange: ``cluster.fabric.PeerLinks``): ``(event, bytes each
        way)``, the event succeeding when both are through."""
        sim = self._sim
        if sim.peers is None:
            sim.peers = PeerLinks(sim.env, sim.network)
        return sim.peers.exchange(a, b, sim.dense_bytes), sim.dense_bytes

    def average_with(self, update, peer: int | None) -> None:
        """AD-PSGD's step for ``update``'s worker: average its model with ``peer``'s (None:
        nobody), then add its delta; the model evaluated, their average, moves by delta / N."""
        sim = self._sim
        server, replicas, worker = sim.server, sim.replicas, update.worker
        if replicas is not None:
            server.compute(update)
            if peer is not None:
                replicas.average(worker, peer)
            replicas.add(worker, update.message.decompress())
        if peer is not None:  # what the passive side sent and received
            sim.workers[peer].stats.served(sim.dense_bytes)
        server.apply([update], 1.0 / self.n)

    def restore(self, worker: int, neighbours) -> None:
        """A restarted worker's model: the average of its neighbours' that are up (its own was
        lost); the average of all moves with it."""
        sim = self._sim
        up = [j for j in neighbours if not sim.workers[j].down]
        if sim.replicas is None or not up:
            return
        old = sim.replicas.read(worker)
        new = np.mean([sim.replicas.read(j) for j in up], axis=0).astype(old.dtype)
        sim.replicas.models[worker] = new
        sim.server.shift((new - old) / self.n)

    def consensus_distance(self) -> float:
        replicas = self._sim.replicas
        return math.nan if replicas is None else replicas.consensus_distance()

    def random(self, name: str):
        """A generator of the run's seed for the strategy's own draws (``strategy.{name}``)."""
        return self._sim.streams.get(f"strategy.{name}")

    # ---- what the run records -----------------------------------------------------------------
    def stage_changed(self, from_stage: str, to_stage: str, reason: str) -> None:
        sim = self._sim
        history = sim.records.history
        last = history[-1] if history else {}
        sim.records.stage_changes.append(
            {
                "time_s": sim.env.now,
                "from_stage": from_stage,
                "to_stage": to_stage,
                "loss": last.get("loss", math.nan),
                "reason": reason,
            }
        )
