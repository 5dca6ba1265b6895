"""How an all-reduce round scales with the number of workers: events and host time per round of
all-reduce BSP (ring, and halving-doubling), next to BSP through one PS card, timing only.

    python benchmarks/allreduce_scale.py [--workers 64,256,1024,4096]

Prints, per scheme and N: rounds, events per round per worker (flat: a round costs O(N)
events), host microseconds per round per worker, and the host time of pricing one all-reduce
(``cluster.collectives``) alone.
"""

import argparse
import time

import ashlsim
from ashlsim import Simulation
from ashlsim.cluster import collectives


def timing_only(n: int, scheme: dict) -> ashlsim.Scenario:
    return ashlsim.Scenario.from_dict({
        "cluster": {"workers": n, "speed": 1000.0, "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.1},
                    "server": {"ingress": 1e11, "egress": 1e11}},
        "model": {"name": "none"}, "workload": {"param_bytes": 1e7},
        "data": {"name": "synthetic", "n_samples": 40 * n},
        "strategy": scheme, "stop": {"time_s": 20.0, "target_accuracy": None}, "eval": {"every_s": 20.0},
    })  # fmt: skip


def measure(n: int, label: str, scheme: dict) -> None:
    sim = Simulation(timing_only(n, scheme))
    events, step = [0], sim.env.step

    def counted():
        events[0] += 1
        step()

    sim.env.step = counted
    started = time.perf_counter()
    sim.run()
    host = time.perf_counter() - started
    rounds = sim.server.version
    per = events[0] / rounds / n
    price = ""
    if scheme["name"] == "allreduce":
        t0 = time.perf_counter()
        collectives.all_reduce(sim.network, list(range(n)), sim.dense_bytes, scheme["algorithm"])
        price = f"  pricing one all-reduce {1e3 * (time.perf_counter() - t0):.2f} ms"
    print(f"{label:<28} N={n:<5} rounds {rounds:<4} events/round/worker {per:5.2f}  "
          f"host us/round/worker {1e6 * host / rounds / n:6.1f}{price}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="64,256,1024,4096")
    sizes = [int(x) for x in parser.parse_args().workers.split(",")]
    schemes = {
        "allreduce (ring)": {"name": "allreduce", "algorithm": "ring"},
        "allreduce (halving-doubling)": {"name": "allreduce", "algorithm": "halving_doubling"},
        "bsp (one PS card)": {"name": "bsp"},
    }
    for label, scheme in schemes.items():
        for n in sizes:
            measure(n, label, scheme)


if __name__ == "__main__":
    main()
