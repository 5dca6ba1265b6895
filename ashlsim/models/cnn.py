"""A convolutional network in NumPy: convolution + ReLU + max-pooling blocks, then dense layers.

Layout: activations are ``(batch, height, width, channels)`` (channels last), so that each
convolution is one matrix product of the im2col matrix ``(batch * height * width, kh * kw *
channels)`` (a window view copied once) with the kernel ``(kh * kw * channels, out)``, and its
output is already channels last. Parameters, in the vector's order: each convolution's kernel
``(kh, kw, in, out)`` and bias, then each dense layer's W ``(in, out)`` and
b. Max-pooling is over non-overlapping ``p x p`` windows (a remainder row or column is dropped,
as PyTorch's ``MaxPool2d`` does); its gradient goes to the first maximum of each window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..config import choice, int_tuple, spec, text
from ..errors import ScenarioError
from .base import Model, ModelParams, softmax_cross_entropy

EVAL_BATCH = 512  # samples per forward pass when evaluating (bounds the im2col matrix)


@dataclass(frozen=True)
class CNNParams(ModelParams):
    name: str = spec("cnn", text)
    channels: tuple[int, ...] = spec((8, 16), int_tuple(1), "output channels of each conv layer")
    kernels: tuple[int, ...] = spec((3,), int_tuple(1), "kernel sizes: one for all, or one a layer")
    pool: tuple[int, ...] = spec((2,), int_tuple(1), "max-pool window after each conv (1: none)")
    padding: str = spec("same", choice("same", "valid"), "same: output as large as the input")
    dense: tuple[int, ...] = spec((32,), int_tuple(1), "hidden dense widths before the output")

    def __post_init__(self):
        if not self.channels:
            raise ScenarioError("model.channels", [], "at least one conv layer's channels")
        for field in ("kernels", "pool"):
            value = getattr(self, field)
            if len(value) not in (1, len(self.channels)):
                raise ScenarioError(f"model.{field}", list(value),
                                    f"one value, or one per conv layer ({len(self.channels)})")  # fmt: skip
        if self.padding == "same" and any(k % 2 == 0 for k in self.kernels):
            raise ScenarioError("model.kernels", list(self.kernels), "odd sizes with padding same")

    def per_layer(self, field: str) -> tuple[int, ...]:
        value = getattr(self, field)
        return value * len(self.channels) if len(value) == 1 else value


class CNN(Model):
    """Convolution (stride 1) + ReLU + max-pool blocks, then ReLU dense layers and a softmax
    output, for image data (``digits`` as 1x8x8, ``mnist5k`` as 1x28x28, a user's images)."""

    name = "cnn"
    Params = CNNParams

    def __init__(self, params: CNNParams, shape):
        if len(shape.sample_shape) != 3:
            raise ScenarioError("model.name", "cnn", "image data: digits, mnist5k, or a file "
                                f"whose X keeps (n, c, h, w) (this data's samples are {shape.sample_shape})")  # fmt: skip
        self.dtype, self.n_classes = np.dtype(params.dtype), shape.n_classes
        channels, height, width = shape.sample_shape
        self.input_shape = (height, width, channels)  # channels last
        self.convs, self.dense, self.macs = [], [], 0
        tensors = []
        for out, k, p in zip(params.channels, params.per_layer("kernels"), params.per_layer("pool"),
                             strict=True):  # fmt: skip
            pad = k // 2 if params.padding == "same" else 0
            height, width = height + 2 * pad - k + 1, width + 2 * pad - k + 1
            if height < 1 or width < 1:
                raise ScenarioError(
                    "model.kernels", k, f"at most the image's size here ({height + k - 1})"
                )
            self.macs += height * width * channels * k * k * out
            self.convs.append((k, pad, p, channels, out))
            tensors += [(k, k, channels, out), (out,)]
            channels, height, width = out, height // p, width // p
            if height < 1 or width < 1:
                raise ScenarioError("model.pool", p, "a window no larger than the feature map")
        fan_in = channels * height * width
        for out in (*params.dense, shape.n_classes):
            self.dense.append((fan_in, out))
            self.macs += fan_in * out
            tensors += [(fan_in, out), (out,)]
            fan_in = out
        self.tensor_shapes = tensors
        self.segments = tuple(int(np.prod(t)) for t in tensors)
        self.size = sum(self.segments)
        self._offsets = np.concatenate([[0], np.cumsum(self.segments)])

    def _tensors(self, vector):
        """Views of the vector: each layer's weight (as the matrix it multiplies) and bias."""
        out = []
        for i, shape in enumerate(self.tensor_shapes):
            part = vector[self._offsets[i] : self._offsets[i + 1]]
            out.append(part.reshape(-1, shape[-1]) if len(shape) > 1 else part)
        return out

    def init(self, rng):
        """He initialisation (normal, fan-in) for the weights, zero biases."""
        params = np.zeros(self.size, dtype=self.dtype)
        for i, shape in enumerate(self.tensor_shapes):
            if len(shape) > 1:
                fan_in = int(np.prod(shape[:-1]))
                params[self._offsets[i] : self._offsets[i + 1]] = rng.normal(
                    0, np.sqrt(2.0 / fan_in), self.segments[i]
                )
        return params

    # ---- forward ----------------------------------------------------------------------------
    def _forward(self, params, X):
        """Logits and what the backward pass needs, layer by layer."""
        tensors = self._tensors(params)
        a = X.reshape(len(X), self.input_shape[2], *self.input_shape[:2]).transpose(0, 2, 3, 1)
        saved = []
        for i, (k, pad, p, _, out) in enumerate(self.convs):
            cols, spatial = _im2col(a, k, pad)
            z = cols @ tensors[2 * i]
            z += tensors[2 * i + 1]
            np.maximum(z, 0, out=z)
            z = z.reshape(len(X), *spatial, out)
            pooled = _max_pool(z, p)
            saved.append((a.shape, cols, z, pooled))
            a = pooled
        a = a.reshape(len(X), -1)
        dense = []
        first = 2 * len(self.convs)
        for j in range(len(self.dense)):
            W, b = tensors[first + 2 * j], tensors[first + 2 * j + 1]
            dense.append(a)
            a = a @ W + b
            if j < len(self.dense) - 1:
                np.maximum(a, 0, out=a)
        return a, (tensors, saved, dense)

    def logits(self, params, X):
        if len(X) <= EVAL_BATCH:
            return self._forward(params, X)[0]
        return np.concatenate([self._forward(params, X[at : at + EVAL_BATCH])[0]
                               for at in range(0, len(X), EVAL_BATCH)])  # fmt: skip

    # ---- backward ---------------------------------------------------------------------------
    def loss_and_grad(self, params, X, y):
        logits, (tensors, saved, dense) = self._forward(params, X)
        loss, delta = softmax_cross_entropy(logits, y)
        grad = np.empty(self.size, self.dtype)
        grads = self._tensors(grad)
        first = 2 * len(self.convs)
        for j in range(len(self.dense) - 1, -1, -1):
            a = dense[j]
            np.matmul(a.T, delta, out=grads[first + 2 * j])
            grads[first + 2 * j + 1][...] = delta.sum(axis=0)
            delta = delta @ tensors[first + 2 * j].T
            if j:
                delta *= a > 0
        for i in range(len(self.convs) - 1, -1, -1):
            k, pad, p, _, out = self.convs[i]
            in_shape, cols, z, pooled = saved[i]
            dz = _max_pool_back(delta.reshape(pooled.shape), z, pooled, p)
            dz *= z > 0
            dz = dz.reshape(-1, out)
            np.matmul(cols.T, dz, out=grads[2 * i])
            grads[2 * i + 1][...] = dz.sum(axis=0)
            if i:
                delta = _input_grad(dz, tensors[2 * i], in_shape, k, pad)
        return loss, grad

    @property
    def flops_per_sample(self):
        """Forward and backward: 3 x 2 FLOP per multiply-accumulate of the forward pass."""
        return 6.0 * self.macs


def _im2col(a, k, pad):
    """``(B*H'*W', k*k*C)`` patches of ``a`` ``(B, H, W, C)`` (columns ordered kh, kw, C) and
    the output's ``(H', W')``: a view of the windows, copied once into the matrix."""
    if pad:
        a = np.pad(a, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(a, (k, k), axis=(1, 2))  # (B, H', W', C, k, k), a view
    B, Ho, Wo, C = windows.shape[:4]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(B * Ho * Wo, k * k * C), (Ho, Wo)


def _input_grad(dz, kernel, in_shape, k, pad):
    """The gradient of the convolution's input ``(B, H, W, C)`` from its output's ``dz``
    ``(B*H'*W', out)``: per kernel offset, one product with that offset's ``(C, out)`` slice
    added where the offset read (on a padded map, cropped at the end). Faster than ``dz @
    kernel.T`` and folding the ``(B*H'*W', k*k*C)`` result back: no such matrix is made."""
    B, H, W, C = in_shape
    Ho, Wo = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    out = np.zeros((B, H + 2 * pad, W + 2 * pad, C), dz.dtype)
    per_offset = kernel.reshape(k, k, C, -1)
    for i in range(k):
        for j in range(k):
            out[:, i : i + Ho, j : j + Wo] += (dz @ per_offset[i, j].T).reshape(B, Ho, Wo, C)
    return out[:, pad : pad + H, pad : pad + W] if pad else out


def _windows(z, p):
    """The ``p*p`` strided views of ``z`` ``(B, H, W, C)``, one per offset in its windows
    (row-major), each ``(B, H // p, W // p, C)``."""
    Ho, Wo = z.shape[1] // p, z.shape[2] // p
    return [z[:, i : Ho * p : p, j : Wo * p : p] for i in range(p) for j in range(p)]


def _max_pool(z, p):
    """Max over non-overlapping ``p x p`` windows of ``z`` ``(B, H, W, C)``."""
    if p == 1:
        return z
    views = _windows(z, p)
    best = views[0].copy()
    for view in views[1:]:
        np.maximum(best, view, out=best)
    return best


def _max_pool_back(dout, z, pooled, p):
    """The gradient of the pooled map's input ``z``: each window's gradient to its first
    maximum (row-major), as PyTorch's ``MaxPool2d`` does."""
    if p == 1:
        return dout.copy()  # (dout may be a view of what the next layer keeps)
    dz = np.zeros(z.shape, dout.dtype)
    remaining, hit = np.ones(pooled.shape, bool), np.empty(pooled.shape, bool)
    for view, target in zip(_windows(z, p), _windows(dz, p), strict=True):
        np.equal(view, pooled, out=hit)
        hit &= remaining
        np.multiply(dout, hit, out=target)
        remaining &= ~hit
    return dz
