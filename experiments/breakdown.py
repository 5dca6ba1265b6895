"""Breakdown: where each worker's time goes (compute, communication, waiting) under each
scheme, and a Gantt chart of the first simulated seconds showing who waits for whom.

    python experiments/breakdown.py [--quick]

Writes results/breakdown/: workers.csv, time_shares.png, gantt.png.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from _common import CORE, arguments, heterogeneous, output

from ashlsim import run
from ashlsim.compare import scenario_for

COLORS = {"compute": "C0", "pull": "C2", "push": "C1", "wait": "C3"}


def main() -> None:
    args = arguments(__doc__.splitlines()[0], seeds=1)
    out = output("breakdown", args)
    base = heterogeneous(args.quick).with_overrides({"stop.target_accuracy": None,
                                                     "stop.time_s": 10.0})  # fmt: skip
    results = {label: run(scenario_for(base, label), events=True) for label in CORE}
    workers = pd.concat([r.workers.assign(strategy=k) for k, r in results.items()])
    workers.to_csv(out / "workers.csv", index=False)

    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 4), sharey=True,
                             constrained_layout=True)  # fmt: skip
    for ax, (label, r) in zip(axes, results.items(), strict=True):
        w = r.workers.sort_values("speed", ascending=False)
        total = r.elapsed_s
        bottom = 0
        # shades and hatches, not colours: colours mean schemes in every figure
        for column, name, shade, hatch in (("compute_s", "compute", "0.3", ""),
                                           ("comm_s", "communication", "0.65", "//"),
                                           ("wait_s", "waiting", "white", "..")):  # fmt: skip
            share = 100 * w[column].to_numpy() / total
            ax.bar(range(len(w)), share, bottom=bottom, label=name, color=shade, hatch=hatch,
                   edgecolor="black", linewidth=0.4)  # fmt: skip
            bottom = bottom + share
        ax.set_xticks(range(len(w)), [f"{s:.0f}" for s in w["speed"]], rotation=60, fontsize=7)
        ax.set(title=label, xlabel="worker speed (samples/s)")
    axes[0].set_ylabel("share of simulated time (%)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="outside lower center", ncol=3)
    fig.suptitle("Where each worker's time goes, fastest to slowest (10 simulated s)")
    fig.savefig(out / "time_shares.png", dpi=120)

    window = 2.0
    shown = ["bsp", "ssp(staleness=3)", "ashl"]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.4 * len(shown)), sharex=True,
                             constrained_layout=True)  # fmt: skip
    for ax, label in zip(axes, shown, strict=True):
        ev = results[label].events
        ev = ev[ev["start_s"] < window]
        order = results[label].workers.sort_values("speed")["worker"].tolist()
        for kind, color in COLORS.items():
            part = ev[ev["kind"] == kind]
            rows = part["worker"].map({w: i for i, w in enumerate(order)})
            ax.barh(rows, (part["end_s"].clip(upper=window) - part["start_s"]),
                    left=part["start_s"], color=color, height=0.8, label=kind)  # fmt: skip
        ax.set_yticks(range(len(order)), [f"w{w}" for w in order], fontsize=7)
        ax.set(title=f"{label}: workers by speed, the slowest at the bottom", ylabel="worker")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, ncol=4, fontsize=9, loc="outside upper center")
    axes[-1].set(xlabel="simulated time (s)", xlim=(0, window))
    fig.savefig(out / "gantt.png", dpi=120)
    summary = workers.groupby("strategy", sort=False)[["compute_s", "comm_s", "wait_s"]].mean()
    print(summary.to_string(float_format=lambda x: f"{x:.2f}"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
