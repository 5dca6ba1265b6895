"""Each way a scheme here may differ from its reference (paper or authors' code), switched one
at a time on the ASHL authors' testbed under the authors' recipe: the measured effect on the
time to 95 % accuracy, for docs/FIDELITY.md.

    python experiments/fidelity.py [--quick] [--seeds 10]

Writes results/fidelity/{runs,summary}.csv and prints the table quoted in docs/FIDELITY.md:
per variant, the median time to target over seeds with a 95 % distribution-free (order-statistic) interval, and the
median paired change against the default (same seed, same cluster and data).
"""

from __future__ import annotations

import math

from _common import Timer, arguments, output
from paper_reproduction import scenario

from ashlsim.compare import compare, load_recipe, median_interval, summarize

# (scheme, label, overrides on top of the authors' recipe for that scheme)
VARIANTS = [
    ("ashl", "default (paper / authors' code)", {}),
    ("ashl", "shl_plan: dense", {"strategy.shl_plan": "dense"}),
    ("ashl", "ratios: uniform", {"strategy.ratios": "uniform"}),
    ("ashl", "topk_scope: vector", {"strategy.topk_scope": "vector"}),
    ("ashl", "shl_bound: pull", {"strategy.shl_bound": "pull"}),
    ("ashl", "switch_check_s: 30", {"strategy.switch_check_s": 30.0}),
    ("ashl", "reset_optimizer: true", {"strategy.reset_optimizer": True}),
    ("ashl", "error_feedback: true", {"strategy.error_feedback": True}),
    ("ashl", "loss_preset: 0.5", {"strategy.loss_preset": 0.5}),
    ("ashl", "switch: never (AHL to the end)", {"strategy.switch": "never"}),
    ("adsp", "default (authors' variant, period 60 s)", {}),
    ("adsp", "period_s: 5", {"strategy.period_s": 5.0}),
    ("adsp", "variant: paper", {"strategy": {"name": "adsp", "variant": "paper"}}),
    ("bsp", "default (momentum on the PS)", {}),
    ("bsp", "momentum on the workers", {"strategy.server_optimizer.momentum": 0.0,
                                        "training.momentum": 0.9}),
    ("bsp", "lr_scaling: linear", {"strategy.lr_scaling": "linear"}),
    ("asp", "default (momentum on the PS)", {}),
    ("asp", "momentum on the workers", {"strategy.server_optimizer.momentum": 0.0,
                                        "training.momentum": 0.9}),
    ("ssp", "default (momentum on the PS)", {}),
    ("ssp", "momentum on the workers", {"strategy.server_optimizer.momentum": 0.0,
                                        "training.momentum": 0.9}),
    ("ssp", "reads: fresh", {"strategy.reads": "fresh"}),
]  # fmt: skip


def main() -> None:
    args = arguments(__doc__.splitlines()[0], seeds=10)
    out = output("fidelity", args)
    base = scenario(args.quick)
    recipe = load_recipe("authors")
    entries = {}
    for scheme, label, overrides in VARIANTS:
        fragment = dict(recipe[scheme])
        if "strategy" in overrides:  # a whole new strategy block replaces the recipe's
            fragment = {k: v for k, v in fragment.items() if not k.startswith("strategy.")}
        entries[f"{scheme}: {label}"] = {**fragment, **overrides}
    seeds = list(range(args.seeds))
    with Timer() as timer:
        table = compare(base, entries, seeds, recipe="authors", robustness="none", workers=None)
    table.to_csv(out / "runs.csv", index=False)
    summary = summarize(table)
    summary.to_csv(out / "summary.csv", index=False)
    times = table.pivot(index="seed", columns="strategy", values="time_to_target_s")
    print(f"({timer.seconds:.0f} host s, seeds {seeds[0]}-{seeds[-1]})")
    print("| scheme: variant | reached | median s [95 % interval] | change vs default [95 %] |")
    print("|---|---|---|---|")
    default = {}
    for row in summary.itertuples():
        scheme = row.strategy.split(":")[0]
        default.setdefault(scheme, row.strategy)
        cell = (f"{_s(row.time_to_target_s_median)} [{_s(row.time_to_target_s_low)}, "
                f"{_s(row.time_to_target_s_high)}]")  # fmt: skip
        change = ""
        if default[scheme] != row.strategy:
            ref, alt = times[default[scheme]], times[row.strategy]
            ratio = [(a if not math.isnan(a) else math.inf) / r - 1.0
                     for a, r in zip(alt, ref, strict=True) if not math.isnan(r)]  # fmt: skip
            if not ratio:
                change = "the default never reached it"
            else:
                med, low, high = median_interval(ratio)
                sig = "" if low > 0 or high < 0 else " n.s."
                change = f"{_pct(med)} [{_pct(low)}, {_pct(high)}]{sig}"
        print(f"| {row.strategy} | {row.reached_target}/{row.runs} | {cell} | {change} |")


def _s(v: float) -> str:
    return "never" if not math.isfinite(v) else f"{v:.3g}"


def _pct(v: float) -> str:
    return "+inf" if not math.isfinite(v) else f"{v:+.0%}"


if __name__ == "__main__":
    main()
