"""Frozen-dataclass configuration sections that parse and validate themselves.

A section is a frozen dataclass whose fields carry a parser in their metadata (``spec(...)``).
``parse_section(cls, data, path)`` checks keys and values, naming the field path in every error;
``dump_section`` turns a section back into plain data for YAML.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from .dist import Distribution, parse_value
from .errors import ScenarioError

Parser = Callable[[str, object], object]


def spec(default, parse: Parser, doc: str = ""):
    """A dataclass field with a parser (and a one-line description with its unit)."""
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple or a section factory for mutable defaults")
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return dataclasses.field(
            default_factory=lambda: default, metadata={"parse": parse, "doc": doc}
        )
    return dataclasses.field(default=default, metadata={"parse": parse, "doc": doc})


def parse_section(cls, data, path: str):
    """Build section ``cls`` from a mapping, rejecting unknown keys and bad values."""
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ScenarioError(path, data, f"a mapping with keys {field_names(cls)}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            named = getattr(cls, "CATALOGUE_KEYS", ())  # resolved before parsing, if used
            also = f" (or the catalogue's {', '.join(named)}: docs/CATALOGUE.md)" if named else ""
            raise ScenarioError(where, data[key], f"one of the keys {field_names(cls)}{also}")
    kwargs = {}
    for name, value in data.items():
        where = f"{path}.{name}" if path else name
        kwargs[name] = known[name].metadata["parse"](where, value)
    return cls(**kwargs)


def field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def dump(value):
    """Plain data (dicts, lists, numbers, strings) for a section or value."""
    if isinstance(value, Distribution):
        return value.to_spec()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dump_section(value)
    if isinstance(value, tuple):
        return [dump(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


def dump_section(section) -> dict:
    return {f.name: dump(getattr(section, f.name)) for f in dataclasses.fields(section)}


# ---- parsers ---------------------------------------------------------------------------------


def integer(minimum: int | None = None, maximum: int | None = None, optional=False) -> Parser:
    def parse(path, value):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ScenarioError(path, value, _bounds("an integer", minimum, maximum))
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ScenarioError(path, value, _bounds("an integer", minimum, maximum))
        return value

    parse.allowed = _bounds("an integer", minimum, maximum) + (" or null" if optional else "")
    return parse


def real(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_min: bool = False,
    optional: bool = False,
    allow_inf: bool = False,
) -> Parser:
    """A float in range; ``optional`` accepts null (None); ``allow_inf`` maps null/inf to inf."""

    def parse(path, value):
        if value is None and optional:
            return None
        if allow_inf and (value is None or value in ("inf", "infinity", "unbounded")):
            return math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(path, value, _describe())
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise ScenarioError(path, value, _describe())
        low_bad = minimum is not None and (value < minimum or (exclusive_min and value == minimum))
        if low_bad or (maximum is not None and value > maximum):
            raise ScenarioError(path, value, _describe())
        return value

    def _describe():
        low = "" if minimum is None else (f"> {minimum}" if exclusive_min else f">= {minimum}")
        high = "" if maximum is None else f"<= {maximum}"
        text = "a number " + " and ".join(p for p in (low, high) if p)
        if optional:
            text += " or null"
        if allow_inf:
            text += " (null or inf for unbounded)"
        return text.strip()

    parse.allowed = _describe()
    return parse


def boolean(path, value):
    if not isinstance(value, bool):
        raise ScenarioError(path, value, "true or false")
    return value


boolean.allowed = "true or false"


def choice(*options: str) -> Parser:
    def parse(path, value):
        if value not in options:
            raise ScenarioError(path, value, f"one of {', '.join(options)}")
        return value

    parse.allowed = f"one of {', '.join(options)}"
    return parse


def text(path, value):
    if not isinstance(value, str):
        raise ScenarioError(path, value, "a string")
    return value


def text_or_none(path, value):
    """A string, or null."""
    return None if value is None else text(path, value)


def text_tuple(path, value):
    """A list of strings, or null."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise ScenarioError(path, value, "a non-empty list of names")
    return tuple(text(f"{path}[{i}]", v) for i, v in enumerate(value))


def int_tuple(minimum: int = 1) -> Parser:
    def parse(path, value):
        if not isinstance(value, (list, tuple)):
            raise ScenarioError(path, value, f"a list of integers >= {minimum}")
        item = integer(minimum)
        return tuple(item(f"{path}[{i}]", v) for i, v in enumerate(value))

    return parse


def real_tuple(minimum: float = 0.0, optional=False) -> Parser:
    def parse(path, value):
        if value is None and optional:
            return None
        if not isinstance(value, (list, tuple)) or not value:
            raise ScenarioError(path, value, "a non-empty list of numbers")
        item = real(minimum, exclusive_min=True)
        return tuple(item(f"{path}[{i}]", v) for i, v in enumerate(value))

    return parse


def value(allow_zero: bool = False, optional: bool = False) -> Parser:
    """A number, a distribution spec or a per-worker list (``dist.parse_value``)."""

    def parse(path, raw):
        if raw is None and optional:
            return None
        return parse_value(path, raw, allow_zero=allow_zero)

    return parse


def bandwidth(base: Parser) -> Parser:
    """What ``base`` takes, or a bandwidth that changes over time (``{series: FILE, ...}``:
    ``ashlsim.series``)."""

    def parse(path, raw):
        from .series import Series, parse_series

        if isinstance(raw, Series):
            return raw
        if isinstance(raw, dict) and "series" in raw:
            return parse_series(path, raw)
        return base(path, raw)

    return parse


def section(cls) -> Parser:
    return lambda path, data: parse_section(cls, data, path)


def optional_section(cls) -> Parser:
    return lambda path, data: None if data is None else parse_section(cls, data, path)


def _bounds(kind, minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    return kind if maximum is None else f"{kind} <= {maximum}"
