"""Figures from DataFrames (never from simulator objects)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter


def scheme_color(label, index: int = 0) -> str:
    """One colour per scheme in every figure: the scheme a label names (its name before any
    parenthesis: "name(key=value)" takes the scheme's) has the colour of its place in the registry
    (matplotlib's cycle, so the built-in schemes keep theirs and a plug-in gets the next);
    a label that names no scheme takes the ``index``-th."""
    from .strategies import STRATEGIES

    name = str(label).split("(")[0].strip()
    order = list(STRATEGIES)
    return f"C{(order.index(name) if name in order else index) % 10}"


def label_colors(labels: list) -> dict:
    """Each label's colour in one figure: its scheme's (``scheme_color``), or, where an
    earlier label of the figure has that one (two labels of one scheme with different
    parameters), the next of matplotlib's cycle that no other has."""
    colors: dict = {}
    for i, label in enumerate(labels):
        index = int(scheme_color(label, i)[1:])
        while f"C{index % 10}" in colors.values() and len(colors) < 10:
            index += 1
        colors[label] = f"C{index % 10}"
    return colors


def _log_y(ax, values) -> None:
    """A log y axis labelled 0.2, 0.5, 2 rather than 2x10^-1, if ``values`` has anything to
    put on one (a timing-only run's loss is all NaN: a log axis of nothing cannot be drawn)."""
    if not (np.asarray(values, dtype=float) > 0).any():
        return
    ax.set_yscale("log")

    def label(v, _):
        leading = f"{v:e}"[0]  # first significant digit
        return f"{v:g}" if leading in "125" else ""

    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(label))


def learning_curve(
    history: pd.DataFrame,
    path: str | Path | None = None,
    *,
    title: str = "",
    target: float | None = None,
    stage_changes: pd.DataFrame | None = None,
    faults: pd.DataFrame | None = None,
    axes=None,
    clock: str = "simulated",
    label: str | None = None,
):
    """Accuracy and training loss against simulated seconds for one run (``clock``:
    "measured" for an emulation; a timing-only run: updates and MB moved instead, it has no
    loss), in the colour of the scheme ``label`` names (with a legend: several calls may draw
    several runs on one pair of ``axes``); stage changes as dashed lines, injected faults as
    shaded spans labelled with the worker. Draws on ``axes`` (a pair) if given; returns the
    figure (or writes ``path``)."""
    if axes is None:
        fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    else:
        ax_acc, ax_loss = axes
        fig = ax_acc.figure
    color = scheme_color(label) if label is not None else "C0"
    trained = bool(history["loss"].notna().any())
    if trained:
        ax_acc.plot(history["time_s"], history["accuracy"], color=color, label=label)
        ax_loss.plot(history["time_s"], history["loss"], color=color, label=label)
    else:  # timing only: what it has is progress, updates and bytes (down dashed)
        name = f"{label}: " if label else ""
        ax_acc.plot(history["time_s"], history["updates"], color=color, label=label)
        ax_loss.plot(history["time_s"], history["bytes_up"] / 1e6, color=color, label=f"{name}up")
        ax_loss.plot(history["time_s"], history["bytes_down"] / 1e6, color=color, ls="--",
                     label=f"{name}down")  # fmt: skip
        ax_loss.legend(loc="upper left")
    if label is not None:
        ax_acc.legend(loc="lower right")
    if target is not None:
        ax_acc.axhline(target, color="grey", ls=":", lw=1, label=f"target {target:g}")
        ax_acc.legend(loc="lower right")
    _mark_stage_changes((ax_acc, ax_loss), stage_changes)
    end = float(history["time_s"].max()) if len(history) else 0.0
    _mark_faults((ax_acc, ax_loss), faults, end)
    if trained:
        ax_acc.set(xlabel=f"{clock} time (s)", ylabel="test accuracy", ylim=(0, 1.0))
        ax_loss.set(xlabel=f"{clock} time (s)", ylabel="training loss")
        _log_y(ax_loss, history["loss"])
    else:
        ax_acc.set(xlabel=f"{clock} time (s)", ylabel="updates applied (timing only)")
        ax_loss.set(xlabel=f"{clock} time (s)", ylabel="MB moved (timing only)")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _mark_stage_changes(axes, changes: pd.DataFrame | None) -> None:
    """Each stage change as a dashed line on ``axes``, named on the first."""
    changes = changes if changes is not None else pd.DataFrame()
    for i, (_, change) in enumerate(changes.iterrows()):
        for ax in axes:  # (black and greys: colours mean schemes)
            ax.axvline(change["time_s"], color="black", ls="--", lw=1)
        axes[0].annotate(
            f" {change['from_stage']} → {change['to_stage']}",
            (change["time_s"], 0.05 + 0.07 * (i % 3)),  # staggered: changes can be close
            xycoords=("data", "axes fraction"),
            color="black",
        )


def _mark_faults(axes, faults: pd.DataFrame | None, end: float) -> None:
    """Each injected fault as a shaded span up to ``end`` on ``axes``, named on the first."""
    colors = {"crash": "0.15", "slowdown": "0.45", "link_down": "0.65"}  # greys, not schemes
    for i, (_, fault) in enumerate((faults if faults is not None else pd.DataFrame()).iterrows()):
        stop = min(float(fault["end_s"]), end)
        color = colors.get(fault["kind"], "grey")
        for ax in axes:
            ax.axvspan(fault["start_s"], max(stop, fault["start_s"]), color=color, alpha=0.12)
            ax.axvline(fault["start_s"], color=color, lw=1)
        axes[0].annotate(
            f" w{fault['worker']} {fault['kind']}",
            (fault["start_s"], 0.95 - 0.06 * (i % 4)),
            xycoords=("data", "axes fraction"),
            color=color,
            fontsize=8,
        )


def compare_curves(
    history: pd.DataFrame,
    path: str | Path | None = None,
    *,
    by: str = "strategy",
    metric: str = "accuracy",
    target: float | None = None,
    target_times: dict | None = None,
    title: str = "",
    grid_s: int = 200,
    xscale: str = "linear",
    ax=None,
):
    """One colour per ``by`` value (its scheme's colour) of ``metric`` against simulated time,
    as steps (the model changes only when the PS applies something, and is seen at each
    evaluation). With several seeds each seed is a thin line that ends where its run stopped;
    the thick line is their median and the band their range (min-max), a stopped seed held at
    its last value, drawn while at least half the seeds still run. ``target_times`` (label ->
    seconds, e.g. each scheme's median time to target) are marked on the target line.
    ``xscale`` ``log`` spreads out the first seconds. Draws on ``ax`` if given; returns the
    figure (or writes ``path``)."""
    fig, ax = _axes(ax, (7.5, 4.8))
    n_seeds = history["seed"].nunique() if "seed" in history else 1
    positive = history.loc[history["time_s"] > 0, "time_s"]
    colors = label_colors(list(dict.fromkeys(history[by])))
    for label, group in history.groupby(by, sort=False):
        color = colors[label]
        if "seed" not in group or group["seed"].nunique() == 1:
            ax.step(group["time_s"], group[metric], where="post", color=color, label=str(label))
            continue
        _seeds_and_median(
            ax, group, metric, color, str(label), _time_grid(group, xscale, positive, grid_s)
        )
    _mark_target(ax, target if metric == "accuracy" else None, target_times, colors)
    ylabel = {"accuracy": "test accuracy", "loss": "training loss", "updates": "pushes applied"}
    ylabel = ylabel.get(metric, metric)
    ax.set(xlabel="simulated time (s)" + (", log scale" if xscale == "log" else ""), ylabel=ylabel)
    if xscale == "log":
        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    if metric == "loss":
        _log_y(ax, history[metric])
    ax.grid(alpha=0.3, which="both" if xscale == "log" else "major")
    ax.legend(fontsize=8)
    if n_seeds > 1:
        how = f"{n_seeds} seeds: each (thin), their median (thick) and range (band)"
        title = f"{title}\n{how}" if title else how
    if title:
        ax.set_title(title, fontsize=10)
    return _finish(fig, path)


def _time_grid(group: pd.DataFrame, xscale: str, positive: pd.Series, grid_s: int):
    """The times the median is drawn at: up to the median of the seeds' stops (at least half
    still run there)."""
    end = float(group.groupby("seed")["time_s"].max().median())
    if xscale == "log" and len(positive):
        return np.geomspace(min(positive.min(), end), end, grid_s)
    return np.linspace(0.0, end, grid_s + 1)


def _seeds_and_median(ax, group, metric, color, label, grid) -> None:
    """Each seed of ``group`` as a thin step line to its stop; on ``grid``, their median
    (thick) and range (band), a stopped seed held at its last value."""
    curves = []
    for _, run in group.groupby("seed"):
        run = run.sort_values("time_s")
        ax.step(run["time_s"], run[metric], where="post", color=color, lw=0.6, alpha=0.35)
        held = pd.Series(run[metric].to_numpy(), index=run["time_s"].to_numpy())
        curves.append(held.reindex(grid, method="ffill").to_numpy())
    curves = np.asarray(curves, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (before a seed's first evaluation)
        low, mid, high = np.nanmin(curves, 0), np.nanmedian(curves, 0), np.nanmax(curves, 0)
    ax.fill_between(grid, low, high, step="post", color=color, alpha=0.12, lw=0)
    ax.step(grid, mid, where="post", color=color, lw=2, label=label)


def _mark_target(ax, target, target_times, colors: dict) -> None:
    """The target line, and each label's time to target on it (a triangle of its colour)."""
    if target is None:
        return
    ax.axhline(target, color="grey", ls=":", lw=1, label=f"target {target:g}")
    for label, color in colors.items():
        t = (target_times or {}).get(label)
        if t is not None and np.isfinite(t):
            ax.plot([t], [target], marker="v", ms=9, color=color, mec="black",
                    mew=0.6, zorder=5, ls="none")  # fmt: skip
    if target_times:
        ax.plot([], [], marker="v", ms=7, color="white", mec="black", ls="none",
                label="median time to target")  # fmt: skip


def _axes(ax, size):
    """``(figure, axes)``: the given axes' figure, or a new figure."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, constrained_layout=True)
    return fig, ax


def _finish(fig, path):
    if path is None:
        return fig
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def sweep_summary(summary: pd.DataFrame, axis: str, path: Path, name: str = "sweep") -> None:
    """A sweep's ``summary.png``: the median time to target against the grid axis ``axis``, one
    line per strategy, with the distribution-free interval of the median as a band (its
    coverage in the label: with 3 seeds it is the min-max, 75 %). Points of different schemes
    at one grid value are set a little apart. A point where some seeds never reached the
    target is drawn hollow with the count of those that did; a band that a never-reaching seed
    would stretch past the budget stops at it, marked by a caret (censored); a point where most
    never did is left out of the line and marked at the top. A geometric grid gets a log axis.
    Timing only: pushes applied per simulated second instead; no seed reached the target: the
    final accuracy."""
    from .stats import interval_rank
    from .sweep import _hashable, axis_label

    reached_any = summary["time_to_target_s"].notna().any()
    throughput = not reached_any and summary["final_accuracy"].isna().all()
    mode = "throughput" if throughput else ("time" if reached_any else "accuracy")
    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    summary = summary.assign(**{axis: summary[axis].map(_hashable)})
    numeric = pd.api.types.is_numeric_dtype(summary[axis])
    budget = float(summary["elapsed_s"].max()) if "elapsed_s" in summary else math.inf
    groups = list(summary.groupby("strategy", sort=False))
    for i, (strategy, group) in enumerate(groups):
        stats = _sweep_points(group, axis, mode, numeric)
        if mode == "time":
            stats["censored"] = ~np.isfinite(stats["high"]) | (stats["high"] > budget)
            stats["high"] = stats["high"].clip(upper=budget)
        if numeric:  # schemes a little apart at one grid value: none hides another
            stats["x"] = _spread(stats["x"], summary[axis], i - (len(groups) - 1) / 2)
        _draw_sweep_line(ax, stats, strategy, scheme_color(strategy, i))
    seeds = int(summary.groupby(["strategy", axis]).size().min())
    coverage = interval_rank(seeds)[1]
    band = "min-max" if interval_rank(seeds)[0] == 1 else "interval"
    ylabel = {
        "throughput": f"pushes per simulated s: median, {band} ({coverage:.0%})",
        "time": f"time to target (simulated s, log): median, {band} ({coverage:.0%})",
        "accuracy": "final test accuracy: median, min-max",
    }[mode]
    ax.set(xlabel=axis_label(axis), ylabel=ylabel)
    if reached_any:
        ax.set_yscale("log")
    if numeric and _geometric(summary[axis]):
        ax.set_xscale("log")
        ax.set_xticks(np.unique(summary[axis].to_numpy(float)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    what = {"throughput": "throughput", "time": "time to target", "accuracy": "final accuracy"}
    note = (
        ""
        if throughput
        else "\nhollow: k/n seeds reached the target; ^: a seed never did (censored)"
    )
    ax.set_title(f"{name}: {what[mode]} against {axis}, {seeds} seeds{note}", fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _spread(x: pd.Series, grid: pd.Series, k: float) -> pd.Series:
    """``x`` moved by ``k`` steps of 1 % of the grid's spacing (a factor on a geometric grid)."""
    values = np.unique(grid.to_numpy(float))
    if _geometric(grid):
        return x * (values[1] / values[0]) ** (0.03 * k)
    step = np.min(np.diff(values)) if len(values) > 1 else 1.0
    return x + 0.03 * k * step


def _geometric(values: pd.Series) -> bool:
    """Whether a grid's values (3 or more, positive) grow by one factor each step."""
    grid = np.unique(values.to_numpy(float))
    if len(grid) < 3 or (grid <= 0).any():
        return False
    ratios = grid[1:] / grid[:-1]
    return bool(np.allclose(ratios, ratios[0], rtol=0.01) and ratios[0] > 1.5)


def _sweep_points(group: pd.DataFrame, axis: str, mode: str, numeric: bool) -> pd.DataFrame:
    """One row per grid value of one strategy: x, median, low, high, runs that reached, runs."""
    from .stats import median_interval, pushes_per_s

    rows = []
    for value, runs in group.groupby(axis, sort=False):
        if mode == "throughput":
            metric = pushes_per_s(runs)
            med, low, high = median_interval(list(metric))
        elif mode == "time":
            metric = runs["time_to_target_s"]
            med, low, high = median_interval(list(metric))
        else:
            metric = runs["final_accuracy"]
            med, low, high = metric.median(), metric.min(), metric.max()
        x = value if numeric else str(value)
        rows.append((x, med, low, high, int(metric.notna().sum()), len(runs)))
    return pd.DataFrame(rows, columns=["x", "median", "low", "high", "reached", "runs"])


def _draw_sweep_line(ax, stats: pd.DataFrame, strategy: str, color) -> None:
    finite = stats[np.isfinite(stats["median"])]
    ax.plot(finite["x"], finite["median"], marker="o", color=color, label=strategy)
    ax.fill_between(finite["x"], finite["low"], finite["high"], color=color, alpha=0.12)
    for row in stats.itertuples():
        if row.reached < row.runs and np.isfinite(row.median):
            ax.plot([row.x], [row.median], "o", mfc="white", color=color)
            ax.annotate(f"{row.reached}/{row.runs}", (row.x, row.median), fontsize=7,
                        textcoords="offset points", xytext=(4, 4), color=color)  # fmt: skip
        elif not np.isfinite(row.median):
            ax.annotate(f"{strategy}: {row.reached}/{row.runs} reached", (row.x, 1.0),
                        xycoords=("data", "axes fraction"), fontsize=7, color=color,
                        rotation=90, va="top")  # fmt: skip
        if getattr(row, "censored", False) and np.isfinite(row.median):
            ax.plot([row.x], [row.high], "^", color=color, ms=5)
