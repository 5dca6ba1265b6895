"""The statistics of a comparison: medians with distribution-free intervals, per-scheme
summaries, and the leading group."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

METRICS = ["time_to_target_s", "final_accuracy", "bytes_up", "bytes_down", "mean_idle_share"]


LEVEL = 0.95  # confidence of the intervals every summary reports


def interval_rank(n: int, level: float = LEVEL) -> tuple[int, float]:
    """The order statistics ``(k, coverage)`` of the distribution-free interval for a median
    of n samples: ``[X_(k), X_(n-k+1)]`` covers the true median with probability
    ``1 - 2 P(Binomial(n, 1/2) <= k - 1)``; k is the largest with coverage >= ``level``. With
    too few samples for ``level`` (n <= 5 at 95 %) it is ``(1, coverage of [min, max])``."""
    best = (1, 1.0 - 2.0 * 0.5**n)
    for k in range(1, n // 2 + 1):
        coverage = 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k)) / 2.0**n
        if coverage < level:
            break
        best = (k, coverage)
    return best


def median_interval(times, level: float = LEVEL):
    """Median of ``times`` and its distribution-free interval (``interval_rank``); a run that
    never reached the target (None, nan or inf) counts as never, inf, so it sorts last and
    censoring needs no special case. Returns (median, low, high)."""
    values = np.sort([math.inf if v is None or math.isnan(v) else v for v in times])
    if values.size == 0:
        return math.nan, math.nan, math.nan
    k, _ = interval_rank(values.size, level)
    return float(np.median(values)), float(values[k - 1]), float(values[values.size - k])


def pushes_per_s(runs: pd.DataFrame) -> pd.Series:
    """Each run's pushes applied per simulated second."""
    return runs["updates"] / runs["elapsed_s"]


def summarize(table: pd.DataFrame, within: list[str] | None = None) -> pd.DataFrame:
    """One row per strategy (in the order given): how many seeds reached the target, the median
    time to target with its distribution-free 95 % interval (a run that never reached it counts
    as never, inf, not as its last time; ``interval_coverage`` is the interval's actual coverage,
    below 0.95 with 5 seeds or fewer), means and standard deviations of the other metrics, and
    ``overlaps_best``: whether the interval overlaps that of the scheme with the best median
    (False: that scheme is significantly faster). ``within``: columns of a sweep's grid; then one
    row per grid point and strategy, compared within its grid point."""
    if within:
        parts = [
            _summarize_one(group).assign(**dict(zip(within, key, strict=True)))
            for key, group in table.groupby(within, sort=False)
        ]
        out = pd.concat(parts, ignore_index=True)
        return out[[*within, *[c for c in out.columns if c not in within]]]
    return _summarize_one(table)


def _summarize_one(table: pd.DataFrame) -> pd.DataFrame:
    order = list(dict.fromkeys(table["strategy"]))
    grouped = table.groupby("strategy", sort=False)
    out = grouped[METRICS].mean().add_suffix("_mean")
    out = out.join(grouped[METRICS].std(ddof=1).add_suffix("_std"))
    out["reached_target"] = grouped["time_to_target_s"].apply(lambda s: int(s.notna().sum()))
    out["runs"] = grouped.size()
    stats = grouped["time_to_target_s"].apply(lambda s: median_interval(list(s)))
    out["interval_coverage"] = [interval_rank(int(n))[1] for n in out["runs"]]
    out["time_to_target_s_median"] = [s[0] for s in stats.loc[out.index]]
    out["time_to_target_s_low"] = [s[1] for s in stats.loc[out.index]]
    out["time_to_target_s_high"] = [s[2] for s in stats.loc[out.index]]
    best = out["time_to_target_s_median"].idxmin() if len(out) else None
    if best is not None and math.isfinite(out.loc[best, "time_to_target_s_median"]):
        best_high = out.loc[best, "time_to_target_s_high"]
        out["overlaps_best"] = out["time_to_target_s_low"] <= best_high
    else:
        out["overlaps_best"] = True
    resolution = "time_to_target_resolution_s" in table.columns
    if resolution:  # the widest interval a crossing was located to (0: exact)
        out["time_to_target_resolution_s_max"] = grouped["time_to_target_resolution_s"].max()
    throughput = {"updates", "elapsed_s"} <= set(table.columns)
    if throughput:  # what a timing-only run ranks by
        rate = pushes_per_s(table).groupby(table["strategy"], sort=False)
        rates = rate.apply(lambda s: median_interval(list(s)))
        for i, part in enumerate(("median", "low", "high")):
            out[f"pushes_per_s_{part}"] = [r[i] for r in rates.loc[out.index]]
    columns = [
        "runs",
        "reached_target",
        "time_to_target_s_median",
        "time_to_target_s_low",
        "time_to_target_s_high",
        "interval_coverage",
        "overlaps_best",
    ]
    if resolution:
        columns.append("time_to_target_resolution_s_max")
    if throughput:
        columns += ["pushes_per_s_median", "pushes_per_s_low", "pushes_per_s_high"]
    columns += [f"{m}_{k}" for m in METRICS for k in ("mean", "std")]
    return out.loc[order, columns].reset_index()


def leading_group(summary: pd.DataFrame) -> tuple[str | None, set[str]]:
    """The fastest scheme by median time to target (None if none reached it in most seeds)
    and the schemes not significantly slower (just the fastest when too few seeds judge)."""
    reached = summary[np.isfinite(summary["time_to_target_s_median"])]
    if reached.empty:
        return None, set()
    best = reached.sort_values("time_to_target_s_median", kind="stable").iloc[0]["strategy"]
    if summary["interval_coverage"].min() < LEVEL:
        return best, {best}
    return best, set(reached.loc[reached["overlaps_best"], "strategy"]) | {best}
