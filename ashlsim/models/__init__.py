"""Models that know nothing of time: one flat parameter vector, ``loss_and_grad``, ``predict``."""

from __future__ import annotations

import numpy as np

from ..errors import ScenarioError
from .base import Model, NoModel
from .mlp import MLP
from .softmax import Softmax

MODELS = ("softmax", "logistic", "mlp", "none")


def build_model(spec, n_features: int, n_classes: int) -> Model | None:
    """The model a scenario's ``model`` block names (``None`` for the timing-only mode)."""
    dtype = np.dtype(spec.dtype)
    if spec.name in ("softmax", "logistic"):
        return Softmax(n_features, n_classes, dtype)
    if spec.name == "mlp":
        return MLP(n_features, tuple(spec.hidden), n_classes, dtype)
    if spec.name == "none":
        return None
    raise ScenarioError("model.name", spec.name, f"one of {', '.join(MODELS)}")


__all__ = ["MLP", "MODELS", "Model", "NoModel", "Softmax", "build_model"]
