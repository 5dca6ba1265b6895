"""The parameter server: the global parameters, their version, and exactly-once application.

Applying a push is book-kept at once (its version, its staleness, exactly-once), but its maths
may be deferred: the values of the parameters are needed only when somebody computes on them
or looks at them, so the PS keeps a queue of applications and computes them in *levels* when
asked (``flush``). A level is the longest run of queued applications whose pushes were all
computed on parameters that are already known: their gradients are independent, so they are
computed as one stacked NumPy computation, even when every push has parameters of its
own. Each application is then added in order, exactly as if it had been applied at
once; stacking changes no value (``tests/test_server.py`` checks deferred == eager, bit for
bit).
"""

from __future__ import annotations

from array import array

import numpy as np

from ..training import momentum_direction


class Pending:
    """The parameters of a version not computed yet: ``array`` is filled by ``flush``."""

    __slots__ = ("array", "version")

    def __init__(self, version: int):
        self.array: np.ndarray | None = None
        self.version = version


class Deltas:
    """The ``materialize`` of a PS that trains: computes the deltas of pending updates together
    (same-shaped work is one stacked computation, ``training.LocalTrainer.run``) and has each
    compressed by the worker whose work it is (``Work.owner``)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def __call__(self, updates) -> None:
        pending = [u for u in updates if u.message is None and u.work is not None]
        if not pending:
            return
        for update in pending:  # pulled before the PS had computed them: known by now
            if type(update.work.params) is Pending:
                update.work.params = update.work.params.array
        deltas = self.trainer.run([u.work for u in pending])
        for update, delta in zip(pending, deltas, strict=True):
            update.message = update.work.owner.message_for(delta, update.work.compressor)


class ParameterServer:
    """Holds the global parameter vector ``params`` and a ``version`` counting applications.

    Applying replaces the parameters with a new array instead of writing into them, so a pulled
    snapshot is a reference that stays valid: a pull costs no copy.

    ``materialize(updates)`` (a ``Deltas``; None in timing-only mode) computes the messages of
    updates still pending. With ``defer`` the maths of applications waits until the
    parameters are read (``params``), ``flush`` is called, or the queued applications hold
    ``max_pending`` pushes (a bound on the memory they keep; a round of that many pushes is
    computed at once: it is a level of its own anyway).
    """

    def __init__(
        self,
        params: np.ndarray,
        materialize=None,
        defer: bool = False,
        max_pending: int = 256,
        apply_s: float = 0.0,
    ):
        self._params = params
        # the PS's software cost of handling one push (``cluster.server.apply_s``): pushes
        # are handled one at a time, and ``free_at`` is when it has handled those it has
        self.apply_s, self.free_at = apply_s, 0.0
        self.materialize = materialize
        self.defer = defer and materialize is not None
        self.max_pending = max_pending
        self.version = 0
        self.applied_pushes = 0
        # (worker, versions applied since its pull, samples applied since its pull): versions
        # count pushes where each is applied, rounds where a round's are averaged; samples
        # compare across schemes
        self.staleness = StalenessLog()
        self.applied_samples = 0
        self._samples_at = array("q", [0])  # applied samples as of each version
        self._queue: list[tuple[list, float]] = []  # applications not computed, in order
        self._queued = 0  # pushes in ``_queue``
        self._known = 0  # the version of ``_params``
        self._handles: dict[int, Pending] = {}  # versions pulled before they were computed
        self.trail: VersionTrail | None = None  # every version's parameters, while watched
        self.set_optimizer()

    def set_optimizer(self, lr: float = 1.0, momentum: float = 0.0, nesterov: bool = False):
        """The server optimizer through which every merged delta ``g`` is applied:
        ``v = momentum*v + g; W += lr*v`` (Nesterov: ``W += lr*(g + momentum*v)``), as FedOpt's
        server SGD, SlowMo, or a PS that keeps the momentum (MXNet's ``update_on_kvstore``).
        ``lr = 1, momentum = 0`` is plain merging. The buffer ``v`` lives as long as the PS:
        crashes of workers leave it alone; only ``reset_optimizer`` clears it."""
        self.flush()  # applications queued so far used the old optimizer
        self.lr, self.momentum, self.nesterov = float(lr), float(momentum), bool(nesterov)
        self.velocity: np.ndarray | None = None

    def discard(self, update) -> None:
        """A push a scheme drops instead of applying: its worker did compute it, so its
        optimizer and compression state advance (in push order), but ``W`` never sees it."""
        self.compute(update)

    def compute(self, update) -> None:
        """Compute ``update``'s message now, after every application queued before it (its
        parameters, and the worker's earlier pushes, come first: its optimizer's order)."""
        self.flush()
        if self.materialize is not None:
            self.materialize([update])

    def reset_optimizer(self) -> None:
        """Forget the server momentum buffer (after computing what was applied before)."""
        self.flush()
        self.velocity = None

    @property
    def params(self) -> np.ndarray:
        """The current parameters (computing any deferred applications first)."""
        self.flush()
        return self._params

    def snapshot(self) -> tuple[np.ndarray | Pending, int]:
        """The current parameters (treat as read-only), or a ``Pending`` handle to them if their
        maths is deferred, and their version."""
        if self._known == self.version:
            return self._params, self.version
        handle = self._handles.get(self.version)
        if handle is None:
            handle = self._handles[self.version] = Pending(self.version)
        return handle, self.version

    def shift(self, delta: np.ndarray) -> None:
        """Move the parameters by ``delta`` outside any push (a decentralized worker's model replaced
        after a restart moves their average); the version stays."""
        self.flush()
        self._params = self._params + delta

    def apply(self, updates, scale: float = 1.0) -> None:
        """Merge ``g = scale * sum(decompressed deltas)`` and apply it through the server
        optimizer (plain: ``W += lr * g``) in one step; each update applied once."""
        samples_at, total = self._samples_at, self.applied_samples
        for update in updates:
            if update.applied:
                raise RuntimeError(f"push {update.key} applied twice")
            update.applied = True
            pulled = update.pulled_version
            self.staleness.extend(
                (update.worker, self.version - pulled, total - samples_at[pulled])
            )
            self.applied_samples += update.samples
        samples_at.append(self.applied_samples)
        self.applied_pushes += len(updates)
        self.version += 1
        if self.trail is not None:
            self.trail.applied(self.version, self.applied_pushes)
        if self.materialize is None:  # timing-only mode: no maths
            self._known = self.version
            return
        self._queue.append((updates, scale))
        self._queued += len(updates)
        if not self.defer or self._queued >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        """Compute every deferred application, level by level (see the module docstring)."""
        queue, self._queued = self._queue, 0
        while queue:
            known, level = self._known, 0
            while level < len(queue) and all(
                u.pulled_version <= known and _ready(u) for u in queue[level][0]
            ):
                level += 1
            if level == 0:  # cannot happen: the first queued push's inputs are always known
                raise RuntimeError("deferred application with unknown inputs")
            batch = queue[:level]
            del queue[:level]
            self.materialize([u for updates, _ in batch for u in updates])
            for updates, scale in batch:
                self._add(updates, scale)
                handle = self._handles.pop(self._known, None)
                if handle is not None:
                    handle.array = self._params

    def _add(self, updates, scale: float) -> None:
        total, owned = None, False
        for update in updates:
            if update.message is None:  # not computed (a timing-only push)
                continue
            dense = update.message.decompress()
            if update.weight != 1.0:
                dense = update.weight * dense
            if total is None:
                total = dense
            elif owned:
                total += dense
            else:
                total, owned = total + dense, True  # a new array: ours to add into
        if total is not None:
            if self.momentum:
                self._params = self._params + self._momentum_step(scale, total)
            else:
                scale *= self.lr
                if scale != 1.0:
                    total = scale * total
                self._params = self._params + total.astype(self._params.dtype, copy=False)
        self._known += 1
        if self.trail is not None:
            self.trail.computed(self._known, self._params)

    def _momentum_step(self, scale: float, merged: np.ndarray) -> np.ndarray:
        if scale != 1.0:
            merged = scale * merged
        merged = merged.astype(self._params.dtype, copy=False)
        step, self.velocity = momentum_direction(
            merged, self.velocity, self.momentum, self.nesterov
        )
        return self.lr * step


class VersionTrail:
    """The parameters of every version applied since the last ``clear``, with the simulated
    time and push count at which each was applied: what locates the moment the global model
    first reached a target between two evaluations (``runloop.RunLoop``). Parameters are never
    written in place (``ParameterServer``), so the trail keeps references, not copies. At most
    ``capacity`` versions are kept: beyond, every other one is dropped (the newest stays), and
    ``thinned`` says so: the crossing is then located to the gap between kept versions."""

    def __init__(self, clock, capacity: int):
        self.clock, self.capacity = clock, max(4, int(capacity))
        self.clear()

    def clear(self) -> None:
        self.kept: dict[int, list] = {}  # version -> [time_s, pushes, params (None: pending)]
        self.thinned = False

    def applied(self, version: int, pushes: int) -> None:
        self.kept[version] = [self.clock(), pushes, None]
        if len(self.kept) > self.capacity:  # every other one goes, the newest stays
            items = list(self.kept.items())
            self.kept = dict(items[(len(items) - 1) % 2 :: 2])
            self.thinned = True

    def computed(self, version: int, params: np.ndarray) -> None:
        entry = self.kept.get(version)
        if entry is not None:
            entry[2] = params

    @property
    def times(self) -> list[float]:
        return [entry[0] for entry in self.kept.values()]

    def versions(self):
        """``(time_s, pushes, params)`` of each kept version, oldest first (all computed)."""
        return (tuple(entry) for entry in self.kept.values())


def _ready(update) -> bool:
    """A push computed on the local model of an earlier work (a cached read) waits for
    that work to be computed: it starts a later level."""
    chain = getattr(update.work, "chain", None)
    return chain is None or chain.computed_local


class StalenessLog:
    """One ``(worker, staleness in versions, staleness in samples)`` row per applied push,
    flat in an int64 array: 24 bytes a push, where a list of tuples takes about 120 (a run
    of millions of pushes). Iterates and compares as that list of tuples would."""

    __slots__ = ("_flat", "extend")

    def __init__(self):
        self._flat = array("q")
        self.extend = self._flat.extend  # one row: ``extend((worker, versions, samples))``

    def __len__(self) -> int:
        return len(self._flat) // 3

    def __iter__(self):
        values = iter(self._flat)
        return zip(values, values, values, strict=True)

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    __hash__ = None

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The rows as an (n, 3) int64 array."""
        out = np.frombuffer(self._flat, dtype=np.int64).reshape(-1, 3)
        return out.copy() if dtype is None else out.astype(dtype)
