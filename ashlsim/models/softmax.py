"""Multinomial logistic (softmax) regression; with two classes it is logistic regression."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import spec, text
from .base import Model, ModelParams, softmax_cross_entropy


@dataclass(frozen=True)
class SoftmaxParams(ModelParams):
    name: str = spec("softmax", text)


@dataclass(frozen=True)
class LogisticParams(ModelParams):
    name: str = spec("logistic", text)


class Softmax(Model):
    """Multinomial logistic (softmax) regression: logits ``X @ W + b``.

    Parameters ``[W.ravel(), b]`` with W of shape (d, k)."""

    name = "softmax"
    Params = SoftmaxParams
    stacks = True

    @classmethod
    def build(cls, params, shape):
        return cls(shape.n_features, shape.n_classes, params.dtype)

    def __init__(self, n_features: int, n_classes: int, dtype=np.float32):
        self.d, self.n_classes, self.dtype = n_features, n_classes, np.dtype(dtype)
        self.size = n_features * n_classes + n_classes
        self.segments = (n_features * n_classes, n_classes)  # W, b: the tensors, in order

    def _split(self, params):
        """W ``(..., d, k)`` and b ``(..., k)`` views of flat (or stacked) parameters."""
        k, lead = self.n_classes, params.shape[:-1]
        return params[..., : self.d * k].reshape(*lead, self.d, k), params[..., self.d * k :]

    def init(self, rng):
        params = np.zeros(self.size, dtype=self.dtype)
        params[: self.d * self.n_classes] = rng.normal(0, 0.01, self.d * self.n_classes)
        return params

    def logits(self, params, X):
        W, b = self._split(params)
        return X @ W + b[..., None, :] if params.ndim > 1 else X @ W + b

    def loss_and_grad(self, params, X, y, scale=None):
        """For one vector ``(d,)``, a stack ``(G, d)`` or a list of G vectors (stacked here)."""
        if isinstance(params, list):
            params = np.stack(params)
        loss, dlogits = softmax_cross_entropy(self.logits(params, X), y)
        if scale is not None:
            dlogits *= scale
        grad = np.empty(params.shape, params.dtype)  # params may be a broadcast view
        gW, gb = self._split(grad)
        np.matmul(X.swapaxes(-1, -2), dlogits, out=gW)
        gb[...] = dlogits.sum(axis=-2)
        return loss, grad

    @property
    def flops_per_sample(self):
        return 6.0 * self.d * self.n_classes


class Logistic(Softmax):
    """Softmax regression by its two-class name (the same model for any number of classes)."""

    name = "logistic"
    Params = LogisticParams
