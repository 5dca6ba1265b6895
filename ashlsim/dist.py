"""Distributions of per-worker quantities: small frozen objects with one ``sample(rng)``.

Every scenario field that takes a speed, bandwidth, latency or jitter takes one of:
a number (``Constant``), a spec dict such as ``{dist: lognormal, mean: 2000, sigma: 0.6}``,
or a list with one value per worker (``PerWorker``). ``parse_value`` turns any of these into a
``Distribution``; ``to_spec`` turns it back, so a scenario round-trips to YAML.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ScenarioError
from .yamlio import refuse_special


class Distribution:
    """A positive random quantity; ``sample(rng, size)`` draws from a ``numpy.random.Generator``."""

    kind: str = ""

    def sample(self, rng: np.random.Generator, size: int | None = None):
        raise NotImplementedError

    @property
    def mean(self) -> float:
        raise NotImplementedError

    def per_worker(self, rng: np.random.Generator, workers: int) -> np.ndarray:
        """One value per worker, drawn once (``PerWorker`` returns its list as given)."""
        return np.asarray(self.sample(rng, workers), dtype=float)

    # the scenario's key for each field (``{dist: lognormal, mean: ..., sigma: ...}``)
    keys: dict[str, str] = {}

    def to_spec(self):
        spec = {"dist": self.kind}
        spec.update({key: _plain(getattr(self, field)) for key, field in self.keys.items()})
        return spec


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Constant(Distribution):
    """Always ``value``."""

    value: float
    kind = "constant"

    def sample(self, rng, size=None):
        return self.value if size is None else np.full(size, self.value, dtype=float)

    @property
    def mean(self):
        return self.value

    def to_spec(self):
        return _plain(self.value)


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on ``[low, high]``."""

    low: float
    high: float
    kind = "uniform"
    keys = {"low": "low", "high": "high"}

    def sample(self, rng, size=None):
        return rng.uniform(self.low, self.high, size)

    @property
    def mean(self):
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential with the given ``mean``."""

    mean_value: float
    kind = "exponential"
    keys = {"mean": "mean_value"}

    def sample(self, rng, size=None):
        return rng.exponential(self.mean_value, size)

    @property
    def mean(self):
        return self.mean_value


@dataclass(frozen=True)
class Normal(Distribution):
    """Normal(``mean``, ``std``) truncated to values > 0 (resampled, not clipped)."""

    mean_value: float
    std: float
    kind = "normal"
    keys = {"mean": "mean_value", "std": "std"}

    def sample(self, rng, size=None):
        n = 1 if size is None else size
        out = rng.normal(self.mean_value, self.std, n)
        for _ in range(1000):
            bad = out <= 0
            if not bad.any():
                break
            out[bad] = rng.normal(self.mean_value, self.std, int(bad.sum()))
        else:  # pragma: no cover - needs mean << 0
            raise ValueError("normal distribution has almost no mass above 0")
        return float(out[0]) if size is None else out

    @property
    def mean(self):  # of the untruncated normal; close when mean >> std
        return self.mean_value


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal whose own mean is ``mean`` and whose log has standard deviation ``sigma``."""

    mean_value: float
    sigma: float
    kind = "lognormal"
    keys = {"mean": "mean_value", "sigma": "sigma"}

    def sample(self, rng, size=None):
        mu = math.log(self.mean_value) - self.sigma**2 / 2
        return rng.lognormal(mu, self.sigma, size)

    @property
    def mean(self):
        return self.mean_value


@dataclass(frozen=True)
class Gamma(Distribution):
    """Gamma with the given ``mean`` and ``shape`` (coefficient of variation 1/sqrt(shape))."""

    mean_value: float
    shape: float
    kind = "gamma"
    keys = {"mean": "mean_value", "shape": "shape"}

    def sample(self, rng, size=None):
        return rng.gamma(self.shape, self.mean_value / self.shape, size)

    @property
    def mean(self):
        return self.mean_value


@dataclass(frozen=True)
class Empirical(Distribution):
    """Resamples uniformly from observed ``values`` (e.g. a column of a measured trace)."""

    values: tuple
    source: str | None = None  # "path.csv:column" when read from a trace
    kind = "empirical"

    def sample(self, rng, size=None):
        return rng.choice(np.asarray(self.values, dtype=float), size)

    @property
    def mean(self):
        return float(np.mean(self.values))

    def to_spec(self):
        if self.source is not None:
            path, column = self.source.rsplit(":", 1)
            return {"dist": self.kind, "path": path, "column": column}
        return {"dist": self.kind, "values": _plain(self.values)}


@dataclass(frozen=True)
class PerWorker(Distribution):
    """One given value per worker, for writing down a concrete cluster."""

    values: tuple
    kind = "per_worker"

    def sample(self, rng, size=None):
        raise TypeError("a per-worker list is indexed by worker, not sampled")

    def per_worker(self, rng, workers):
        return np.asarray(self.values, dtype=float)

    @property
    def mean(self):
        return float(np.mean(self.values))

    def to_spec(self):
        return _plain(self.values)


# name -> (class, {spec key: constructor argument}): every key is required
_SPECS = {
    cls.kind: (cls, {"value": "value"} if cls is Constant else cls.keys)
    for cls in (Constant, Uniform, Exponential, Normal, LogNormal, Gamma)
}
DIST_NAMES = (*_SPECS, "empirical")


def _number(field: str, value, *, positive: bool, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(field, value, "a number")
    value = float(value)
    if not math.isfinite(value):
        raise ScenarioError(field, value, "a finite number")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise ScenarioError(field, value, "a number >= 0" if allow_zero else "a number > 0")
    return value


def parse_value(field: str, spec, *, allow_zero: bool = False) -> Distribution:
    """Turn a scenario value (number, dist spec or per-worker list) into a Distribution.

    Raises ScenarioError naming ``field`` on anything else, or on non-positive numbers
    (zero too unless ``allow_zero``, as for a latency).
    """
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ScenarioError(field, spec, "a non-empty list with one value per worker")
        values = tuple(
            _number(f"{field}[{i}]", v, positive=True, allow_zero=allow_zero)
            for i, v in enumerate(spec)
        )
        return PerWorker(values)
    if isinstance(spec, dict):
        return _parse_dist(field, dict(spec), allow_zero)
    return Constant(_number(field, spec, positive=True, allow_zero=allow_zero))


def _parse_dist(field: str, spec: dict, allow_zero: bool) -> Distribution:
    """A ``{dist: NAME, ...}`` spec (``spec`` a copy the function may change)."""
    name = spec.pop("dist", None)
    if not isinstance(name, str):
        raise ScenarioError(f"{field}.dist", name, f"one of {', '.join(DIST_NAMES)}")
    if name == "empirical":
        return _parse_empirical(field, spec, allow_zero)
    if name not in _SPECS:
        raise ScenarioError(f"{field}.dist", name, f"one of {', '.join(DIST_NAMES)}")
    cls, keys = _SPECS[name]
    unknown = set(spec) - set(keys)
    if unknown:
        key = sorted(unknown)[0]
        raise ScenarioError(f"{field}.{key}", spec[key], f"keys {sorted(keys)} for {name}")
    missing = set(keys) - set(spec)
    if missing:
        raise ScenarioError(f"{field}.{sorted(missing)[0]}", None, f"a number ({name} needs it)")
    kwargs = {}
    for key, arg in keys.items():
        lax = allow_zero or key in ("low", "sigma", "std")  # spreads and lower ends may be 0
        kwargs[arg] = _number(f"{field}.{key}", spec[key], positive=True, allow_zero=lax)
    if name == "uniform" and kwargs["high"] < kwargs["low"]:
        raise ScenarioError(f"{field}.high", kwargs["high"], f"a number >= low ({kwargs['low']})")
    return cls(**kwargs)


def _parse_empirical(field, spec, allow_zero):
    allowed = {"values"} if "values" in spec else {"path", "column"}
    unknown = set(spec) - allowed
    if unknown:
        key = sorted(unknown)[0]
        raise ScenarioError(
            f"{field}.{key}", spec[key], "empirical with `values: [...]` or `path:` and `column:`"
        )
    if "values" in spec:
        if not isinstance(spec["values"], (list, tuple)) or not spec["values"]:
            raise ScenarioError(f"{field}.values", spec["values"], "a non-empty list of numbers")
        values = parse_value(f"{field}.values", list(spec["values"]), allow_zero=allow_zero)
        return Empirical(values.values)
    path, column = spec.get("path"), spec.get("column")
    if not isinstance(path, str) or not isinstance(column, str):
        raise ScenarioError(field, spec, "empirical with `values: [...]` or `path:` and `column:`")
    values = _read_trace(field, path, column)
    checked = parse_value(f"{field}.column", values, allow_zero=allow_zero)
    return Empirical(checked.values, source=f"{path}:{column}")


TRACE_LIMIT = 256 << 20  # bytes of a trace file read; a longer one is refused


def _read_trace(field: str, path: str, column: str) -> list[float]:
    """The numbers in ``column`` of the CSV file ``path`` (blank cells skipped)."""
    return read_columns(field, path, [column], where=("path", "column"))[column]


def read_columns(field: str, path: str, columns: list[str], where=None) -> dict[str, list]:
    """The numbers in ``columns`` of the CSV file ``path``, rows with a blank cell in any of
    them skipped: a regular file of at most ``TRACE_LIMIT`` bytes (a pipe or a device would
    block or never end). ``where``: the keys errors name for the file and for a column
    (default: ``field`` itself and ``field``.column)."""
    file_field, column_field = (
        (f"{field}.{where[0]}", f"{field}.{where[1]}") if where else (field, f"{field}.column")
    )
    rows = _read_rows(file_field, path)
    missing = [c for c in columns if not rows or c not in rows[0]]
    if missing:
        have = list(rows[0]) if rows else []
        raise ScenarioError(column_field, missing[0], f"a column of {path}: {have}")
    out: dict[str, list] = {c: [] for c in columns}
    for line, row in enumerate(rows, start=2):
        if any(row[c] in ("", None) for c in out):
            continue
        for c in out:  # (each column once, however often it is named)
            try:
                out[c].append(float(row[c]))
            except ValueError:
                raise ScenarioError(
                    column_field, f"{c} (line {line})", f"numbers, not {row[c]!r}"
                ) from None
    if not out[columns[0]]:
        raise ScenarioError(column_field, columns, f"a column of {path} with numbers")
    return out


def _read_rows(field: str, path: str) -> list[dict]:
    try:
        file = Path(path)
        refuse_special(file, field, "CSV")
        if file.exists() and file.stat().st_size > TRACE_LIMIT:
            raise ScenarioError(field, path, f"a CSV file of at most {TRACE_LIMIT >> 20} MB")
        with open(file, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except ScenarioError:
        raise
    except OSError as exc:
        raise ScenarioError(field, path, f"a readable CSV file ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error, ValueError):
        raise ScenarioError(field, path, "a CSV text file") from None
