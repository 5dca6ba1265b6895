"""Heterogeneity: time to target accuracy against the speed spread of the cluster, from
homogeneous to 10x between the fastest and the slowest worker (same mean speed), per scheme.

    python experiments/heterogeneity.py [--quick]

Writes results/heterogeneity/: runs.csv, summary.csv, time_to_target.png.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from _common import ADAPTIVE, CORE, Timer, arguments, heterogeneous, output, spread_speeds

from ashlsim import sweep
from ashlsim.compare import summarize
from ashlsim.plots import scheme_color

RATIOS = [1.0, 2.0, 4.0, 7.0, 10.0]


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = output("heterogeneity", args)
    base = heterogeneous(args.quick)
    n = base.cluster.workers
    ratios = [1.0, 4.0, 10.0] if args.quick else RATIOS
    grid = {"cluster.speed": [spread_speeds(n, r) for r in ratios]}
    with Timer() as timer:
        runs = sweep(base, grid, CORE + ADAPTIVE, range(args.seeds), out=out / "sweep",
                     progress=not args.quiet)  # fmt: skip
    runs["spread"] = runs["cluster.speed"].map(lambda s: round(max(s) / min(s), 3))
    runs.drop(columns=["cluster.speed"]).to_csv(out / "runs.csv", index=False)
    stats = summarize(runs, within=["spread"])  # per spread: median, 95 % interval, reached
    stats.to_csv(out / "summary.csv", index=False)

    fig, ax = plt.subplots(figsize=(7.5, 4.8), constrained_layout=True)
    groups = list(stats.groupby("strategy", sort=False))
    seen = set()
    for i, (strategy, group) in enumerate(groups):
        scheme = strategy.split("(")[0]
        style = "--" if scheme in seen else "-"  # a second entry of one scheme: dashed
        seen.add(scheme)
        color = scheme_color(strategy, i)
        x = group["spread"] * 1.025 ** (i - (len(groups) - 1) / 2)  # apart: none hides another
        med = group["time_to_target_s_median"]
        high = group["time_to_target_s_high"].clip(upper=med.max() * 4)
        ax.errorbar(x, med, yerr=[med - group["time_to_target_s_low"], high - med], fmt=style,
                    marker="o", color=color, label=strategy, capsize=2, lw=1.2,
                    elinewidth=0.8)  # fmt: skip
        short = group["reached_target"] < group["runs"]  # some seeds never got there
        ax.plot(x[short], med[short], "o", mfc="white", color=color)
    ax.set(xlabel="speed spread: fastest / slowest worker (same mean speed)",
           ylabel="time to 95 % test accuracy (simulated s)", yscale="log",
           xscale="log",
           title=f"{n} workers, digits + MLP, plain SGD: median and interval (bars) of "
                 f"{args.seeds} seeds\n(hollow: not every seed reached the target)")  # fmt: skip
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])  # plain numbers on the log axis
    ax.set_xticks([], minor=True)
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.savefig(out / "time_to_target.png", dpi=120)
    pivot = stats.pivot(index="spread", columns="strategy", values="time_to_target_s_median")
    print(pivot.to_string(float_format=lambda x: f"{x:.3g}"))
    print(f"({timer.seconds:.0f} host s) wrote {out}")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
