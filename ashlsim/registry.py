"""A registry of named classes with parameters (schemes, models): the built-ins, those
registered in Python, and those other packages declare under an entry-point group.

``strategies.STRATEGIES`` and ``models.MODELS`` are two registries' ``classes``."""

from __future__ import annotations

import dataclasses
import warnings
from importlib import metadata

from .errors import ScenarioError


class Registry:
    """Classes of ``base`` by ``name``, each with a frozen dataclass ``Params`` (a subclass of
    ``params``) whose ``name`` field defaults to the class's name."""

    def __init__(self, kind: str, base: type, params: type, group: str, builtins) -> None:
        self.kind, self.base, self.params, self.group = kind, base, params, group
        self.classes: dict[str, type] = {cls.name: cls for cls in builtins}
        self.builtin = frozenset(self.classes)
        self.plugins_loaded = False

    def register(self, cls: type, *, replace: bool = False) -> type:
        """Make ``cls`` available by its ``name`` (usable as a decorator)."""
        name = getattr(cls, "name", None)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{cls!r} is not a {self.base.__name__} subclass")
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"{cls.__name__}.name must be an identifier, not {name!r}")
        params = cls.Params
        if not (dataclasses.is_dataclass(params) and issubclass(params, self.params)):
            raise TypeError(
                f"{cls.__name__}.Params must be a dataclass subclass of {self.params.__name__}"
            )
        if params().name != name:
            raise TypeError(f"{cls.__name__}.Params.name must default to {name!r}")
        if name in self.classes and self.classes[name] is not cls and not replace:
            raise ValueError(
                f"a {self.kind} named {name!r} exists; pass replace=True to replace it"
            )
        self.classes[name] = cls
        return cls

    def load_plugins(self) -> None:
        """Register the classes other packages declare under the entry-point group (once; a
        plugin that fails to load is reported, not fatal)."""
        if self.plugins_loaded:
            return
        self.plugins_loaded = True
        for entry in metadata.entry_points(group=self.group):
            try:
                self.register(entry.load())
            except Exception as exc:  # a broken plugin must not break the simulator
                warnings.warn(f"ashlsim: {self.kind} plugin {entry.name!r} not loaded: {exc}",
                              stacklevel=3)  # fmt: skip

    def everything(self) -> dict[str, type]:
        """Every class a scenario can name, plugins included."""
        self.load_plugins()
        return dict(self.classes)

    def added(self) -> dict[str, type]:
        """The classes registered beyond the built-ins."""
        return {k: v for k, v in self.classes.items() if k not in self.builtin}

    def lookup(self, name, path: str) -> type:
        """The class ``name`` names (plugins loaded if needed), or a ScenarioError at ``path``."""
        if isinstance(name, str) and name not in self.classes:
            self.load_plugins()
        if not isinstance(name, str) or name not in self.classes:
            raise ScenarioError(path, name, f"one of {', '.join(self.classes)}")
        return self.classes[name]
