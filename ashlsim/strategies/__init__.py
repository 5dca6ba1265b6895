"""Synchronization schemes, one file each, all on the ``Strategy`` interface (``base``).

More schemes come from ``register_strategy`` or from other packages through the entry-point
group ``ashlsim.strategies`` (``docs/extending.md``); either way ``run``, ``compare``, sweeps
and the command line find them by name.
"""

from __future__ import annotations

from ..config import parse_section
from ..errors import ScenarioError
from ..registry import Registry
from .adacomm import ADACOMM
from .adsp import ADSP
from .allreduce import AllReduce
from .ashl import ASHL
from .asp import ASP
from .base import ClockGate, RoundBarrier, Strategy, StrategyParams
from .bsp import BSP
from .gossip import Gossip
from .local_sgd import LocalSGD
from .ssp import SSP

ENTRY_POINTS = "ashlsim.strategies"
REGISTRY = Registry("scheme", Strategy, StrategyParams, ENTRY_POINTS,
                    (BSP, ASP, SSP, LocalSGD, ASHL, ADSP, ADACOMM, AllReduce, Gossip))  # fmt: skip
STRATEGIES: dict[str, type[Strategy]] = REGISTRY.classes
DEFAULT = "bsp"  # the scheme of a scenario that names none


def register_strategy(cls: type[Strategy], *, replace: bool = False) -> type[Strategy]:
    """Make the scheme ``cls`` available by its ``name`` everywhere a scheme is named. ``cls``
    is a ``Strategy`` subclass with a ``name`` and a frozen dataclass ``Params`` (a subclass of
    ``StrategyParams`` whose ``name`` field defaults to that name). Usable as a decorator."""
    return REGISTRY.register(cls, replace=replace)


def all_strategies() -> dict[str, type[Strategy]]:
    """Every scheme a scenario can name, plugins included."""
    return REGISTRY.everything()


def parse_strategy(data, path: str = "strategy"):
    """Validate a ``strategy:`` block with the parameters of the scheme it names."""
    if isinstance(data, StrategyParams):
        return data
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ScenarioError(path, data, f"a mapping with a name: one of {', '.join(STRATEGIES)}")
    cls = REGISTRY.lookup(data.get("name"), f"{path}.name")
    if "server_lr" in data:  # shorthand for server_optimizer.lr
        data = dict(data)
        optimizer = data.get("server_optimizer") or {}
        if not isinstance(optimizer, dict) or "lr" in optimizer:
            raise ScenarioError(
                f"{path}.server_lr", data["server_lr"], "server_lr or server_optimizer.lr, not both"
            )
        data["server_optimizer"] = {**optimizer, "lr": data.pop("server_lr")}
    return parse_section(cls.Params, data, path)


def build_strategy(params, port) -> Strategy:
    """The strategy ``params`` names, on the cluster ``port`` (``base.Port``)."""
    return STRATEGIES[params.name](params, port)


__all__ = [
    "DEFAULT",
    "ENTRY_POINTS",
    "STRATEGIES",
    "ClockGate",
    "RoundBarrier",
    "Strategy",
    "StrategyParams",
    "all_strategies",
    "build_strategy",
    "parse_strategy",
    "register_strategy",
]
