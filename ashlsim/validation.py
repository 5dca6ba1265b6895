"""Validation cases: scenarios whose answer is known in closed form, run through the simulator.

Each case returns a ``Check``: the formula, the predicted value, the simulated value with a 95 %
confidence interval, and the tolerance the comparison uses. For random cases the tolerance is
``Z_TOL`` standard errors of the simulated estimate (from its own sample statistics, never tuned);
for deterministic cases it is float rounding. ``experiments/validate.py`` writes the report
(docs/VALIDATION.md); ``tests/validation/`` runs the same cases smaller.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .engine import Simulation
from .scenario import Scenario

Z_TOL = 4.0  # a correct simulator fails a 4-sigma check about once in 16,000 runs
REL_EXACT = 1e-9  # deterministic cases: float rounding only


@dataclass
class Check:
    case: str
    formula: str
    predicted: float
    simulated: float
    ci_low: float
    ci_high: float
    tolerance: float  # |simulated - predicted| allowed
    samples: int

    @property
    def rel_error(self) -> float:
        return abs(self.simulated - self.predicted) / abs(self.predicted)

    @property
    def passed(self) -> bool:
        return abs(self.simulated - self.predicted) <= self.tolerance

    def row(self) -> dict:
        return {**asdict(self), "rel_error": self.rel_error, "passed": self.passed}


def _mean_check(case, formula, predicted, samples) -> Check:
    samples = np.asarray(samples, dtype=float)
    mean = float(samples.mean())
    se = float(samples.std(ddof=1) / math.sqrt(samples.size))
    return Check(
        case, formula, predicted, mean, mean - 1.96 * se, mean + 1.96 * se, Z_TOL * se, samples.size
    )


def _exact_check(case, formula, predicted, simulated, samples=1) -> Check:
    return Check(
        case,
        formula,
        predicted,
        simulated,
        simulated,
        simulated,
        REL_EXACT * abs(predicted),
        samples,
    )


def _worst(values, predicted) -> float:
    """The simulated value farthest from the prediction (deterministic cases check them all)."""
    values = np.asarray(values, dtype=float)
    return float(values[np.argmax(np.abs(values - predicted))])


def _timing_scenario(
    n,
    speeds,
    strategy,
    *,
    jitter=1.0,
    bandwidth=1e15,
    latency=0.0,
    param_bytes=4.0,
    ingress=None,
    time_s=100.0,
    seed=0,
    shards=1,
    racks=None,
) -> Scenario:
    """A timing-only cluster (no SGD): batch 1, so a compute takes ``jitter / speed`` s."""
    link = {"bandwidth": bandwidth, "latency": latency}
    server = {"ingress": ingress, "egress": None, "shards": shards}
    return Scenario.from_dict(
        {
            "name": "validation",
            "seed": seed,
            "cluster": {
                "workers": n,
                "speed": list(speeds),
                "jitter": jitter,
                "uplink": link,
                "downlink": link,
                "server": server,
                "racks": racks,
            },
            "model": {"name": "none"},
            "workload": {"param_bytes": param_bytes, "header_bytes": 0},
            "data": {"name": "synthetic", "n_samples": 20 * n + 100},
            "training": {"batch_size": 1},
            "strategy": strategy,
            "stop": {"time_s": time_s, "target_accuracy": None},
            "eval": {"every_s": time_s},
        }
    )


def _first_pushes(scenario: Scenario, n: int) -> np.ndarray:
    """How long each of the run's first ``n`` pushes took (from its event log)."""
    result = Simulation(scenario, events=True).run()
    pushes = result.events.query("kind == 'push'")
    return (pushes["end_s"] - pushes["start_s"]).to_numpy()[:n]


def harmonic(n: int) -> float:
    return float(sum(1.0 / k for k in range(1, n + 1)))


def bsp_exponential_round(n: int, mean_compute: float = 1.0, rounds: int = 2000, seed=0) -> Check:
    """BSP, N i.i.d. exponential compute times of mean c, negligible communication:
    a round lasts the maximum of N exponentials, E = c * H_N."""
    jitter = {"dist": "exponential", "mean": 1.0}
    predicted = mean_compute * harmonic(n)
    scenario = _timing_scenario(
        n,
        [1.0 / mean_compute] * n,
        {"name": "bsp"},
        jitter=jitter,
        time_s=predicted * rounds * 1.05,
        seed=seed,
    )
    sim = Simulation(scenario)
    sim.run()
    ends = np.array(sim.strategy.barrier.round_ends)
    return _mean_check(
        f"BSP round, N={n}, exp(c={mean_compute:g})",
        "c * H_N",
        predicted,
        np.diff(ends, prepend=0.0),
    )


def asp_exponential_throughput(means=(0.5, 1.0, 2.0, 4.0), time_s: float = 4000.0, seed=0):
    """ASP, worker i with exponential compute of mean m_i, no contention: pushes per second
    ``sum_i 1 / m_i``. Standard error from renewal theory: Var N_i(T) ~ T / m_i."""
    jitter = {"dist": "exponential", "mean": 1.0}
    n = len(means)
    scenario = _timing_scenario(
        n, [1.0 / m for m in means], {"name": "asp"}, jitter=jitter, time_s=time_s, seed=seed
    )
    result = Simulation(scenario).run()
    predicted = float(sum(1.0 / m for m in means))
    simulated = result.pushes_sent / result.elapsed_s
    se = math.sqrt(predicted / time_s)
    return Check(
        f"ASP throughput, {n} workers, exp means {list(means)}",
        "sum_i 1/E[t_i]",
        predicted,
        simulated,
        simulated - 1.96 * se,
        simulated + 1.96 * se,
        Z_TOL * se,
        result.pushes_sent,
    )


def ps_ingress_contention(n: int, nbytes: float = 1e6, capacity: float = 1e8, latency=0.002):
    """n workers push S bytes at the same instant through a PS ingress of B bytes/s (links
    faster than B/n): each push lasts ``latency + n * S / B`` (fluid max-min sharing)."""
    scenario = _timing_scenario(
        n,
        [1.0] * n,
        {"name": "bsp"},
        bandwidth=1e15,
        latency=latency,
        param_bytes=nbytes,
        ingress=capacity,
        time_s=5.0,
    )
    durations = _first_pushes(scenario, n)
    predicted = latency + n * nbytes / capacity
    return _exact_check(
        f"PS ingress, {n} simultaneous pushes",
        "L + n*S/B",
        predicted,
        _worst(durations, predicted),
        n,
    )


def ps_ingress_staggered(nbytes: float = 1e6, capacity: float = 1e6, lag: float = 0.25):
    """Two pushes of S bytes through B, the second ``lag`` s later (worked by hand): the first
    runs alone for ``lag``, then both share B; it ends at ``2S/B - lag``, the second at
    ``2S/B`` after the first started, i.e. lasts ``2S/B - lag``."""
    scenario = _timing_scenario(
        2,
        [1.0, 1.0 / (1.0 + lag)],
        {"name": "asp"},
        bandwidth=1e15,
        param_bytes=nbytes,
        ingress=capacity,
        time_s=3.0,
    )
    events = Simulation(scenario, events=True).run().events
    first = events.query("kind == 'push'").groupby("worker").first()
    durations = (first["end_s"] - first["start_s"]).to_numpy()
    predicted = 2 * nbytes / capacity - lag
    return _exact_check(
        "PS ingress, staggered pair (by hand)",
        "2S/B - lag, both pushes",
        predicted,
        _worst(durations, predicted),
        2,
    )


def ssp_two_speed_classes(
    staleness: int = 2, fast: float = 0.01, ratio: float = 4.0, time_s: float = 200.0
):
    """SSP(s), two fast workers (compute t) and two slow ones (compute ratio*t), constant times:
    after a burst of at most s extra clocks, the fast workers are held to the slow rate
    ``1 / (ratio * t)`` pushes per second each. Predicted: fast rate / slow rate = 1."""
    speeds = [1 / fast, 1 / fast, 1 / (ratio * fast), 1 / (ratio * fast)]
    scenario = _timing_scenario(4, speeds, {"name": "ssp", "staleness": staleness}, time_s=time_s)
    w = Simulation(scenario).run().workers
    fast_pushes, slow_pushes = w["pushes"][:2].to_numpy(), w["pushes"][2:].to_numpy()
    assert (fast_pushes - slow_pushes.min() <= staleness + 1).all(), "the burst exceeds s"
    simulated = fast_pushes.mean() / slow_pushes.mean()
    # counting granularity: the fast workers may be up to s + 1 pushes ahead at the end
    tolerance = (staleness + 1) / slow_pushes.mean() * (1 + REL_EXACT)
    return Check(
        f"SSP(s={staleness}) two speed classes, {ratio:g}x",
        "fast rate / slow rate = 1",
        1.0,
        simulated,
        simulated,
        simulated,
        tolerance,
        int(w["pushes"].sum()),
    )


def local_sgd_round(
    h: int = 4,
    computes=(0.01, 0.02, 0.05),
    bandwidths=(1e7, 2e6, 5e6),
    latency: float = 0.001,
    nbytes: float = 4e4,
):
    """Local SGD(H) with constant times and no contention: a round lasts
    ``max_i (H * t_i + pull_i + push_i)``, pull and push each ``latency + S / bandwidth_i``."""
    n = len(computes)
    strategy = {"name": "local_sgd", "local_steps": h}
    scenario = _timing_scenario(
        n,
        [1 / c for c in computes],
        strategy,
        latency=latency,
        bandwidth=list(bandwidths),
        param_bytes=nbytes,
        time_s=10.0,
    )
    sim = Simulation(scenario)
    sim.run()
    ends = np.diff(np.array(sim.strategy.barrier.round_ends), prepend=0.0)
    comm = [2 * (latency + nbytes / b) for b in bandwidths]
    predicted = max(h * c + m for c, m in zip(computes, comm, strict=True))
    return _exact_check(
        f"Local SGD(H={h}) round, {n} workers",
        "max_i(H t_i + pull_i + push_i)",
        predicted,
        _worst(ends, predicted),
        len(ends),
    )


def sharded_ingress_contention(n: int = 8, shards: int = 4, nbytes: float = 1e6,
                               capacity: float = 1e8, latency: float = 0.002):  # fmt: skip
    """n workers push S bytes at once through a PS of k shards, each with an ingress of B
    bytes/s (links faster): every shard carries n*S/k, so each push lasts
    ``latency + n * S / (k * B)``."""
    scenario = _timing_scenario(n, [1.0] * n, {"name": "bsp"}, latency=latency,
                                param_bytes=nbytes, ingress=capacity, time_s=5.0,
                                shards=shards)  # fmt: skip
    durations = _first_pushes(scenario, n)
    predicted = latency + n * nbytes / (shards * capacity)
    return _exact_check(
        f"sharded PS ingress, {n} pushes, {shards} shards",
        "L + n*S/(k*B)",
        predicted,
        _worst(durations, predicted),
        n,
    )


def rack_uplink_contention(m: int = 4, racks: int = 2, nbytes: float = 1e6,
                           uplink: float = 1e7, latency: float = 0.002):  # fmt: skip
    """Racks of m workers whose uplinks to the core carry B bytes/s (links and PS card
    faster): a rack's m simultaneous pushes share it, so each lasts ``latency + m * S / B``."""
    n = m * racks
    rack = {"size": m, "uplink": {"bandwidth": uplink}, "downlink": {"bandwidth": 1e15}}
    scenario = _timing_scenario(n, [1.0] * n, {"name": "bsp"}, latency=latency,
                                param_bytes=nbytes, time_s=5.0, racks=rack)  # fmt: skip
    durations = _first_pushes(scenario, n)
    predicted = latency + m * nbytes / uplink
    return _exact_check(
        f"rack uplink, racks of {m}",
        "L + m*S/B_rack",
        predicted,
        _worst(durations, predicted),
        n,
    )


def allreduce_round(algorithm: str = "ring", n: int = 8, nbytes: float = 4e6,
                    latency: float = 0.001, slow: float = 2.5e6):  # fmt: skip
    """All-reduce BSP with constant compute times, links of 1e7 B/s but one uplink of
    ``slow``: a round is the slowest computation, then the all-reduce, whose every step waits
    for its slowest message (Thakur, Rabenseifner & Gropp 2005). Ring: 2(n-1) steps of
    ``latency + (S/n) / slow``; halving-doubling (n a power of two): step k of the halving
    carries S/2^k, and the slow uplink sets each of the 2 log2 n steps."""
    computes = [0.01 * (1 + i % 3) for i in range(n)]
    bandwidth = [1e7] * n
    bandwidth[n // 2] = slow
    scenario = _timing_scenario(n, [1 / c for c in computes],
                                {"name": "allreduce", "algorithm": algorithm},
                                latency=latency, bandwidth=bandwidth, param_bytes=nbytes,
                                time_s=20.0)  # fmt: skip
    scenario = scenario.with_overrides({"cluster.downlink.bandwidth": 1e7})
    sim = Simulation(scenario)
    sim.run()
    rounds = np.diff(np.array(sim.strategy.round_ends), prepend=0.0)
    if algorithm == "ring":
        exchange = 2 * (n - 1) * (latency + nbytes / n / slow)
        formula = "max_i t_i + 2(p-1)(L + S/(p*B_min))"
    else:
        steps = [nbytes / 2**k for k in range(1, int(math.log2(n)) + 1)]
        exchange = 2 * sum(latency + size / slow for size in steps)
        formula = "max_i t_i + 2 sum_k (L + S/(2^k*B_min))"
    predicted = max(computes) + exchange
    return _exact_check(
        f"all-reduce BSP round ({algorithm}), {n} workers, one slow link",
        formula,
        predicted,
        _worst(rounds, predicted),
        len(rounds),
    )


def all_checks(quick: bool = False) -> list[Check]:
    """The report's cases (``quick``: fewer rounds, for tests)."""
    rounds = 300 if quick else 3000
    checks = [bsp_exponential_round(n, rounds=rounds, seed=n) for n in (2, 8, 32, 128)]
    checks.append(asp_exponential_throughput(time_s=500.0 if quick else 5000.0))
    checks += [ps_ingress_contention(n) for n in (2, 8, 32)]
    checks.append(ps_ingress_staggered())
    checks.append(ssp_two_speed_classes(time_s=50.0 if quick else 200.0))
    checks.append(local_sgd_round())
    checks.append(sharded_ingress_contention())
    checks.append(rack_uplink_contention())
    checks += [allreduce_round(algorithm) for algorithm in ("ring", "halving_doubling")]
    return checks
