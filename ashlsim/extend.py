"""The public API for adding a scheme (``docs/extending.md``): everything a strategy needs,
and nothing of the engine.

>>> from ashlsim.extend import Strategy, StrategyParams, register_strategy, spec, integer, text
"""

from .config import boolean, choice, integer, real, spec, text
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
    "Evaluation",
    "Port",
    "RoundBarrier",
    "Strategy",
    "StrategyParams",
    "Update",
    "boolean",
    "choice",
    "integer",
    "real",
    "register_strategy",
    "spec",
    "text",
]
