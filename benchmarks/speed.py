"""Simulated seconds per host second: how fast a user's comparison runs, per scheme, on the
built-in default scenario (8 workers, MLP on digits) and on the ASHL authors' testbed
(3 workers, VGG16-sized messages, ``experiments/scenarios/paper_setup.yaml``), each scheme under
the authors' recipe as ``ashlsim compare`` runs it, evaluation included.

    python benchmarks/speed.py [--repeat 3] [--default-s 30] [--testbed-s 120]

Every run has a fixed simulated length (no target: a run that stopped early would look
faster); the figure is the median over ``--repeat`` runs with seeds 0, 1, ..., with the range.
Also printed: worker-iterations per host second and the share of host time the observer spent
evaluating the global model (``eval.every_s``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ashlsim import Scenario, Simulation, load_scenario  # noqa: E402
from ashlsim.compare import MAIN_RECIPE, MAIN_STRATEGIES, load_recipe, resolve  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def scenarios(default_s: float, testbed_s: float) -> dict[str, Scenario]:
    testbed = load_scenario(ROOT / "experiments" / "scenarios" / "paper_setup.yaml")
    fixed = {"stop.target_accuracy": None}
    return {
        "default": Scenario().with_overrides({**fixed, "stop.time_s": default_s}),
        "testbed": testbed.with_overrides({**fixed, "stop.time_s": testbed_s}),
    }


def measure(scenario: Scenario, seed: int) -> tuple[float, float, int, float]:
    """(simulated s, host s, worker-iterations, host s spent evaluating) of one run."""
    sim = Simulation(scenario.with_overrides({"seed": seed}))
    start = time.perf_counter()
    result = sim.run()
    host = time.perf_counter() - start
    return result.elapsed_s, host, int(result.workers["iterations"].sum()), sim.records.eval_host_s


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--default-s", type=float, default=30.0, help="simulated s per run")
    parser.add_argument("--testbed-s", type=float, default=120.0, help="simulated s per run")
    args = parser.parse_args(argv)
    print(f"# {cpu_model()}, {os.cpu_count()} cores, "
          f"recipe {MAIN_RECIPE}, {args.repeat} runs each")  # fmt: skip
    print(f"{'scenario':9} {'scheme':10} {'sim s':>6} {'sim s / host s [range]':>22} "
          f"{'iterations / host s':>20} {'eval share':>10}")  # fmt: skip
    recipe = load_recipe(MAIN_RECIPE)
    for name, base in scenarios(args.default_s, args.testbed_s).items():
        entries = {label: recipe[label] for label in MAIN_STRATEGIES}
        for label, scenario in resolve(base, entries).items():
            runs = [measure(scenario, seed) for seed in range(args.repeat)]
            rates = [sim / host for sim, host, _, _ in runs]
            its = statistics.median(n / host for _, host, n, _ in runs)
            share = statistics.median(ev / host for _, host, _, ev in runs)
            print(f"{name:9} {label:10} {runs[0][0]:6.0f} {statistics.median(rates):8.1f} "
                  f"[{min(rates):5.1f}, {max(rates):5.1f}] {its:20,.0f} {share:10.0%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
