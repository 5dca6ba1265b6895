"""What a comparison says and writes: the verdict in words, and its tables, figures and
scenarios in a folder."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .folders import claim
from .stats import (
    LEVEL,
    summarize,
)

TOO_FEW_SEEDS = (
    f"  Too few seeds for {LEVEL:.0%} intervals (6 or more are needed): no difference below "
    "is called significant."
)


def robustness_text(checks: list[dict]) -> str:
    """The checks as two sentences: what the verdict holds under, and what flips it."""
    if not checks:
        return ""
    held = [c["check"] for c in checks if c["holds"]]
    flips = [c for c in checks if not c["holds"]]
    lines = []
    if held:
        lines.append(f"  Holds under: {'; '.join(held)}.")
    for c in flips:
        to = c["fastest"] or "no scheme reaching the target"
        lines.append(f"  Flips to {to} under: {c['check']} (seeds {c['seeds']}).")
    return "\n".join(lines)


def throughput_verdict(summary: pd.DataFrame) -> str:
    """The verdict of a timing-only comparison (no model: no accuracy to reach): who applies
    the most pushes per simulated second, and whether each other scheme's 95 % interval of
    the median lies apart from it. A push is a different amount of progress per scheme (a
    round's N averaged pushes make one step): this ranks the cluster's throughput, not
    training."""
    ranked = summary.sort_values("pushes_per_s_median", ascending=False)
    best = ranked.iloc[0]
    few = summary["interval_coverage"].min() < LEVEL
    lines = [
        f"Most pushes per simulated second: {best['strategy']}, median "
        f"{best['pushes_per_s_median']:.4g} ({best['interval_coverage']:.0%} interval "
        f"{best['pushes_per_s_low']:.4g}-{best['pushes_per_s_high']:.4g})."
    ]
    if few:
        lines.append(TOO_FEW_SEEDS)
    for row in ranked.iloc[1:].itertuples():
        overlaps = row.pushes_per_s_high >= best["pushes_per_s_low"]
        sig = _judgement(few, overlaps, "significantly fewer")
        lines.append(f"  {row.strategy}: median {row.pushes_per_s_median:.4g}: {sig}.")
    lines.append(
        "  (timing only: a push is not the same progress in every scheme: a round's N averaged "
        "pushes make one step, a push of several local steps carries several)"
    )
    return "\n".join(lines)


def _judgement(few: bool, overlaps: bool, apart: str) -> str:
    """A scheme against the best: not judged with too few seeds, else not significant when
    the intervals overlap, else ``apart``."""
    if few:
        return "not judged"
    return "not significant" if overlaps else apart


def learning_problem(scenarios) -> str:
    """What the schemes learned, in a few words, from their scenarios (dicts): the model with
    its own parameters, on which data, e.g. ``mlp(hidden=[32]) on teacher (16 features, 3
    classes)``, so that no one reads one problem's verdict as another's."""
    found = []
    for scenario in scenarios:
        model = {k: v for k, v in scenario["model"].items() if k not in ("name", "dtype")}
        args = ", ".join(f"{k}={v}" for k, v in model.items() if v not in (None, {}, []))
        data = scenario["data"]
        name = Path(data["path"]).name if data["name"] == "file" else data["name"]
        if data["name"] in ("teacher", "synthetic"):
            name += f" ({data['n_features']} features, {data['n_classes']} classes)"
        model_text = f"{scenario['model']['name']}({args})" if args else scenario["model"]["name"]
        if f"{model_text} on {name}" not in found:
            found.append(f"{model_text} on {name}")
    return found[0] if len(found) == 1 else "; ".join(found)


def verdict(summary: pd.DataFrame, target: float | None = None, table=None) -> str:
    """One paragraph a user can act on: who reaches the target first, and whether the
    difference to each other scheme is significant (95 % intervals of the median apart); the
    times' resolution; with ``table`` (``compare``'s), under which changes the verdict holds
    and which flip it, and any tuned value at the edge of its grid."""
    reached = summary[np.isfinite(summary["time_to_target_s_median"])]
    what = f"{target:.0%} accuracy" if target else "the target"
    if table is not None and table.attrs.get("scenarios"):  # the answer is this problem's
        what += f" (learning {learning_problem(table.attrs['scenarios'].values())})"
    if reached.empty:
        return f"No scheme reached {what} in most seeds: run longer or lower the target."
    ranked = reached.sort_values("time_to_target_s_median")
    best = ranked.iloc[0]
    few = summary["interval_coverage"].min() < LEVEL
    lines = [
        f"Fastest to {what}: {best['strategy']}, median {best['time_to_target_s_median']:.3g} s "
        f"({best['interval_coverage']:.0%} interval {_fmt(best['time_to_target_s_low'])}-"
        f"{_fmt(best['time_to_target_s_high'])} s, {best['reached_target']}/{best['runs']} "
        "seeds reached it)."
    ]
    if few:
        lines.append(TOO_FEW_SEEDS)
    for row in summary.itertuples():
        if row.strategy == best["strategy"]:
            continue
        median = row.time_to_target_s_median
        where = f"median {_fmt(median)} s" if math.isfinite(median) else "did not reach it"
        sig = _judgement(few, row.overlaps_best, "significantly slower")
        lines.append(f"  {row.strategy}: {where} ({row.reached_target}/{row.runs}): {sig}.")
    lines.append(_resolution_text(summary))
    if table is not None:
        if table.attrs.get("robustness"):
            lines.append(robustness_text(table.attrs["robustness"]))
        if table.attrs.get("tuning_edges"):
            edges = "; ".join(table.attrs["tuning_edges"])
            lines.append(f"  Tuned at the edge of the grid (widen it): {edges}.")
    return "\n".join(lines)


def _resolution_text(summary: pd.DataFrame) -> str:
    """How precisely the times are located."""
    worst = summary.get("time_to_target_resolution_s_max")
    worst = 0.0 if worst is None or not np.isfinite(worst).any() else float(np.nanmax(worst))
    if worst == 0.0:
        return (
            "  Times to target are located to the applied update that reached it (exact "
            "between evaluations)."
        )
    return f"  Times to target are located to within {worst:.3g} s."


def scenario_file_name(label: str) -> str:
    """A file name for a scheme's label: ``name(key=2)`` -> ``name_key_2``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_") or "scheme"


def _fmt(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:.3g}"


def write_comparison(scenario, table, history, out, fmt: str = "png") -> pd.DataFrame:
    """Write runs.csv, summary.csv, history.csv (tuning.csv when tuned, robustness.csv when
    checked), the figures (accuracy against linear and log time, loss; for a timing-only
    scenario, pushes applied; ``fmt`` png, pdf or svg), the scenario it started from
    (``scenario.yaml``) and each scheme's resolved scenario (``scenarios/LABEL.yaml``:
    ``ashlsim run scenarios/LABEL.yaml --seed N`` reproduces that scheme's row for seed N)
    into ``out``."""
    with claim(out):  # no other command writes into it meanwhile
        return _write_comparison(scenario, table, history, Path(out), fmt)


def _write_comparison(scenario, table, history, out: Path, fmt: str) -> pd.DataFrame:
    import yaml

    from .plots import compare_curves

    summary = summarize(table)
    table.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    history.to_csv(out / "history.csv", index=False)
    if "tuning" in table.attrs:
        pd.DataFrame(table.attrs["tuning"]).to_csv(out / "tuning.csv", index=False)
    if table.attrs.get("robustness"):
        pd.DataFrame(table.attrs["robustness"]).to_csv(out / "robustness.csv", index=False)
    (out / "scenario.yaml").write_text(scenario.to_yaml())
    folder = out / "scenarios"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.yaml"):  # an earlier comparison's schemes
        old.unlink()
    for label, data in table.attrs.get("scenarios", {}).items():
        text = yaml.safe_dump(data, sort_keys=False)
        (folder / f"{scenario_file_name(label)}.yaml").write_text(text)
    title = f"{scenario.name}, {scenario.cluster.workers} workers"
    if not scenario.model.trains:  # timing only: no accuracy nor loss, but progress
        compare_curves(history, out / f"updates.{fmt}", metric="updates", title=title)
        return summary
    target = scenario.stop.target_accuracy
    times = dict(zip(summary["strategy"], summary["time_to_target_s_median"], strict=True))
    marks = {"target": target, "target_times": times, "title": title}
    compare_curves(history, out / f"accuracy.{fmt}", **marks)
    compare_curves(history, out / f"accuracy_logtime.{fmt}", xscale="log", **marks)
    compare_curves(history, out / f"loss.{fmt}", metric="loss", title=title)
    return summary
