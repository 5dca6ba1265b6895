"""Simulator overhead: host seconds of a simulated run over a bare NumPy loop doing the same
gradient evaluations (same model, shapes, dtype, batch indexing and SGD step), measured in one
process run so that the ratio holds on a noisy machine.

    python benchmarks/overhead.py [--time-s 10] [--repeat 5]

Prints one line per scheme and model: gradient evaluations, simulator host s (less the time the
observer spent evaluating the global model, which a user sets with ``eval.every_s``), bare-loop
host s, overhead = the median over ``--repeat`` pairs (simulator run, then bare loop) of
simulator / bare, with the range of the pairs, and the host microseconds per iteration of the
same run in timing-only mode (no SGD): the cost of the event machinery alone. For ASP and SSP,
``vs stale`` is the overhead against a bare loop that, like N asynchronous workers, takes each
gradient on the parameters of N steps ago (information: the targets are against the plain
loop). Targets: <= 1.25 for softmax, <= 1.10 for the MLP.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per run, as a sweep would use

import numpy as np  # noqa: E402

from ashlsim import Scenario, Simulation  # noqa: E402

SCHEMES = ["bsp", "asp", "ssp", "local_sgd", "ashl"]
MODELS = {"softmax": {"name": "softmax"}, "mlp": {"name": "mlp", "hidden": [128]}}


def scenario(scheme: str, model: dict, time_s: float) -> Scenario:
    strategy = {"name": scheme}
    if scheme == "local_sgd":
        strategy["local_steps"] = 4
    if scheme == "ashl":  # both stages within the run
        strategy |= {"switch": "epochs", "switch_epochs": 1.0}
    return Scenario.from_dict(
        {
            "name": "overhead",
            "cluster": {"workers": 16, "speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5}},
            "model": model,
            "data": {"name": "synthetic", "n_samples": 12000, "n_features": 784, "n_classes": 10},
            "training": {"batch_size": 32, "lr": 0.01},
            "strategy": strategy,
            "stop": {"time_s": time_s, "target_accuracy": None},
            "eval": {"every_s": time_s, "max_samples": 500},  # evaluation is not overhead
        }
    )


def simulate(s: Scenario) -> tuple[float, int, Simulation]:
    sim = Simulation(s)
    start = time.perf_counter()
    result = sim.run()
    # evaluating the global model is observation the user asked for, not simulator overhead
    host = time.perf_counter() - start - sim.records.eval_host_s
    return host, int(result.workers["iterations"].sum()), sim


def bare_loop(sim: Simulation, evaluations: int, seed: int = 0, snapshots: int = 1) -> float:
    """The same number of SGD steps, one worker's way: index a batch, gradient, update.
    ``snapshots`` > 1: each gradient is taken on the parameters of ``snapshots`` steps ago, as
    ``snapshots`` asynchronous workers do (they cannot all stay in the cache)."""
    model, data = sim.model, sim.data
    rng = np.random.default_rng(seed)
    batches = rng.integers(0, len(data.y_train), size=(evaluations, 32))
    params = model.init(rng)
    ring = [params] * snapshots
    X, y, lr = data.X_train, data.y_train, 0.01
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        _, grad = model.loss_and_grad(ring[i % snapshots], X[batch], y[batch])
        params = params - lr * grad
        ring[i % snapshots] = params
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-s", type=float, default=10.0, help="simulated seconds per run")
    parser.add_argument("--repeat", type=int, default=5, help="paired timings per scheme")
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    args = parser.parse_args(argv)
    print(
        f"{'model':8} {'scheme':10} {'grad evals':>10} {'sim s':>8} {'bare s':>8} {'overhead':>9}"
        f" {'(range)':>11} {'events us/it':>12} {'vs stale':>8}"
    )
    for model_name, model in MODELS.items():
        for scheme in args.schemes.split(","):
            s = scenario(scheme, model, args.time_s)
            sim_s, bare_s, stale_s = [], [], []
            for _ in range(args.repeat):  # in pairs, so both see the same machine state
                host, evaluations, sim = simulate(s)
                sim_s.append(host)
                bare_s.append(bare_loop(sim, evaluations))
                if scheme in ("asp", "ssp"):
                    stale_s.append(bare_loop(sim, evaluations, snapshots=sim.n_workers))
            # the median of the paired ratios: a busy neighbour slows a pair, not one side
            ratios = np.array(sim_s) / np.array(bare_s)
            overhead = float(np.median(ratios))
            # the same run without SGD (model: none): what the event machinery alone costs
            timing = s.with_overrides(
                {"model.name": "none", "workload.param_bytes": 4 * sim.model_size}
            )
            # the median of --repeat runs, as for the overhead (one run moves by +-0.3 us)
            runs = [simulate(timing) for _ in range(args.repeat)]
            events_us = np.median([host / its * 1e6 for host, its, _ in runs])
            spread = f"{ratios.min():.2f}-{ratios.max():.2f}"
            stale = f"{np.median(np.array(sim_s) / stale_s):.2f}" if stale_s else "-"
            print(
                f"{model_name:8} {scheme:10} {evaluations:>10,} {np.median(sim_s):>8.3f} "
                f"{np.median(bare_s):>8.3f} {overhead:>9.2f} {spread:>11} "
                f"{events_us:>12.1f} {stale:>8}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
