"""Scaling: host seconds per simulated worker-iteration as the cluster grows, and the
timing-only throughput at 1,024 workers.

    python benchmarks/scaling.py [--sizes 16,64,256,1024] [--iterations 30000]
                                 [--models softmax,none,none-free,simpy] [--repeat 1]

Each configuration runs in a fresh process (so its peak memory is its own). Except in the
``none-free`` rows, the network is under contention: a 100 kB virtual model through a PS card a
quarter as wide as the links together, so transfers share the card at every N and the fluid
model is exercised. Target : cost per worker-iteration at N=1024 within 1.5x of N=16.

Two columns say where growth comes from. ``bare us``: with SGD, a bare NumPy loop doing the same
gradient work on the same data set (``overhead.bare_loop``, up to 50,000 steps), whose cost grows
with N too (N=10,000 trains on a 98 MB set, N=16 on a 1 MB one); ``sim/bare`` is the
simulator's cost over it. ``simpy`` rows: N bare SimPy processes, each waiting two timeouts per
iteration (what a timing-only ASP iteration through an uncontended card schedules): the floor of
any engine that gives every worker a SimPy process.

At 10,000 workers the cost is memory latency, which a shared VM's neighbours change from one
minute to the next (the floor itself grew 1.5x in a quiet stretch and 1.7-2x in busy ones,
benchmarks/README.md, "Sixth session"). ``--repeat R`` runs every row R times, in rounds over
all the rows (so each row sees each stretch of the VM), and prints medians with their range;
with the ``simpy`` row it also prints each row's growth over the floor's, from those medians.
Compare two versions of the code by alternating them in one sitting, not with two runs of this
script.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time
from queue import Empty

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

LINK = 1.25e7  # bytes/s, each worker's link (the default)


def scenario(n: int, scheme: str, model: str, time_s: float):
    from ashlsim import Scenario

    uncontended = model == "none-free"  # timing-only, PS card never a bottleneck
    # The PS card is as wide as a quarter of the links (bytes/s; None: unlimited): equally
    # contended at every N, so that the rows compare cluster sizes, not load.
    capacity = None if uncontended else n * LINK / 4
    server = {"ingress": capacity, "egress": capacity}
    model = "none" if uncontended else model
    return Scenario.from_dict(
        {
            "name": f"scaling-{n}",
            "cluster": {
                "workers": n,
                "speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5},
                "uplink": {"bandwidth": LINK},
                "downlink": {"bandwidth": LINK},
                "server": server,
            },
            "workload": {"param_bytes": 1.0e5},
            "model": {"name": model},
            # digits has 1,437 training samples: too few for 1,024 shards of a 32-sample batch
            "data": {
                "name": "synthetic",
                "n_samples": max(5000, 48 * n),
                "n_features": 64,
                "n_classes": 10,
            },
            "training": {"batch_size": 32},
            "strategy": {"name": scheme},
            "stop": {"time_s": time_s, "target_accuracy": None},
            "eval": {"every_s": time_s, "max_samples": 500},
        }  # fmt: skip
    )


def measure(n, scheme, model, time_s, queue):
    if model == "simpy":
        iterations, host = simpy_floor(n, time_s)
        bare = float("nan")
    else:
        from ashlsim import Simulation

        sim = Simulation(scenario(n, scheme, model, time_s))
        start = time.perf_counter()
        result = sim.run()
        host = time.perf_counter() - start
        iterations = int(result.workers["iterations"].sum())
        bare = bare_us(sim, iterations) if sim.model.trains else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((iterations, host, peak_mb, resident_mb(), bare))


def bare_us(sim, iterations: int) -> float:
    """Microseconds per step of a bare NumPy SGD loop on the simulation's model and data."""
    from overhead import bare_loop

    steps = min(iterations, 50_000)
    return bare_loop(sim, steps) / steps * 1e6


def simpy_floor(n: int, time_s: float) -> tuple[int, float]:
    """(iterations, host s) of n SimPy processes that each wait two timeouts per iteration, at
    the scenario's mean pace (a 100 kB pull at 12.5 MB/s, then 32 samples at 2,000/s plus the
    push): the engine's floor, with nothing simulated."""
    import gc

    import numpy as np
    import simpy

    env = simpy.Environment()
    rng = np.random.default_rng(0)
    pull = 1e5 / LINK
    compute = 32 / rng.lognormal(np.log(2000), 0.5, n) + pull
    done = [0]

    def worker(compute_s):
        timeout = env.timeout
        while True:
            yield timeout(pull)
            yield timeout(compute_s)
            done[0] += 1

    for c in compute:
        env.process(worker(float(c)))
    gc.freeze()
    start = time.perf_counter()
    env.run(until=time_s)
    return done[0], time.perf_counter() - start


def resident_mb() -> float:
    """Memory in use now (Linux; NaN elsewhere): the run's own, where the peak is often the
    data set's generation (``ashlsim.data.make_classification``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def run_isolated(*args):
    """``measure(*args)`` in a fresh process."""
    return run_in_process(measure, *args)


def run_in_process(target, *args):
    """What ``target(*args, queue)`` puts on ``queue``, run in a fresh process (its peak
    memory and its collector are its own)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:  # (a run that fails ends its process without an answer: say so, not wait)
        try:
            out = queue.get(timeout=1.0)
            break
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(f"the run {args} failed (its traceback is above)") from None
    proc.join()
    return out


def calibrate(n, scheme, model, iterations):
    """Simulated seconds that give about ``iterations`` worker-iterations (from a short run)."""
    probe = 0.5
    while True:
        its = run_isolated(n, scheme, model, probe)[0]
        if its >= min(iterations / 10, 2000):
            return probe * iterations / its
        probe *= 4


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256,1024")
    parser.add_argument("--iterations", type=int, default=30000, help="worker-iterations per run")
    parser.add_argument("--schemes", default="bsp,asp")
    parser.add_argument("--models", default="softmax,none,none-free")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each row, in rounds over all rows: medians"
    )
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = [
        (model, scheme)
        for model in args.models.split(",")
        for scheme in (["asp"] if model == "simpy" else args.schemes.split(","))
    ]
    plan: dict[tuple[str, str, int], float] = {}  # simulated seconds of each run
    runs: dict[tuple[str, str, int], list] = {}
    if args.repeat == 1:
        header(sizes[0])
    for model, scheme in rows:
        for n in sizes:
            # at least 40 iterations per worker, so per-worker start-up costs are amortised
            target = max(args.iterations, 40 * n)
            time_s = calibrate(n, scheme, model, target)
            out = run_isolated(n, scheme, model, time_s)
            for _ in range(3):  # a scheme whose pace changes (ADACOMM's local steps shrink)
                if out[0] >= 0.7 * target:  # is off the probe's extrapolation: longer
                    break
                time_s *= 1.2 * target / max(out[0], 1)
                out = run_isolated(n, scheme, model, time_s)
            plan[model, scheme, n], runs[model, scheme, n] = time_s, [out]
            if args.repeat == 1:
                report(runs, model, scheme, n, sizes[0])
    for _ in range(args.repeat - 1):  # rounds, so that every row sees each stretch of the VM
        for key, time_s in plan.items():
            model, scheme, n = key
            runs[key].append(run_isolated(n, scheme, model, time_s))
    if args.repeat > 1:
        print(f"median of {args.repeat} runs a row, in rounds over the rows; (range)")
        header(sizes[0])
        for model, scheme in rows:
            for n in sizes:
                report(runs, model, scheme, n, sizes[0])
        floor_note(runs, rows, sizes)
    print("model none: timing-only (no SGD) under PS contention; none-free: timing-only with an")
    print("uncontended PS; simpy: bare SimPy processes, two timeouts an iteration (the floor).")
    print("Throughput in worker-iterations per host second = 1e6 / us-per-iter.")
    return 0


def header(first: int) -> None:
    print(f"{'model':9} {'scheme':9} {'N':>5} {'iterations':>10} {'host s':>7} "
          f"{'us/iter':>8} {'vs N=' + str(first):>8} {'bare us':>8} {'sim/bare':>8} "
          f"{'peak MB':>8} {'end MB':>7}  (range of us/iter)")  # fmt: skip


def per_iteration(outs) -> list[float]:
    """Microseconds per worker-iteration of each run of a row."""
    return [host / its * 1e6 for its, host, *_ in outs]


def median_cost(runs, model, scheme, n) -> float:
    """The median microseconds per worker-iteration of (model, scheme, n)'s runs."""
    return statistics.median(per_iteration(runs[model, scheme, n]))


def report(runs, model, scheme, n, first) -> None:
    """One line: the median run of (model, scheme, n), and its cost over that at N=``first``."""
    outs = runs[model, scheme, n]
    pers = per_iteration(outs)
    per = statistics.median(pers)
    base = median_cost(runs, model, scheme, first)
    middle = sorted(range(len(outs)), key=pers.__getitem__)[len(outs) // 2]
    its, host, _, end, bare = outs[middle]
    peak = max(o[2] for o in outs)
    spread = f"  ({min(pers):.1f}-{max(pers):.1f})" if len(outs) > 1 else ""
    print(
        f"{model:9} {scheme:9} {n:>5} {its:>10,} {host:>7.2f} {per:>8.1f} "
        f"{per / base:>8.2f} {bare:>8.1f} {per / bare:>8.2f} {peak:>8.0f} {end:>7.0f}{spread}",
        flush=True,
    )


def floor_note(runs, rows, sizes) -> None:
    """Each row's growth over the floor's (the simpy row), from medians of the same rounds."""
    if ("simpy", "asp") not in rows or len(sizes) < 2:
        return

    def growth(model, scheme, n):
        return median_cost(runs, model, scheme, n) / median_cost(runs, model, scheme, sizes[0])

    for n in sizes[1:]:
        floor = growth("simpy", "asp", n)
        print(f"growth to N={n} over the SimPy floor's ({floor:.2f}): " + ", ".join(
            f"{m} {s} {growth(m, s, n) / floor:.2f}" for m, s in rows if m != "simpy"
        ))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
