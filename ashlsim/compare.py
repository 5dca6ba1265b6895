"""Run one scenario under several schemes and seeds; tidy tables and a figure."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

from .engine import run
from .errors import ScenarioError
from .scenario import Scenario

_SPEC = re.compile(r"^\s*(?P<name>[a-z_]+)\s*(?:\((?P<args>.*)\))?\s*$")
METRICS = ["time_to_target_s", "final_accuracy", "bytes_up", "bytes_down", "mean_idle_share"]


def parse_strategy_label(label: str) -> dict[str, object]:
    """``"ssp"`` or ``"ssp(staleness=10)"`` -> overrides of the strategy block."""
    match = _SPEC.match(label)
    if not match:
        raise ScenarioError("strategies", label, "a name like ssp or ssp(staleness=10)")
    overrides = {"strategy.name": match["name"]}
    for part in filter(None, (p.strip() for p in (match["args"] or "").split(","))):
        key, sep, raw = part.partition("=")
        if not sep:
            raise ScenarioError(
                "strategies", label, "arguments as key=value, e.g. ssp(staleness=10)"
            )
        overrides[f"strategy.{key.strip()}"] = yaml.safe_load(raw)
    return overrides


def scenario_for(scenario: Scenario, label: str) -> Scenario:
    """``scenario`` under the scheme ``label`` names (its parameters kept if it is the same)."""
    return scenario.with_overrides(parse_strategy_label(label))


def compare(
    scenario: Scenario,
    strategies=("bsp", "asp", "ssp", "local_sgd"),
    seeds=(0,),
    *,
    return_history: bool = False,
):
    """One row per (strategy, seed) with the run's headline numbers (``Result.summary``).

    Every scheme sees the same cluster, data and mini-batch streams for a given seed.
    With ``return_history`` also the tidy history of all runs (``strategy`` and ``seed`` added).
    """
    if isinstance(strategies, str):
        strategies = [s for s in strategies.split(",") if s]
    resolved = {label: scenario_for(scenario, label) for label in strategies}  # validate first
    rows, histories = [], []
    for label, sc in resolved.items():
        for seed in seeds:
            result = run(sc, seed=seed)
            rows.append({**result.summary(), "strategy": label})
            if return_history:
                history = result.history.assign(strategy=label, seed=seed)
                histories.append(history)
    table = pd.DataFrame(rows)
    if return_history:
        return table, pd.concat(histories, ignore_index=True)
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per strategy (in the order given)."""
    order = list(dict.fromkeys(table["strategy"]))
    grouped = table.groupby("strategy", sort=False)
    out = grouped[METRICS].mean().add_suffix("_mean")
    spread = grouped[METRICS].std(ddof=1).add_suffix("_std")
    out = out.join(spread)
    out["reached_target"] = grouped["time_to_target_s"].apply(lambda s: int(s.notna().sum()))
    out["runs"] = grouped.size()
    columns = ["runs", "reached_target"] + [f"{m}_{k}" for m in METRICS for k in ("mean", "std")]
    return out.loc[order, columns].reset_index()


def write_comparison(scenario, table, history, out) -> pd.DataFrame:
    """Write runs.csv, summary.csv, history.csv and the figures (accuracy against linear and
    log time, loss) into ``out``."""
    from .plots import compare_curves

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(table)
    table.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    history.to_csv(out / "history.csv", index=False)
    (out / "scenario.yaml").write_text(scenario.to_yaml())
    title = f"{scenario.name}: {scenario.cluster.workers} workers"
    target = scenario.stop.target_accuracy
    compare_curves(history, out / "accuracy.png", target=target, title=title)
    compare_curves(history, out / "accuracy_logtime.png", target=target, title=title, xscale="log")
    compare_curves(history, out / "loss.png", metric="loss", title=title)
    return summary
