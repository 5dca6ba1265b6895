"""Host time the cycle collector takes during a run, at the run loop's threshold and at another.

    python benchmarks/gctime.py [--workers 10000] [--scheme bsp] [--model softmax]
                                [--time-s 1.5] [--thresholds 50000,default] [--repeat 3]

Runs a row of ``scaling.py`` once per threshold and repeat, alternating, each in a fresh process,
and prints the young-generation threshold in force, the collections made during the run (by
generation), the host seconds they took (``gc.callbacks``), the objects they freed and the
run's host seconds. ``default`` is ``runloop.gc_threshold(N)``, what a run uses.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from scaling import run_in_process  # noqa: E402  (benchmarks/, the script's folder)


def measure(n, scheme, model, time_s, threshold, queue):
    import gc

    import scaling

    from ashlsim import Simulation, runloop

    if threshold != "default":
        runloop.gc_threshold = lambda workers: int(threshold)
    sim = Simulation(scaling.scenario(n, scheme, model, time_s))
    counts, spent, freed, started = [0, 0, 0], [0.0], [0], [0.0]
    running = [False]

    def timed(phase, info):
        if not running[0]:
            return
        if phase == "start":
            started[0] = time.perf_counter()
            counts[info["generation"]] += 1
        else:
            spent[0] += time.perf_counter() - started[0]
            freed[0] += info["collected"]

    gc.callbacks.append(timed)
    running[0] = True
    start = time.perf_counter()
    sim.run()
    host = time.perf_counter() - start
    running[0] = False
    queue.put((runloop.gc_threshold(n), counts, spent[0], freed[0], host))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--scheme", default="bsp")
    parser.add_argument("--model", default="softmax")
    parser.add_argument("--time-s", type=float, default=1.5)
    parser.add_argument("--thresholds", default="50000,default")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{args.model} {args.scheme}, {args.workers} workers, {args.time_s} simulated s")
    print(f"{'threshold':>10} {'collections':>14} {'gc host s':>9} {'freed':>6} {'run host s':>10}")
    for _ in range(args.repeat):
        for threshold in args.thresholds.split(","):
            used, counts, spent, freed, host = run_in_process(
                measure, args.workers, args.scheme, args.model, args.time_s, threshold
            )
            print(
                f"{used:>10,} {str(counts):>14} {spent:>9.2f} {freed:>6} {host:>10.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
