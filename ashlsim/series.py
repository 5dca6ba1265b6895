"""Bandwidths that change over a run: a trace replayed in simulated time, as ns-3 and SimGrid
users replay theirs.

In a scenario, a link's bandwidth or the PS card's capacity may be a time series read from a
CSV file::

    uplink: {bandwidth: {series: traces/uplink.csv, column: bandwidth}}   # every worker's link
    downlink: {bandwidth: {series: traces/down.csv, column: [w0, w1, w2, w3]}}  # one each
    server: {ingress: {series: traces/card.csv, column: bytes_per_s, end: loop}}

The file has a time column (``time_column``, default ``time_s``; the first row at 0) and the
values (bytes/s, > 0) from each row's time until the next row's. ``end: hold`` (the default)
keeps the last value for the rest of the run; ``end: loop`` repeats the series with the last
row's time as its period (the last row then only marks where the period ends). A change acts
on the transfers in flight through the fluid model: each continues at its new share, so a
transfer finishes when the integral of its rate reaches its size. A relative path is taken
from the scenario file's folder.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dist import Distribution, read_columns
from .errors import ScenarioError

KEYS = ("series", "column", "time_column", "end")


@dataclass(frozen=True)
class Series(Distribution):
    """A bandwidth that changes over time: ``values[i]`` (one per column) from ``times[i]``
    on. As a scenario value it gives each worker its column's first value (one column: every
    worker the same); ``changes`` gives the rest in time order."""

    times: tuple
    values: tuple  # per row, a tuple of one value per column
    end: str
    path: str
    columns: tuple
    time_column: str = "time_s"
    kind = "series"

    def sample(self, rng, size=None):
        raise TypeError("a series changes over time; it is not sampled")

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def per_worker(self, rng, workers: int) -> np.ndarray:
        return self.row(0, workers)

    def row(self, i: int, workers: int) -> np.ndarray:
        """Row ``i`` as one value per worker (one column: the same for all)."""
        values = np.asarray(self.values[i], dtype=float)
        return np.repeat(values, workers) if len(values) == 1 else values

    def changes(self) -> Iterator[tuple[float, int]]:
        """``(time, row)`` of every change after the start, in order; with ``end: loop``,
        without end."""
        times = self.times
        if self.end == "hold":
            yield from ((times[i], i) for i in range(1, len(times)))
            return
        period = times[-1]
        for k in itertools.count():
            for i in range(len(times) - 1):
                if k or i:  # (row 0 of the first period is the start)
                    yield k * period + times[i], i

    def to_spec(self) -> dict:
        column = self.columns[0] if len(self.columns) == 1 else list(self.columns)
        return {"series": self.path, "column": column, "time_column": self.time_column,
                "end": self.end}  # fmt: skip


def parse_series(field: str, spec: dict) -> Series:
    """A ``{series: PATH, column: NAME or [NAMES], time_column:, end:}`` spec, checked."""
    unknown = set(spec) - set(KEYS)
    if unknown:
        key = sorted(unknown)[0]
        raise ScenarioError(f"{field}.{key}", spec[key], f"one of the keys {', '.join(KEYS)}")
    path, column = spec.get("series"), spec.get("column")
    time_column, end = spec.get("time_column", "time_s"), spec.get("end", "hold")
    columns = [column] if isinstance(column, str) else column
    if not isinstance(path, str) or not path:
        raise ScenarioError(f"{field}.series", path, "the path of a CSV file")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise ScenarioError(f"{field}.column", column, "a column name, or one per worker")
    if end not in ("hold", "loop"):
        raise ScenarioError(f"{field}.end", end, "hold or loop")
    if not isinstance(time_column, str):
        raise ScenarioError(f"{field}.time_column", time_column, "a column name")
    table = read_columns(f"{field}.series", path, [time_column, *columns])
    times = table[time_column]
    if times[0] != 0 or any(b <= a for a, b in itertools.pairwise(times)):
        raise ScenarioError(f"{field}.{time_column}", times[:4],
                            "times from 0, increasing (s)")  # fmt: skip
    rows = list(zip(*(table[c] for c in columns), strict=True))
    for t, row in zip(times, rows, strict=True):
        if not all(math.isfinite(v) and v > 0 for v in row):
            raise ScenarioError(f"{field}.column", f"{row} at {t} s", "bandwidths > 0 (bytes/s)")
    if end == "loop" and len(times) < 2:
        raise ScenarioError(f"{field}.end", end, "hold, or two rows or more to loop")
    return Series(tuple(times), tuple(rows), end, str(Path(path)), tuple(columns), time_column)


def replay(env, series: Series, workers: int, apply) -> Iterator:
    """A SimPy process: at each change of ``series``, ``apply(values)`` (one per worker)."""
    for at, i in series.changes():
        if at > env.now:
            yield env.timeout(at - env.now)
        apply(series.row(i, workers))
