"""The cost of going beyond the star, timing only. First, how an all-reduce round scales with
the number of workers: events and host time per round of all-reduce BSP (ring, and
halving-doubling), next to BSP through one PS card. Then what racks cost: the same ASP run
through the star's one card (its O(log n) model) and through racks (max-min over links, rack
uplinks and the card, ``cluster.fabric``), and through a PS of 4 shards.

    python benchmarks/beyond_star.py [--workers 64,256,1024,4096]

Prints, per scheme and N: rounds, events per round per worker (flat: a round costs O(N)
events), host microseconds per round per worker, and the host time of pricing one all-reduce
(``cluster.collectives``) alone; then host seconds per 1,000 pushes for the three networks.
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
    print()
    racks(64)


def racks(n: int) -> None:
    """Host seconds per 1,000 pushes of one ASP run of ``n`` workers through each network."""
    base = {"cluster": {"workers": n, "server": {"ingress": 1e8, "egress": 1e8}},
            "model": {"name": "none"}, "workload": {"param_bytes": 4e6}, "strategy": {"name": "asp"},
            "stop": {"time_s": 300, "target_accuracy": None}}  # fmt: skip
    networks = {
        "star (one card)": {},
        "PS in 4 shards": {"cluster.server.shards": 4},
        "racks of 8, uplink 2e7 B/s": {"cluster.racks": {"size": 8, "uplink": {"bandwidth": 2e7}}},
    }
    for label, overrides in networks.items():
        scenario = ashlsim.Scenario.from_dict(base).with_overrides(overrides)
        started = time.perf_counter()
        result = ashlsim.run(scenario, seed=0)
        host = time.perf_counter() - started
        print(f"ASP, {n} workers, {label:<28} {result.pushes_sent:>6} pushes  "
              f"{1e3 * host / result.pushes_sent:6.2f} host s per 1,000 pushes")  # fmt: skip


if __name__ == "__main__":
    main()
