"""Multi-layer perceptron with ReLU hidden layers and a softmax output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import int_tuple, spec, text
from .base import Model, ModelParams, softmax_cross_entropy

# A weight matrix of at least this many values is not copied into a stack when parameter
# vectors come as a list (see ``MLP.loss_and_grad``): its products run vector by vector.
PER_VECTOR = 1 << 15


@dataclass(frozen=True)
class MLPParams(ModelParams):
    name: str = spec("mlp", text)
    hidden: tuple[int, ...] = spec((32,), int_tuple(1), "hidden layer widths")


class MLP(Model):
    """A multi-layer perceptron: ReLU hidden layers of the ``hidden`` widths, a softmax output.

    Layers ``n_features -> *hidden -> n_classes``; parameters are each layer's W then b."""

    name = "mlp"
    Params = MLPParams
    stacks = True

    @classmethod
    def build(cls, params, shape):
        return cls(shape.n_features, tuple(params.hidden), shape.n_classes, params.dtype)

    def __init__(self, n_features: int, hidden: tuple[int, ...], n_classes: int, dtype=np.float32):
        self.widths = (n_features, *hidden, n_classes)
        self.n_classes, self.dtype = n_classes, np.dtype(dtype)
        self._slices = []
        offset = 0
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:], strict=True):
            w = slice(offset, offset + fan_in * fan_out)
            b = slice(w.stop, w.stop + fan_out)
            self._slices.append((w, b, (fan_in, fan_out)))
            offset = b.stop
        self.size = offset
        # the parameter tensors (each layer's W, then b), in order: top-K per layer uses them
        self.segments = tuple(
            n for w, b, _ in self._slices for n in (w.stop - w.start, b.stop - b.start)
        )

    def _layers(self, params):
        """(W, b) per layer as views; with stacked parameters W is (G, in, out), b (G, 1, out).
        From a list of G vectors: small layers are stacked (a copy), big ones a list of G
        views (no copy)."""
        if isinstance(params, list):
            g, layers = len(params), []
            for w, b, shape in self._slices:
                if shape[0] * shape[1] >= PER_VECTOR:
                    W = [p[w].reshape(shape) for p in params]
                else:
                    W = np.stack([p[w] for p in params]).reshape(g, *shape)
                layers.append((W, np.stack([p[b] for p in params]).reshape(g, 1, -1)))
            return layers
        if params.ndim == 1:
            return [(params[w].reshape(shape), params[b]) for w, b, shape in self._slices]
        g = params.shape[0]
        return [
            (params[:, w].reshape(g, *shape), params[:, b].reshape(g, 1, -1))
            for w, b, shape in self._slices
        ]

    def init(self, rng):
        """He initialisation for the weights, zero biases."""
        params = np.zeros(self.size, dtype=self.dtype)
        for w, _, (fan_in, fan_out) in self._slices:
            params[w] = rng.normal(0, np.sqrt(2.0 / fan_in), fan_in * fan_out)
        return params

    def _forward(self, layers, X):
        activations = [X]
        for W, b in layers[:-1]:
            activations.append(np.maximum(_matmul(activations[-1], W) + b, 0))
        W, b = layers[-1]
        return activations, _matmul(activations[-1], W) + b

    def logits(self, params, X):
        return self._forward(self._layers(params), X)[1]

    def loss_and_grad(self, params, X, y, scale=None):
        """Loss and gradient for one vector ``(d,)``, a stack ``(G, d)``, or a list of G
        vectors (several workers' own parameters, not copied into one array)."""
        layers = self._layers(params)
        activations, logits = self._forward(layers, X)
        loss, delta = softmax_cross_entropy(logits, y)
        if scale is not None:
            delta *= scale
        if isinstance(params, list):
            grad = np.empty((len(params), self.size), params[0].dtype)
        else:
            grad = np.empty(params.shape, params.dtype)  # params may be a broadcast view
        grad_layers = self._layers(grad)
        for i in range(len(layers) - 1, -1, -1):
            a = activations[i]
            gW, gb = grad_layers[i]
            np.matmul(a.swapaxes(-1, -2), delta, out=gW)
            gb[...] = delta.sum(axis=-2, keepdims=grad.ndim > 1)
            if i:
                W = layers[i][0]
                delta = _matmul(delta, [w.T for w in W] if type(W) is list else W.swapaxes(-1, -2))
                delta *= a > 0
        return loss, grad

    @property
    def flops_per_sample(self):
        weights = sum(a * b for a, b in zip(self.widths[:-1], self.widths[1:], strict=True))
        return 6.0 * weights


def _matmul(a, W):
    """``a @ W``, where ``W`` may be a list of G matrices (then ``a`` is ``(G, B, in)``)."""
    if type(W) is not list:
        return a @ W
    out = np.empty((len(W), a.shape[-2], W[0].shape[-1]), np.result_type(a, W[0]))
    for i, w in enumerate(W):
        np.matmul(a[i], w, out=out[i])
    return out
