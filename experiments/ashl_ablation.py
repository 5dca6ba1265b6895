"""ASHL ablation: what each part contributes. Profiling only (per-worker H and data shares, one
asynchronous stage), + hybrid stages (AHL then SHL, no compression), + compression (SHL with
top-K from the start, no AHL), and full ASHL; ASP and SSP for reference.

    python experiments/ashl_ablation.py [--quick]

Writes results/ashl_ablation/<scenario>/: runs.csv, summary.csv, accuracy.png, loss.png, bars.png.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _common import Timer, arguments, heterogeneous, output, paper_setup, print_summary, progress

from ashlsim import compare
from ashlsim.compare import write_comparison

VARIANTS = {
    "profiling only": "ashl(switch=never)",
    "+ hybrid stages": "ashl(r_preset=1.0, min_ratio=1.0)",
    "+ compression": "ashl(switch=immediate)",
    "full ASHL": "ashl",
    "ASP": "asp",
    "SSP(3)": "ssp(staleness=3)",
}


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = output("ashl_ablation", args)
    seeds = list(range(args.seeds))
    for name, scenario in {"digits_mlp": heterogeneous(args.quick),
                           "paper_setup": paper_setup(args.quick)}.items():  # fmt: skip
        with Timer() as timer:
            bar = progress(name)
            table, history = compare(scenario, list(VARIANTS.values()), seeds,
                                     return_history=True, progress=bar, robustness="none",
                                     workers=None)  # fmt: skip
            bar.close()
            names = {v: k for k, v in VARIANTS.items()}
            table["strategy"] = table["strategy"].map(names)
            history["strategy"] = history["strategy"].map(names)
            summary = write_comparison(scenario, table, history, out / name)
        fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        y = range(len(summary))
        med, low, high = (summary[f"time_to_target_s_{k}"] for k in ("median", "low", "high"))
        ax_t.barh(y, med, xerr=[med - low, (high - med).clip(upper=med.max())], color="C0")
        ax_b.barh(y, summary["bytes_up_mean"] / 1e6, xerr=summary["bytes_up_std"] / 1e6,
                  color="C1")  # fmt: skip
        for ax in (ax_t, ax_b):
            ax.set_yticks(list(y), summary["strategy"])
            ax.invert_yaxis()
            ax.grid(alpha=0.3, axis="x")
        ax_t.set(xlabel="time to target accuracy (simulated s): median, 95 % interval")
        ax_b.set(xlabel="bytes pushed until the run stopped (MB)")
        fig.suptitle(f"ASHL ablation, {name}: {args.seeds} seeds, plain SGD")
        fig.savefig(out / name / "bars.png", dpi=120)
        plt.close(fig)
        print(f"\n{name} ({timer.seconds:.0f} host s)")
        print_summary(summary, scenario.stop.target_accuracy, ["bytes_up_mean"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
