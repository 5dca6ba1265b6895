"""Compression: top-K ratio against bytes moved and time to accuracy, with and without error
feedback, for BSP on a cluster whose links matter (a 1 M-parameter virtual workload).

    python experiments/compression.py [--quick]

Writes results/compression/: runs.csv, summary.csv, compression.png.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _common import Timer, arguments, heterogeneous, output

from ashlsim import sweep

RATIOS = [1.0, 0.3, 0.1, 0.03, 0.01]


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = output("compression", args)
    base = heterogeneous(args.quick).with_overrides(
        {"workload.param_bytes": 4.0e6, "strategy.name": "bsp", "strategy.compression.name": "topk",
         "stop.time_s": 300.0 if args.quick else 600.0, "eval.every_s": 1.0}
    )  # fmt: skip
    ratios = [1.0, 0.1, 0.01] if args.quick else RATIOS
    grid = {
        "strategy.compression.ratio": ratios,
        "strategy.compression.error_feedback": [True, False],
    }
    with Timer() as timer:
        runs = sweep(
            base, grid, ["bsp"], range(args.seeds), out=out / "sweep", progress=not args.quiet
        )
    runs = runs.rename(columns={"strategy.compression.ratio": "ratio",
                                "strategy.compression.error_feedback": "error_feedback"})  # fmt: skip
    # bytes until the target: what a run moved by the time it stopped at the target accuracy
    runs["bytes_to_target"] = runs["bytes_up"].where(runs["time_to_target_s"].notna())
    runs.to_csv(out / "runs.csv", index=False)
    # medians over seeds; a seed that never reached the target has no time or bytes to it, so
    # a point is drawn only where every seed got there (the count is in summary.csv)
    grouped = runs.groupby(["error_feedback", "ratio"])
    stats = grouped[["time_to_target_s", "bytes_to_target", "final_accuracy"]].median()
    stats["reached"] = grouped["time_to_target_s"].count()
    stats["runs"] = grouped.size()
    stats.to_csv(out / "summary.csv")

    fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ef, group in stats.groupby(level="error_feedback"):
        g = group.droplevel("error_feedback")
        g = g[g["reached"] == g["runs"]]
        label = "error feedback" if ef else "no error feedback"
        style = "-o" if ef else "--s"
        ax_t.plot(g["time_to_target_s"], style, label=label)
        ax_b.plot(g["bytes_to_target"] / 1e6, style, label=label)
    for ax in (ax_t, ax_b):
        ax.set(xscale="log", xlabel="top-K ratio (share of values sent)")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    ax_t.set(ylabel="time to 95 % accuracy (simulated s)")
    ax_b.set(ylabel="bytes pushed until then (MB)", yscale="log")
    fig.suptitle(f"BSP with top-K compression, 8 workers, 1 M-parameter messages; "
                 f"median over {args.seeds} seeds (missing: not every seed reached it)")  # fmt: skip
    fig.savefig(out / "compression.png", dpi=120)
    print(stats.to_string(float_format=lambda x: f"{x:.4g}"))
    print(f"({timer.seconds:.0f} host s) wrote {out}")


if __name__ == "__main__":
    main()
