"""What every model offers the simulator: the model port (``docs/extending.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..config import choice, spec, text


@dataclass(frozen=True)
class DataShape:
    """What a model is built for: one sample's shape (``(features,)``, or ``(channels,
    height, width)`` for an image set) and the number of classes. The data reach the model
    flattened, ``X`` of shape ``(batch, n_features)``; a model that wants images reshapes
    them with ``sample_shape``."""

    sample_shape: tuple[int, ...]
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(np.prod(self.sample_shape))


@dataclass(frozen=True)
class ModelParams:
    """A ``model:`` block: the model's name, its dtype, and the fields a model class adds in
    its own ``Params`` (a frozen dataclass subclass whose ``name`` defaults to the model's)."""

    trains: ClassVar[bool] = True  # False: the timing-only mode (no model, no maths)

    name: str = spec("mlp", text)
    dtype: str = spec("float32", choice("float32", "float64"), "the parameters' and data's")


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
    """A classifier on one flat parameter vector of ``size`` values of ``dtype``.

    A model class has a ``name`` and a ``Params`` dataclass (its ``model:`` block); the
    simulator builds it with ``build(params, shape)`` (by default ``cls(params, shape)``).
    It provides ``size``, ``dtype``, ``n_classes``, ``segments`` (the sizes of its parameter
    tensors, in the vector's order: per-layer top-K compresses each alone), ``init``,
    ``loss_and_grad`` and ``logits``. ``stacks = True`` declares that ``loss_and_grad``
    also takes G workers' parameters at once (``(G, size)`` or a list of G vectors, ``X``
    ``(G, B, F)``, ``y`` ``(G, B)``) and a ``scale``; otherwise the simulator calls it one
    vector at a time (``per_vector``)."""

    name: ClassVar[str]
    Params: ClassVar[type[ModelParams]] = ModelParams
    trains = True  # False for the timing-only mode's NoModel
    stacks = False  # loss_and_grad takes stacks, lists and a scale (see above)
    size: int
    dtype: np.dtype
    n_classes: int
    segments: tuple[int, ...]  # sizes of the parameter tensors (layers' W, b) in the vector

    @classmethod
    def build(cls, params: ModelParams, shape: DataShape) -> Model:
        """The model a ``model:`` block describes, for data of ``shape``."""
        return cls(params, shape)

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """The initial parameters, a new flat vector of ``size`` values of ``dtype``, drawn
        from ``rng`` only (the run's seed then fixes them)."""
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
    def flops_per_sample(self) -> float | None:
        """Training FLOP per sample (forward and backward), the compute time's unit when
        ``cluster.flops`` is set; ``None``: unknown (the scenario then gives
        ``workload.flops_per_sample``)."""
        return None


def per_vector(model: Model):
    """``model.loss_and_grad`` with the stacked signature (``Model.stacks``) from a model
    that takes one vector: G separate calls, gradients cast to the model's dtype."""

    def loss_and_grad(params, X, y, scale=None):
        if isinstance(params, list) or params.ndim == 2:
            losses, grad = np.empty(len(params)), np.empty((len(params), model.size), model.dtype)
            for g, vector in enumerate(params):
                losses[g], grad[g] = model.loss_and_grad(vector, X[g], y[g])
            if scale is not None:
                grad *= np.reshape(scale, (-1, 1)) if np.ndim(scale) else scale
            return losses, grad
        loss, grad = model.loss_and_grad(params, X, y)
        grad = np.array(grad, dtype=model.dtype)  # a new vector, the model's own left alone
        if scale is not None:
            grad *= scale
        return float(loss), grad

    return loss_and_grad


@dataclass(frozen=True)
class NoModelParams(ModelParams):
    trains: ClassVar[bool] = False
    name: str = spec("none", text)


class NoModel(Model):
    """The model of the timing-only mode (``model: {name: none}``): a parameter count (the
    virtual workload's, for message sizes) and no maths. Its loss and accuracy are nan."""

    name = "none"
    Params = NoModelParams
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
