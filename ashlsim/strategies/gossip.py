"""Decentralized gossip (AD-PSGD): no PS; each worker averages its model with a neighbour's."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import choice, integer, spec, text
from ..errors import ScenarioError
from .base import MAX_LOCAL_STEPS, Exchange, Strategy, StrategyParams

TOPOLOGIES = ("ring", "torus", "complete", "random_regular")


@dataclass(frozen=True)
class GossipParams(StrategyParams):
    name: str = spec("gossip", text)
    topology: str = spec("ring", choice(*TOPOLOGIES), "who may average with whom")
    degree: int = spec(3, integer(1), "random_regular: neighbours per worker")
    local_steps: int = spec(1, integer(1, MAX_LOCAL_STEPS), "H: local steps between averagings")

    def check(self, scenario):
        n = scenario.cluster.workers
        if self.compression.name != "identity":
            raise ScenarioError("strategy.compression.name", self.compression.name,
                                "identity (neighbours average whole models)")  # fmt: skip
        opt = self.server_optimizer
        if (opt.lr, opt.momentum) != (1.0, 0.0):
            raise ScenarioError("strategy.server_optimizer", f"lr {opt.lr}, momentum "
                                f"{opt.momentum}", "none: gossip has no server")  # fmt: skip
        if self.topology == "random_regular" and (self.degree >= n or n * self.degree % 2):
            raise ScenarioError("strategy.degree", self.degree,
                                f"below the {n} workers, with workers x degree even")  # fmt: skip


def neighbours(topology: str, n: int, degree: int, rng: np.random.Generator) -> list[list[int]]:
    """Each worker's neighbours in ``topology`` (an undirected graph on ``n`` workers)."""
    if n == 1:
        return [[]]
    if topology == "complete":
        return [[j for j in range(n) if j != i] for i in range(n)]
    if topology == "ring":
        return [sorted({(i - 1) % n, (i + 1) % n}) for i in range(n)]
    if topology == "torus":
        rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
        cols = n // rows
        out = []
        for i in range(n):
            r, c = divmod(i, cols)
            near = {((r + dr) % rows) * cols + (c + dc) % cols
                     for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))}  # fmt: skip
            out.append(sorted(near - {i}))
        return out
    return _random_regular(n, degree, rng)


def _random_regular(n: int, degree: int, rng: np.random.Generator) -> list[list[int]]:
    """A connected random ``degree``-regular graph: the configuration model (pair the n x d
    stubs at random), drawn again until it has no loop, no double edge, and is connected."""
    for _ in range(10_000):
        stubs = rng.permutation(np.repeat(np.arange(n), degree)).reshape(-1, 2)
        edges = {tuple(sorted(map(int, pair))) for pair in stubs}
        if len(edges) < len(stubs) or any(a == b for a, b in edges):
            continue
        out = [[] for _ in range(n)]
        for a, b in edges:
            out[a].append(b)
            out[b].append(a)
        if _connected(out):
            return [sorted(x) for x in out]
    raise ScenarioError("strategy.degree", degree, f"a degree that gives {n} workers a graph")


def _connected(adjacent: list[list[int]]) -> bool:
    seen, todo = {0}, [0]
    while todo:
        for j in adjacent[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return len(seen) == len(adjacent)


class Gossip(Strategy):
    """AD-PSGD (Lian, Zhang, Zhang & Liu, ICML 2018): no PS. Each worker keeps its own model;
    it computes H local steps from it, then averages its model with one neighbour's, chosen
    at random among those up in ``topology`` (both take the mean of the two), over their
    link (each sends its whole model to the other), and adds its delta to the result. The
    neighbour goes on computing meanwhile: its own delta, when it comes, is added to its model
    as it is then, averaged or not (the algorithm's atomic averaging). A worker with no
    neighbour up adds its delta alone.

    The model a run evaluates (the PS's, for every other scheme) is the average of the
    workers' models: every averaging keeps it, every delta moves it by delta / N. The
    ``consensus`` table records how far apart the models are at each evaluation. A worker that
    crashes loses its delta and its model (it restarts from the average of its neighbours')."""

    steady = True
    through_server = False
    own_models = True
    name = "gossip"
    Params = GossipParams

    def start(self):
        super().start()
        p = self.params
        self.neighbours = neighbours(p.topology, self.n, p.degree, self.port.random("topology"))
        self._peers = self.port.random("peers")
        self._waiting: dict[int, tuple] = {}  # worker -> (its gate event, token)
        self.exchanges = 0
        self.consensus: list[dict] = []

    def local_steps(self, worker):
        return self.params.local_steps

    def gate(self, worker):
        waiting = self._waiting.get(worker)
        return None if waiting is None else waiting[0]

    def receive(self, update):
        worker = update.worker
        up = [j for j in self.neighbours[worker] if not self.port.is_down(j)]
        if not up:
            self.port.average_with(update, None)
            return
        peer = up[int(self._peers.integers(len(up)))]
        token, start = object(), self.port.now()
        self._waiting[worker] = (self.port.event(), token, update)
        done, nbytes = self.port.exchange(worker, peer)
        done.callbacks.append(lambda _: self._averaged(update, peer, token, start, nbytes))

    def _averaged(self, update, peer: int, token, start: float, nbytes: int) -> None:
        waiting = self._waiting.get(update.worker)
        if waiting is None or waiting[1] is not token:  # the worker crashed meanwhile
            return
        del self._waiting[update.worker]
        self.port.average_with(update, peer)
        self.exchanges += 1
        waiting[0].succeed(Exchange(start, {update.worker: nbytes}))

    def pending(self):
        return len(self._waiting)

    def worker_down(self, worker):
        waiting = self._waiting.pop(worker, None)
        if waiting is not None:  # its delta is lost with it; the exchange's result is dropped
            self.port.discard(waiting[2])

    def worker_up(self, worker):
        self.port.restore(worker, self.neighbours[worker])

    def observe(self, evaluation):
        self.consensus.append(
            {"time_s": evaluation.time_s, "consensus_distance": self.port.consensus_distance()}
        )

    def tables(self):
        return {"consensus": pd.DataFrame(self.consensus, columns=["time_s", "consensus_distance"])}
