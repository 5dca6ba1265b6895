"""Local SGD on a worker's shard: the learning a worker does between a pull and a push.

A worker *prepares* its work when its computation starts (the pulled parameters, the mini-batch
indices it draws, the learning rate): that fixes everything the result depends on. The maths
runs when the PS needs the delta (``run``), so that work computed together (a round of a barrier
scheme, or a level of the PS's deferred applications, ``cluster/server.py``) is one stacked NumPy
computation. The values are those of computing each delta at its worker's compute
start: stacking computes each slice the same way (tested bit for bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import BatchSampler, Dataset
from .models import Model, loss_and_grad


@dataclass(slots=True, eq=False)
class Work:
    """A worker's local steps, fixed but not yet computed."""

    params: np.ndarray  # the pulled parameters (read-only; a server.Pending until computed)
    batches: list  # one index array per local step
    lr: float
    owner: object  # the worker: holds the momentum buffer the steps use and update
    velocity: np.ndarray | None  # the owner's momentum buffer when the work started ...
    resets: int  # the owner's optimizer resets by then: a later reset discards our buffer
    compressor: object  # the owner's compressor when the work started: it sizes the push
    # ... unless the owner's previous work was not computed yet (the PS defers maths): then
    # the buffer is the one that work leaves (``velocity_out``), known when this one runs
    prev: Work | None = None
    velocity_out: np.ndarray | None = None
    # the steps accumulate lr * gradient at the pulled parameters without moving them (a
    # gradient-accumulating scheme): the delta is -lr * sum of the H gradients
    accumulate: bool = False
    # a cached read (bounded staleness): the parameters are the local model ``chain`` left (its params + its
    # delta), known once it is computed; ``keep_local`` keeps that model for the next work
    chain: Work | None = None
    keep_local: bool = False
    local_delta: np.ndarray | None = None  # kept: ``local_model`` adds it when first asked
    local_out: np.ndarray | None = None

    def start_velocity(self) -> np.ndarray | None:
        if self.prev is None:
            return self.velocity
        if self.prev.velocity_out is None:
            raise RuntimeError("a worker's work computed before its previous one")
        return self.prev.velocity_out

    @property
    def computed_local(self) -> bool:
        """Whether the local model this work leaves is known (``keep_local``, computed)."""
        return self.local_delta is not None or self.local_out is not None

    def local_model(self) -> np.ndarray:
        """The local model this work leaves, ``params + delta``, made when first asked: most
        are never continued from (a cached read continues from some), and for a large model
        the sum is a good part of a push's cost."""
        if self.local_out is None:
            self.local_out = self.params + self.local_delta
            self.local_delta = None
        return self.local_out

    def keep(self, velocity) -> None:
        """Record the new momentum buffer and hand it back to the owner, unless the owner
        reset its optimizer since."""
        self.velocity_out, self.prev = velocity, None
        if self.owner.optimizer_resets == self.resets:
            self.owner.velocity = velocity


class NullTrainer:
    """The trainer of the timing-only mode (``model: {name: none}``): no work, no maths."""

    lr = 1.0

    def learning_rate(self, epochs: float) -> float:
        return 1.0

    def prepare(
        self,
        params,
        steps,
        sampler,
        epochs,
        owner,
        accumulate=False,
        chain=None,
        keep_local=False,
    ):
        return None


STACK_BYTES = 4 << 20  # working set of one stacked computation (see ``LocalTrainer._chunk``)


def schedule_factor(training, epochs: float) -> float:
    """The learning-rate multiplier after ``epochs`` of the training set applied at the PS (the
    training's own clock; ``training`` is a ``TrainingSpec``): a linear warm-up from 0 over the
    first ``warmup_epochs`` (or ``warmup_share`` of ``schedule_epochs``), then ``constant`` (1), ``cosine`` (from 1 to 0 between the warm-up's
    end and ``schedule_epochs``, then 0: the schedule is over) or ``step`` (times
    ``step_gamma`` at each of ``step_milestones``)."""
    epochs = max(float(epochs), 0.0)
    warmup = training.warmup
    if epochs < warmup:
        return epochs / warmup
    if training.lr_schedule == "cosine":
        rest = min((epochs - warmup) / (training.schedule_epochs - warmup), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * rest))
    if training.lr_schedule == "step":
        return training.step_gamma ** sum(epochs >= m for m in training.step_milestones)
    return 1.0


def momentum_direction(grad, velocity, momentum: float, nesterov: bool):
    """SGD with momentum's step direction from ``grad`` and the buffer ``velocity`` (None:
    empty), in PyTorch's convention: ``v = m*v + g``, then ``v`` (Nesterov: ``g + m*v``).
    Returns ``(direction, new velocity)``: the workers' optimizer and the PS's use it."""
    velocity = grad if velocity is None else momentum * velocity + grad
    return (grad + momentum * velocity if nesterov else velocity), velocity


class LocalTrainer:
    """Runs H mini-batch SGD steps from pulled parameters: the worker optimizer (``training``:
    learning rate and its schedule, momentum, optionally Nesterov, and weight decay)."""

    def __init__(self, model: Model, data: Dataset, training):
        self.model, self.data, self.training = model, data, training
        self.lr, self.momentum = training.lr, training.momentum
        self.nesterov, self.weight_decay = training.nesterov, training.weight_decay
        # one plain step's delta is -lr * grad: the model computes it without a pass
        self.plain = not self.momentum and not self.weight_decay
        # batch several workers' steps together when they arrive together, if the model can
        self.stacked = model.stacks
        self.loss_and_grad = loss_and_grad(model)  # the stacked signature, whatever the model

    def learning_rate(self, epochs: float) -> float:
        """The worker learning rate after ``epochs`` applied (``schedule_factor``): a Python
        float, so that a step keeps the parameters' dtype (a NumPy float64 would not)."""
        return float(self.lr * schedule_factor(self.training, epochs))

    def _direction(self, grad, velocity, local):
        """SGD's step direction from ``grad`` (PyTorch's convention: decay, then momentum
        ``v = m*v + g``, then Nesterov ``g + m*v``); returns (direction, new velocity)."""
        if self.weight_decay:
            grad = grad + self.weight_decay * local
        if self.momentum:
            return momentum_direction(grad, velocity, self.momentum, self.nesterov)
        return grad, velocity

    def prepare(
        self,
        params,
        steps: int,
        sampler: BatchSampler,
        epochs: float,
        owner,
        accumulate=False,
        chain=None,
        keep_local=False,
    ) -> Work:
        """Draw the batches now (the sampler's stream advances in simulated order).
        ``accumulate``: sum ``lr * gradient`` at ``params`` over the steps instead of stepping
        (no momentum nor weight decay: the PS's optimizer takes the sum as its gradient).
        ``chain``: start from the local model that work leaves (``params`` is None);
        ``keep_local``: keep this work's local model for a later ``chain``."""
        batches = [sampler.next() for _ in range(steps)]
        lr = self.learning_rate(epochs)
        work = Work(
            params, batches, lr, owner, owner.velocity, owner.optimizer_resets, owner.compressor
        )
        work.chain, work.keep_local = chain, keep_local
        if accumulate:
            work.accumulate = True
            return work
        if self.momentum:
            last = owner.last_work  # None after a reset of the owner's optimizer
            if last is not None and last.velocity_out is None:  # not computed yet
                work.prev, work.velocity = last, None
            owner.last_work = work
        return work

    def run(self, works: list[Work]) -> list[np.ndarray]:
        """The deltas ``w_local - w_pulled`` of ``works``; updates each owner's momentum."""
        deltas: list = [None] * len(works)
        groups: dict[tuple[int, int], list[int]] = {}
        for work in works:
            if work.chain is not None:  # computed before (the PS orders it so)
                if not work.chain.computed_local:
                    raise RuntimeError("a cached read computed before the work it continues")
                work.params, work.chain = work.chain.local_model(), None
        for i, work in enumerate(works):
            if work.accumulate:
                deltas[i] = self._accumulated(work)
                continue
            key = (len(work.batches), len(work.batches[0]))
            groups.setdefault(key, []).append(i)
        for members in groups.values():
            self._run_group(works, members, deltas)
        for work, delta in zip(works, deltas, strict=True):
            if work.keep_local:
                work.local_delta = delta
        return deltas

    def _run_group(self, works: list[Work], members: list[int], deltas: list) -> None:
        """The deltas of ``works[members]`` (steps and batches of one shape) into ``deltas``:
        stacked in chunks, or one by one."""
        if len(members) == 1 or not self.stacked:
            for i in members:
                deltas[i] = self._one(works[i])
            return
        size = self._chunk(works[members[0]], works[members[-1]])
        for at in range(0, len(members), size):
            chunk = members[at : at + size]
            for i, delta in zip(chunk, self._stacked([works[i] for i in chunk]), strict=True):
                deltas[i] = delta

    def _chunk(self, first: Work, last: Work) -> int:
        """How many works to stack at once: their inputs (and their parameters, unless they
        share them throughout: one step from one pull) within ``STACK_BYTES``. Bigger stacks
        fall out of the cache and run slower than smaller ones (benchmarks/README.md)."""
        itemsize = self.data.X_train.itemsize
        per_work = len(first.batches[0]) * self.data.n_features * itemsize
        if first.params is not last.params or len(first.batches) > 1:  # params of their own
            per_work += first.params.size * first.params.itemsize
        return max(1, STACK_BYTES // per_work)

    def _accumulated(self, work: Work) -> np.ndarray:
        """``-lr * sum of the gradients`` of the work's batches, all at its pulled parameters:
        one stacked computation of the H batches."""
        X, y, params = self.data.X_train, self.data.y_train, work.params
        index = np.stack(work.batches)
        stack = np.broadcast_to(params, (len(work.batches), params.size))
        grads = self.loss_and_grad(stack, X[index], y[index], -work.lr)[1]
        return grads.sum(axis=0)

    def _one(self, work: Work) -> np.ndarray:
        X, y, loss_and_grad = self.data.X_train, self.data.y_train, self.loss_and_grad
        lr, velocity, params = work.lr, work.start_velocity(), work.params
        if len(work.batches) == 1 and self.plain:  # one plain step: delta = -lr * grad
            batch = work.batches[0]
            return loss_and_grad(params, X[batch], y[batch], -lr)[1]
        local = params
        for batch in work.batches:
            _, grad = loss_and_grad(local, X[batch], y[batch])
            grad, velocity = self._direction(grad, velocity, local)
            local = local - lr * grad
        if self.momentum:
            work.keep(velocity)
        return local - params

    def _stacked(self, works: list[Work]) -> np.ndarray:
        """G workers' steps in lockstep: parameters (G, d), batches (G, B, F)."""
        X, y, loss_and_grad = self.data.X_train, self.data.y_train, self.loss_and_grad
        first = works[0].params
        shared = all(w.params is first for w in works)  # one round's pull: no copies
        lr = np.array([w.lr for w in works], dtype=first.dtype)[:, None]
        if len(works[0].batches) == 1 and self.plain:  # one plain step each
            index = np.stack([w.batches[0] for w in works])
            # parameters of their own go as a list: the model copies only what pays
            params = (
                np.broadcast_to(first, (len(works), first.size))
                if shared
                else [w.params for w in works]
            )
            return loss_and_grad(params, X[index], y[index], -lr[:, :, None])[1]
        if shared:
            start = np.broadcast_to(first, (len(works), first.size))
        else:
            start = np.stack([w.params for w in works])
        velocity = None
        if self.momentum:
            velocity = np.stack(
                [np.zeros_like(first) if v is None else v for v in map(Work.start_velocity, works)]
            )
        local = start
        for step in range(len(works[0].batches)):
            index = np.stack([w.batches[step] for w in works])
            _, grad = loss_and_grad(local, X[index], y[index])
            grad, velocity = self._direction(grad, velocity, local)
            local = local - lr * grad
        if self.momentum:
            for i, w in enumerate(works):
                w.keep(velocity[i])
        return local - start
