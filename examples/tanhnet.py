"""A model written only against ``ashlsim.extend`` (docs/extending.md): a one-hidden-layer
tanh network, its parameters one flat vector ``[W1, b1, W2, b2]``.

Register it (``ashlsim.register_model(TanhNet)``, or the entry point ``ashlsim.models`` of a
package) and name it: ``model: {name: tanhnet, width: 64}``.
"""

from dataclasses import dataclass

import numpy as np

from ashlsim.extend import Model, ModelParams, integer, softmax_cross_entropy, spec, text


@dataclass(frozen=True)
class TanhNetParams(ModelParams):
    name: str = spec("tanhnet", text)
    width: int = spec(16, integer(1), "hidden units")


class TanhNet(Model):
    """One hidden layer of tanh units and a softmax output (an example of the model port)."""

    name = "tanhnet"
    Params = TanhNetParams

    def __init__(self, params, shape):
        d, h, k = shape.n_features, params.width, shape.n_classes
        self.dtype, self.n_classes = np.dtype(params.dtype), k
        self.shapes = [(d, h), (h,), (h, k), (k,)]  # W1, b1, W2, b2, in the vector's order
        self.segments = tuple(int(np.prod(s)) for s in self.shapes)
        self.size = sum(self.segments)

    def _tensors(self, vector):
        out, at = [], 0
        for shape, n in zip(self.shapes, self.segments, strict=True):
            out.append(vector[at : at + n].reshape(shape))
            at += n
        return out

    def init(self, rng):
        W1, b1, W2, b2 = self._tensors(np.zeros(self.size, self.dtype))
        W1[...] = rng.normal(0, 1 / np.sqrt(W1.shape[0]), W1.shape)
        W2[...] = rng.normal(0, 1 / np.sqrt(W2.shape[0]), W2.shape)
        return np.concatenate([W1.ravel(), b1, W2.ravel(), b2])

    def logits(self, params, X):
        W1, b1, W2, b2 = self._tensors(params)
        return np.tanh(X @ W1 + b1) @ W2 + b2

    def loss_and_grad(self, params, X, y):
        W1, b1, W2, b2 = self._tensors(params)
        hidden = np.tanh(X @ W1 + b1)
        loss, dlogits = softmax_cross_entropy(hidden @ W2 + b2, y)  # d(mean loss)/d(logits)
        dhidden = (dlogits @ W2.T) * (1 - hidden**2)
        grads = [X.T @ dhidden, dhidden.sum(0), hidden.T @ dlogits, dlogits.sum(0)]
        return loss, np.concatenate([g.ravel() for g in grads]).astype(self.dtype)

    @property
    def flops_per_sample(self):
        return 6.0 * (self.segments[0] + self.segments[2])
