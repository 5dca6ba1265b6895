"""Compression of a parameter delta, optax-style: ``init(size) -> state`` and
``compress(delta, state) -> (message, state)``, with ``decompress(message)`` on the PS side.

Error feedback keeps the unsent remainder in the state and adds it to the next delta, so over
time nothing is lost (Stich et al. 2018; Karimireddy et al. 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .config import boolean, choice, real, spec

COMPRESSORS = ("identity", "topk", "randk")


@dataclass(frozen=True)
class CompressionSpec:
    """``compression:`` inside a strategy block."""

    name: str = spec("identity", choice(*COMPRESSORS))
    ratio: float = spec(1.0, real(0, 1, exclusive_min=True), "share of values sent (topk, randk)")
    error_feedback: bool = spec(False, boolean, "keep the unsent remainder for the next push")
    scope: str = spec(
        "vector", choice("vector", "layer"), "top-K over the whole vector or per parameter tensor"
    )


class Message(NamedTuple):
    """What a worker pushes: dense ``values`` (``indices is None``) or K values at ``indices``
    of a vector of ``size`` values."""

    values: np.ndarray
    indices: np.ndarray | None
    size: int

    @property
    def kept_fraction(self) -> float:
        return 1.0 if self.indices is None else len(self.indices) / self.size

    def decompress(self) -> np.ndarray:
        """The dense delta the PS applies (zeros where nothing was sent)."""
        if self.indices is None:
            return self.values
        dense = np.zeros(self.size, dtype=self.values.dtype)
        dense[self.indices] = self.values
        return dense

    def wire_bytes(self, workload, model_values: int | None = None) -> int:
        """Bytes on the wire (``payload_bytes``), for the virtual model's size when the workload
        gives ``param_bytes`` (the kept fraction then applies to it)."""
        if self.indices is None:
            return dense_bytes(workload, self.size if model_values is None else model_values)
        if model_values is None and workload.param_bytes is None:
            return workload.header_bytes + payload_bytes(workload, self.size, len(self.indices))
        return message_bytes(
            workload, self.size if model_values is None else model_values, self.kept_fraction
        )


def payload_bytes(workload, values: int, kept: int) -> int:
    """Bytes of K = ``kept`` of ``values`` values in the smallest encoding: dense
    (``d * bytes_per_value``), values + indices (``K * (bytes_per_value + bytes_per_index)``) or
    values + a bitmap (``K * bytes_per_value + ceil(d / 8)``). A sparse message is never
    charged more than the dense one."""
    dense = values * workload.bytes_per_value
    if kept >= values:
        return dense
    indexed = kept * (workload.bytes_per_value + workload.bytes_per_index)
    bitmap = kept * workload.bytes_per_value + -(-values // 8)
    return min(dense, indexed, bitmap)


def message_bytes(workload, model_values: int, kept_fraction: float | None, segments=None) -> int:
    """Header + payload (``payload_bytes``) of a message keeping ``kept_fraction`` of the
    values (None: dense): ``K = ceil(kept_fraction * d)``, or the sum of that per parameter
    tensor when top-K runs per layer (``segments``, the proxy model's tensor sizes; a virtual
    model's layers are unknown, so its K is over the whole vector)."""
    values = virtual_values(workload, model_values)
    if kept_fraction is None:
        kept = values
    elif segments is not None and workload.param_bytes is None:
        kept = sum(kept_count(kept_fraction, n) for n in segments)
    else:
        kept = kept_count(kept_fraction, values)
    return int(workload.header_bytes + payload_bytes(workload, values, kept))


def virtual_values(workload, model_values: int) -> int:
    """How many parameter values a message carries: the virtual DNN's, or else the model's."""
    if workload.param_bytes is not None:
        return max(1, int(round(workload.param_bytes / workload.bytes_per_value)))
    return model_values


def dense_bytes(workload, model_values: int) -> int:
    """Bytes of one uncompressed model or delta on the wire."""
    return message_bytes(workload, model_values, None)


class Compressor(NamedTuple):
    """A pair of pure functions; the state is the error-feedback residual (or None)."""

    init: object  # (size: int) -> state
    compress: object  # (delta, state) -> (Message, state)


def _with_feedback(select, error_feedback: bool) -> Compressor:
    """Wrap ``select(vector) -> indices or None`` into a compressor, with optional feedback."""

    def init(size):
        return np.zeros(size) if error_feedback else None

    def compress(delta, state):
        corrected = delta + state.astype(delta.dtype) if error_feedback else delta
        idx = select(corrected)
        if idx is None:
            message = Message(corrected, None, corrected.size)
            return message, (np.zeros_like(state) if error_feedback else None)
        message = Message(corrected[idx], idx, corrected.size)
        if error_feedback:
            residual = corrected.astype(state.dtype)  # new array: the caller's delta is untouched
            residual[idx] = 0.0
            return message, residual
        return message, None

    return Compressor(init, compress)


def identity() -> Compressor:
    """Send everything."""
    return _with_feedback(lambda v: None, False)


def kept_count(ratio: float, size: int) -> int:
    """K = ceil(ratio * size), at least 1 and at most size; a product that lands a rounding
    error above an integer (0.07 * 100 = 7.000000000000001) counts as that integer."""
    return max(1, min(size, math.ceil(ratio * size - 1e-9)))


def topk(ratio: float, error_feedback: bool = False, segments=None) -> Compressor:
    """Send the K = ceil(ratio * d) entries of largest magnitude; with ``segments`` (the sizes
    of consecutive parameter tensors) the K = ceil(ratio * d_l) largest of each tensor (top-K
    layer by layer)."""

    def largest(v, k):
        return np.sort(np.argpartition(np.abs(v), v.size - k)[v.size - k :])

    def select(v):
        if segments is None:
            k = kept_count(ratio, v.size)
            return None if k >= v.size else largest(v, k)
        parts, start = [], 0
        for size in segments:
            k = kept_count(ratio, size)
            piece = v[start : start + size]
            parts.append(start + (np.arange(size) if k >= size else largest(piece, k)))
            start += size
        idx = np.concatenate(parts)
        return None if idx.size >= v.size else idx

    return _with_feedback(select, error_feedback)


def randk(ratio: float, rng: np.random.Generator, error_feedback: bool = False) -> Compressor:
    """Send K = ceil(ratio * d) entries chosen uniformly at random (``rng``: the worker's)."""

    def select(v):
        k = kept_count(ratio, v.size)
        if k >= v.size:
            return None
        return np.sort(rng.choice(v.size, k, replace=False))

    return _with_feedback(select, error_feedback)


def layer_segments(spec_: CompressionSpec, segments):
    """The tensor sizes a compressor works through one at a time: the model's ``segments`` for
    top-K per layer (``scope: layer``), else None (the whole vector)."""
    return segments if spec_.name == "topk" and spec_.scope == "layer" else None


def build_compressor(spec_: CompressionSpec, rng, ratio: float | None = None, segments=None):
    """The compressor a ``compression:`` block describes (``ratio`` overrides the block's;
    ``segments``: the model's tensor sizes, used when ``scope`` is ``layer``). ``rng``: a
    ``numpy.random.Generator``, or a function that makes one, called only by a compressor
    that draws (random-K): making a stream costs ~10 us, for each of 10,000 workers."""
    ratio = spec_.ratio if ratio is None else ratio
    if spec_.name == "identity" or ratio >= 1.0 and not spec_.error_feedback:
        return identity()
    if spec_.name == "topk":
        return topk(ratio, spec_.error_feedback, layer_segments(spec_, segments))
    return randk(ratio, rng() if callable(rng) else rng, spec_.error_feedback)
