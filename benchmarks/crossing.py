"""The cost of locating the time to target: host seconds of a run on the built-in problem with
the version trail (``runloop.RunLoop._watch_target``: every applied version kept between two
evaluations, the versions before the crossing evaluated once) over the same run without it
(the time to target then read off the evaluation grid), in one process, alternating.

    python benchmarks/crossing.py [--repeat 5] [--schemes bsp,asp,ashl]

Prints per scheme (the authors' recipe, seed 0): updates to the target, the median host s of
each variant over ``--repeat`` pairs, their ratio (median and range of the pairs), and the host
s spent locating (evaluating the trail's versions) in the run with the trail.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ashlsim import Scenario, Simulation  # noqa: E402
from ashlsim.compare import load_recipe, resolve  # noqa: E402
from ashlsim.runloop import RunLoop  # noqa: E402


def timed(scenario, trail: bool) -> tuple[float, float, int]:
    """Host s of one run (less the observer's evaluations of the grid), the s spent on the
    trail's evaluations (0 without it), and the pushes applied."""
    sim = Simulation(scenario)
    if not trail:
        sim._watch_target = lambda: setattr(sim, "target_crossing", None)
    evaluate = sim.model.evaluate
    located = [0.0]

    def counting(params, X, y):  # the trail's evaluations run from ``_reached``
        started = time.perf_counter()
        out = evaluate(params, X, y)
        located[0] += time.perf_counter() - started
        return out

    start = time.perf_counter()
    if trail:
        reached = sim._reached

        def timed_reached(record):
            sim.model.evaluate = counting
            try:
                return reached(record)
            finally:
                sim.model.evaluate = evaluate

        sim._reached = timed_reached
    result = sim.run()
    host = time.perf_counter() - start - sim.records.eval_host_s
    return host, located[0], result.pushes_applied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--schemes", default="bsp,asp,ashl")
    args = parser.parse_args()
    assert RunLoop._watch_target  # the hook this benchmark switches off
    recipe = load_recipe("authors")
    print(f"{'scheme':8} {'pushes':>7} {'with s':>7} {'without s':>9} {'ratio':>6} "
          f"{'range':>13} {'locating s':>10}")  # fmt: skip
    for scheme in args.schemes.split(","):
        sc = resolve(Scenario(), {scheme: recipe[scheme]})[scheme]
        pairs = []
        for _ in range(args.repeat):
            with_trail = timed(sc, True)
            without = timed(sc, False)
            pairs.append((with_trail, without))
        ratios = np.array([w[0] / o[0] for w, o in pairs])
        w = np.median([p[0][0] for p in pairs])
        o = np.median([p[1][0] for p in pairs])
        located = np.median([p[0][1] for p in pairs])
        print(f"{scheme:8} {pairs[0][0][2]:7d} {w:7.2f} {o:9.2f} {np.median(ratios):6.3f} "
              f"{ratios.min():6.3f}-{ratios.max():6.3f} {located:10.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
