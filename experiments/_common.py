"""What the experiment scripts share: arguments, output folders, the schemes and scenarios,
and how a comparison is printed.

Unless a script says otherwise (``paper_reproduction.py`` follows the authors' recipe and tunes),
every scheme runs with plain SGD at the same learning rate, batch and data, and its own
parameters at its paper's defaults: the "plain" recipe, untuned. Averaging schemes (BSP, Local
SGD, ADACOMM) then take steps about N times smaller per sample than ASP and SSP.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ashlsim import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "experiments" / "scenarios"
QUIET = False  # set by arguments(): no progress bars
CORE = ["bsp", "asp", "ssp(staleness=3)", "local_sgd(local_steps=2)", "ashl"]
ADAPTIVE = ["adsp", "adacomm", "bsp(backup_workers=1)"]


def arguments(description: str, seeds: int = 6, extra=()) -> argparse.Namespace:
    """The common flags, plus ``extra``: (flag, add_argument keywords) pairs."""
    parser = argparse.ArgumentParser(description=description)
    for flag, options in extra:
        parser.add_argument(flag, **options)
    parser.add_argument("--quick", action="store_true", help="fewer seeds and shorter runs")
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds (default {seeds})")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    global QUIET
    QUIET = args.quiet
    if args.seeds is None:
        args.seeds = 2 if args.quick else seeds
    return args


def output(name: str, args) -> Path:
    out = args.out or ROOT / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    return out


# The small digits problem (an MLP of 64 units, 95 % in a few epochs): the timing and
# heterogeneity studies run on it, and so do ``--quick`` runs and the tests of the paper's trends;
# the verdict studies (paper_reproduction.py, fidelity.py, the testbed) learn the built-in teacher
# task (docs/DESIGN.md section 5). A recipe's cosine lasts 10 epochs of digits (BSP reaches 95 %
# in 3-8).
DIGITS = {"data": {"name": "digits"}, "model.hidden": [64], "training.schedule_epochs": 10.0,
          "eval.every_s": 0.25}  # fmt: skip


def heterogeneous(quick: bool = False) -> Scenario:
    """The built-in default cluster (8 workers, log-normal speeds, sigma 0.6) learning digits."""
    s = load_scenario(SCENARIOS / "ashl_default.yaml")
    return s.with_overrides({**DIGITS, "stop.time_s": 60.0 if quick else 120.0})


def paper_setup(quick: bool = False) -> Scenario:
    """The ASHL authors' 3-worker testbed with a VGG16-sized virtual workload (quick: digits)."""
    s = load_scenario(SCENARIOS / "paper_setup.yaml")
    if quick:
        return s.with_overrides({**DIGITS, "stop.time_s": 400.0})
    return s


def synthetic_task(quick: bool = False) -> Scenario:
    """A larger task: 20,000 samples, 50 features, 10 classes, an MLP of 128 hidden units."""
    return heterogeneous(quick).with_overrides(
        {
            "name": "synthetic_mlp",
            "data": {
                "name": "synthetic",
                "n_samples": 20000,
                "n_features": 50,
                "n_classes": 10,
                "n_informative": 30,
                "class_sep": 1.5,
            },
            "model.hidden": [128],
            "stop.target_accuracy": 0.85,
        }  # fmt: skip
    )


def spread_speeds(n: int, ratio: float, mean: float = 2000.0) -> list[float]:
    """n speeds, geometrically spaced from fastest to ``ratio`` times slower, with the given
    mean: the cluster's total compute stays the same while its spread grows."""
    speeds = np.geomspace(1.0, 1.0 / ratio, n)
    return [float(v) for v in speeds * mean / speeds.mean()]


def progress(label: str):
    """A ``progress(label, seed)`` callback for ``compare`` that shows runs done out of the
    runs compare announces, on the terminal (nothing when piped or with ``--quiet``); call
    ``.close()`` on it at the end."""
    from ashlsim.progress import FinishedProgress

    return FinishedProgress(label, quiet=QUIET)


def print_summary(summary, target=None, extra=()) -> None:
    """Per scheme: seeds that reached the target, median time to it with its 95 % interval,
    then the verdict (significant or not against the fastest)."""
    from ashlsim.compare import verdict

    def cell(row):
        med, low, high = (row["time_to_target_s_median"], row["time_to_target_s_low"],
                          row["time_to_target_s_high"])  # fmt: skip
        return "never" if not np.isfinite(med) else f"{med:.3g} [{low:.3g}, {high:.3g}]"

    table = summary.assign(
        reached=summary["reached_target"].astype(str) + "/" + summary["runs"].astype(str),
        time_to_target=summary.apply(cell, axis=1),
    )
    columns = ["strategy", "reached", "time_to_target", *extra]
    print(table[columns].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(verdict(summary, target))


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
