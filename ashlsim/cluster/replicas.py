"""Each worker's own model, for schemes without a global one (decentralized ones).

Arrays are replaced, never written into, so a read is a reference that stays valid (as the
PS's snapshots are) and workers whose models are equal share one array: memory grows only as
they drift apart.
"""

from __future__ import annotations

import numpy as np


class Replicas:
    """``n`` models, all starting at ``params``."""

    def __init__(self, params: np.ndarray, n: int):
        self.models = [params] * n

    def read(self, worker: int) -> np.ndarray:
        """``worker``'s model now (treat as read-only)."""
        return self.models[worker]

    def average(self, a: int, b: int) -> None:
        """``a`` and ``b`` both take the mean of their two models."""
        mean = 0.5 * (self.models[a] + self.models[b])
        self.models[a] = self.models[b] = mean

    def add(self, worker: int, delta: np.ndarray) -> None:
        """``worker``'s model moves by ``delta``."""
        self.models[worker] = self.models[worker] + delta

    def mean(self) -> np.ndarray:
        return np.mean(self.models, axis=0)

    def consensus_distance(self) -> float:
        """How far the models are apart: the root mean square over workers of
        ``||x_i - mean||``."""
        models = np.asarray(self.models, dtype=np.float64)
        deviation = models - models.mean(axis=0)
        return float(np.sqrt(np.mean(np.sum(deviation * deviation, axis=1))))
