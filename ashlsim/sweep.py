"""Sweeps: a grid of scenarios x schemes x seeds, run by a process pool or dask.distributed,
resumable, with results identical whichever executor ran them.

Each run is named by a stable hash of its resolved scenario and seed. Its results are written
to ``DIR/runs/<hash>.tmp-<pid>`` and renamed to ``DIR/runs/<hash>`` when complete, so an
interrupted sweep leaves only whole runs; the same command again skips them and runs the rest.
``DIR/summary.csv`` lists every finished run in grid order; ``DIR/failed.csv`` the runs that
raised, with their error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .entries import load_recipe, recipe_entries, resolve_entries
from .errors import ScenarioError
from .folders import claim
from .plugins import pool as process_pool
from .plugins import register, registered
from .progress import CountProgress
from .scenario import Scenario, load_scenario, resolve_paths
from .stats import summarize
from .yamlio import load_file

EXECUTORS = ("local", "dask", "sequential")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: where it sits in the grid, and what it simulates."""

    index: int  # position in grid order: summaries are sorted by it
    key: str  # hash of the resolved scenario and seed
    strategy: str  # the label as given, with any parameters in parentheses
    seed: int
    point: dict = field(hash=False)  # grid values of this run
    scenario: dict = field(hash=False)  # resolved scenario, plain data


def run_key(scenario: dict, seed: int) -> str:
    """A stable id: sha256 of the resolved scenario (sorted YAML) and the seed."""
    text = yaml.safe_dump({"scenario": scenario, "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_sweep(path: str | Path) -> dict:
    """Read a sweep file: ``base`` (a scenario file, relative to the sweep file, or a mapping),
    ``grid`` (key path -> list of values), ``strategies`` (labels, or a mapping from label to
    the scenario keys that scheme changes, as in ``compare``; none: the base's own scheme),
    optionally ``recipe`` (a named
    recipe or a path relative to the sweep file: its fragments, for the labels listed in
    ``strategies`` or all of them) and ``seeds``."""
    path = Path(path)
    data = load_file(path, "sweep") or {}
    if not isinstance(data, dict):
        raise ScenarioError("sweep", str(path), "a mapping with base, grid, strategies, seeds")
    unknown = set(data) - {"base", "grid", "strategies", "seeds", "recipe"}
    if unknown:
        raise ScenarioError(
            f"sweep.{sorted(unknown)[0]}", "?", "base, grid, strategies, recipe, seeds"
        )
    base = data.get("base")
    if isinstance(base, str):
        base = load_scenario(path.parent / base)
    elif isinstance(base, dict):
        base = Scenario.from_dict(resolve_paths(base, path.parent))
    elif base is not None:
        raise ScenarioError("sweep.base", base, "a scenario file name or a scenario mapping")
    strategies = data.get("strategies")  # None: the base scenario's own scheme
    if data.get("recipe") is not None:
        name = str(data["recipe"])
        local = path.parent / name
        recipe = load_recipe(str(local) if local.suffix in (".yaml", ".yml") else name)
        labels = None if data.get("strategies") is None else strategies
        strategies = recipe_entries(recipe, labels, "sweep.strategies")
    spec = {
        "base": base,
        "grid": resolve_paths(data.get("grid") or {}, path.parent),
        "strategies": strategies,
        "seeds": data.get("seeds", [0]),
    }
    plan(**spec)  # the whole file validated up front, naming the field
    return spec


def check_seeds(seeds, field: str = "seeds") -> list[int]:
    """A non-empty list of distinct integers >= 0."""
    if not isinstance(seeds, (list, tuple, range)) or not len(seeds):
        raise ScenarioError(field, seeds, "a non-empty list of integers >= 0, e.g. [0, 1, 2]")
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ScenarioError(f"{field}[{i}]", seed, "an integer >= 0")
    if len(set(seeds)) != len(seeds):
        raise ScenarioError(field, list(seeds), "each seed once (a repeat would run twice)")
    return list(seeds)


def plan(base, grid: dict, strategies, seeds) -> list[RunSpec]:
    """Every run of the sweep, validated before anything runs (a bad key or value raises a
    ``ScenarioError`` naming it)."""
    if base is None:
        base = Scenario()
    elif isinstance(base, dict):
        base = Scenario.from_dict(base)
    _check_grid(grid)
    if strategies is None:  # the base scenario's own scheme, as it is
        strategies = [base.strategy.name]
    entries = resolve_entries(strategies)
    seeds = check_seeds(seeds)
    runs = []
    made: dict[str, dict] = {}  # run key -> the grid point that made it
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        for label, resolved in _at_point(base, point, entries):
            for seed in seeds:
                key = run_key(resolved, seed)
                if key in made:  # two points, one run: a row would be labelled twice
                    raise ScenarioError(
                        "grid", made[key], f"points that differ ({point} makes the same run)"
                    )
                made[key] = point
                runs.append(RunSpec(len(runs), key, label, seed, point, resolved))
    return runs


def _check_grid(grid) -> None:
    """A mapping of key paths to non-empty lists, no key inside another (the labels would
    lie: one would set what the other sets)."""
    if not isinstance(grid, dict):
        raise ScenarioError("grid", grid, "a mapping of key paths to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ScenarioError(f"grid.{key}", values, "a non-empty list of values")
        inner = [other for other in grid if str(other).startswith(f"{key}.")]
        if inner:
            raise ScenarioError(
                f"grid.{key}", values, f"keys that do not overlap ({key} holds {inner[0]})"
            )


def _at_point(base: Scenario, point: dict, entries):
    """``(label, resolved scenario dict)`` of each entry at one grid point."""
    try:
        at_point = base.with_overrides(point)
    except ScenarioError as exc:
        raise ScenarioError(f"grid: {exc.field}", exc.value, exc.allowed) from None
    for label, overrides in entries:
        try:
            yield label, at_point.with_overrides(overrides).to_dict()
        except ScenarioError as exc:
            raise ScenarioError(
                f"strategies.{label}: {exc.field}", exc.value, exc.allowed
            ) from None


def execute(spec: RunSpec, runs_dir: str) -> dict:
    """Run one simulation and write it atomically into ``runs_dir/<key>``: the unit of work an
    executor ships (to a process, or to a dask worker on another machine)."""
    from .engine import run

    result = run(Scenario.from_dict(spec.scenario), seed=spec.seed)
    row = {**spec.point, **result.summary(), "strategy": spec.strategy, "key": spec.key}
    final = Path(runs_dir) / spec.key
    tmp = Path(runs_dir) / f"{spec.key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    result.save(tmp)
    (tmp / "summary.json").write_text(json.dumps(row, default=float))
    if final.exists() and not (final / "summary.json").exists():
        shutil.rmtree(final, ignore_errors=True)  # an incomplete folder (not ours): replace it
    try:
        os.rename(tmp, final)  # atomic: the run appears whole or not at all
    except OSError:  # someone finished it first (a retried dask task): keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / "summary.json").exists():
            raise
    return row


def _guarded(spec: RunSpec, runs_dir: str):
    """``execute``, with a simulator exception returned as data instead of raised."""
    try:
        return "ok", execute(spec, runs_dir)
    except Exception as exc:  # a failed run is recorded, the sweep goes on
        return "failed", {
            "key": spec.key,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }


def sweep(
    base=None,
    grid: dict | None = None,
    strategies=None,
    seeds=(0,),
    *,
    out: str | Path = "ashlsim-sweep",
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    on_finish: Callable[[RunSpec], None] | None = None,
) -> pd.DataFrame:
    """Run the grid (``base`` x ``grid`` x ``strategies`` x ``seeds``) and return the summary
    (one row per finished run, in grid order), also written to ``out/summary.csv``.
    ``strategies`` None runs the base scenario's own scheme.

    ``executor``: ``local`` (a process pool of ``workers``, default all cores), ``dask`` (a
    ``dask.distributed`` client on ``scheduler``, or a ``LocalCluster``) or ``sequential``.
    Runs already in ``out/runs`` are skipped. ``on_finish(spec)`` is called after each run.
    """
    if executor not in EXECUTORS:
        raise ScenarioError("--executor", executor, f"one of {', '.join(EXECUTORS)}")
    specs = plan(base, grid or {}, strategies, seeds)
    with claim(out):  # no other sweep writes into it meanwhile
        return _sweep(specs, Path(out), executor, workers, scheduler, progress, on_finish)


def _sweep(specs, out: Path, executor, workers, scheduler, progress, on_finish) -> pd.DataFrame:
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for leftover in runs_dir.glob("*.tmp-*"):  # a run interrupted mid-write
        shutil.rmtree(leftover, ignore_errors=True)
    todo = [s for s in specs if not (runs_dir / s.key / "summary.json").exists()]
    failures: list[dict] = []
    bar = CountProgress(len(todo), "sweep", quiet=not progress) if todo else None

    def finished(spec, outcome):
        status, payload = outcome
        if status == "failed":
            failures.append({"strategy": spec.strategy, "seed": spec.seed, **spec.point, **payload})
        if bar:
            bar.finished()
        if on_finish is not None:
            on_finish(spec)

    runner = {"sequential": _run_sequential, "local": _run_pool, "dask": _run_dask}[executor]
    try:
        runner(todo, str(runs_dir), finished, workers=workers, scheduler=scheduler)
    finally:
        if bar:
            bar.close()
    summary = write_summary(specs, out, failures)
    summary.attrs["reused"] = len(specs) - len(todo)  # runs already done, skipped
    return summary


def _run_sequential(todo, runs_dir, finished, **_):
    for spec in todo:
        finished(spec, _guarded(spec, runs_dir))


def _run_pool(todo, runs_dir, finished, workers=None, **_):
    from concurrent.futures import as_completed

    if not todo:
        return
    workers = workers or os.cpu_count() or 1
    with process_pool(min(workers, len(todo))) as pool:
        futures = {pool.submit(_guarded, spec, runs_dir): spec for spec in todo}
        try:
            for future in as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _run_dask(todo, runs_dir, finished, workers=None, scheduler=None, **_):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ScenarioError(
            "--executor", "dask", 'dask installed: pip install -e ".[dask]"'
        ) from None
    if not todo:
        return
    if scheduler:
        try:
            client, cluster = Client(scheduler, timeout="5s"), None
        except (OSError, TimeoutError) as exc:
            raise ScenarioError(
                "--scheduler", scheduler, f"a dask scheduler we can reach ({type(exc).__name__})"
            ) from None
    else:
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        client.run(register, registered())  # what this process registered
        futures = {client.submit(_guarded, spec, runs_dir, pure=False): spec for spec in todo}
        for future in as_completed(futures):
            finished(futures[future], future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def write_summary(specs: list[RunSpec], out: Path, failures: list[dict]) -> pd.DataFrame:
    """``summary.csv`` (finished runs in grid order), ``schemes.csv`` (per grid point and
    scheme: seeds that reached the target, median time to target with its interval, and
    whether it overlaps the best scheme's at that point), ``failed.csv``, ``summary.png``."""
    rows = []
    for spec in specs:
        path = out / "runs" / spec.key / "summary.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
    summary = pd.DataFrame(rows)
    summary.to_csv(out / "summary.csv", index=False)
    failed_path = out / "failed.csv"
    if failures:
        pd.DataFrame(failures).to_csv(failed_path, index=False)
    elif failed_path.exists():
        failed_path.unlink()  # a rerun that fixed everything
    axes = list(specs[0].point) if specs else []
    if len(summary):
        hashed = summary.assign(**{a: summary[a].map(_hashable) for a in axes})
        summarize(hashed, within=axes or None).to_csv(out / "schemes.csv", index=False)
    if len(summary) and axes:
        from .plots import sweep_summary

        sweep_summary(summary, axes[0], out / "summary.png", name=out.name)
    summary.attrs["failed"] = len(failures)
    return summary


def _hashable(value):
    """A grid value as a short groupable label: a per-worker list becomes its range."""
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return f"{min(value):.4g}..{max(value):.4g}"
    return str(value) if isinstance(value, (list, dict)) else value


def axis_label(key: str) -> str:
    """A readable label for a scenario key: ``cluster.speed.sigma`` -> ``speed sigma
    (cluster.speed.sigma)``."""
    words = " ".join(key.split(".")[-2:]).replace("_", " ")
    return f"{words} ({key})"
