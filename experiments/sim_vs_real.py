"""How far the simulator's predictions are from real processes: every scheme on three scenarios,
each run by the simulator and by the emulator (``ashlsim emulate``) with the same seed, for
docs/SIM_VS_REAL.md.

    python experiments/sim_vs_real.py [--quick] [--seeds 1] [--repeat] [--quiet]

Scenarios: ``compute_bound`` (6 workers, log-normal speeds, links and PS card far from busy),
``ps_bound`` (6 workers pushing a 1 MB virtual model through a 25 MB/s PS card), and
``testbed_x4`` (the ASHL authors' 3-worker testbed with every speed and bandwidth x4 and its
latency /4, so that it runs in seconds; docs/DESIGN.md section 4). The schemes are the main
comparison's, plain recipe. Each prediction is made twice: by the default simulator, and by the
simulator *calibrated* on this machine (``ashlsim calibrate``: ``cluster.server.message_s`` and
``apply_s``, measured once per scenario before the runs).

Per scheme and seed: time to 95 % accuracy, updates per second, per-worker iterations in the
first T seconds (T: the shorter run; from the event logs), per-worker idle share, bytes moved, and
for BSP the mean round time. Writes results/sim_vs_real/{runs,workers,calibration}.csv,
summary.md and predicted_vs_measured.png; the emulation takes about 5 minutes per seed on 2
cores (the emulator runs in real time).
"""

from __future__ import annotations

import math

import _common
import numpy as np
import pandas as pd
from _common import CORE, ROOT, Timer, arguments, output

from ashlsim import Scenario, load_scenario, run
from ashlsim.compare import parse_strategy_label
from ashlsim.emulator import calibrate, emulate
from ashlsim.progress import CountProgress

TARGET = 0.95


def compute_bound() -> Scenario:
    return Scenario().with_overrides(
        {
            "name": "compute_bound",
            "cluster.workers": 6,
            "cluster.speed": {"dist": "lognormal", "mean": 1000.0, "sigma": 0.5},
            "cluster.server": {"ingress": None, "egress": None},
            "stop.time_s": 30.0,
            "stop.target_accuracy": TARGET,
            "eval.every_s": 0.1,
        }
    )


def ps_bound() -> Scenario:
    return Scenario().with_overrides(
        {
            "name": "ps_bound",
            "cluster.workers": 6,
            "cluster.speed": {"dist": "lognormal", "mean": 2000.0, "sigma": 0.3},
            "workload.param_bytes": 1.0e6,
            "cluster.uplink.bandwidth": 1.25e8,
            "cluster.downlink.bandwidth": 1.25e8,
            "cluster.server": {"ingress": 2.5e7, "egress": 2.5e7},
            "stop.time_s": 20.0,
            "stop.target_accuracy": TARGET,
            "eval.every_s": 0.1,
        }
    )


def testbed_x4() -> Scenario:
    """The authors' testbed, 4 times faster in every respect (compute, links, PS card)."""
    k = 4.0
    base = load_scenario(ROOT / "experiments" / "scenarios" / "paper_setup.yaml")
    bandwidth = [3.125e8 * k, 2.083333333e8 * k, 1.5625e8 * k]
    return base.with_overrides(
        {
            "name": "testbed_x4",
            "cluster.speed": [500.0 * k, 333.3333 * k, 250.0 * k],
            "cluster.uplink": {"bandwidth": bandwidth, "latency": 0.0005 / k},
            "cluster.downlink": {"bandwidth": bandwidth, "latency": 0.0005 / k},
            "cluster.server": {"ingress": 1.25e9 * k, "egress": 1.25e9 * k},
            "strategy": {"name": "bsp"},
            "stop.time_s": 60.0,
            "stop.target_accuracy": TARGET,
            "eval.every_s": 0.25,
        }
    )


SCENARIOS = [compute_bound, ps_bound, testbed_x4]


def iterations_until(result, until: float) -> np.ndarray:
    """Per worker: local iterations whose computation ended by ``until`` (from the events)."""
    events = result.events
    done = events[(events["kind"] == "compute") & (events["end_s"] <= until)]
    counts = done.groupby("worker").size().reindex(range(len(result.workers)), fill_value=0)
    steps = result.workers["iterations"] / result.workers["pushes"].clip(lower=1)
    return counts.to_numpy() * steps.round().to_numpy()  # a compute event is H local steps


def facts(result) -> dict:
    rounds = result.history["version"].iloc[-1]
    return {
        "time_to_target_s": result.time_to_accuracy(TARGET),
        "elapsed_s": result.elapsed_s,
        "updates_per_s": result.pushes_applied / result.elapsed_s,
        "bytes": int(result.workers["bytes_up"].sum() + result.workers["bytes_down"].sum()),
        "round_s": result.elapsed_s / rounds if rounds else math.nan,
    }


def rel(predicted, measured):
    return (predicted - measured) / measured if measured else math.nan


def compare_one(label: str, scenario: Scenario, seed: int, calibrated: Scenario, repeat=False):
    """One scheme, one seed: the emulator's measurement and both predictions (with ``repeat``
    also a second emulation, "predicting" the first: the floor no model can beat)."""
    emu = emulate(scenario, seed=seed, events=True)
    runs, workers = [], []
    models = [("default", scenario), ("calibrated", calibrated)]
    if repeat:
        models.append(("emulator_again", None))
    for model, s in models:
        if s is None:
            sim = emulate(scenario, seed=seed, events=True)
        else:
            sim = run(s, seed=seed, events=True)
        until = min(sim.elapsed_s, emu.elapsed_s)
        predicted, measured = facts(sim), facts(emu)
        row = {"scenario": scenario.name, "scheme": label, "seed": seed, "model": model}
        for key in predicted:
            row[f"{key}_sim"], row[f"{key}_emu"] = predicted[key], measured[key]
        it_sim, it_emu = iterations_until(sim, until), iterations_until(emu, until)
        row["iterations_median_abs_err"] = float(np.median(np.abs(it_sim - it_emu) / it_emu))
        runs.append(row)
        for w in range(len(it_sim)):
            workers.append(
                {
                    **{k: row[k] for k in ("scenario", "scheme", "seed", "model")},
                    "worker": w,
                    "until_s": until,
                    "iterations_sim": it_sim[w],
                    "iterations_emu": it_emu[w],
                    "idle_share_sim": float(sim.workers["idle_share"].iloc[w]),
                    "idle_share_emu": float(emu.workers["idle_share"].iloc[w]),
                }
            )
    costs = emu.tables["emulation"]
    for row in runs:
        row["overhead_ms_median"] = 1e3 * float(costs["overhead_s"].median())
        row["overrun_share"] = float((costs["math_s"] > costs["compute_s"]).mean())
    return runs, workers


def summarize(runs: pd.DataFrame, workers: pd.DataFrame) -> pd.DataFrame:
    """Per prediction model: median absolute relative errors (time to target where both
    reached it, iterations per worker, updates/s, bytes, BSP round) and the idle-share gap."""
    rows = []
    for model, part in runs.groupby("model", sort=False):
        both = part.dropna(subset=["time_to_target_s_sim", "time_to_target_s_emu"])
        ttt = (both["time_to_target_s_sim"] - both["time_to_target_s_emu"]).abs() / both[
            "time_to_target_s_emu"
        ]
        w = workers[workers["model"] == model]
        it = (w["iterations_sim"] - w["iterations_emu"]).abs() / w["iterations_emu"]
        bsp = part[part["scheme"] == "bsp"]
        rows.append(
            {
                "model": model,
                "time_to_target": f"{100 * ttt.median():.1f} % (n={len(ttt)}, max "
                f"{100 * ttt.max():.1f} %)",
                "iterations_per_worker": f"{100 * it.median():.1f} % (n={len(it)}, 90th pct "
                f"{100 * it.quantile(0.9):.1f} %)",
                "updates_per_s": _median_err(part, "updates_per_s"),
                "bytes": _median_err(part, "bytes"),
                "bsp_round": _median_err(bsp, "round_s"),
                "idle_share_gap": _idle_gap(w),
                "reached_both": f"{len(both)}/{len(part)}",
                "reached_one_only": int(
                    (
                        part["time_to_target_s_sim"].isna() != part["time_to_target_s_emu"].isna()
                    ).sum()
                ),
            }
        )
    return pd.DataFrame(rows)


def _idle_gap(w: pd.DataFrame) -> str:
    """Median absolute gap in idle share, over the workers that wait (> 1 % idle in either)."""
    waiting = w[w[["idle_share_sim", "idle_share_emu"]].max(axis=1) > 0.01]
    gap = (waiting["idle_share_sim"] - waiting["idle_share_emu"]).abs()
    return f"{100 * gap.median():.1f} pts (n={len(gap)}, max {100 * gap.max():.1f})"


def _median_err(part: pd.DataFrame, key: str) -> str:
    err = (part[f"{key}_sim"] - part[f"{key}_emu"]).abs() / part[f"{key}_emu"]
    return f"{100 * err.median():.1f} % (max {100 * err.max():.1f} %)"


def per_scheme(runs: pd.DataFrame) -> pd.DataFrame:
    """The table of docs/SIM_VS_REAL.md: each run's predicted and measured time to target."""

    def fmt(x):
        return "never" if not np.isfinite(x) else f"{x:.2f}"

    table = runs.pivot_table(
        index=["scenario", "scheme", "seed"],
        columns="model",
        values=["time_to_target_s_sim", "iterations_median_abs_err", "round_s_sim"],
        aggfunc="first",
        sort=False,
    )
    measured = runs.groupby(["scenario", "scheme", "seed"], sort=False).first()
    out = pd.DataFrame(
        {
            "measured_s": measured["time_to_target_s_emu"].map(fmt),
            "predicted_s": table[("time_to_target_s_sim", "default")].map(fmt),
            "calibrated_s": table[("time_to_target_s_sim", "calibrated")].map(fmt),
            "iter_err_%": (100 * table[("iterations_median_abs_err", "default")]).round(1),
            "iter_err_cal_%": (100 * table[("iterations_median_abs_err", "calibrated")]).round(1),
            "overhead_ms": measured["overhead_ms_median"].round(2),
        }
    )
    return out.reset_index()


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table (GitHub Markdown) of ``frame``."""

    def cell(x):
        return f"{x:.3g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += [
        "| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def figure(runs: pd.DataFrame, workers: pd.DataFrame, path) -> None:
    import matplotlib.pyplot as plt

    from ashlsim.plots import scheme_color

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6), layout="constrained")
    for ax, frame, x, y, title in (
        (axes[0], runs, "time_to_target_s_emu", "time_to_target_s_sim",
         f"time to {TARGET:.0%} accuracy (s)"),
        (axes[1], workers, "iterations_emu", "iterations_sim", "iterations per worker"),
    ):  # fmt: skip
        for (model, scheme), part in frame.groupby(["model", "scheme"], sort=False):
            name = parse_strategy_label(scheme)["strategy.name"]
            color = scheme_color(name)
            style = (
                {"marker": "o", "facecolors": "none", "edgecolors": color}
                if model == "default"
                else {"marker": "x", "c": color}
            )
            ax.scatter(part[x], part[y], s=28, label=f"{scheme} ({model})", **style)
        values = frame[[x, y]].to_numpy(dtype=float)
        values = values[np.isfinite(values).all(axis=1) & (values > 0).all(axis=1)]
        low, high = values.min() * 0.8, values.max() * 1.25
        ax.plot(
            [low, high], [low, high], color="grey", lw=1, ls="--", label="prediction = measurement"
        )
        ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high),
               xlabel=f"measured on real processes: {title}",
               ylabel=f"predicted by the simulator: {title}")  # fmt: skip
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
    axes[0].set_title("time to target (runs where both reached it)")
    axes[1].set_title("per-worker iterations over the same span")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=4)
    fig.suptitle("Simulator vs emulator (o: default simulator, x: calibrated on this machine)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = arguments(
        __doc__.splitlines()[0],
        seeds=1,
        extra=[
            (
                "--repeat",
                {
                    "action": "store_true",
                    "help": "emulate seed 0 twice: how far the emulator is from itself",
                },
            )
        ],
    )
    out = output("sim_vs_real", args)
    schemes = ["bsp", "asp", "ashl"] if args.quick else CORE
    seeds = list(range(args.seeds))
    calibrations, runs, workers = [], [], []
    bar = CountProgress(
        len(SCENARIOS) * len(schemes) * len(seeds), "sim vs real", quiet=_common.QUIET
    )
    with Timer() as timer:
        for make in SCENARIOS:
            base = make()
            if args.quick:
                base = base.with_overrides({"stop.time_s": base.stop.time_s / 2})
            calibrated, found = calibrate(base, seconds=5.0, seed=0)
            calibrations.append({"scenario": base.name, **found.__dict__})
            for label in schemes:
                scenario = base.with_overrides(parse_strategy_label(label))
                cal = calibrated.with_overrides(parse_strategy_label(label))
                for seed in seeds:
                    r, w = compare_one(label, scenario, seed, cal, args.repeat and seed == 0)
                    runs += r
                    workers += w
                    bar(f"{base.name} {label} seed {seed}")
    bar.close()
    runs, workers = pd.DataFrame(runs), pd.DataFrame(workers)
    runs.to_csv(out / "runs.csv", index=False)
    workers.to_csv(out / "workers.csv", index=False)
    pd.DataFrame(calibrations).to_csv(out / "calibration.csv", index=False)
    summary, table = summarize(runs, workers), per_scheme(runs)
    text = [
        f"# sim vs real ({len(seeds)} seed(s), {timer.seconds / 60:.1f} host min)",
        "",
        "calibration (per scenario, on this machine):",
        markdown(pd.DataFrame(calibrations)[["scenario", "message_s", "apply_s", "overrun_share"]]),
        "",
        "median absolute relative error of the prediction:",
        markdown(summary),
        "",
        "per run (time to target in s; iteration errors: median over workers):",
        markdown(table),
    ]
    (out / "summary.md").write_text("\n".join(text) + "\n")
    figure(runs, workers, out / "predicted_vs_measured.png")
    print("\n".join(text))
    print(f"wrote {out}/")


if __name__ == "__main__":
    main()
