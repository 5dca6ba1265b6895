"""The public API for adding a scheme or a model (``docs/extending.md``): everything a
strategy or a model needs, and nothing of the engine.

>>> from ashlsim.extend import Strategy, StrategyParams, register_strategy, spec, integer, text
>>> from ashlsim.extend import DataShape, Model, ModelParams, register_model
"""

from .config import boolean, choice, int_tuple, integer, real, spec, text
from .models import DataShape, Model, ModelParams, register_model
from .models.base import softmax_cross_entropy
from .strategies import register_strategy
from .strategies.base import (
    ClockGate,
    Evaluation,
    Port,
    RoundBarrier,
    Strategy,
    StrategyParams,
    Update,
)

__all__ = [
    "ClockGate",
    "DataShape",
    "Evaluation",
    "Model",
    "ModelParams",
    "Port",
    "RoundBarrier",
    "Strategy",
    "StrategyParams",
    "Update",
    "boolean",
    "choice",
    "int_tuple",
    "integer",
    "real",
    "register_model",
    "register_strategy",
    "softmax_cross_entropy",
    "spec",
    "text",
]
