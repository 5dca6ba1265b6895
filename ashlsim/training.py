"""Local SGD on a worker's shard: the learning a worker does between a pull and a push.

Knows nothing of time except the learning-rate schedule's progress, which the caller passes in.
"""

from __future__ import annotations

import math

import numpy as np

from .data import BatchSampler, Dataset
from .models import Model


class LocalTrainer:
    """Runs H mini-batch SGD steps (optionally with momentum) from pulled parameters."""

    def __init__(self, model: Model, data: Dataset, lr: float, momentum: float, schedule: str):
        self.model, self.data = model, data
        self.lr, self.momentum, self.schedule = lr, momentum, schedule

    def learning_rate(self, progress: float) -> float:
        """The worker learning rate at ``progress`` in [0, 1] of the run (cosine or constant)."""
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.lr

    def delta(
        self,
        params: np.ndarray,
        steps: int,
        sampler: BatchSampler,
        velocity: np.ndarray | None,
        progress: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``w_local - w_pulled`` after ``steps`` SGD steps from ``params`` (left untouched),
        and the updated momentum buffer (None without momentum)."""
        X, y, model = self.data.X_train, self.data.y_train, self.model
        lr = self.learning_rate(progress)
        local = params
        for _ in range(steps):
            batch = sampler.next()
            _, grad = model.loss_and_grad(local, X[batch], y[batch])
            if self.momentum:
                velocity = grad if velocity is None else self.momentum * velocity + grad
                grad = velocity
            local = local - lr * grad
        return local - params, velocity
