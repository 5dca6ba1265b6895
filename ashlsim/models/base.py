"""What every model offers the simulator."""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of integer labels ``y`` and its gradient with respect to ``logits``.

    ``logits`` is ``(B, K)`` (loss a float) or a stack ``(G, B, K)`` with ``y`` ``(G, B)``
    (loss an array of G): several workers' batches in one computation.
    """
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    probs = exp / total
    if logits.ndim == 2:
        rows = np.arange(len(y))
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        probs[rows, y] -= 1.0
    else:  # rows of the flattened stack (the same values as take/put_along_axis, faster)
        classes = logits.shape[-1]
        rows, labels = np.arange(y.size), y.reshape(-1)
        picked = shifted.reshape(-1, classes)[rows, labels].reshape(y.shape)
        loss = np.mean(np.log(total[..., 0]) - picked, axis=-1)
        probs.reshape(-1, classes)[rows, labels] -= 1.0  # (probs is new and contiguous)
    probs /= y.shape[-1]
    return loss, probs


class Model:
    """A classifier on one flat parameter vector of ``size`` values of ``dtype``."""

    trains = True  # False for the timing-only mode's NoModel
    size: int
    dtype: np.dtype
    n_classes: int
    segments: tuple[int, ...]  # sizes of the parameter tensors (layers' W, b) in the vector

    def init(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_and_grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray, scale=None):
        """Mean cross-entropy on ``(X, y)`` and its gradient, a new flat vector. Stacked:
        ``params`` ``(G, size)``, ``X`` ``(G, B, F)``, ``y`` ``(G, B)`` give G losses and a
        ``(G, size)`` gradient, equal to G separate calls up to float rounding. ``params``
        may also be a list of G vectors (workers' own parameters): the model copies into a
        stack only what pays. ``scale`` (a number, or ``(G, 1, 1)`` for a stack) gives the
        gradient of ``scale * loss``: an SGD step's delta without a pass over the gradient."""
        raise NotImplementedError

    def loss(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        return softmax_cross_entropy(self.logits(params, X), y)[0]

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self.logits(params, X).argmax(axis=1)

    def accuracy(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(params, X) == y))

    def evaluate(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(loss, accuracy) from one forward pass."""
        logits = self.logits(params, X)
        loss = softmax_cross_entropy(logits, y)[0]
        return loss, float(np.mean(logits.argmax(axis=1) == y))

    @property
    def flops_per_sample(self) -> float:
        """Forward and backward pass, about 3 x 2 FLOPs per weight per sample."""
        raise NotImplementedError


class NoModel(Model):
    """The model of the timing-only mode (``model: {name: none}``): a parameter count (the
    virtual workload's, for message sizes) and no maths. Its loss and accuracy are nan."""

    trains = False
    segments = None
    flops_per_sample = None

    def __init__(self, size: int, dtype=np.float32):
        self.size, self.dtype, self.n_classes = int(size), np.dtype(dtype), 0

    def init(self, rng):
        return np.zeros(0, dtype=self.dtype)

    def loss(self, params, X, y) -> float:
        return float("nan")

    def evaluate(self, params, X, y):
        return float("nan"), float("nan")
