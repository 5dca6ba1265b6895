"""The parameter server: the global parameters, their version, and exactly-once application."""

from __future__ import annotations

import numpy as np


class ParameterServer:
    """Holds the global parameter vector ``params`` and a ``version`` counting applications.

    Applying replaces ``params`` with a new array instead of writing into it, so a pulled
    snapshot is a reference that stays valid: a pull costs no copy.
    """

    def __init__(self, params: np.ndarray, materialize=None):
        self.params = params
        # computes the messages of pending updates, all at once (batched maths); set by the engine
        self.materialize = materialize
        self.version = 0
        self.applied_pushes = 0
        self.staleness: list[tuple[int, int]] = []  # (worker, version at apply - version pulled)

    def snapshot(self) -> tuple[np.ndarray, int]:
        """The current parameters (treat as read-only) and their version."""
        return self.params, self.version

    def apply(self, updates, scale: float = 1.0) -> None:
        """``W += scale * sum(decompressed deltas)`` in one step; each update applied once."""
        if self.materialize is not None:
            self.materialize(updates)
        total, owned = None, False
        for update in updates:
            if update.applied:
                raise RuntimeError(f"push {update.key} applied twice")
            update.applied = True
            self.staleness.append((update.worker, self.version - update.pulled_version))
            if update.message is None:  # timing-only mode: nothing to add
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
        self.applied_pushes += len(updates)
        if total is not None:
            if scale != 1.0:
                total = scale * total
            self.params = self.params + total.astype(self.params.dtype, copy=False)
        self.version += 1
