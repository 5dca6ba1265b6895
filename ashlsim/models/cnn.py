"""A convolutional network in NumPy: convolution + ReLU + max-pooling blocks, then dense layers.

Layout: activations are ``(batch, height, width, channels)`` (channels last), so that each
convolution is one matrix product of the im2col matrix ``(batch * height * width, channels *
kh * kw)`` (built by ``sliding_window_view``, one copy) with the kernel ``(channels * kh * kw,
out)``, and its output is already channels last. Parameters, in the vector's order: each
convolution's kernel ``(in, kh, kw, out)`` and bias, then each dense layer's W ``(in, out)`` and
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
            tensors += [(channels, k, k, out), (out,)]
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
            pooled, where = _max_pool(z, p)
            saved.append((a.shape, cols, z, where))
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
            in_shape, cols, z, where = saved[i]
            pooled = z.shape if where is None else (*where.shape[:3], out)
            dz = _max_pool_back(delta.reshape(pooled), where, z.shape, p)
            dz *= z > 0
            dz = dz.reshape(-1, out)
            np.matmul(cols.T, dz, out=grads[2 * i])
            grads[2 * i + 1][...] = dz.sum(axis=0)
            if i:
                delta = _col2im(dz @ tensors[2 * i].T, in_shape, k, pad)
        return loss, grad

    @property
    def flops_per_sample(self):
        """Forward and backward: 3 x 2 FLOP per multiply-accumulate of the forward pass."""
        return 6.0 * self.macs


def _im2col(a, k, pad):
    """``(B*H'*W', C*k*k)`` patches of ``a`` ``(B, H, W, C)`` (columns ordered C, kh, kw) and
    the output's ``(H', W')``."""
    if pad:
        a = np.pad(a, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(a, (k, k), axis=(1, 2))  # (B, H', W', C, k, k)
    spatial = windows.shape[1:3]
    return windows.reshape(-1, windows.shape[3] * k * k), spatial


def _col2im(dcols, in_shape, k, pad):
    """The gradient of ``a`` ``(B, H, W, C)`` from the gradient of its patches (the adjoint of
    ``_im2col``): each of the k*k kernel offsets adds its slice."""
    B, H, W, C = in_shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - k + 1, Wp - k + 1
    dcols = dcols.reshape(B, Ho, Wo, C, k, k)
    out = np.zeros((B, Hp, Wp, C), dcols.dtype)
    for i in range(k):
        for j in range(k):
            out[:, i : i + Ho, j : j + Wo, :] += dcols[:, :, :, :, i, j]
    return out[:, pad : pad + H, pad : pad + W, :] if pad else out


def _max_pool(z, p):
    """Max over non-overlapping ``p x p`` windows of ``z`` ``(B, H, W, C)``, and the index of
    each window's first maximum (row-major within the window)."""
    if p == 1:
        return z, None
    B, H, W, C = z.shape
    Ho, Wo = H // p, W // p
    windows = z[:, : Ho * p, : Wo * p, :].reshape(B, Ho, p, Wo, p, C).transpose(0, 1, 3, 5, 2, 4)
    windows = windows.reshape(B, Ho, Wo, C, p * p)
    where = windows.argmax(axis=-1)
    return np.take_along_axis(windows, where[..., None], axis=-1)[..., 0], where


def _max_pool_back(dout, where, z_shape, p):
    """The gradient of the pooled map's input: each window's gradient to its maximum."""
    if p == 1:
        return dout.copy()  # (dout may be a view of what the next layer keeps)
    B, H, W, C = z_shape
    Ho, Wo = H // p, W // p
    dwin = np.zeros((B, Ho, Wo, C, p * p), dout.dtype)
    np.put_along_axis(dwin, where[..., None], dout[..., None], axis=-1)
    dz = np.zeros(z_shape, dout.dtype)
    dz[:, : Ho * p, : Wo * p, :] = (
        dwin.reshape(B, Ho, Wo, C, p, p).transpose(0, 1, 4, 2, 5, 3).reshape(B, Ho * p, Wo * p, C)
    )
    return dz
