"""Command line: ``ashlsim run``, ``compare``, ``sweep``, ``scenario``.

A user mistake (a bad scenario, a missing file) prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .compare import DEFAULT_SEEDS, DEFAULT_TUNE_SEEDS, MAIN_RECIPE, MAIN_STRATEGIES, ROBUSTNESS
from .errors import ScenarioError
from .folders import claim
from .progress import FinishedProgress, RunProgress
from .scenario import Scenario, load_scenario
from .strategies import STRATEGIES
from .yamlio import loads

EXIT_USAGE = 2
MAX_TABLE_ROWS = 40  # a longer table (the emulator's one row per iteration) is only named


def _parse_sets(items: list[str]) -> dict[str, object]:
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ScenarioError("--set", item, "key.path=value, e.g. cluster.workers=4")
        overrides[key.strip()] = loads(raw, f"--set {key.strip()}")
    return overrides


def resolve_scenario(
    path: str | None, strategy: str | None, sets: list[str], recipe: str | None = None
) -> Scenario:
    """The scenario a command line describes: a file (or the default), the recipe's settings
    for the scheme (``--recipe``: the scheme ``--strategy`` names as the recipe's label,
    else the scenario's own), then the overrides."""
    from .entries import entry_overrides, load_recipe, parse_strategy_label

    scenario = load_scenario(path) if path else Scenario()
    overrides = _parse_sets(sets or [])
    if recipe:
        fragments = load_recipe(recipe)
        label = strategy or scenario.strategy.name
        if label not in fragments:
            raise ScenarioError(
                "--strategy", label, f"one of the {recipe} recipe's {list(fragments)}"
            )
        scenario = scenario.with_overrides(entry_overrides(label, fragments[label]))
    elif strategy:  # a name, or name(param=value, ...) as in compare
        overrides = {**parse_strategy_label(strategy), **overrides}
    return scenario.with_overrides(overrides) if overrides else scenario


def check_output(path: str, option: str = "--out") -> None:
    """Fail before simulating if the output folder cannot be written: an existing folder, or
    a path under one, in which a file can be created. Nothing is made here (a run that then
    fails leaves no empty folder behind) and nothing is lost to a bad ``--out``."""
    import tempfile
    from pathlib import Path

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ScenarioError(option, path, "a folder, not an existing file")
    existing = folder
    while not existing.exists():  # the nearest existing folder it would be made in
        existing = existing.parent
    if not existing.is_dir():
        raise ScenarioError(option, path, f"a folder we can write ({existing} is a file)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ScenarioError(option, path, f"a folder we can write ({exc.strerror})") from None


def _cmd_run(args) -> int:
    from .engine import run

    return _run_one(args, run, {})


def _cmd_emulate(args) -> int:
    from .emulator import emulate

    options = {"listen": args.listen, "spawn": not args.external}
    if args.external:
        options["announce"] = lambda line: print(line, file=sys.stderr, flush=True)
    return _run_one(args, emulate, options)


def _cmd_calibrate(args) -> int:
    from .emulator import calibrate

    scenario = resolve_scenario(args.scenario, None, args.set)
    if not args.seconds > 0:
        raise ScenarioError("--seconds", args.seconds, "a number of seconds > 0")
    if args.out:
        check_output(str(Path(args.out).parent or "."), "--out")
        if Path(args.out).is_dir():  # found now, not after the emulation
            raise ScenarioError("--out", args.out, "a YAML file to write, not a folder")
    calibrated, found = calibrate(scenario, seconds=args.seconds, seed=args.seed)
    print(found.report())
    text = calibrated.to_yaml()
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print("cluster.server of the calibrated scenario:")
        print(yaml.safe_dump({"server": calibrated.to_dict()["cluster"]["server"]}).rstrip())
    return 0


def _run_one(args, engine, options) -> int:
    """``run`` and ``emulate``: one scenario on one engine, its files and its summary."""
    from .plots import learning_curve
    from .results import check_target

    if args.seed is not None and args.seed < 0:
        raise ScenarioError("--seed", args.seed, "an integer >= 0")
    scenario = resolve_scenario(args.scenario, args.strategy, args.set, args.recipe)
    check_output(args.out)
    written = ["history.csv", "workers.csv", "scenario.yaml", "run.json", "curve.png"]
    for name in [*written, *(["trace.json"] if args.trace else [])]:
        check_target(Path(args.out) / name)  # a run writes these: refused now, not after it
    with claim(args.out):  # no other command writes into it meanwhile
        bar = RunProgress(scenario.stop.time_s, f"{scenario.name}/{scenario.strategy.name}",
                          quiet=args.no_progress)  # fmt: skip
        try:
            result = engine(
                scenario,
                seed=args.seed,
                events=(args.events or args.trace) or None,
                progress=bar,
                **options,
            )
        finally:
            bar.close()
        out = result.save(args.out)
        if args.trace:
            result.to_trace(out / "trace.json")
        learning_curve(
            result.history,
            out / f"curve.{args.format}",
            title=f"{scenario.name}: {scenario.strategy.name}, {scenario.cluster.workers} workers",
            target=scenario.stop.target_accuracy,
            stage_changes=result.stage_changes,
            faults=result.faults,
            clock="simulated" if result.engine == "simulator" else "measured",
            label=scenario.strategy.name,
        )
        print(format_run_summary(result))
        extra = " events.csv" if result.events is not None else ""
        extra += " trace.json (open in https://ui.perfetto.dev)" if args.trace else ""
        print(f"wrote {out}/: history.csv workers.csv scenario.yaml curve.{args.format}{extra}")
    return 0


def format_run_summary(result) -> str:
    """A readable summary: headline numbers and one line per worker (beyond
    ``MAX_TABLE_ROWS`` workers, their spread)."""
    s = result.summary()
    target = result.scenario.stop.target_accuracy
    ttt = s["time_to_target_s"]
    unit = "simulated s" if result.engine == "simulator" else "measured s (emulated)"
    lines = [
        f"scenario {result.scenario.name!r}, strategy {s['strategy']}, seed {s['seed']}",
        f"stopped: {s['stop_reason']} at {s['elapsed_s']:.2f} {unit} "
        f"({s['updates']} updates, {s['epochs']:.1f} epochs)",
        f"final accuracy {s['final_accuracy']:.4f}, training loss {s['final_loss']:.4f}",
    ]
    if target is not None:
        reached = f"{ttt:.2f} s" if ttt == ttt else "not reached"
        lines.append(f"time to accuracy {target:g}: {reached}")
    if result.stop_reason == "diverged":
        lines.append("the loss became non-finite: the run diverged (try a smaller training.lr)")
    lines.append(f"bytes up {s['bytes_up']:,}, down {s['bytes_down']:,}")
    w = result.workers
    cols = ["worker", "speed", "compute_s", "comm_s", "wait_s", "idle_share", "iterations"]
    cols += result.scheme_columns  # whatever the scheme reports per worker
    if w["down_s"].any():
        cols += ["down_s", "lost_pushes"]
    table = w[cols].copy()
    if len(table) > MAX_TABLE_ROWS:  # 10,000 lines would bury the headline: their spread
        lines.append(f"{len(table):,} workers (one row each in workers.csv):")
        table = table.drop(columns="worker").select_dtypes("number")
        spread = table.quantile([0.0, 0.1, 0.5, 0.9, 1.0]).rename(
            index={0.0: "min", 0.1: "10%", 0.5: "median", 0.9: "90%", 1.0: "max"}
        )
        spread["idle_share"] = (100 * spread["idle_share"]).map("{:.1f}%".format)
        lines.append(spread.to_string(float_format=lambda x: f"{x:.4g}"))
    else:
        table["idle_share"] = (100 * table["idle_share"]).map("{:.1f}%".format)
        lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    if len(result.faults) > MAX_TABLE_ROWS:
        lines.append(
            f"faults ({result.lost_pushes} pushes lost): {len(result.faults)} in faults.csv"
        )
    elif len(result.faults):
        lines.append(f"faults ({result.lost_pushes} pushes lost):")
        lines.append(result.faults.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    for name, table in result.tables.items():  # whatever the scheme reports
        if len(table) > MAX_TABLE_ROWS:
            lines.append(f"{name}: {len(table)} rows in {name}.csv")
            continue
        lines.append(f"{name}:")
        lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return "\n".join(lines)


def _cmd_scenario(args) -> int:
    scenario = resolve_scenario(args.scenario, args.strategy, args.set)
    if args.explain:
        print(explain(scenario))
    else:
        sys.stdout.write(scenario.to_yaml())
    return 0


def _fields(section, prefix=""):
    """(path, value, doc) of every field of a configuration section, depth first."""
    import dataclasses

    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        doc = _note(field)
        if (
            dataclasses.is_dataclass(value)
            and not hasattr(value, "sample")
            and field.name != "strategy"
        ):
            yield from _fields(value, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", value, doc


def _note(field) -> str:
    """A configuration field's meaning and its allowed values, from its metadata."""
    allowed = getattr(field.metadata.get("parse"), "allowed", "")
    return "; ".join(part for part in (field.metadata.get("doc", ""), allowed) if part)


def _flow(value) -> str:
    """A value as one line of YAML."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("...\n").strip()


def explain(scenario) -> str:
    """Every field of ``scenario``: its path, its value here and what it means (with its unit),
    then the strategy block's own fields."""
    from .config import dump

    rows = [(path, dump(value), doc) for path, value, doc in _fields(scenario)
            if path != "strategy"]  # fmt: skip
    rows += [(f"strategy.{path}", dump(value), doc) for path, value, doc in
             _fields(scenario.strategy)]  # fmt: skip
    width = max(len(path) for path, _, _ in rows)
    lines = ["field".ljust(width) + "  value  # meaning (unit)"]
    for path, value, doc in rows:
        shown = _flow(value)
        lines.append(f"{path.ljust(width)}  {shown}" + (f"  # {doc}" if doc else ""))
    lines.append("")
    lines.append("Speeds, bandwidths, latencies and jitter take a number, a distribution "
                 "({dist: lognormal, mean: ..., sigma: ...}) or one value per worker.")  # fmt: skip
    return "\n".join(lines)


def _cmd_catalogue(args) -> int:
    """The models, devices and networks a scenario can name."""
    from .catalogue import EFFICIENCY, entries

    table = entries()
    print("models (workload: {name: ...}): training FLOP per sample, parameters")
    for name, e in table["models"].items():
        print(f"  {name:14} {e['flops_per_sample']:9.3g} FLOP  {e['params']:9.3g} params"
              f"  {e.get('input', '')}")  # fmt: skip
    print(f"devices (cluster: {{device: ...}}): peak FLOP/s; speed = peak x efficiency "
          f"({EFFICIENCY} unless cluster.efficiency) / the model's FLOP per sample")  # fmt: skip
    for name, e in table["devices"].items():
        print(f"  {name:14} fp16 {e['fp16']:9.3g}  fp32 {e['fp32']:9.3g}  {e.get('name', '')}")
    print("networks (cluster: {network: ...}): bandwidth bytes/s, one-way latency s")
    for name, e in table["networks"].items():
        print(f"  {name:14} {e['bandwidth']:9.3g} B/s  {e['latency']:9.3g} s")
    print("Sources: docs/CATALOGUE.md. Your own entries: ASHLSIM_CATALOGUE=file.yaml")
    return 0


def _print_classes(registry: dict) -> None:
    """Each class of a registry (schemes, models): its summary, its parameters with defaults
    and meanings."""
    import dataclasses

    from .config import dump

    for name, cls in registry.items():
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        print(f"{name}: {' '.join(doc.split())}")
        for field in dataclasses.fields(cls.Params):
            if field.name == "name":
                continue
            default = dump(getattr(cls.Params(), field.name))
            note = _note(field)
            print(f"    {field.name} = {_flow(default)}" + (f"  # {note}" if note else ""))
        print()


def _cmd_strategies(args) -> int:
    """Every scheme: where it comes from, its parameters with defaults and meanings."""
    from .strategies import all_strategies

    _print_classes(all_strategies())
    print(
        "Write a scheme with its parameters as NAME(param=value, ...), e.g. "
        f"{next(iter(STRATEGIES))}(server_lr=2); add your own: docs/extending.md"
    )
    return 0


def _cmd_models(args) -> int:
    """Every learning model a scenario's ``model:`` block can name, with its parameters."""
    from .models import all_models

    _print_classes(all_models())
    print(
        "Name one in a scenario as model: {name: NAME, ...} or --set model.name=NAME; "
        "add your own: docs/extending.md"
    )
    return 0


def _cmd_compare(args) -> int:
    check_output(args.out)
    with claim(args.out):  # no other command writes into it meanwhile
        return _compare(args)


def _compare(args) -> int:
    import warnings

    from .compare import compare, plan_entries, resolve_entries, write_comparison

    scenario = resolve_scenario(args.scenario, None, args.set)
    seeds = _int_list("--seeds", args.seeds)
    if args.workers is not None and args.workers < 1:
        raise ScenarioError("--workers", args.workers, "an integer >= 1")
    entries, recipe = plan_entries(args.strategies or None, args.recipe)
    labels = [label for label, _ in resolve_entries(entries)]
    tune = _parse_tune(args.tune)
    tune_seeds = _int_list("--tune-seeds", args.tune_seeds)
    # what runs, always (--quiet silences the progress line only)
    how = f"the {recipe} recipe" if recipe else "their own parameters"
    if tune:
        how += f", tuning {', '.join(tune)} on seeds {args.tune_seeds}"
    print(f"Comparing {', '.join(labels)} on {scenario.name} ({scenario.cluster.workers} "
          f"workers) under {how}; seeds {args.seeds}.")  # fmt: skip

    bar = FinishedProgress("compare", quiet=args.quiet)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        table, history = compare(
            scenario,
            entries,
            seeds,
            recipe=recipe,
            return_history=True,
            tune=tune,
            tune_seeds=tune_seeds,
            progress=bar,
            workers=args.workers,
            robustness=args.robustness,
        )
    bar.close()
    for warning in caught:
        print(f"ashlsim: warning: {warning.message}", file=sys.stderr)
    summary = write_comparison(scenario, table, history, args.out, args.format)
    _report_comparison(scenario, table, summary, args, tuned=bool(tune))
    return 0


def _report_comparison(scenario, table, summary, args, tuned: bool) -> None:
    """The summary table, the verdict and the files written: throughput for a timing-only
    scenario, time to accuracy otherwise."""
    from .report import throughput_verdict, verdict

    extra = " tuning.csv" if tuned else ""
    if not scenario.model.trains:  # timing only: throughput, not time to accuracy
        shown = ["strategy", "runs", "pushes_per_s_median", "pushes_per_s_low",
                 "pushes_per_s_high", "mean_idle_share_mean", "bytes_up_mean"]  # fmt: skip
        print(summary[shown].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        print(throughput_verdict(summary))
        print(f"wrote {args.out}/: history.csv summary.csv runs.csv{extra} updates.{args.format}")
        return
    shown = ["strategy", "runs", "reached_target", "time_to_target_s_median",
             "time_to_target_s_low", "time_to_target_s_high", "final_accuracy_mean"]  # fmt: skip
    print(summary[shown].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(verdict(summary, scenario.stop.target_accuracy, table))
    print(
        f"wrote {args.out}/: history.csv summary.csv runs.csv robustness.csv{extra} "
        f"accuracy(_logtime).{args.format} loss.{args.format} scenarios/"
    )


def _parse_tune(items: list[str]) -> dict[str, list]:
    """``--tune training.lr=[0.01,0.05]`` (repeatable) -> ``{"training.lr": [0.01, 0.05]}``."""
    tune = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        values = loads(raw, "--tune") if sep else None
        if not key.strip() or not isinstance(values, list) or not values:
            raise ScenarioError("--tune", item, "KEY.PATH=[v1,v2,...], e.g. training.lr=[0.01,0.1]")
        if key.strip() in tune:
            raise ScenarioError(
                "--tune", item, f"each key once (give all of {key.strip()}'s values in one list)"
            )
        tune[key.strip()] = values
    return tune


def _cmd_sweep(args) -> int:
    from .sweep import load_sweep, sweep

    spec = load_sweep(args.sweep)
    if args.workers is not None and args.workers < 1:
        raise ScenarioError("--workers", args.workers, "an integer >= 1")
    check_output(args.out)
    summary = sweep(
        spec["base"],
        spec["grid"],
        spec["strategies"],
        spec["seeds"],
        out=args.out,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    failed = summary.attrs.get("failed", 0)
    reused = summary.attrs.get("reused", 0)
    done = f"{len(summary)} runs finished ({reused} already done, reused)" if reused else (
        f"{len(summary)} runs finished")  # fmt: skip
    files = [
        f for f in ("summary.csv", "schemes.csv", "summary.png") if (Path(args.out) / f).exists()
    ]
    print(f"{done}, {failed} failed; wrote {args.out}/: {' '.join(files)}")
    if failed:
        print(f"failed runs and their errors: {args.out}/failed.csv", file=sys.stderr)
    return 1 if failed else 0


def _int_list(field: str, raw: str) -> list[int]:
    try:
        values = [int(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise ScenarioError(field, raw, "comma-separated integers, e.g. 0,1,2") from None
    if not values:
        raise ScenarioError(field, raw, "at least one integer")
    if any(v < 0 for v in values):
        raise ScenarioError(field, raw, "seeds >= 0")
    if len(set(values)) != len(values):
        raise ScenarioError(field, raw, "each seed once")
    return values


def _scenario_args(p, strategy: bool = True) -> None:
    p.add_argument("scenario", nargs="?", help="scenario YAML (default: the built-in one)")
    if strategy:
        p.add_argument(
            "--strategy",
            help=f"the scheme, NAME or NAME(param=value, ...): {', '.join(STRATEGIES)}",
        )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a scenario field, e.g. --set cluster.workers=4 (repeatable)",
    )


def _one_run_args(p, out: str) -> None:
    """What ``run`` and ``emulate`` share."""
    _scenario_args(p)
    p.add_argument(
        "--recipe",
        help="the scheme's settings from a recipe (authors, plain, or a YAML path), as "
        "compare --recipe gives them; --strategy names the recipe's label",
    )
    p.add_argument("--out", default=out, help=f"output folder (default: {out})")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--events", action="store_true", help="also write events.csv (Gantt data)")
    p.add_argument(
        "--trace",
        action="store_true",
        help="also write trace.json, the timeline for https://ui.perfetto.dev (implies --events)",
    )
    p.add_argument("--no-progress", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--format", default="png", choices=["png", "pdf", "svg"], help="figure format")


def _parser_run(sub) -> None:
    p = sub.add_parser("run", help="run one scenario and write its results")
    _one_run_args(p, "ashlsim-out")
    p.set_defaults(func=_cmd_run)


def _parser_emulate(sub) -> None:
    p = sub.add_parser(
        "emulate",
        help="run one scenario on real processes (a PS and N workers over TCP), real time",
        description="Run the scenario on real processes: this process is the parameter "
        "server, N worker processes run the real SGD and exchange real parameters over TCP; "
        "links are shaped to the scenario's. Writes the same files as run, times in measured "
        "seconds (docs/SIM_VS_REAL.md).",
    )
    _one_run_args(p, "ashlsim-emulate")
    p.add_argument(
        "--listen", default="127.0.0.1:0", help="HOST:PORT workers connect to (port 0: any)"
    )
    p.add_argument(
        "--external",
        action="store_true",
        help="start no workers: print the command to start each (e.g. on other machines)",
    )
    p.set_defaults(func=_cmd_emulate)


def _parser_calibrate(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this machine's software costs and write them into a scenario",
        description="Emulate the scenario's cluster for a few seconds, every push applied on "
        "arrival, and measure the costs the simulator leaves out by default: per message "
        "(serializing, sockets) and per push applied by the PS. Writes them as "
        "cluster.server.message_s and apply_s.",
    )
    _scenario_args(p, strategy=False)
    p.add_argument("--seconds", type=float, default=5.0, help="emulated seconds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe run")
    p.add_argument("--out", help="write the calibrated scenario to this YAML file")
    p.set_defaults(func=_cmd_calibrate)


def _parser_compare(sub) -> None:
    p = sub.add_parser("compare", help="run one scenario under several schemes and seeds")
    _scenario_args(p, strategy=False)
    p.add_argument(
        "--strategies",
        help="schemes, comma-separated, each NAME or NAME(param=value, ...) with a NAME among "
        f"{', '.join(STRATEGIES)} (default: {','.join(MAIN_STRATEGIES)} under the "
        f"{MAIN_RECIPE} recipe; with --recipe: the recipe's labels to run)",
    )
    p.add_argument(
        "--recipe", help="each scheme's own settings: authors, plain, or a recipe YAML path"
    )
    p.add_argument(
        "--tune",
        action="append",
        default=[],
        metavar="KEY.PATH=[V1,V2,...]",
        help="pick each scheme's best value on the tuning seeds (repeatable: a grid)",
    )
    p.add_argument(
        "--tune-seeds", default=",".join(map(str, DEFAULT_TUNE_SEEDS)),
        help="seeds used only for tuning",
    )  # fmt: skip
    p.add_argument(
        "--seeds", default=",".join(map(str, DEFAULT_SEEDS)),
        help="comma-separated seeds (default: 0-5, the fewest for 95%% intervals)",
    )  # fmt: skip
    p.add_argument(
        "--robustness", default="quick", choices=ROBUSTNESS,
        help="check the verdict under split seeds, a finer evaluation grid, the other "
        "recipes (quick, the default), and tuned learning rates (full)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, help="processes running the runs (default: every core)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--format", default="png", choices=["png", "pdf", "svg"], help="figure format")
    p.add_argument(
        "--out", default="ashlsim-compare", help="output folder (default: ashlsim-compare)"
    )
    p.set_defaults(func=_cmd_compare)


def _parser_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid of scenarios x schemes x seeds (resumable)")
    p.add_argument("sweep", help="sweep YAML: base, grid, strategies, seeds")
    p.add_argument("--out", default="ashlsim-sweep", help="output folder (default: ashlsim-sweep)")
    p.add_argument("--executor", default="local", help="local (default), dask or sequential")
    p.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://10.0.0.1:8786")
    p.add_argument("--workers", type=int, help="processes (local) or LocalCluster workers (dask)")
    p.add_argument("--no-progress", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_sweep)


def _parser_listings(sub) -> None:
    """``scenario``, ``strategies``, ``models`` and ``catalogue``: what there is, printed."""
    p = sub.add_parser("scenario", help="print the resolved scenario as YAML")
    _scenario_args(p)
    p.add_argument("--explain", action="store_true", help="every field with its meaning and unit")
    p.set_defaults(func=_cmd_scenario)
    p = sub.add_parser("strategies", help="every scheme, its parameters and defaults")
    p.set_defaults(func=_cmd_strategies)
    p = sub.add_parser("models", help="every learning model, its parameters and defaults")
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("catalogue", help="the workloads, devices and networks a scenario can name")
    p.set_defaults(func=_cmd_catalogue)


SUBCOMMANDS = (_parser_run, _parser_emulate, _parser_calibrate, _parser_compare, _parser_sweep,
               _parser_listings)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ashlsim",
        description="Simulate synchronization schemes on a heterogeneous training cluster.",
    )
    parser.add_argument("--version", action="version", version=f"ashlsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as exc:
        print(f"ashlsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ashlsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (``ashlsim strategies | head``): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
