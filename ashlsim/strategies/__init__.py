"""Synchronization schemes, one file each, all on the ``Strategy`` interface (``base``).

More schemes come from ``register_strategy`` or from other packages through the entry-point
group ``ashlsim.strategies`` (``docs/extending.md``); either way ``run``, ``compare``, sweeps
and the command line find them by name.
"""

from __future__ import annotations

import dataclasses
from importlib import metadata

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
BUILTIN = frozenset(STRATEGIES)
DEFAULT = "bsp"  # the scheme of a scenario that names none
ENTRY_POINTS = "ashlsim.strategies"
_plugins_loaded = False


def register_strategy(cls: type[Strategy], *, replace: bool = False) -> type[Strategy]:
    """Make the scheme ``cls`` available by its ``name`` everywhere a scheme is named. ``cls``
    is a ``Strategy`` subclass with a ``name`` and a frozen dataclass ``Params`` (a subclass of
    ``StrategyParams`` whose ``name`` field defaults to that name). Usable as a decorator."""
    name = getattr(cls, "name", None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"{cls!r} is not a Strategy subclass")
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{cls.__name__}.name must be an identifier, not {name!r}")
    params = cls.Params
    if not (dataclasses.is_dataclass(params) and issubclass(params, StrategyParams)):
        raise TypeError(f"{cls.__name__}.Params must be a dataclass subclass of StrategyParams")
    if params().name != name:
        raise TypeError(f"{cls.__name__}.Params.name must default to {name!r}")
    if name in STRATEGIES and STRATEGIES[name] is not cls and not replace:
        raise ValueError(f"a scheme named {name!r} exists; pass replace=True to replace it")
    STRATEGIES[name] = cls
    return cls


def _load_plugins() -> None:
    """Register the schemes other packages declare under the ``ashlsim.strategies`` entry
    points (once; a plugin that fails to load is reported, not fatal)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in metadata.entry_points(group=ENTRY_POINTS):
        try:
            register_strategy(entry.load())
        except Exception as exc:  # a broken plugin must not break the simulator
            import warnings

            warnings.warn(f"ashlsim: plugin {entry.name!r} not loaded: {exc}", stacklevel=2)


def all_strategies() -> dict[str, type[Strategy]]:
    """Every scheme a scenario can name, plugins included."""
    _load_plugins()
    return dict(STRATEGIES)


def parse_strategy(data, path: str = "strategy"):
    """Validate a ``strategy:`` block with the parameters of the scheme it names."""
    if isinstance(data, StrategyParams):
        return data
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ScenarioError(path, data, f"a mapping with a name: one of {', '.join(STRATEGIES)}")
    name = data.get("name")
    if isinstance(name, str) and name not in STRATEGIES:
        _load_plugins()
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
