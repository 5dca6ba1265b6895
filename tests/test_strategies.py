"""The baseline schemes against docs/DESIGN.md section 3: equivalences, invariants, arithmetic."""

import numpy as np
import pytest
from conftest import SCHEMES, clock_gaps_at_pulls, make
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ashlsim
from ashlsim import Simulation


def test_local_sgd_with_one_step_is_bsp():
    bsp = Simulation(make(strategy={"name": "bsp"}))
    bsp.run()
    local = Simulation(make(strategy={"name": "local_sgd", "local_steps": 1}))
    local.run()
    assert bsp.server.version == local.server.version > 10
    np.testing.assert_allclose(local.server.params, bsp.server.params, rtol=1e-12)


def test_local_sgd_takes_h_steps_per_push():
    result = ashlsim.run(make(strategy={"name": "local_sgd", "local_steps": 5}))
    w = result.workers
    assert (w["iterations"] == 5 * w["pushes"]).all()


def applied_sequence(sim):
    return [worker for worker, *_ in sim.server.staleness]


def test_ssp_with_a_huge_bound_is_asp():
    asp = Simulation(make(strategy={"name": "asp"}))
    asp.run()
    ssp = Simulation(make(strategy={"name": "ssp", "staleness": 10**9, "reads": "fresh"}))
    ssp.run()
    assert applied_sequence(asp) == applied_sequence(ssp)
    assert len(applied_sequence(asp)) > 100
    np.testing.assert_array_equal(asp.server.params, ssp.server.params)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    staleness=st.integers(0, 6),
    spread=st.floats(1.0, 20.0),
    workers=st.integers(2, 6),
    sigma=st.floats(0.0, 0.5),
)
def test_ssp_gap_never_exceeds_its_bound(staleness, spread, workers, sigma):
    speeds = list(np.geomspace(1000.0, 1000.0 * spread, workers))
    scenario = make(
        cluster={"workers": workers, "speed": speeds,
                 "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": sigma} if sigma else 1.0},
        model={"name": "none"}, workload={"param_bytes": 4e4},
        strategy={"name": "ssp", "staleness": staleness}, stop={"time_s": 1.0},
    )  # fmt: skip
    sim = Simulation(scenario, events=True)
    result = sim.run()
    gaps = clock_gaps_at_pulls(result.events, workers)
    assert gaps.max() <= staleness
    assert sim.strategy.clocks.max_gap_seen <= staleness
    if spread > 4 and staleness < 3:
        assert result.workers["wait_s"].iloc[-1] > 0  # the fastest is held back


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_push_is_applied_exactly_once(scheme):
    sim = Simulation(
        make(strategy={"name": scheme}, cluster={"jitter": {"dist": "exponential", "mean": 1}})
    )
    result = sim.run()  # the server raises on a second application of any push
    # (the keys it applied, recorded independently: tests/test_exact.py)
    assert result.pushes_applied <= result.pushes_sent
    pending = result.pushes_sent - result.pushes_applied
    assert pending == result.pushes_pending == sim.strategy.pending()
    # only a barrier or a bound at the PS holds pushes at the stop, fewer than N of them (all N
    # in a round whose all-reduce was under way)
    if scheme in ("asp", "ssp", "adsp"):
        assert pending == 0
    else:
        assert pending < sim.n_workers + (not sim.strategy.through_server)
    assert (result.workers["applied"] <= result.workers["pushes"]).all()


def test_applying_twice_is_refused():
    sim = Simulation(make(strategy={"name": "asp"}))
    sim.run()
    from ashlsim.cluster import Update

    update = Update(worker=0, seq=0, message=None, work=None, pulled_version=0, steps=1,
                    samples=16, pull_s=0.0, compute_s=0.0, push_s=0.0)  # fmt: skip
    sim.server.apply([update])
    with pytest.raises(RuntimeError, match="applied twice"):
        sim.server.apply([update])


def test_two_speed_cluster_asp_faster_bsp_idles_as_arithmetic_predicts():
    scenario = make(
        cluster={"workers": 8, "speed": [4000] * 4 + [1000] * 4},
        stop={"time_s": 4.0},
    )
    bsp = ashlsim.run(scenario)
    asp = ashlsim.run(scenario.with_overrides({"strategy.name": "asp"}))
    assert asp.history["updates"].iloc[-1] > bsp.history["updates"].iloc[-1]

    # prediction from the scenario: a BSP round lasts as long as the slow worker's
    # pull + compute + push; a fast worker idles for the rest
    c, w = scenario.cluster, scenario.workload
    nbytes = w.header_bytes + (64 * 10 + 10) * w.bytes_per_value
    comm = 2 * (c.uplink.latency.value + nbytes / c.uplink.bandwidth.value)
    b = scenario.training.batch_size
    fast, slow = max(c.speed.values), min(c.speed.values)
    predicted = 1 - (b / fast + comm) / (b / slow + comm)
    assert 0.6 < predicted < 0.75
    measured = bsp.workers.loc[bsp.workers["speed"] == fast, "idle_share"]
    round_s = b / slow + comm
    # the run may end inside a round: at most one round of difference
    assert measured.to_numpy() == pytest.approx(predicted, abs=round_s / bsp.elapsed_s)


def test_staleness_is_recorded():
    asp = ashlsim.run(make(strategy={"name": "asp"}))
    assert asp.workers["max_staleness"].max() >= 1
    bsp = ashlsim.run(make())
    assert (bsp.workers["max_staleness"] == 0).all()


def test_server_lr_scales_asp_steps():
    base = Simulation(make(strategy={"name": "asp"}, stop={"time_s": 0.05}))
    base.run()
    half = Simulation(make(strategy={"name": "asp", "server_lr": 0.5}, stop={"time_s": 0.05}))
    half.run()
    assert applied_sequence(base) == applied_sequence(half)
    assert not np.allclose(base.server.params, half.server.params)


def test_staleness_is_exact_in_versions_and_samples():
    """ASP: a push's staleness is the number of other pushes applied between its pull (the
    snapshot is taken when the pull starts) and its own application (at its push's end),
    counted from the event log alone; in samples, that times the batch."""
    jitter = {"dist": "exponential", "mean": 1.0}  # no two events at one instant: no ties
    sim = Simulation(make(strategy={"name": "asp"}, stop={"time_s": 0.5}, cluster={"jitter": jitter}),
                     events=True)  # fmt: skip
    result = sim.run()
    ev = result.events[result.events["end_s"] < result.elapsed_s]  # (not cut by the stop)
    pulls = ev[ev["kind"] == "pull"].sort_values("start_s")
    pushes = ev[ev["kind"] == "push"].sort_values("end_s")
    applied_at = np.sort(pushes["end_s"].to_numpy())
    expected = {w: [] for w in range(4)}
    for w in range(4):
        starts = pulls.loc[pulls["worker"] == w, "start_s"].to_numpy()
        ends = pushes.loc[pushes["worker"] == w, "end_s"].to_numpy()
        for start, end in zip(starts, ends, strict=False):
            # pushes applied after the snapshot and before this one (ties: none here)
            expected[w].append(int(np.sum((applied_at > start) & (applied_at < end))))
    got = {w: [] for w in range(4)}
    for w, versions, samples in sim.server.staleness:
        got[w].append(versions)
        assert samples == 16 * versions  # every push carries one batch of 16
    assert got == expected
    assert max(max(v) for v in got.values()) >= 3  # stale enough to catch an off-by-one
    per_worker = result.workers.set_index("worker")
    for w in range(4):
        assert per_worker.loc[w, "mean_staleness_samples"] == pytest.approx(16 * np.mean(got[w]))


def _ssp(reads, staleness, **sections):
    return make(strategy={"name": "ssp", "staleness": staleness, "reads": reads}, **sections)


def test_ssp_cached_reads_are_fresh_enough_and_save_pulls():
    """Ho et al.'s SSP: an iteration at clock c computes on a model that holds every update
    of clocks up to c - s - 1: its last pull saw a slowest clock of at least c - s. Checked from
    the event log alone: for each computation, the worker's clock then and the slowest clock
    at its last pull."""
    s, n = 2, 4
    jitter = {"dist": "exponential", "mean": 1.0}
    sim = Simulation(_ssp("cached", s, cluster={"jitter": jitter}, stop={"time_s": 1.0}),
                     events=True)  # fmt: skip
    result = sim.run()
    ev = result.events
    push_ends = [np.sort(ev.query("kind == 'push' and worker == @w")["end_s"].to_numpy())
                 for w in range(n)]  # fmt: skip

    def clock(w, t):  # pushes completed (applied) by time t
        return int(np.searchsorted(push_ends[w], t, side="right"))

    for w in range(n):
        pulls = ev.query("kind == 'pull' and worker == @w")["start_s"].to_numpy()
        for t in ev.query("kind == 'compute' and worker == @w")["start_s"]:
            last_pull = pulls[pulls <= t].max()
            slowest_then = min(clock(q, last_pull) for q in range(n))
            assert slowest_then >= clock(w, t) - s
    assert sim.strategy.cached > 50  # many iterations read the cache
    pulls = (ev["kind"] == "pull").sum()
    in_flight = pulls + sim.strategy.cached - (ev["kind"] == "compute").sum()
    assert 0 <= in_flight <= n  # every iteration pulled or read the cache (some not done)
    fresh = ashlsim.run(_ssp("fresh", s, cluster={"jitter": jitter}, stop={"time_s": 1.0}))
    per_iteration = result.workers["bytes_down"].sum() / result.workers["iterations"].sum()
    fresh_per = fresh.workers["bytes_down"].sum() / fresh.workers["iterations"].sum()
    assert per_iteration < 0.85 * fresh_per


def test_ssp_with_bound_zero_always_pulls():
    sim = Simulation(_ssp("cached", 0))
    sim.run()
    assert sim.strategy.cached == 0


def test_a_cached_read_sees_its_own_writes():
    """One worker: its own model after each push is what the PS holds, so reading the cache
    and pulling compute the same models, bit for bit (two epochs: the same number of steps)."""
    one = {"cluster": {"workers": 1, "speed": [1000]},
           "stop": {"time_s": None, "epochs": 2.0, "target_accuracy": None}}  # fmt: skip
    cached = Simulation(_ssp("cached", 5, **one))
    cached.run()
    fresh = Simulation(_ssp("fresh", 5, **one))
    fresh.run()
    assert cached.strategy.cached > 20 and fresh.strategy.cached == 0
    assert cached.server.version == fresh.server.version
    np.testing.assert_array_equal(cached.server.params, fresh.server.params)
    assert cached.env.now < fresh.env.now  # no pull time
