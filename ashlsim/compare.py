"""Run one scenario under several schemes and seeds, each scheme with its own settings if asked:
the comparison, its tuning protocol and the checks of its verdict. What it runs is in
``entries``, its statistics in ``stats``, its words and files in ``report``; their names are
importable from here too.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .engine import run
from .entries import (  # noqa: F401 - the comparison's API, importable from here
    MAIN_RECIPE,
    MAIN_STRATEGIES,
    entry_overrides,
    load_recipe,
    parse_strategy_label,
    plan_entries,
    recipe_entries,
    resolve,
    resolve_entries,
    scenario_for,
    shipped_recipes,
    split_top_level,
    step_size_warning,
)
from .errors import ScenarioError
from .report import (  # noqa: F401 - the comparison's API, importable from here
    TOO_FEW_SEEDS,
    robustness_text,
    scenario_file_name,
    throughput_verdict,
    verdict,
    write_comparison,
)
from .scenario import Scenario
from .stats import (  # noqa: F401 - the comparison's API, importable from here
    LEVEL,
    METRICS,
    interval_rank,
    leading_group,
    median_interval,
    pushes_per_s,
    summarize,
)

DEFAULT_SEEDS = (0, 1, 2, 3, 4, 5)
DEFAULT_TUNE_SEEDS = (1000, 1001, 1002)


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
            from .plugins import pool

            self._pool = pool(self.workers)
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
    """``"LABEL: training.lr = 0.1, the grid's largest"`` for each scheme whose tuned value of a
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
    as often (a scheme's stage switch may read the observed loss, and a touch of the target between two
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
