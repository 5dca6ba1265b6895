"""PS or all-reduce? BSP, ASP and ASHL through the PS, all-reduce BSP (ring, and recursive
halving-doubling) and decentralized gossip (AD-PSGD on a ring) without one, on four clusters:
the built-in one (compute-bound), and a network-bound one (100 MB messages, 10 Gbit/s links and PS card) as
it is, with its PS in 4 shards, and in racks of 4 with a 4:1 oversubscribed uplink each.

    python experiments/ps_or_allreduce.py [--quick]   (--quick: 2 seeds, not 6)

Every scheme learns the built-in problem (the main job's: an MLP learning a teacher network's
task to 95 %) as the ASHL authors train it (``--recipe authors``, as ``ashlsim compare`` does):
all-reduce BSP's recipe is BSP's, so the two learn the same and their times differ by the
communication alone. Writes results/ps_or_allreduce/: runs.csv, summary.csv and
ps_or_allreduce.png (median time to 95 % per cluster and scheme, with its interval; a bar's
interval is cut at twice the cluster's slowest median).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from _common import Timer, arguments, output, progress

from ashlsim import Scenario, compare
from ashlsim.entries import load_recipe
from ashlsim.stats import summarize

RECIPE = load_recipe("authors")
SCHEMES = {  # the authors' recipe per scheme; halving-doubling takes all-reduce BSP's
    "bsp": RECIPE["bsp"],
    "allreduce (ring)": RECIPE["allreduce"],
    "allreduce (halving-doubling)": {
        **RECIPE["allreduce"],
        "strategy.algorithm": "halving_doubling",
    },
    "asp": RECIPE["asp"],
    "ashl": RECIPE["ashl"],
    "gossip (ring)": RECIPE["gossip"],
}
LINK = 1.25e9  # 10 Gbit/s


def clusters() -> dict:
    """The four clusters, by the name the figure gives them."""
    builtin = Scenario()
    bound = builtin.with_overrides(
        {
            "name": "network_bound",
            "workload.param_bytes": 1.0e8,  # a 25 M-parameter network's messages
            "cluster.uplink.bandwidth": LINK,
            "cluster.downlink.bandwidth": LINK,
            "cluster.server": {"ingress": LINK, "egress": LINK},  # shared by all 8
            "stop.time_s": 10_000.0,
        }
    )
    racks = {"size": 4, "uplink": {"bandwidth": LINK}, "downlink": {"bandwidth": LINK}}
    return {
        "built-in (compute-bound)": builtin,
        "network-bound, one PS card": bound,
        "network-bound, PS in 4 shards": bound.with_overrides({"cluster.server.shards": 4}),
        "network-bound, racks of 4 (4:1)": bound.with_overrides({"cluster.racks": racks}),
    }


def plot(summary: pd.DataFrame, path) -> None:
    names = list(dict.fromkeys(summary["cluster"]))
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharey=True)
    for ax, name in zip(axes.flat, names, strict=True):
        rows = summary[summary["cluster"] == name]
        y = np.arange(len(rows))
        median = rows["time_to_target_s_median"].to_numpy()
        reached = np.isfinite(median)
        cap = 2 * median[reached].max() if reached.any() else 1.0
        shown = np.where(reached, median, 0.0)
        low = shown - np.where(reached, rows["time_to_target_s_low"].to_numpy(), 0.0)
        high = np.minimum(np.where(reached, rows["time_to_target_s_high"], 0.0), cap) - shown
        ax.barh(y, shown, xerr=[low, high], color="tab:blue", alpha=0.7, capsize=3)
        for i in np.flatnonzero(~reached):
            ax.text(0, y[i], " median: not reached", va="center", fontsize=8)
        ax.set_yticks(y, rows["strategy"])
        ax.set_title(name, fontsize=10)
        ax.set_xlim(0, None)
    axes[0, 0].invert_yaxis()
    for ax in axes[1]:
        ax.set_xlabel("simulated s to 95 % accuracy (median, 95 % interval)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    replot = ("--replot", {"action": "store_true", "help": "redraw the figure from summary.csv"})
    args = arguments(__doc__.splitlines()[0], seeds=6, extra=[replot])
    out = output("ps_or_allreduce", args)
    if args.replot:
        plot(pd.read_csv(out / "summary.csv"), out / "ps_or_allreduce.png")
        return
    seeds = list(range(args.seeds))
    tables = []
    with Timer() as timer:
        for name, scenario in clusters().items():
            bar = progress(name)
            table = compare(scenario, SCHEMES, seeds, recipe="authors", progress=bar,
                            robustness="none", workers=None)  # fmt: skip
            bar.close()
            tables.append(table.assign(cluster=name))
    runs = pd.concat(tables, ignore_index=True)
    runs.to_csv(out / "runs.csv", index=False)
    summary = summarize(runs, within=["cluster"])
    summary.to_csv(out / "summary.csv", index=False)
    plot(summary, out / "ps_or_allreduce.png")
    columns = ["cluster", "strategy", "reached_target", "time_to_target_s_median",
               "time_to_target_s_low", "time_to_target_s_high", "overlaps_best"]  # fmt: skip
    with pd.option_context("display.width", 160):
        print(summary[columns].to_string(index=False))
    print(f"({timer.seconds:.0f} host s) wrote {out}")


if __name__ == "__main__":
    main()
