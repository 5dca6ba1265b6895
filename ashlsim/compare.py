"""Run one scenario under several schemes and seeds, each scheme with its own settings if asked;
summaries with medians, intervals and a verdict; a tuning protocol; tidy tables and figures.

A comparison is a list of *entries*: a label and the scenario keys that scheme changes. Written
as a label (``"ssp(staleness=2, local_steps=2)"``), or as a mapping from label to a scenario
fragment, so that each scheme can run as its authors ran it::

    asp: {strategy: {name: asp, server_optimizer: {momentum: 0.9}}}   # momentum on the PS
    ashl: {training: {momentum: 0.9}}                                 # ... on the workers

A fragment without ``strategy.name`` takes the scheme the label names. Recipes (``recipes/``)
are such mappings with a ``common`` fragment every scheme shares.
"""

from __future__ import annotations

import math
import re
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .engine import run
from .errors import ScenarioError
from .scenario import Scenario
from .yamlio import load_file, loads

_SPEC = re.compile(r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s*(?:\((?P<args>.*)\))?\s*$", re.S)
DEFAULT_STRATEGIES = ("bsp", "asp", "ssp", "local_sgd")  # compare's schemes unless told
# ``ashlsim compare`` with no scheme named (the main job): the schemes as the ASHL authors train
# them (a named recipe, so the verdict does not hinge on one learning rate for all)
MAIN_RECIPE = "authors"
MAIN_STRATEGIES = ("bsp", "asp", "ssp", "local_sgd", "ashl")
METRICS = ["time_to_target_s", "final_accuracy", "bytes_up", "bytes_down", "mean_idle_share"]
# schemes whose PS applies the mean of N deltas (one step of batch N*b per round), against the
# ones that apply each push whole: at the same lr their per-sample step differs by about N
AVERAGING = {"bsp", "local_sgd", "adacomm"}
WHOLE = {"asp", "ssp"}


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at ``sep`` outside brackets and quotes: ``"a(x=1,y=2),b"`` gives
    ``["a(x=1,y=2)", "b"]``. Unbalanced brackets are a ``ScenarioError``."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ScenarioError("strategies", text, "balanced brackets")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ScenarioError("strategies", text, "balanced brackets and quotes")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_strategy_label(label: str) -> dict[str, object]:
    """``"ssp"`` or ``"ssp(staleness=10, local_steps=2)"`` -> overrides of the strategy block.
    Values are YAML (``asp(server_optimizer={momentum: 0.9})`` works)."""
    if not isinstance(label, str):
        raise ScenarioError("strategies", label, "a name like ssp or ssp(staleness=10)")
    match = _SPEC.match(label)
    if not match:
        raise ScenarioError("strategies", label, "a name like ssp or ssp(staleness=10)")
    overrides = {"strategy.name": match["name"]}
    for part in split_top_level(match["args"] or ""):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(
                "strategies", label, "arguments as key=value, e.g. ssp(staleness=10)"
            )
        overrides[f"strategy.{key.strip()}"] = loads(raw, f"strategies: {key.strip()}")
    return overrides


def _flatten(fragment: dict, prefix: str = "") -> dict[str, object]:
    """A nested scenario fragment as dotted key paths (a distribution spec stays whole)."""
    flat = {}
    for key, value in fragment.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and "dist" not in value:
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def entry_overrides(label: str, fragment) -> dict[str, object]:
    """The dotted overrides of one entry: ``fragment`` (nested or dotted keys) on top of the
    scheme ``label`` names, unless the fragment names its own ``strategy.name``."""
    if fragment is None:
        fragment = {}
    if not isinstance(fragment, dict):
        raise ScenarioError(f"strategies.{label}", fragment, "a mapping of scenario keys")
    flat = _flatten(fragment)
    if "strategy" in fragment and isinstance(fragment["strategy"], str):
        flat["strategy.name"] = flat.pop("strategy")
    name = flat.pop("strategy.name", None)
    base = parse_strategy_label(label) if name is None else {"strategy.name": name}
    return {**base, **flat}  # strategy.name first: setting it clears the old scheme's keys


def resolve_entries(strategies) -> list[tuple[str, dict[str, object]]]:
    """``(label, overrides)`` for each entry of a comparison: a comma-separated string, a list
    of labels and one-key mappings, or a mapping from label to scenario fragment."""
    if isinstance(strategies, str):
        strategies = split_top_level(strategies)
        if not strategies:
            raise ScenarioError("strategies", "", "at least one scheme, e.g. bsp,asp")
    if isinstance(strategies, dict):
        items = list(strategies.items())
    elif isinstance(strategies, (list, tuple)):
        items = []
        for item in strategies:
            if isinstance(item, str):
                items.append((item.strip(), None))
            elif isinstance(item, dict) and len(item) == 1:
                items.append(next(iter(item.items())))
            else:
                raise ScenarioError(
                    "strategies", item, "a label like ssp(staleness=2) or {label: {keys...}}"
                )
    else:
        raise ScenarioError("strategies", strategies, "a list of schemes or a mapping")
    if not items:
        raise ScenarioError("strategies", strategies, "at least one scheme")
    labels = [label for label, _ in items]
    if len(set(labels)) != len(labels):
        raise ScenarioError("strategies", labels, "labels that differ from each other")
    return [(str(label), entry_overrides(str(label), frag)) for label, frag in items]


def load_recipe(name_or_path: str) -> dict:
    """A recipe: ``{common: fragment, strategies: {label: fragment}}``, by the name of one
    shipped in ``ashlsim/recipes`` (``authors``, ``plain``) or a YAML path. Returns the
    ``strategies`` mapping with ``common`` merged under each fragment."""
    if not isinstance(name_or_path, str) or "\x00" in name_or_path:
        raise ScenarioError("recipe", name_or_path, "a recipe name or a YAML path")
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        data = load_file(path, "recipe") or {}
    else:
        shipped = resources.files("ashlsim") / "recipes" / f"{name_or_path}.yaml"
        if not shipped.is_file():
            names = sorted(
                p.name[:-5]
                for p in (resources.files("ashlsim") / "recipes").iterdir()
                if p.name.endswith(".yaml")
            )
            raise ScenarioError("recipe", name_or_path, f"one of {', '.join(names)} or a path")
        data = loads(shipped.read_text(), "recipe") or {}
    if not isinstance(data, dict) or not isinstance(data.get("strategies"), dict):
        raise ScenarioError("recipe", name_or_path, "a mapping with common and strategies")
    common = _flatten(data.get("common") or {})
    return {label: {**common, **_flatten(frag or {})} for label, frag in data["strategies"].items()}


def recipe_entries(recipe: dict, labels, field: str) -> dict:
    """The ``recipe``'s fragments for ``labels`` (None: every label of the recipe), in order;
    ``field`` names where the labels came from in an error."""
    if labels is None:
        labels = list(recipe)
    if not isinstance(labels, list):
        raise ScenarioError(field, labels, f"a list of the recipe's labels {list(recipe)}")
    for label in labels:
        if not isinstance(label, str) or label not in recipe:
            raise ScenarioError(field, label, f"one of the recipe's {list(recipe)}")
    return {label: recipe[label] for label in labels}


def resolve(scenario: Scenario, strategies) -> dict[str, Scenario]:
    """Each entry's scenario, validated before anything runs."""
    resolved = {}
    for label, overrides in resolve_entries(strategies):
        try:
            resolved[label] = scenario.with_overrides(overrides)
        except ScenarioError as exc:
            raise ScenarioError(
                f"strategies.{label}: {exc.field}", exc.value, exc.allowed
            ) from None
    return resolved


def scenario_for(scenario: Scenario, label: str) -> Scenario:
    """``scenario`` under the scheme ``label`` names (its parameters kept if it is the same)."""
    return scenario.with_overrides(parse_strategy_label(label))


def step_size_warning(resolved: dict[str, Scenario]) -> str | None:
    """A warning when averaging schemes (BSP, Local SGD: the mean of N deltas) are compared
    untuned with schemes that apply each push whole (ASP, SSP) at the same learning rates: their
    per-sample step sizes differ by about N, and the comparison hinges on that convention."""
    kinds = {}
    for label, sc in resolved.items():
        name = sc.strategy.name
        if name in AVERAGING and getattr(sc.strategy, "lr_scaling", "none") == "none":
            kinds[label] = "averaging"
        elif name in WHOLE:
            kinds[label] = "whole"
    if len(set(kinds.values())) < 2:
        return None
    lrs = {(sc.training.lr, sc.strategy.server_optimizer.lr) for sc in resolved.values()}
    if len(lrs) > 1:
        return None  # somebody chose the step sizes
    n = next(iter(resolved.values())).cluster.workers
    avg = [k for k, v in kinds.items() if v == "averaging"]
    whole = [k for k, v in kinds.items() if v == "whole"]
    return (
        f"{', '.join(avg)} apply the mean of {n} deltas while {', '.join(whole)} apply each "
        f"push whole: at the same lr their per-sample step sizes differ by about {n}x. Tune "
        "each scheme (--tune training.lr=[...]) or follow a named recipe (--recipe)."
    )


def compare(
    scenario: Scenario,
    strategies=DEFAULT_STRATEGIES,
    seeds=(0,),
    *,
    return_history: bool = False,
    tune: dict[str, list] | None = None,
    tune_seeds=(1000, 1001, 1002),
    progress=None,
    recipe: str | None = None,
):
    """One row per (strategy, seed) with the run's headline numbers (``Result.summary``).

    Every scheme sees the same cluster, data and mini-batch streams for a given seed. With
    ``tune`` (key path -> candidate values; several keys make a grid) each scheme first runs
    every candidate on ``tune_seeds``, disjoint from ``seeds``, keeps the one with the smallest
    median time to target (ties: lower median final loss), and is evaluated on ``seeds`` at it;
    the table's ``attrs["tuning"]`` holds every candidate's score (records; ``tuning.csv``). With ``return_history`` also
    the tidy history of all runs (``strategy`` and ``seed`` added). ``progress(label, seed)``
    is called before each run. ``recipe`` names the recipe the entries follow (recorded in
    ``attrs["recipe"]``); without it, or tuning, schemes of different per-sample step sizes
    compared at one learning rate raise a warning (``step_size_warning``).
    """
    resolved = resolve(scenario, strategies)
    seeds = [int(s) for s in seeds]
    tuning = None
    if tune:
        resolved, tuning = tune_each(resolved, tune, tune_seeds, seeds, progress)
    elif recipe is None and (message := step_size_warning(resolved)) is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    rows, histories = [], []
    for label, sc in resolved.items():
        for seed in seeds:
            if progress is not None:
                progress(label, seed)
            result = run(sc, seed=seed)
            rows.append({**result.summary(), "strategy": label})
            if return_history:
                histories.append(result.history.assign(strategy=label, seed=seed))
    table = pd.DataFrame(rows)
    if tuning is not None:
        table.attrs["tuning"] = tuning.to_dict("records")  # records: attrs must compare
    if recipe is not None:
        table.attrs["recipe"] = recipe
    if return_history:
        return table, pd.concat(histories, ignore_index=True)
    return table


def tune_grid(tune: dict[str, list]) -> list[dict]:
    """Every combination of the ``tune`` values (one mapping key -> value each)."""
    import itertools

    for key, values in tune.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ScenarioError(f"tune.{key}", values, "a non-empty list of values")
    keys = list(tune)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*tune.values())]


def tune_each(resolved, tune, tune_seeds, eval_seeds, progress=None):
    """Each scheme's best candidate of ``tune`` on ``tune_seeds`` (see ``compare``)."""
    tune_seeds = [int(s) for s in tune_seeds]
    if not tune_seeds:
        raise ScenarioError("tune_seeds", tune_seeds, "at least one seed")
    if set(tune_seeds) & set(eval_seeds):
        raise ScenarioError(
            "tune_seeds", tune_seeds, f"seeds disjoint from the evaluation seeds {eval_seeds}"
        )
    candidates = tune_grid(tune)
    chosen, rows = {}, []
    for label, sc in resolved.items():
        best = None
        for candidate in candidates:
            try:
                tried = sc.with_overrides(candidate)
            except ScenarioError as exc:
                raise ScenarioError(f"tune: {exc.field}", exc.value, exc.allowed) from None
            times, losses = [], []
            for seed in tune_seeds:
                if progress is not None:
                    progress(f"{label} (tuning)", seed)
                summary = run(tried, seed=seed).summary()
                times.append(summary["time_to_target_s"])
                losses.append(summary["final_loss"])
            median = median_interval(times)[0]  # a seed that never reached it counts as never
            score = (median, float(np.nanmedian(losses)))
            rows.append(
                {
                    "strategy": label,
                    **candidate,
                    "median_time_to_target_s": score[0],
                    "median_final_loss": score[1],
                    "reached": sum(t is not None and math.isfinite(t) for t in times),
                    "tuning_seeds": len(tune_seeds),
                }
            )
            if best is None or score < best[0]:
                best = (score, candidate, tried)
        chosen[label] = best[2]
        for row in rows:
            if row["strategy"] == label:
                row["chosen"] = all(row[k] == v for k, v in best[1].items())
    return chosen, pd.DataFrame(rows)


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
    if throughput:
        columns += ["pushes_per_s_median", "pushes_per_s_low", "pushes_per_s_high"]
    columns += [f"{m}_{k}" for m in METRICS for k in ("mean", "std")]
    return out.loc[order, columns].reset_index()


TOO_FEW_SEEDS = (
    f"  Too few seeds for {LEVEL:.0%} intervals (6 or more are needed): no difference below "
    "is called significant."
)


def throughput_verdict(summary: pd.DataFrame) -> str:
    """The verdict of a timing-only comparison (no model: no accuracy to reach): who applies
    the most pushes per simulated second, and whether each other scheme's 95 % interval of
    the median lies apart from it. A push is a different amount of progress per scheme (a BSP
    round's N pushes make one averaged step): this ranks the cluster's throughput, not
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
        if few:
            sig = "not judged"
        elif row.pushes_per_s_high >= best["pushes_per_s_low"]:
            sig = "not significant"
        else:
            sig = "significantly fewer"
        lines.append(f"  {row.strategy}: median {row.pushes_per_s_median:.4g}: {sig}.")
    lines.append(
        "  (timing only: a push is not the same progress in every scheme: a BSP round's N "
        "pushes make one averaged step, a Local SGD or ASHL push carries several local steps)"
    )
    return "\n".join(lines)


def verdict(summary: pd.DataFrame, target: float | None = None) -> str:
    """One paragraph a user can act on: who reaches the target first, and whether the
    difference to each other scheme is significant (95 % intervals of the median apart)."""
    reached = summary[np.isfinite(summary["time_to_target_s_median"])]
    what = f"{target:.0%} accuracy" if target else "the target"
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
        if few:
            sig = "not judged"
        else:
            sig = "not significant" if row.overlaps_best else "significantly slower"
        lines.append(f"  {row.strategy}: {where} ({row.reached_target}/{row.runs}): {sig}.")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:.3g}"


def write_comparison(scenario, table, history, out, fmt: str = "png") -> pd.DataFrame:
    """Write runs.csv, summary.csv, history.csv (tuning.csv when tuned) and the figures
    (accuracy against linear and log time, loss; for a timing-only scenario, pushes applied;
    ``fmt`` png, pdf or svg) into ``out``."""
    from .plots import compare_curves

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(table)
    table.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    history.to_csv(out / "history.csv", index=False)
    if "tuning" in table.attrs:
        pd.DataFrame(table.attrs["tuning"]).to_csv(out / "tuning.csv", index=False)
    (out / "scenario.yaml").write_text(scenario.to_yaml())
    title = f"{scenario.name}, {scenario.cluster.workers} workers"
    if scenario.model.name == "none":  # timing only: no accuracy nor loss, but progress
        compare_curves(history, out / f"updates.{fmt}", metric="updates", title=title)
        return summary
    target = scenario.stop.target_accuracy
    compare_curves(history, out / f"accuracy.{fmt}", target=target, title=title)
    compare_curves(
        history, out / f"accuracy_logtime.{fmt}", target=target, title=title, xscale="log"
    )
    compare_curves(history, out / f"loss.{fmt}", metric="loss", title=title)
    return summary
