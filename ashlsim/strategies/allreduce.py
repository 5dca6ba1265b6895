"""All-reduce BSP: BSP's learning, with the deltas averaged among the workers, not at a PS."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import choice, integer, spec, text
from ..errors import ScenarioError
from .base import MAX_LOCAL_STEPS, BarrierParams, Exchange, Strategy

# the algorithms the port's ``all_reduce`` knows (``cluster.collectives``)
ALGORITHMS = ("ring", "halving_doubling")


@dataclass(frozen=True)
class AllReduceParams(BarrierParams):
    name: str = spec("allreduce", text)
    algorithm: str = spec(
        "ring", choice(*ALGORITHMS), "ring: 2(p-1) steps of n/p; halving_doubling: 2 log2 p steps"
    )
    local_steps: int = spec(
        1, integer(1, MAX_LOCAL_STEPS), "H: local steps per round (1: BSP, more: Local SGD)"
    )

    def check(self, scenario):
        if self.compression.name != "identity":
            raise ScenarioError(
                "strategy.compression.name",
                self.compression.name,
                "identity (an all-reduce sums dense deltas)",
            )


class AllReduce(Strategy):
    """Data-parallel SGD as Horovod or PyTorch DDP run it: every round each worker computes H
    local steps from the same model; when the round's members have all computed, their deltas
    are averaged by an all-reduce over their own links (``cluster.collectives``: ring, or
    recursive halving and doubling), and every worker holds the new model. No PS, no pull, no
    push: the learning is BSP's (H = 1) or Local SGD's, only the time differs.

    A worker that crashes loses its delta (counted in ``dropped``); an all-reduce under way
    is abandoned (the ring is broken). With ``on_failure: wait`` the round waits for it to restart and compute again;
    with ``drop`` the others run the all-reduce without it after ``failure_timeout_s``, and it
    rejoins at the next round. A delta computed from a model older than the last round's (its
    worker came back during an all-reduce) is dropped, counted in ``dropped``."""

    steady = True
    through_server = False
    name = "allreduce"
    Params = AllReduceParams

    def start(self):
        super().start()
        self.members = set(range(self.n))
        self.rounds = 0
        self.round_ends: list[float] = []  # simulated time each round's all-reduce ended
        self._buffer: dict[int, object] = {}  # this round's deltas, by worker
        self._done = self.port.event()
        self._running = None  # (token, start, bytes by participant) of the all-reduce now

    def local_steps(self, worker):
        return self.params.local_steps

    def gate(self, worker):
        return self._done if worker in self._buffer else None

    def receive(self, update):
        if update.pulled_version < self.port.version:  # from before the last round
            self.port.discard(update)
            return
        self._buffer[update.worker] = update
        self._maybe_start()

    def pending(self):
        return len(self._buffer)

    def _maybe_start(self) -> None:
        if self._running is not None or not self._buffer:
            return
        if any(worker not in self._buffer for worker in self.members):
            return
        participants = sorted(self._buffer)
        done, sent = self.port.collective(participants, self.params.algorithm)
        token = object()
        self._running = (token, self.port.now(), sent)
        done.callbacks.append(lambda _: self._finish(token))

    def _finish(self, token) -> None:
        if self._running is None or self._running[0] is not token:  # abandoned: a crash
            return
        _, start, sent = self._running
        self._running = None
        updates = [u for worker, u in self._buffer.items() if worker in sent]
        late = [u for worker, u in self._buffer.items() if worker not in sent]
        summed = self.params.lr_scaling == "linear"
        self.port.apply(updates, 1.0 if summed else 1.0 / len(updates))
        for update in late:  # (arrived during the all-reduce, from the model before it)
            self.port.discard(update)
        self._buffer = {}
        self.rounds += 1
        self.round_ends.append(self.port.now())
        done, self._done = self._done, self.port.event()
        done.succeed(Exchange(start, sent))

    def worker_down(self, worker):
        lost = self._buffer.pop(worker, None)
        if lost is not None:  # computed, never averaged: its machine is gone (``dropped``)
            self.port.discard(lost)
            if self._running is not None and worker in self._running[2]:
                self._running = None  # the ring is broken: the others wait, as they are
        if self.params.on_failure == "drop":
            self.port.call_later(self.params.failure_timeout_s, lambda: self._drop(worker))

    def _drop(self, worker: int) -> None:
        if self.port.is_down(worker) and worker in self.members:
            self.members.discard(worker)
            self._maybe_start()

    def worker_up(self, worker):
        self.members.add(worker)
