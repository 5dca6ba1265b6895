"""ASHL ablation: what each part contributes. Profiling only (per-worker H and data shares, one
asynchronous stage), + hybrid stages (AHL then SHL, no compression), + compression (SHL with
top-K from the start, no AHL), and full ASHL; ASP and SSP for reference.

    python experiments/ashl_ablation.py [--quick]

Writes results/ashl_ablation/<scenario>/: runs.csv, summary.csv, accuracy.png, loss.png, bars.png.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
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
        # a median or an end of the interval that never reached it is drawn to the budget,
        # hatched (at least that long)
        budget = scenario.stop.time_s
        never = ~np.isfinite(med)
        shown = med.where(~never, budget)
        ax_t.barh(y, shown, color="C0", hatch=["//" if n else "" for n in never])
        ax_t.errorbar(shown, list(y), xerr=[shown - low.clip(upper=budget),
                      high.clip(upper=budget) - shown], fmt="none", color="k")  # fmt: skip
        for i in (i for i, n in enumerate(never) if n):
            ax_t.text(budget, i, " median beyond the budget", va="center", fontsize=8)
        scale, unit = (1e9, "GB") if summary["bytes_up_mean"].max() > 1e10 else (1e6, "MB")
        ax_b.barh(y, summary["bytes_up_mean"] / scale, xerr=summary["bytes_up_std"] / scale,
                  color="C1")  # fmt: skip
        for ax in (ax_t, ax_b):
            ax.set_yticks(list(y), summary["strategy"])
            ax.invert_yaxis()
            ax.grid(alpha=0.3, axis="x")
        ax_t.set(xlabel="time to target accuracy (simulated s): median, 95 % interval")
        if never.any():
            ax_t.set_xlim(0, budget * 1.35)
        ax_b.set(xlabel=f"bytes pushed until the run stopped ({unit})")
        fig.suptitle(f"ASHL ablation, {name}: {args.seeds} seeds, plain SGD")
        fig.savefig(out / name / "bars.png", dpi=120)
        plt.close(fig)
        print(f"\n{name} ({timer.seconds:.0f} host s)")
        print_summary(summary, scenario.stop.target_accuracy, ["bytes_up_mean"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
