"""Does staleness hurt on the built-in problem as it does on real networks? ASP's updates to
95 % at N = 1, 8, 32 and 128 workers (the default cluster's speeds and links, plain SGD at the
scenario's learning rate, so that nothing but the number of workers changes).

    python experiments/staleness.py [--quick] [--seeds 3]

More workers make each push staler (N - 1 other pushes land between a worker's pull and its
push, on average); if stale gradients cost progress, the updates needed grow with N. Prints
the median updates to target per N with its range over the seeds, and the mean staleness in
versions; writes results/staleness/runs.csv.
"""

from __future__ import annotations

import pandas as pd
from _common import Timer, arguments, output

import ashlsim
from ashlsim.compare import Runner

SIZES = [1, 8, 32, 128]
# simulated seconds per size: N workers make about N * 60 pushes per simulated second; the
# budget allows several times the updates N = 1 needs
BUDGET_S = {1: 1500.0, 8: 600.0, 32: 200.0, 128: 60.0}


def main() -> None:
    args = arguments(__doc__.splitlines()[0], seeds=3)
    out = output("staleness", args)
    seeds = list(range(args.seeds))
    sizes = SIZES[:3] if args.quick else SIZES
    base = ashlsim.Scenario().with_overrides({"strategy.name": "asp", "eval.every_s": 2.0})
    jobs = [
        (str(n), base.with_overrides({"cluster.workers": n, "stop.time_s": BUDGET_S[n]}), seed)
        for n in sizes
        for seed in seeds
    ]
    with Timer() as timer, Runner(workers=None) as runner:
        outcomes = runner.run(jobs)
    rows = [
        {**summary, "workers": int(label)}
        for (label, _, _), (summary, _) in zip(jobs, outcomes, strict=True)
    ]
    runs = pd.DataFrame(rows)
    runs.to_csv(out / "runs.csv", index=False)
    print(f"ASP, plain SGD lr 0.05, seeds {seeds} ({timer.seconds:.0f} host s)")
    print("| workers | updates to 95 % (median [min, max]) | reached | budget (simulated s) |")
    print("|---|---|---|---|")
    for n, group in runs.groupby("workers"):
        reached = group[group["stop_reason"] == "target_accuracy"]
        updates = group["updates"] if len(reached) == len(group) else reached["updates"]
        text = (
            f"{updates.median():,.0f} [{updates.min():,.0f}, {updates.max():,.0f}]"
            if len(reached)
            else f"not reached in {group['updates'].median():,.0f}"
        )
        print(f"| {n} | {text} | {len(reached)}/{len(group)} | {BUDGET_S[n]:g} |")


if __name__ == "__main__":
    main()
