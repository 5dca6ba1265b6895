"""Does the proxy's verdict carry over? The same clusters and recipe, four learning problems:
per cluster, does the fastest scheme agree, and how far apart are the schemes' times to target
once each problem's own sequential-SGD time is divided out?

    python experiments/proxy_transfer.py [--quick] [--seeds 6] [--problems teacher_mlp,...]

Clusters: the built-in default (8 workers, log-normal speeds, compute-bound), the ASHL authors'
testbed (3 workers, a VGG16-sized virtual workload), a catalogue cluster (A100, V100, 2 T4 on
10 GbE, ResNet-18's FLOPs and size) and a communication-bound one (100 MB messages through a
10 Gbit/s PS card). Problems: the built-in teacher task with its MLP (the reference: the
default's problem), an MLP on digits, the NumPy CNN on digits as 1x8x8 images, and a PyTorch CNN
of the same shape (the ``torch`` extra; skipped without it). Every scheme runs the authors'
recipe (``--recipe authors``) with its learning rate tuned per problem and cluster on seeds of
their own (0.01, 0.03, 0.1). The timing comes from the cluster (its virtual workload where it
has one), so within a cluster the problems differ only in what is learned.

A problem's sequential-SGD time is the median number of SGD steps one worker needs to reach the
target under the same recipe (BSP on one worker, its learning rate tuned the same way), times
one step's compute on the cluster's mean worker. Writes results/proxy_transfer/: runs.csv,
summary.csv, sequential.csv, agreement.csv, proxy_transfer.png (docs/FIDELITY.md quotes them).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from _common import ROOT, SCENARIOS, Timer, arguments, output, progress

import ashlsim
from ashlsim import Scenario, compare, load_scenario
from ashlsim.compare import summarize
from ashlsim.entries import MAIN_STRATEGIES
from ashlsim.plots import scheme_color

LRS = [0.01, 0.03, 0.1]
TUNE_SEEDS = [1000, 1001]
DIGITS = {"data": {"name": "digits"}, "training.schedule_epochs": 30.0,
          "stop.target_accuracy": 0.93}  # fmt: skip
PROBLEMS = {  # name: (overrides, what it is)
    "teacher_mlp": ({"model": {"name": "mlp", "hidden": [32]}, "data": {"name": "teacher"},
                     "training.schedule_epochs": 80.0, "stop.target_accuracy": 0.95},
                    "MLP [32] on teacher, 95 %"),
    "digits_mlp": ({**DIGITS, "model": {"name": "mlp", "hidden": [64]}}, "MLP [64] on digits, 93 %"),
    "digits_cnn": ({**DIGITS, "model": {"name": "cnn"}}, "NumPy CNN on digits, 93 %"),
    "digits_torch_cnn": ({**DIGITS, "model": {"name": "torch", "factory": "examples.torch_nets:cnn"}},
                         "PyTorch CNN on digits, 93 %"),
}  # fmt: skip
REFERENCE = "teacher_mlp"


def clusters() -> dict[str, Scenario]:
    """The four clusters, each with its budget and evaluation period."""
    default = Scenario().with_overrides({"stop.time_s": 3000.0, "eval.every_s": 1.0})
    testbed = load_scenario(SCENARIOS / "paper_setup.yaml").with_overrides(
        {"stop.time_s": 20000.0, "eval.every_s": 5.0}
    )
    catalogue = default.with_overrides({
        "cluster": {"workers": 4, "device": ["a100", "v100", "t4", "t4"], "network": "10gbe",
                    "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.1}},
        "workload": {"name": "resnet18"}, "stop.time_s": 20000.0, "eval.every_s": 5.0,
    })  # fmt: skip
    comm_bound = default.with_overrides({
        "workload.param_bytes": 1.0e8, "cluster.uplink.bandwidth": 1.25e9,
        "cluster.downlink.bandwidth": 1.25e9, "cluster.server": {"ingress": 1.25e9, "egress": 1.25e9},
        "stop.time_s": 50000.0, "eval.every_s": 5.0,
    })  # fmt: skip
    return {
        "default": default,
        "testbed": testbed,
        "catalogue": catalogue,
        "comm_bound": comm_bound,
    }


def sequential_steps(problem: dict, seeds, bar) -> tuple[float, float]:
    """The median SGD steps one worker needs to reach the problem's target (one step a
    simulated second: 32 samples/s, no communication cost), its lr tuned; and that lr."""
    one = Scenario().with_overrides({
        **problem, "cluster": {"workers": 1, "speed": 32.0, "jitter": 1.0,
                               "uplink": {"bandwidth": 1e15, "latency": 0.0},
                               "downlink": {"bandwidth": 1e15, "latency": 0.0},
                               "server": {"ingress": None, "egress": None}},
        "stop.time_s": 200000.0, "eval.every_s": 20.0,
    })  # fmt: skip
    table = compare(one, ["bsp"], seeds, recipe="authors", tune={"training.lr": LRS},
                    tune_seeds=TUNE_SEEDS, robustness="none", workers=None, progress=bar)  # fmt: skip
    row = summarize(table).iloc[0]
    lr = table.attrs["scenarios"]["bsp"]["training"]["lr"]
    return float(row["time_to_target_s_median"]), lr


def mean_speed(scenario: Scenario, seeds) -> float:
    """The cluster's mean worker speed (samples/s) over the seeds' draws."""
    return float(np.mean([np.mean([w.speed for w in ashlsim.Simulation(scenario, seed=s).workers])
                          for s in seeds]))  # fmt: skip


def kendall_tau(a: list[str], b: list[str]) -> float:
    """Kendall's rank correlation of two orderings of the same schemes (1: the same order)."""
    pos_a, pos_b = {s: i for i, s in enumerate(a)}, {s: i for i, s in enumerate(b)}
    pairs = list(itertools.combinations(a, 2))
    agree = sum(np.sign(pos_a[x] - pos_a[y]) == np.sign(pos_b[x] - pos_b[y]) for x, y in pairs)
    return (2 * agree - len(pairs)) / len(pairs)


def agreement(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cluster and problem: the fastest scheme, whether it is the reference's, whether the
    reference's winner is significantly slower here, the rank correlation with the
    reference's order, and the largest factor between a scheme's normalised time here and
    under the reference."""
    rows = []
    for cluster, group in summary.groupby("cluster", sort=False):
        ref = group[group["problem"] == REFERENCE].set_index("strategy")
        ref_order = list(ref["normalised"].sort_values().index)
        for problem, part in group.groupby("problem", sort=False):
            part = part.set_index("strategy")
            order = list(part["normalised"].sort_values().index)
            best = order[0]
            factor = (part["normalised"] / ref["normalised"]).replace([np.inf, -np.inf], np.nan)
            rows.append({
                "cluster": cluster, "problem": problem, "fastest": best,
                "fastest_significant": bool((~part.drop(index=best)["overlaps_best"]).all()),
                "reference_fastest": ref_order[0], "agrees": best == ref_order[0],
                "reference_winner_slower_here": bool(not part.loc[ref_order[0], "overlaps_best"]),
                "kendall_tau": kendall_tau(ref_order, order),
                "normalised_factor_min": float(np.nanmin(factor)) if factor.notna().any() else math.nan,
                "normalised_factor_max": float(np.nanmax(factor)) if factor.notna().any() else math.nan,
            })  # fmt: skip
    return pd.DataFrame(rows)


def figure(summary: pd.DataFrame, path) -> None:
    names = list(summary["cluster"].drop_duplicates())
    fig, axes = plt.subplots(1, len(names), figsize=(4.0 * len(names), 4.2), sharey=True,
                             constrained_layout=True)  # fmt: skip
    problems = list(summary["problem"].drop_duplicates())
    markers = dict(zip(problems, "osDX", strict=False))
    for ax, cluster in zip(np.atleast_1d(axes), names, strict=True):
        part = summary[summary["cluster"] == cluster]
        schemes = list(part["strategy"].drop_duplicates())
        for j, problem in enumerate(problems):
            rows = part[part["problem"] == problem].set_index("strategy").reindex(schemes)
            x = np.arange(len(schemes)) + (j - (len(problems) - 1) / 2) * 0.16
            y, low, high = rows["normalised"], rows["normalised_low"], rows["normalised_high"]
            for i, s in enumerate(schemes):
                if not np.isfinite(y.iloc[i]):  # did not reach it in most seeds: a caret on top
                    ax.plot(x[i], 0.97, marker="^", color=scheme_color(s), ms=6, mfc="white",
                            transform=ax.get_xaxis_transform(), clip_on=False)  # fmt: skip
                    continue
                top = high.iloc[i] if np.isfinite(high.iloc[i]) else y.iloc[i]
                ax.errorbar(x[i], y.iloc[i], yerr=[[y.iloc[i] - low.iloc[i]], [top - y.iloc[i]]],
                            fmt=markers[problem], color=scheme_color(s), ms=6, capsize=2, lw=1,
                            mfc="white" if j % 2 else scheme_color(s))  # fmt: skip
                if not np.isfinite(high.iloc[i]):  # the interval has no upper end: an arrow
                    ax.annotate("", xy=(x[i], y.iloc[i] * 4), xytext=(x[i], y.iloc[i]),
                                arrowprops={"arrowstyle": "->", "color": scheme_color(s), "lw": 1})  # fmt: skip
        ax.set_xticks(range(len(schemes)), schemes, rotation=30)
        ax.set_yscale("log")
        ax.set_title(cluster)
        ax.grid(True, which="both", axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("time to target / the problem's sequential-SGD time")
    handles = [plt.Line2D([], [], marker=markers[p], color="black", ls="none",
                          mfc="white" if j % 2 else "black", label=PROBLEMS[p][1])
               for j, p in enumerate(problems)]  # fmt: skip
    handles.append(plt.Line2D([], [], marker="^", color="black", ls="none", mfc="white",
                              label="did not reach it (median); an arrow: no upper end"))  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    fig.suptitle("Time to target per scheme, normalised per problem: median and 95 % interval")
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    args = arguments(__doc__.splitlines()[0], extra=[
        ("--problems", {"default": ",".join(PROBLEMS), "help": "comma-separated"}),
        ("--clusters", {"default": "default,testbed,catalogue,comm_bound", "help": "comma-separated"}),
        ("--replot", {"action": "store_true", "help": "redraw the figure from summary.csv"}),
    ])  # fmt: skip
    out = output("proxy_transfer", args)
    if args.replot:  # the figure again from the summary written
        figure(pd.read_csv(out / "summary.csv"), out / "proxy_transfer.png")
        return
    problems = [p for p in args.problems.split(",") if p]
    if "digits_torch_cnn" in problems and importlib.util.find_spec("torch") is None:
        print('PyTorch absent (pip install -e ".[torch]"): digits_torch_cnn skipped')
        problems.remove("digits_torch_cnn")
    seeds = list(range(args.seeds))
    warnings.simplefilter("ignore", UserWarning)  # the step-size warning: the lr is tuned
    sys.path.insert(0, str(ROOT))  # the PyTorch factory lives in examples/
    chosen = {k: v for k, v in clusters().items() if k in args.clusters.split(",")}
    with Timer() as timer:
        sequential, summaries, runs = [], [], []
        bar = progress("proxy_transfer")
        for problem in problems:
            steps, lr = sequential_steps(PROBLEMS[problem][0], seeds, bar)
            sequential.append({"problem": problem, "sequential_steps": steps, "lr": lr})
            for cluster, base in chosen.items():
                scenario = base.with_overrides(PROBLEMS[problem][0])
                table = compare(scenario, list(MAIN_STRATEGIES), seeds, recipe="authors",
                                tune={"training.lr": LRS}, tune_seeds=TUNE_SEEDS,
                                robustness="none", workers=None, progress=bar)  # fmt: skip
                step_s = scenario.training.batch_size / mean_speed(scenario, seeds)
                unit = steps * step_s  # the problem's sequential-SGD time on this cluster
                summary = summarize(table).assign(cluster=cluster, problem=problem,
                                                  sequential_s=unit)  # fmt: skip
                summary["lr"] = [table.attrs["scenarios"][s]["training"]["lr"]
                                 for s in summary["strategy"]]  # fmt: skip
                for col, src in [("normalised", "median"), ("normalised_low", "low"),
                                 ("normalised_high", "high")]:  # fmt: skip
                    summary[col] = summary[f"time_to_target_s_{src}"] / unit
                summaries.append(summary)
                runs.append(table.assign(cluster=cluster, problem=problem))
        bar.close()
    summary = pd.concat(summaries, ignore_index=True)
    pd.concat(runs, ignore_index=True).to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    pd.DataFrame(sequential).to_csv(out / "sequential.csv", index=False)
    agree = agreement(summary)
    agree.to_csv(out / "agreement.csv", index=False)
    figure(summary, out / "proxy_transfer.png")
    columns = ["cluster", "problem", "strategy", "reached_target", "runs",
               "time_to_target_s_median", "normalised", "overlaps_best", "lr"]  # fmt: skip
    print(summary[columns].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(pd.DataFrame(sequential).to_string(index=False))
    print(agree.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(f"({timer.seconds:.0f} host s) wrote {out}")


if __name__ == "__main__":
    main()
