"""Synchronization schemes, one file each, all on the ``Strategy`` interface (``base``)."""

from __future__ import annotations

from ..config import parse_section
from ..errors import ScenarioError
from .adacomm import ADACOMM
from .adsp import ADSP
from .ashl import ASHL
from .asp import ASP
from .base import ClockGate, RoundBarrier, Strategy, StrategyParams
from .bsp import BSP
from .local_sgd import LocalSGD
from .ssp import SSP

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (BSP, ASP, SSP, LocalSGD, ASHL, ADSP, ADACOMM)
}
DEFAULT = "bsp"  # the scheme of a scenario that names none


def parse_strategy(data, path: str = "strategy"):
    """Validate a ``strategy:`` block with the parameters of the scheme it names."""
    if isinstance(data, StrategyParams):
        return data
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ScenarioError(path, data, f"a mapping with a name: one of {', '.join(STRATEGIES)}")
    name = data.get("name")
    if not isinstance(name, str) or name not in STRATEGIES:
        raise ScenarioError(f"{path}.name", name, f"one of {', '.join(STRATEGIES)}")
    if "server_lr" in data:  # shorthand for server_optimizer.lr
        data = dict(data)
        optimizer = data.get("server_optimizer") or {}
        if not isinstance(optimizer, dict) or "lr" in optimizer:
            raise ScenarioError(
                f"{path}.server_lr", data["server_lr"], "server_lr or server_optimizer.lr, not both"
            )
        data["server_optimizer"] = {**optimizer, "lr": data.pop("server_lr")}
    return parse_section(STRATEGIES[name].Params, data, path)


def build_strategy(params, port) -> Strategy:
    """The strategy ``params`` names, on the cluster ``port`` (``base.Port``)."""
    return STRATEGIES[params.name](params, port)


__all__ = [
    "DEFAULT",
    "STRATEGIES",
    "ClockGate",
    "RoundBarrier",
    "Strategy",
    "StrategyParams",
    "build_strategy",
    "parse_strategy",
]
