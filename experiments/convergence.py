"""Convergence: accuracy and loss against simulated time for every scheme, on a heterogeneous
cluster (digits with an MLP), on a larger synthetic task, and on the ASHL authors' testbed.

    python experiments/convergence.py [--quick]

Writes results/convergence/<task>/: history.csv, runs.csv, summary.csv, accuracy.png, loss.png.
"""

from __future__ import annotations

from _common import (
    ADAPTIVE,
    CORE,
    Timer,
    arguments,
    heterogeneous,
    output,
    paper_setup,
    print_summary,
    progress,
    synthetic_task,
)

from ashlsim import compare
from ashlsim.compare import write_comparison


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = output("convergence", args)
    seeds = list(range(args.seeds))
    tasks = {
        "digits_mlp": heterogeneous(args.quick),
        "synthetic_mlp": synthetic_task(args.quick),
        "paper_setup": paper_setup(args.quick),
    }
    for name, scenario in tasks.items():
        with Timer() as timer:
            bar = progress(name)
            table, history = compare(
                scenario,
                CORE + ADAPTIVE,
                seeds,
                return_history=True,
                progress=bar,
                robustness="none",
                workers=None,
            )
            bar.close()
            summary = write_comparison(scenario, table, history, out / name)
        print(f"\n{name} ({timer.seconds:.0f} host s; plain SGD, one lr for all, untuned)")
        print_summary(summary, scenario.stop.target_accuracy, ["bytes_up_mean"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
