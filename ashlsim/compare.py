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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .engine import run
from .errors import ScenarioError
from .folders import claim
from .scenario import Scenario
from .yamlio import load_file, loads

_SPEC = re.compile(r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s*(?:\((?P<args>.*)\))?\s*$", re.S)
# a comparison with no scheme named (the main job, on the command line and in Python): the
# schemes as the ASHL authors train them (a named recipe), over 6 seeds (the fewest for 95 %
# intervals of the median)
MAIN_RECIPE = "authors"
MAIN_STRATEGIES = ("bsp", "asp", "ssp", "local_sgd", "ashl")
DEFAULT_SEEDS = (0, 1, 2, 3, 4, 5)
DEFAULT_TUNE_SEEDS = (1000, 1001, 1002)
METRICS = ["time_to_target_s", "final_accuracy", "bytes_up", "bytes_down", "mean_idle_share"]
# schemes whose PS applies the mean of N deltas (one step of batch N*b per round), against the
# ones that apply each push whole: at the same lr their per-sample step differs by about N


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
        if isinstance(value, dict) and "dist" not in value:  # merged key by key ({}: nothing)
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
            names = ", ".join(shipped_recipes())
            raise ScenarioError("recipe", name_or_path, f"one of {names} or a path")
        data = loads(shipped.read_text(), "recipe") or {}
    if not isinstance(data, dict) or not isinstance(data.get("strategies"), dict):
        raise ScenarioError("recipe", name_or_path, "a mapping with common and strategies")
    fragments = {"common": data.get("common"), **{
        f"strategies.{label}": frag for label, frag in data["strategies"].items()}}  # fmt: skip
    for where, fragment in fragments.items():
        if fragment is not None and not isinstance(fragment, dict):
            raise ScenarioError(
                f"recipe {name_or_path}: {where}", fragment, "a mapping of scenario keys"
            )
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
    """A warning, in plain English, when averaging schemes (BSP, Local SGD: the mean of N
    deltas a round) are compared with schemes that apply each push whole (ASP, SSP) at one
    learning rate nobody tuned, under a recipe or not: their steps per sample differ by about
    N, and the verdict may reflect that convention rather than the schemes."""
    kinds = {}
    for label, sc in resolved.items():
        merges = sc.strategy.merges()  # what the scheme declares (StrategyParams.merges)
        if merges is not None:
            kinds[label] = {"mean": "averaging", "each": "whole"}[merges]
    if len(set(kinds.values())) < 2:
        return None
    lrs = {(sc.training.lr, sc.strategy.server_optimizer.lr) for sc in resolved.values()}
    if len(lrs) > 1:
        return None  # somebody chose the step sizes
    n = next(iter(resolved.values())).cluster.workers
    avg = [k for k, v in kinds.items() if v == "averaging"]
    whole = [k for k, v in kinds.items() if v == "whole"]
    return (
        f"{_names(avg)} {'averages' if len(avg) == 1 else 'average'} the {n} workers' deltas "
        f"each round, while {_names(whole)} {'applies' if len(whole) == 1 else 'apply'} each "
        f"push whole: at one learning rate their steps per sample differ by about {n}x, and "
        "the verdict may reflect that. Tune each scheme's learning rate "
        "(--tune training.lr=[...]) to compare the schemes themselves."
    )


def _names(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def plan_entries(strategies=None, recipe: str | None = None):
    """The entries a comparison runs, and the recipe they follow, by the rule the command
    line and Python share: nothing named is the main job (the ``authors`` recipe's
    ``MAIN_STRATEGIES``); a recipe alone is all of its labels; a recipe and labels (a list or
    a comma-separated string) are those labels of the recipe; schemes without a recipe run
    with their own parameters. Returns ``(entries, recipe)``."""
    if strategies is None and recipe is None:
        recipe, strategies = MAIN_RECIPE, list(MAIN_STRATEGIES)
    if recipe is None or isinstance(strategies, dict):  # (a mapping: the recipe is a record)
        return strategies, recipe
    if isinstance(strategies, str):
        strategies = split_top_level(strategies)
    if isinstance(strategies, tuple):
        strategies = list(strategies)
    return recipe_entries(load_recipe(recipe), strategies, "strategies"), recipe


def compare(
    scenario: Scenario | None = None,
    strategies=None,
    seeds=DEFAULT_SEEDS,
    *,
    recipe: str | None = None,
    return_history: bool = False,
    tune: dict[str, list] | None = None,
    tune_seeds=DEFAULT_TUNE_SEEDS,
    progress=None,
    workers: int | None = 1,
    robustness: str = "quick",
):
    """One row per (strategy, seed) with the run's headline numbers (``Result.summary``).

    Defaults are the command line's: the built-in scenario, the main job's schemes under the
    ``authors`` recipe (``plan_entries``), seeds 0-5. Every scheme sees the same cluster, data
    and mini-batch streams for a given seed. With ``tune`` (key path -> candidate values;
    several keys make a grid) each scheme first runs every candidate on ``tune_seeds``,
    disjoint from ``seeds``, keeps the one with the smallest median time to target (ties: the
    lower median final loss, then the first in grid order), and is evaluated on ``seeds`` at
    it; ``attrs["tuning"]`` holds every candidate's score (``tuning.csv``). ``robustness``
    (``none``, ``quick`` or ``full``): how far to check the verdict under changes
    (``plan_checks``, ``judge_checks``), in ``attrs["robustness"]``. ``attrs["scenarios"]`` holds each scheme's resolved scenario (a dict), which
    ``ashlsim run`` reproduces a row from. ``workers``: processes running the runs at once
    (None: every core); the results do not depend on it. The processes are started afresh
    (``spawn``): a script that asks for more than one runs ``compare`` under ``if __name__ ==
    "__main__":``, and a scheme registered at run time (``register_strategy``) rather than by
    an entry point is known to its own process only. With ``return_history`` also the
    tidy history of all runs (``strategy`` and ``seed`` added). ``progress(label, seed)`` is
    called as runs finish (``Runner.run``). Without tuning, schemes of different per-sample
    step sizes compared at one learning rate raise a warning (``step_size_warning``).
    """
    scenario = Scenario() if scenario is None else scenario
    entries, recipe = plan_entries(strategies, recipe)
    resolved = resolve(scenario, entries)
    seeds = [int(s) for s in seeds]
    if robustness not in ROBUSTNESS:
        raise ScenarioError("robustness", robustness, f"one of {', '.join(ROBUSTNESS)}")
    with Runner(workers, progress) as pool:
        tuning = None
        if tune:
            resolved, tuning = tune_each(resolved, tune, tune_seeds, seeds, pool)
        elif (message := step_size_warning(resolved)) is not None:
            warnings.warn(message, UserWarning, stacklevel=2)
        records = None if tuning is None else tuning.to_dict("records")
        checks = plan_checks(
            scenario, resolved, seeds, recipe=recipe, tuning=records, tune=tune,
            level=robustness, runner=pool,
        )  # fmt: skip
        main = [(label, sc, seed) for label, sc in resolved.items() for seed in seeds]
        outcomes = pool.run(main + [job for check in checks for job in check.jobs])
    table, history = _tables(main, outcomes[: len(main)])
    table.attrs.update(
        _facts(resolved, recipe, tuning, tune, judge_checks(checks, table, outcomes[len(main) :]))
    )
    if return_history:
        return table, history
    return table


def _facts(resolved, recipe, tuning, tune, robustness) -> dict:
    """What a comparison's table carries besides its rows (``attrs``): each scheme's resolved
    scenario, the robustness checks, the recipe and the tuning, if any."""
    facts = {"scenarios": {label: sc.to_dict() for label, sc in resolved.items()}}
    if tuning is not None:
        facts["tuning"] = tuning.to_dict("records")  # records: attrs must compare
        facts["tuning_edges"] = edge_choices(tuning, tune)
    if recipe is not None:
        facts["recipe"] = recipe
    facts["robustness"] = robustness
    return facts


def _tables(jobs, outcomes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs' table and their tidy history, from ``Runner.run``'s outcomes of ``jobs``."""
    rows, histories = [], []
    for (label, _, seed), (summary, history) in zip(jobs, outcomes, strict=True):
        rows.append({**summary, "strategy": label})
        histories.append(history.assign(strategy=label, seed=seed))
    return pd.DataFrame(rows), pd.concat(histories, ignore_index=True)


class Runner:
    """Runs (label, scenario, seed) jobs, in a pool of ``workers`` processes (kept for the
    ``with`` block) or here, and returns what a comparison keeps of each: its summary row and
    its history. Results do not depend on ``workers``: every run is seeded on its own."""

    def __init__(self, workers: int | None = 1, progress=None):
        import os

        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ScenarioError("workers", workers, "an integer >= 1 or None (every core)")
        self.workers = (os.cpu_count() or 1) if workers is None else int(workers)
        self.progress = progress
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def run(self, jobs: list[tuple[str, Scenario, int]]) -> list[tuple[dict, pd.DataFrame]]:
        """``(summary, history)`` of each ``(label, scenario, seed)``, in the jobs' order.
        ``progress(label, seed)`` is called as each ends; a progress with an ``expect(n)``
        method hears first how many runs are coming."""
        if hasattr(self.progress, "expect"):
            self.progress.expect(len(jobs))
        if self.workers == 1 or len(jobs) < 2:
            out = []
            for label, sc, seed in jobs:
                out.append(_one_run(sc.to_dict(), seed))
                if self.progress is not None:
                    self.progress(label, seed)
            return out
        from concurrent.futures import as_completed

        pool = self._executor()
        # the last first: a comparison's checks come last, and a run of another recipe may
        # run to the budget; started early, it does not hold up the end
        futures = {
            pool.submit(_one_run, jobs[i][1].to_dict(), jobs[i][2]): i
            for i in reversed(range(len(jobs)))
        }
        out: list = [None] * len(jobs)
        for future in as_completed(futures):
            i = futures[future]
            out[i] = future.result()
            if self.progress is not None:
                self.progress(jobs[i][0], jobs[i][2])
        return out

    def _executor(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            context = mp.get_context("spawn")  # no forked BLAS threads or SimPy state
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool


def _one_run(scenario: dict, seed: int) -> tuple[dict, pd.DataFrame]:
    """One run's summary and history (a pool's task: plain data in, frames out)."""
    result = run(Scenario.from_dict(scenario), seed=seed)
    return result.summary(), result.history


def tune_grid(tune: dict[str, list]) -> list[dict]:
    """Every combination of the ``tune`` values (one mapping key -> value each)."""
    import itertools

    for key, values in tune.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ScenarioError(f"tune.{key}", values, "a non-empty list of values")
        if key == "strategy" or key == "strategy.name":
            raise ScenarioError(
                f"tune.{key}", values, "a scheme's parameter: the schemes are --strategies"
            )
    keys = list(tune)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*tune.values())]


def tune_each(resolved, tune, tune_seeds, eval_seeds, runner=None):
    """Each scheme's best candidate of ``tune`` on ``tune_seeds`` (see ``compare``): the
    smallest median time to target (a seed that never reached it counts as never), ties
    broken by the lower median final loss (a diverged run's counts as infinite), then by the
    grid's order (the first wins)."""
    tune_seeds = [int(s) for s in tune_seeds]
    if not tune_seeds:
        raise ScenarioError("tune_seeds", tune_seeds, "at least one seed")
    if set(tune_seeds) & set(eval_seeds):
        raise ScenarioError(
            "tune_seeds", tune_seeds, f"seeds disjoint from the evaluation seeds {eval_seeds}"
        )
    runner = Runner() if runner is None else runner
    candidates = tune_grid(tune)
    tried = {}
    for label, sc in resolved.items():
        for k, candidate in enumerate(candidates):
            try:
                tried[label, k] = sc.with_overrides(candidate)
            except ScenarioError as exc:
                raise ScenarioError(f"tune: {exc.field}", exc.value, exc.allowed) from None
    jobs = [(f"{label} (tuning)", tried[key], seed) for key in tried for seed in tune_seeds]
    outcomes = iter(runner.run(jobs))
    chosen, rows = {}, []
    for label in resolved:
        scored = []
        for k, candidate in enumerate(candidates):
            summaries = [next(outcomes)[0] for _ in tune_seeds]
            times = [s["time_to_target_s"] for s in summaries]
            median = median_interval(times)[0]
            losses = [s["final_loss"] for s in summaries]  # a diverged run's (nan) is the worst
            loss = float(np.median([v if math.isfinite(v) else math.inf for v in losses]))
            score = (median, loss, k)
            scored.append(score)
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
        best = min(scored)[2]
        chosen[label] = tried[label, best]
        for row, score in zip(rows[-len(candidates) :], scored, strict=True):
            row["chosen"] = score[2] == best
    return chosen, pd.DataFrame(rows)


def edge_choices(tuning: pd.DataFrame, tune: dict[str, list]) -> list[str]:
    """``"asp: training.lr = 0.1, the grid's largest"`` for each scheme whose tuned value of a
    numeric key lies at an end of its grid: the best may lie beyond, so widen the grid."""
    notes = []
    for row in tuning[tuning["chosen"]].to_dict("records"):
        for key, values in tune.items():
            numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(numeric) < 2 or len(numeric) != len(values):
                continue
            value = row[key]
            if value == max(numeric):
                notes.append(f"{row['strategy']}: {key} = {value:g}, the grid's largest")
            elif value == min(numeric):
                notes.append(f"{row['strategy']}: {key} = {value:g}, the grid's smallest")
    return notes


ROBUSTNESS = ("none", "quick", "full")


@dataclass
class Check:
    """One change a verdict is checked under: its name, the seeds it uses, the runs it needs
    (``(label, scenario, seed)``; none for a split of the seeds) and, for a change to one
    scheme (a tuning neighbour), that scheme: the others keep their runs."""

    name: str
    seeds: list[int]
    jobs: list = field(default_factory=list)
    only: str | None = None


def plan_checks(
    scenario, resolved, seeds, *, recipe=None, tuning=None, tune=None, level="quick",
    runner=None,
) -> list[Check]:  # fmt: skip
    """The changes a verdict is checked under (``judge_checks`` judges them): each half of
    the seeds (no new runs); and, re-running on the first half of the seeds, evaluations twice
    as often (ASHL's switch reads the observed loss, and a touch of the target between two
    evaluations counts only if one sees it), each other shipped recipe that has every label;
    when tuned, each scheme one grid step either side of its chosen value; with ``level``
    "full" and no tuning, the learning rate tuned per scheme over half, once and twice the
    scenario's (tuning runs on 2 tuning seeds happen here). ``level`` "none": no checks."""
    if level == "none":
        return []
    checks = []
    if len(seeds) >= 2:
        cut = len(seeds) // 2
        checks += [
            Check(f"seeds {_seed_text(part)} only", part) for part in (seeds[:cut], seeds[cut:])
        ]
    half = seeds[: max(1, (len(seeds) + 1) // 2)]

    def everyone(name, scenarios):
        jobs = [(label, sc, seed) for label, sc in scenarios.items() for seed in half]
        return Check(name, half, jobs)

    finer = {
        k: sc.with_overrides({"eval.every_s": sc.eval.every_s / 2}) for k, sc in resolved.items()
    }
    checks.append(everyone(f"evaluations every {scenario.eval.every_s / 2:g} s", finer))
    for other in shipped_recipes():
        fragments = load_recipe(other)
        if other != recipe and all(label in fragments for label in resolved):
            scenarios = resolve(scenario, {k: fragments[k] for k in resolved})
            checks.append(everyone(f"the {other} recipe", scenarios))
    if tuning is not None:
        for name, label, sc in _neighbours(resolved, tuning, tune):
            checks.append(Check(name, half, [(label, sc, seed) for seed in half], only=label))
    elif level == "full":
        lrs = sorted({sc.training.lr for sc in resolved.values()})
        grid = sorted({f * lr for lr in lrs for f in (0.5, 1.0, 2.0)})
        chosen, _ = tune_each(
            resolved, {"training.lr": grid}, DEFAULT_TUNE_SEEDS[:2], seeds, runner
        )
        checks.append(
            everyone(f"learning rates tuned over {', '.join(f'{v:g}' for v in grid)}", chosen)
        )
    return checks


def judge_checks(checks: list[Check], table: pd.DataFrame, outcomes) -> list[dict]:
    """Whether the verdict of ``table`` holds under each check, ``outcomes`` being the runs of
    the checks' jobs in order: one record per check, ``{check, seeds, fastest, holds}``. The
    verdict's *leading group* is its fastest scheme and every scheme not significantly slower;
    a check holds when its own fastest scheme is in that group."""
    fastest, group = leading_group(summarize(table))
    if fastest is None:
        return []
    order = list(dict.fromkeys(table["strategy"]))
    outcomes = iter(outcomes)
    records = []
    for check in checks:
        runs = [{**next(outcomes)[0], "strategy": label} for label, _, _ in check.jobs]
        if not check.jobs:  # a split of the seeds
            runs_table = table[table["seed"].isin(check.seeds)]
        elif check.only is not None:  # one scheme changed, the others as they ran
            kept = table[table["seed"].isin(check.seeds) & (table["strategy"] != check.only)]
            runs_table = pd.concat([kept, pd.DataFrame(runs)], ignore_index=True)
            runs_table = runs_table.set_index("strategy").loc[order].reset_index()
        else:
            runs_table = pd.DataFrame(runs)
        best = leading_group(summarize(runs_table))[0]
        records.append(
            {"check": check.name, "seeds": _seed_text(check.seeds), "fastest": best, "holds": best in group}
        )  # fmt: skip
    return records


def _neighbours(resolved, tuning: list[dict], tune: dict) -> list[tuple[str, str, Scenario]]:
    """``(check name, label, scenario)`` for each scheme one grid step either side of each
    tuned value it chose."""
    out = []
    for row in tuning:
        if not row.get("chosen"):
            continue
        label = row["strategy"]
        for key, values in tune.items():
            at = values.index(row[key])
            for step in (-1, 1):
                if 0 <= at + step < len(values):
                    value = values[at + step]
                    sc = resolved[label].with_overrides({key: value})
                    out.append((f"{label} at {key} = {value}", label, sc))
    return out


def _seed_text(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


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


def shipped_recipes() -> list[str]:
    """The names of the recipes that come with ashlsim (``ashlsim/recipes``)."""
    folder = resources.files("ashlsim") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


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


def verdict(summary: pd.DataFrame, target: float | None = None, table=None) -> str:
    """One paragraph a user can act on: who reaches the target first, and whether the
    difference to each other scheme is significant (95 % intervals of the median apart); the
    times' resolution; with ``table`` (``compare``'s), under which changes the verdict holds
    and which flip it, and any tuned value at the edge of its grid."""
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
    """A file name for a scheme's label: ``ssp(staleness=2)`` -> ``ssp_staleness_2``."""
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
