"""Beyond the star: max-min fairness over many resources, sharded PS cards, racks, and
all-reduce among the workers, each against its closed form (docs/VALIDATION.md)."""

import math

import numpy as np
import pytest
from conftest import SCHEMES, make, scheme_block
from hypothesis import given, settings
from hypothesis import strategies as st

import ashlsim
from ashlsim import Simulation
from ashlsim.cluster import Environment, collectives
from ashlsim.cluster.fabric import Fabric, FabricNetwork, max_min_rates
from ashlsim.cluster.network import Network
from ashlsim.errors import ScenarioError

# ---- max-min fairness ---------------------------------------------------------------------


def test_max_min_rates_by_hand():
    # two flows share resource 0 (10); flow 1 also crosses resource 1 (2): it gets 2, flow 0
    # the remaining 8; flow 2 alone on resource 2 (5) gets 5
    assert max_min_rates([(0,), (0, 1), (2,)], [10.0, 2.0, 5.0]) == [8.0, 2.0, 5.0]
    assert max_min_rates([(0,)] * 4, [12.0]) == [3.0] * 4
    assert max_min_rates([()], []) == [math.inf]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True), min_size=1, max_size=8
    ),
    st.lists(st.floats(0.5, 100.0), min_size=5, max_size=5),
)
def test_max_min_rates_are_feasible_and_every_flow_has_a_bottleneck(routes, capacity):
    """The definition of max-min fairness: no resource is over its capacity, and every flow
    crosses a full resource on which no flow gets more than it (so it cannot grow without
    taking from a flow no faster than itself)."""
    routes = [tuple(r) for r in routes]
    rates = max_min_rates(routes, capacity)
    load = [0.0] * len(capacity)
    for route, rate in zip(routes, rates, strict=True):
        for r in route:
            load[r] += rate
    assert all(load[r] <= capacity[r] * (1 + 1e-9) for r in range(len(capacity)))
    for f, route in enumerate(routes):
        assert any(
            load[r] >= capacity[r] * (1 - 1e-9)
            and all(
                rates[g] <= rates[f] * (1 + 1e-9) for g, other in enumerate(routes) if r in other
            )
            for r in route
        )


# ---- the fabric in simulated time ------------------------------------------------------------


def finish_times(env, events):
    ends = {}
    for i, event in enumerate(events):
        event.callbacks.append(lambda _, i=i: ends.__setitem__(i, env.now))
    env.run()
    return [ends[i] for i in range(len(events))]


def test_fabric_shares_then_speeds_up_the_flow_left():
    env = Environment()
    fabric = Fabric(env, [10.0])
    a = fabric.start((0,), 10.0)  # 5 B/s while b runs, then 10
    b = fabric.start((0,), 5.0)  # 5 B/s: done at 1 s
    assert finish_times(env, [a.done, b.done]) == pytest.approx([1.5, 1.0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 2), st.floats(1e3, 1e6), st.integers(0, 3)), min_size=1,
             max_size=4),
    st.floats(1e5, 1e7),
)  # fmt: skip
def test_one_shard_without_racks_moves_bytes_as_the_star_does(transfers, card):
    """The fabric with one card and no racks is the star: the same finish for every transfer
    (workers 0-3, links of 1e6 B/s, pushes starting at given times)."""
    ends = []
    for build in (
        lambda env: Network(env, *links(4, 1e6, 0.0), card, card, faulty=True),
        lambda env: FabricNetwork(env, *links(4, 1e6, 0.0), card, card),
    ):
        env = Environment()
        network = build(env)
        done = {}

        def push(at, nbytes, worker, i, network=network, env=env, done=done):
            yield env.timeout(at)
            yield from network.move(worker, nbytes, "push")
            done[i] = env.now

        for i, (at, nbytes, _) in enumerate(transfers):
            env.process(push(at, nbytes, i, i))  # one transfer per worker: its own link
        env.run()
        ends.append([done[i] for i in range(len(transfers))])
    np.testing.assert_allclose(ends[0], ends[1], rtol=1e-9)


def links(n, bandwidth, latency):
    return [bandwidth] * n, [latency] * n, [bandwidth] * n, [latency] * n


def push_all(network, env, workers, nbytes):
    events = [env.process(network.move(w, nbytes, "push")) for w in workers]
    return finish_times(env, events)


@pytest.mark.parametrize("shards", [1, 2, 4, 8])
def test_a_sharded_push_takes_its_closed_form(shards):
    """S bytes through k equal cards of B (links much faster): S/(k*B) + latency."""
    env = Environment()
    S, B, latency = 8e6, 1e6, 0.002
    network = FabricNetwork(env, *links(1, 1e9, latency), B, B, shards=shards)
    [end] = push_all(network, env, [0], S)
    assert end == pytest.approx(latency + S / (shards * B), rel=1e-12)
    assert network.uncontended_time(0, S, "push") == pytest.approx(end, rel=1e-12)


def test_n_workers_pushing_through_k_shards_share_k_cards():
    """n simultaneous pushes of S through k cards of B: each card carries n*S/k, all end at
    n*S/(k*B)."""
    env = Environment()
    n, k, S, B = 6, 3, 3e6, 1e6
    network = FabricNetwork(env, *links(n, 1e9, 0.0), B, B, shards=k)
    ends = push_all(network, env, range(n), S)
    np.testing.assert_allclose(ends, n * S / (k * B), rtol=1e-12)


@pytest.mark.parametrize("m", [1, 2, 5, 8])
def test_a_rack_uplink_shared_by_m_flows_gives_each_a_share(m):
    """m workers of one rack push at once through its uplink of B (links and card faster):
    each gets B/m, so S takes m*S/B; a worker of another rack is not slowed."""
    env = Environment()
    S, B = 1e6, 1e6
    network = FabricNetwork(env, *links(m + 1, 1e9, 0.0), 1e12, 1e12, racks=(m, B, B))
    ends = push_all(network, env, range(m + 1), S)
    np.testing.assert_allclose(ends[:m], m * S / B, rtol=1e-12)
    assert ends[m] == pytest.approx(S / B, rel=1e-12)  # alone in the second rack


def test_a_rack_link_slower_than_its_share_is_link_bound():
    env = Environment()
    up = [1e5, 1e6, 1e6]  # worker 0's link (1e5) is below its share of the uplink (1e6 / 3)
    network = FabricNetwork(env, up, [0.0] * 3, up, [0.0] * 3, 1e12, 1e12, racks=(3, 1e6, 1e6))
    ends = push_all(network, env, range(3), 1e5)
    # worker 0: 1 s at its link; the other two share the remaining 9e5 B/s: 1e5 / 4.5e5 s
    assert ends[0] == pytest.approx(1.0)
    np.testing.assert_allclose(ends[1:], 1e5 / 4.5e5, rtol=1e-12)


def test_a_crash_and_an_outage_reach_every_shard_flow():
    env = Environment()
    network = FabricNetwork(env, *links(2, 1e6, 0.0), 5e5, 5e5, shards=2)
    # both push 1e6 through 2 cards of 5e5 (links 1e6): each half gets 2.5e5
    a = env.process(network.move(0, 1e6, "push"))
    b = env.process(network.move(1, 1e6, "push"))
    ends = []
    a.callbacks.append(lambda _: ends.append(env.now))

    def faults():
        yield env.timeout(0.5)
        network.drop(1)  # worker 1 crashes: its flows go
        network.set_link(0, False)  # and worker 0's link goes down for 1 s
        yield env.timeout(1.0)
        network.set_link(0, True)

    env.process(faults())
    env.run(until=10)
    assert a.triggered and not b.triggered
    # 0.5 s at 5e5 B/s (sharing the cards with worker 1), 1 s stalled, then alone: 7.5e5 B
    # at 1e6 B/s
    assert ends == [pytest.approx(0.5 + 1.0 + 0.75)]


# ---- all-reduce: the closed forms ---------------------------------------------------------------


@pytest.mark.parametrize("p", [2, 3, 4, 7, 16, 64])
def test_ring_allreduce_on_equal_links_is_thakur_rabenseifner_gropp(p):
    env = Environment()
    n, B, alpha = 4e6, 1e6, 0.003
    network = Network(env, *links(p, B, alpha), 1e9, 1e9)
    seconds, sent = collectives.ring(network, list(range(p)), n)
    assert seconds == pytest.approx(2 * (p - 1) * alpha + 2 * (p - 1) / p * n / B, rel=1e-12)
    np.testing.assert_allclose(list(sent.values()), 2 * (p - 1) / p * n, rtol=1e-12)


@pytest.mark.parametrize("p", [2, 4, 8, 32])
def test_halving_doubling_on_equal_links_is_rabenseifners_closed_form(p):
    env = Environment()
    n, B, alpha = 4e6, 1e6, 0.003
    network = Network(env, *links(p, B, alpha), 1e9, 1e9)
    seconds, sent = collectives.halving_doubling(network, list(range(p)), n)
    expected = 2 * math.log2(p) * alpha + 2 * (p - 1) / p * n / B
    assert seconds == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(list(sent.values()), 2 * (p - 1) / p * n, rtol=1e-12)


def test_halving_doubling_folds_the_members_beyond_a_power_of_two():
    """p = 6: two members send their n bytes to a partner first and get the result last (two
    steps of alpha + n/B), around a halving-doubling among 4."""
    env = Environment()
    n, B, alpha = 4e6, 1e6, 0.003
    network = Network(env, *links(6, B, alpha), 1e9, 1e9)
    seconds, sent = collectives.halving_doubling(network, list(range(6)), n)
    core = 2 * 2 * alpha + 2 * 3 / 4 * n / B
    assert seconds == pytest.approx(core + 2 * (alpha + n / B), rel=1e-12)
    assert sent[4] == sent[5] == n and sent[0] == sent[1] == pytest.approx(n + 1.5 * n)


def test_the_slowest_link_of_the_ring_sets_every_step():
    env = Environment()
    p, n, alpha = 5, 5e6, 0.001
    up = [1e6] * p
    up[3] = 2.5e5  # one slow uplink
    down = [1e6] * p
    down[1] = 5e5  # and a slower-than-most downlink elsewhere
    network = Network(env, up, [alpha] * p, down, [alpha] * p, 1e9, 1e9)
    seconds, _ = collectives.ring(network, list(range(p)), n)
    assert seconds == pytest.approx(2 * (p - 1) * (alpha + n / p / 2.5e5), rel=1e-12)


def test_latencies_meet_half_way_between_two_workers():
    env = Environment()
    network = Network(env, [1e9, 1e9], [0.004, 0.0], [1e9, 1e9], [0.0, 0.002], 1e9, 1e9)
    # 0 -> 1: (0.004 + 0.002) / 2; 1 -> 0: (0 + 0) / 2; the step waits for the slower
    assert collectives.step_s(network, [(0, 1, 0.0), (1, 0, 0.0)]) == pytest.approx(0.003)


def test_a_ring_across_racks_crosses_each_rack_uplink_once_per_step():
    """Racks of 4 with uplinks of B/2: the ring's one crossing message per rack and direction
    runs at B/2 (the uplink is not shared), so every step takes n/p / (B/2)."""
    env = Environment()
    p, n, B = 8, 8e6, 1e6
    network = FabricNetwork(env, *links(p, B, 0.0), 1e9, 1e9, racks=(4, B / 2, B / 2))
    seconds, _ = collectives.ring(network, list(range(p)), n)
    assert seconds == pytest.approx(2 * (p - 1) * (n / p) / (B / 2), rel=1e-12)


def test_halving_doubling_across_racks_shares_the_uplinks():
    """Its first step pairs i with i + 4: with racks of 4, all 4 messages of a rack cross its
    uplink at once (B/4 each); the later steps stay inside the racks."""
    env = Environment()
    p, n, B = 8, 8e6, 1e6
    network = FabricNetwork(env, *links(p, B, 0.0), 1e9, 1e9, racks=(4, B, B))
    seconds, _ = collectives.halving_doubling(network, list(range(p)), n)
    across = 2 * (n / 2) / (B / 4)
    inside = 2 * (n / 4 + n / 8) / B
    assert seconds == pytest.approx(across + inside, rel=1e-12)


def test_the_scheme_names_the_algorithms_the_port_knows():
    from ashlsim.strategies.allreduce import ALGORITHMS

    assert set(ALGORITHMS) == set(collectives.ALGORITHMS)


def test_a_ring_of_1024_prices_one_step_not_each_step(monkeypatch):
    env = Environment()
    network = Network(env, *links(1024, 1e9, 1e-5), 1e12, 1e12)
    calls, rates = [], collectives.max_min_rates

    def counting(routes, capacity):
        calls.append(len(routes))
        return rates(routes, capacity)

    monkeypatch.setattr(collectives, "max_min_rates", counting)
    collectives.ring(network, list(range(1024)), 1e8)
    assert calls == [1024]  # one pricing of 1,024 messages, for all 2,046 steps


# ---- all-reduce BSP in a run ------------------------------------------------------------------

ALLREDUCE = {"name": "allreduce"}


def push_nbytes(scenario) -> float:
    w = scenario.workload
    return w.header_bytes + (64 * 10 + 10) * w.bytes_per_value  # softmax on digits


@pytest.mark.parametrize("algorithm", ["ring", "halving_doubling"])
def test_a_round_is_the_slowest_computation_then_the_allreduce(algorithm):
    scenario = make(strategy={"name": "allreduce", "algorithm": algorithm})
    sim = Simulation(scenario, events=True)
    result = sim.run()
    c = scenario.cluster
    compute = scenario.training.batch_size / np.array(c.speed.values)
    p, n, B, alpha = c.workers, push_nbytes(scenario), c.uplink.bandwidth.value, 0.001
    if algorithm == "ring":
        exchange = 2 * (p - 1) * alpha + 2 * (p - 1) / p * n / B
    else:
        exchange = 2 * math.log2(p) * alpha + 2 * (p - 1) / p * n / B
    T = compute.max() + exchange
    ends = np.array(sim.strategy.round_ends)
    np.testing.assert_allclose(ends, T * np.arange(1, len(ends) + 1), rtol=1e-9)
    ev = result.events
    assert set(ev["kind"]) == {"compute", "wait", "exchange", "pull", "push"}
    assert (ev.query("kind in ['pull', 'push']")["end_s"] == ev.query(
        "kind in ['pull', 'push']")["start_s"]).all()  # fmt: skip
    w = result.workers
    rounds = len(ends)
    np.testing.assert_allclose(w["comm_s"], rounds * exchange, rtol=1e-9)
    assert (w["bytes_up"] == rounds * round(2 * (p - 1) / p * n)).all()
    summary = result.summary()
    assert summary["bytes_up"] == summary["bytes_down"] == w["bytes_up"].sum()


def snapshots_by_version(block, time_s):
    """The PS's model after each round of a run of ``block``: {version: params}."""
    sim = Simulation(make(strategy=block, stop={"time_s": time_s}))
    snapshots = {}
    apply = sim.server.apply

    def recording(updates, scale=1.0):
        apply(updates, scale)
        snapshots[sim.server.version] = sim.server.params.copy()

    sim.server.apply = recording
    sim.run()
    return snapshots


@pytest.mark.parametrize(
    "ps, allreduce",
    [({"name": "bsp"}, {"name": "allreduce"}),
     ({"name": "local_sgd", "local_steps": 4}, {"name": "allreduce", "local_steps": 4}),
     ({"name": "bsp"}, {"name": "allreduce", "algorithm": "halving_doubling"})],
)  # fmt: skip
def test_allreduce_learns_what_its_ps_scheme_learns(ps, allreduce):
    """The same deltas averaged: after the same rounds, the same model (to float rounding: the
    deltas are summed in arrival order, which differs)."""
    a, b = snapshots_by_version(ps, 12.0), snapshots_by_version(allreduce, 12.0)
    common = sorted(set(a) & set(b))
    assert len(common) > 30
    for version in common:
        np.testing.assert_allclose(b[version], a[version], rtol=1e-12, atol=1e-14)


def test_allreduce_refuses_compression_naming_the_field():
    with pytest.raises(ScenarioError, match=r"strategy.compression.name.*identity"):
        make(strategy={"name": "allreduce", "compression": {"name": "topk", "ratio": 0.1}})


def test_allreduce_wait_stalls_the_ring_until_the_worker_is_back():
    crash = {"worker": 0, "at_s": 0.5, "kind": "crash", "recover_after_s": 1.0}
    sim = Simulation(make(strategy=ALLREDUCE, faults=[crash], stop={"time_s": 3.0}))
    sim.run()
    ends = np.array(sim.strategy.round_ends)
    assert not ((ends > 0.5) & (ends < 1.5)).any()  # no round while worker 0 is down
    assert (ends > 1.5).sum() > 10
    assert sim.server.applied_pushes == 4 * sim.server.version  # every round had all four


def counting_allreduces(sim, extra_s=0.0):
    """Record (time, members) of each all-reduce ``sim`` starts; each lasts ``extra_s``
    longer than the network says."""
    calls, allreduce = [], sim.strategy.port.all_reduce

    def counting(workers, algorithm):
        calls.append((sim.env.now, len(workers)))
        seconds, sent = allreduce(workers, algorithm)
        return seconds + extra_s, sent

    sim.strategy.port.all_reduce = counting
    return calls


def test_allreduce_drop_reforms_the_ring_without_the_crashed_worker():
    forever = {"worker": 0, "at_s": 0.5, "kind": "crash"}
    block = {"name": "allreduce", "on_failure": "drop", "failure_timeout_s": 0.1}
    sim = Simulation(make(strategy=block, faults=[forever], stop={"time_s": 3.0}))
    calls = counting_allreduces(sim)
    sim.run()
    sizes = [size for _, size in calls]
    assert sizes[0] == 4 and sizes[-1] == 3 and set(sizes) == {3, 4}
    first_without = calls[sizes.index(3)][0]
    assert 0.6 - 1e-9 <= first_without < 0.7  # re-formed once the timeout passed


def test_a_crash_during_the_allreduce_abandons_it_and_loses_the_delta():
    """Worker 2 crashes while the first round's all-reduce (made 0.2 s long) runs: that
    all-reduce is abandoned, worker 2's delta is lost; after its restart it computes again and
    the round closes with all four, a whole all-reduce later."""
    compute = 16 / 1000  # the slow workers' batch
    crash_at, back_after = compute + 0.1, 0.3
    crash = {"worker": 2, "at_s": crash_at, "kind": "crash", "recover_after_s": back_after}
    sim = Simulation(make(strategy=ALLREDUCE, faults=[crash], stop={"time_s": 2.0}))
    calls = counting_allreduces(sim, extra_s=0.2)
    sim.run()
    assert calls[0] == (pytest.approx(compute), 4)
    assert calls[1] == (pytest.approx(crash_at + back_after + compute), 4)
    assert sim.strategy.round_ends[0] > crash_at + back_after + compute + 0.2
    assert [w.dropped for w in sim.workers] == [0, 0, 1, 0]  # its delta, lost with it
    assert sim.server.applied_pushes == 4 * sim.server.version


def test_allreduce_is_deterministic_and_bytes_are_not_through_the_ps():
    scenario = make(strategy=ALLREDUCE, cluster={"server": {"ingress": 1.0, "egress": 1.0}})
    a, b = ashlsim.run(scenario), ashlsim.run(scenario)
    assert a.history.equals(b.history)
    # a PS card of 1 B/s would stop every PS scheme; the all-reduce never touches it
    assert a.history["version"].iloc[-1] > 50


# ---- sharded PS and racks in a run ------------------------------------------------------------

FAST = {"bandwidth": 1e9, "latency": 0.001}


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_a_bsp_round_through_a_sharded_ps_is_its_closed_form(shards):
    """Four equal workers pull at once through k egress cards of B (links faster), compute,
    push at once through k ingress cards: 2 * (latency + 4 S / (k B)) + compute."""
    B = 2e5
    scenario = make(cluster={"speed": 1000.0, "uplink": FAST, "downlink": FAST,
                             "server": {"ingress": B, "egress": B, "shards": shards}})  # fmt: skip
    sim = Simulation(scenario)
    sim.run()
    S = push_nbytes(scenario)
    T = 2 * (0.001 + 4 * S / (shards * B)) + 16 / 1000
    ends = np.array(sim.strategy.barrier.round_ends)
    np.testing.assert_allclose(ends, T * np.arange(1, len(ends) + 1), rtol=1e-9)


def test_a_bsp_round_through_oversubscribed_racks_is_its_closed_form():
    """Racks of 2 whose links to the core carry B: a rack's two pulls (and pushes) share it,
    B/2 each; the PS card is unbounded."""
    B = 1e5
    scenario = make(cluster={"speed": 1000.0, "uplink": FAST, "downlink": FAST,
                             "racks": {"size": 2, "uplink": {"bandwidth": B},
                                       "downlink": {"bandwidth": B}}})  # fmt: skip
    sim = Simulation(scenario)
    sim.run()
    S = push_nbytes(scenario)
    T = 2 * (0.001 + 2 * S / B) + 16 / 1000
    ends = np.array(sim.strategy.barrier.round_ends)
    np.testing.assert_allclose(ends, T * np.arange(1, len(ends) + 1), rtol=1e-9)


def test_without_shards_or_contended_racks_a_run_is_the_stars():
    """Racks whose links are never the bottleneck change nothing: the same rounds as the
    star's (its own model of the card), to float rounding."""
    star = Simulation(make(cluster={"server": {"ingress": 2e6, "egress": 2e6}}))
    star.run()
    racked = Simulation(make(cluster={"server": {"ingress": 2e6, "egress": 2e6},
                                      "racks": {"size": 2, "uplink": {"bandwidth": 1e12},
                                                "downlink": {"bandwidth": 1e12}}}))  # fmt: skip
    racked.run()
    a, b = star.strategy.barrier.round_ends, racked.strategy.barrier.round_ends
    assert len(a) == len(b) > 20
    np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_runs_on_shards_and_racks_with_faults_and_changing_bandwidth(scheme, tmp_path):
    series = tmp_path / "card.csv"
    series.write_text("time_s,bandwidth\n0,4e5\n0.7,1e5\n1.2,8e5\n")
    faults = [{"kind": "crash", "worker": 1, "at_s": 0.6, "recover_after_s": 0.5},
              {"kind": "link_down", "worker": 2, "at_s": 0.3, "duration_s": 0.4}]  # fmt: skip
    cluster = {"server": {"ingress": {"series": str(series), "column": "bandwidth"}, "egress": 4e5, "shards": 2},
               "racks": {"size": 2, "uplink": {"bandwidth": 3e5}}}  # fmt: skip
    scenario = make(cluster=cluster, strategy=scheme_block(scheme, faults=True), faults=faults)
    result = ashlsim.run(scenario)
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0]
    assert (
        result.pushes_applied + result.pushes_dropped + result.pushes_pending == result.pushes_sent
    )
    again = ashlsim.run(scenario)
    np.testing.assert_array_equal(result.final_params, again.final_params)


def test_shards_and_racks_are_checked_naming_the_field():
    with pytest.raises(ScenarioError, match=r"cluster.server.shards"):
        make(cluster={"server": {"shards": 0}})
    with pytest.raises(ScenarioError, match=r"cluster.racks.size"):
        make(cluster={"racks": {"size": 0}})
    with pytest.raises(ScenarioError, match=r"cluster.racks.uplink.bandwidth"):
        make(cluster={"racks": {"uplink": {"bandwidth": -1}}})


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(st.tuples(st.floats(0, 1), st.floats(1e4, 1e6), st.sampled_from(["push", "pull"])),
             min_size=1, max_size=6),
    st.sampled_from([None, 2, 3]),
)  # fmt: skip
def test_k_shards_move_bytes_as_one_card_of_k_times_the_capacity(shards, transfers, rack):
    """Every transfer splits evenly over the shards, so each shard sees the same flows at
    the same rates: k cards of B carry what one card of k*B carries (the engine's model),
    with or without racks, for any arrivals."""
    ends = []
    for k, card in ((shards, 3e5), (1, 3e5 * shards)):
        env = Environment()
        racks = None if rack is None else (rack, 4e5, 4e5)
        up = [1e6, 5e5, 2e5, 8e5, 1e6, 3e5]
        network = FabricNetwork(env, up, [0.001] * 6, up[::-1], [0.002] * 6, card, card,
                                shards=k, racks=racks)  # fmt: skip
        done = {}

        def move(at, nbytes, direction, worker, network=network, env=env, done=done):
            yield env.timeout(at)
            yield from network.move(worker, nbytes, direction)
            done[worker] = env.now

        for worker, (at, nbytes, direction) in enumerate(transfers):
            env.process(move(at, nbytes, direction, worker))
        env.run()
        ends.append([done[w] for w in range(len(transfers))])
    np.testing.assert_allclose(ends[0], ends[1], rtol=1e-9)


def test_an_allreduce_is_priced_anew_when_the_links_change(tmp_path):
    """Uplinks drop from 1e7 to 2.5e6 B/s at 1 s: rounds whose all-reduce starts later take
    the slower closed form (a price remembered from before would not)."""
    series = tmp_path / "up.csv"
    series.write_text("time_s,bandwidth\n0,1e7\n1.0,2.5e6\n")
    scenario = make(strategy=ALLREDUCE, cluster={"uplink": {"bandwidth": {"series": str(series),
                    "column": "bandwidth"}, "latency": 0.001}})  # fmt: skip
    sim = Simulation(scenario)
    sim.run()
    p, n, alpha = 4, push_nbytes(scenario), 0.001
    compute = 16 / 1000
    ends = np.array(sim.strategy.round_ends)
    starts = np.concatenate([[0.0], ends[:-1]])
    durations = ends - starts
    fast = compute + 2 * (p - 1) * (alpha + n / p / 1e7)
    slow = compute + 2 * (p - 1) * (alpha + n / p / 2.5e6)
    began = starts + compute  # when each round's all-reduce started
    np.testing.assert_allclose(durations[began < 1.0], fast, rtol=1e-9)
    np.testing.assert_allclose(durations[began >= 1.0], slow, rtol=1e-9)
    assert (began >= 1.0).sum() > 10


def test_an_outage_stalls_an_allreduce_under_way_and_a_new_bandwidth_reprices_what_is_left(
    tmp_path,
):
    """The first all-reduce runs from 0.016 s (the slow workers' batch) for X s. Worker 2's link
    down from 0.018 s for 0.3 s stalls it: it ends 0.3 s late. Uplinks cut to a quarter at
    0.019 s instead: the fraction done by then stays, the rest goes at the slower price."""
    p, alpha, compute = 4, 0.001, 16 / 1000
    outage = [{"worker": 2, "at_s": 0.018, "kind": "link_down", "duration_s": 0.3}]
    sim = Simulation(make(strategy=ALLREDUCE, faults=outage, stop={"time_s": 1.0}))
    sim.run()
    n = push_nbytes(sim.scenario)
    X = 2 * (p - 1) * (alpha + n / p / 1e7)
    assert sim.strategy.round_ends[0] == pytest.approx(compute + X + 0.3, rel=1e-9)

    series = tmp_path / "up.csv"
    series.write_text("time_s,bandwidth\n0,1e7\n0.019,2.5e6\n")
    up = {"bandwidth": {"series": str(series), "column": "bandwidth"}, "latency": alpha}
    sim = Simulation(make(strategy=ALLREDUCE, cluster={"uplink": up}, stop={"time_s": 1.0}))
    sim.run()
    slow = 2 * (p - 1) * (alpha + n / p / 2.5e6)
    done = (0.019 - compute) / X
    assert sim.strategy.round_ends[0] == pytest.approx(0.019 + (1 - done) * slow, rel=1e-9)
