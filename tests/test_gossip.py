"""Decentralized gossip (AD-PSGD): topologies, the average the run evaluates, exchange times
against their closed form, equivalences and faults."""

import numpy as np
import pytest
from conftest import make

import ashlsim
from ashlsim import Simulation
from ashlsim.errors import ScenarioError
from ashlsim.strategies.gossip import neighbours


def test_topologies_by_hand():
    rng = np.random.default_rng(0)
    assert neighbours("ring", 5, 0, rng) == [[1, 4], [0, 2], [1, 3], [2, 4], [0, 3]]
    assert neighbours("ring", 2, 0, rng) == [[1], [0]]
    assert neighbours("complete", 3, 0, rng) == [[1, 2], [0, 2], [0, 1]]
    # 6 workers: a 2 x 3 torus; worker 0 = (0, 0) has (1, 0), (0, 1), (0, 2)
    torus = neighbours("torus", 6, 0, rng)
    assert torus[0] == [1, 2, 3] and torus[4] == [1, 3, 5]
    assert neighbours("torus", 9, 0, rng)[4] == [1, 3, 5, 7]
    assert neighbours("ring", 1, 0, rng) == [[]]


@pytest.mark.parametrize("n, degree", [(8, 3), (10, 4), (16, 3)])
def test_a_random_regular_graph_is_regular_symmetric_connected_and_seeded(n, degree):
    graph = neighbours("random_regular", n, degree, np.random.default_rng(5))
    assert all(len(near) == degree and i not in near for i, near in enumerate(graph))
    assert all(i in graph[j] for i, near in enumerate(graph) for j in near)
    seen, todo = {0}, [0]
    while todo:
        for j in graph[todo.pop()]:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    assert len(seen) == n
    assert graph == neighbours("random_regular", n, degree, np.random.default_rng(5))


def gossip(topology="ring", **sections):
    block = {"name": "gossip", "topology": topology, **sections.pop("strategy", {})}
    return make(strategy=block, **sections)


@pytest.mark.parametrize("topology", ["ring", "torus", "complete", "random_regular"])
def test_the_model_evaluated_is_the_average_of_the_workers_models(topology):
    sim = Simulation(gossip(topology, strategy={"degree": 3} if topology != "ring" else {},
                            cluster={"workers": 6, "speed": [4000, 3000, 2000, 1000, 1500, 2500]}))  # fmt: skip
    result = sim.run()
    np.testing.assert_allclose(sim.server.params, sim.replicas.mean(), rtol=0, atol=1e-12)
    assert sim.strategy.exchanges > 100
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0]
    consensus = result.tables["consensus"]
    assert len(consensus) == len(result.history)
    assert consensus["consensus_distance"].iloc[0] < 1e-12  # all start at one model
    assert (consensus["consensus_distance"].iloc[1:] > 0).all()


def test_one_worker_gossiping_with_nobody_is_sequential_sgd_as_bsp_is():
    models = []
    for block in ({"name": "bsp"}, {"name": "gossip"}):
        sim = Simulation(make(strategy=block, cluster={"workers": 1, "speed": [1000.0]}))
        seen, apply = {}, sim.server.apply

        def recording(updates, scale=1.0, sim=sim, apply=apply, seen=seen):
            apply(updates, scale)
            seen[sim.server.version] = sim.server.params.copy()

        sim.server.apply = recording
        sim.run()
        models.append(seen)
    common = sorted(set(models[0]) & set(models[1]))
    assert len(common) > 50
    for version in common:
        np.testing.assert_array_equal(models[0][version], models[1][version])


def test_two_workers_averaging_at_once_share_both_links():
    """Two equal workers finish computing together and exchange with each other: each link
    carries both exchanges' messages (S each), so an exchange takes latency + 2 S / B."""
    B, latency = 1e6, 0.001
    link = {"bandwidth": B, "latency": latency}
    scenario = gossip("complete", cluster={"workers": 2, "speed": [1000.0, 1000.0],
                                           "uplink": link, "downlink": link})  # fmt: skip
    sim = Simulation(scenario, events=True)
    result = sim.run()
    S = sim.dense_bytes
    exchanges = result.events.query("kind == 'exchange'")
    durations = (exchanges["end_s"] - exchanges["start_s"]).to_numpy()
    assert len(durations) > 50
    np.testing.assert_allclose(durations, latency + 2 * S / B, rtol=1e-9)
    summary = result.summary()
    assert summary["bytes_up"] == summary["bytes_down"]


def test_every_exchange_moves_the_model_both_ways_and_is_counted_on_both_sides():
    sim = Simulation(gossip("ring"))
    result = sim.run()
    S = sim.dense_bytes
    workers = result.workers
    assert (workers["bytes_up"] == workers["bytes_down"]).all()
    assert workers["bytes_up"].sum() == 2 * S * sim.strategy.exchanges


def test_gossip_refuses_compression_a_server_optimizer_and_impossible_degrees():
    with pytest.raises(ScenarioError, match=r"strategy.compression.name"):
        gossip(strategy={"compression": {"name": "topk", "ratio": 0.1}})
    with pytest.raises(ScenarioError, match=r"strategy.server_optimizer"):
        gossip(strategy={"server_optimizer": {"momentum": 0.9}})
    with pytest.raises(ScenarioError, match=r"strategy.degree"):
        gossip("random_regular", strategy={"degree": 3},
               cluster={"workers": 5, "speed": 1000.0})  # fmt: skip
    with pytest.raises(ScenarioError, match=r"strategy.degree"):
        gossip("random_regular", strategy={"degree": 4})


def test_a_crashed_worker_restarts_from_its_neighbours_average_and_the_mean_still_holds():
    crash = {"worker": 1, "at_s": 0.7, "kind": "crash", "recover_after_s": 0.4}
    sim = Simulation(gossip("ring", faults=[crash]))
    result = sim.run()
    np.testing.assert_allclose(sim.server.params, sim.replicas.mean(), rtol=0, atol=1e-12)
    assert (
        result.pushes_applied + result.pushes_dropped + result.pushes_pending == result.pushes_sent
    )
    again = ashlsim.run(gossip("ring", faults=[crash]))
    np.testing.assert_array_equal(result.final_params, again.final_params)


def test_timing_only_gossip_runs_without_models():
    scenario = gossip("torus", model={"name": "none"}, workload={"param_bytes": 1e5},
                      cluster={"workers": 9, "speed": 1000.0})  # fmt: skip
    sim = Simulation(scenario)
    result = sim.run()
    assert sim.replicas is None and sim.strategy.exchanges > 50
    assert np.isnan(result.tables["consensus"]["consensus_distance"]).all()


def test_a_link_outage_stalls_the_exchanges_through_it_and_a_new_bandwidth_rerates_them(
    tmp_path,
):
    """Two equal workers (links of B) exchange from 0.016 s: 2 S / B after the latency. Worker
    1's link is down from 0.0 to 0.5 s: the first exchange's bytes wait for it, then take
    2 S / B. With the uplinks halved from the start instead, every exchange takes 4 S / B."""
    B, latency = 1e6, 0.001
    link = {"bandwidth": B, "latency": latency}
    two = {"workers": 2, "speed": [1000.0, 1000.0], "uplink": link, "downlink": link}
    outage = [{"worker": 1, "at_s": 0.0, "kind": "link_down", "duration_s": 0.5}]
    sim = Simulation(gossip("complete", cluster=two, faults=outage), events=True)
    result = sim.run()
    S = sim.dense_bytes
    first = result.events.query("kind == 'exchange'").groupby("worker")["end_s"].min()
    np.testing.assert_allclose(first.to_numpy(), 0.5 + 2 * S / B, rtol=1e-9)

    series = tmp_path / "up.csv"
    series.write_text("time_s,bandwidth\n0,5e5\n")
    slow = {**two, "uplink": {"bandwidth": {"series": str(series), "column": "bandwidth"},
                              "latency": latency}}  # fmt: skip
    result = ashlsim.run(gossip("complete", cluster=slow), events=True)
    exchanges = result.events.query("kind == 'exchange'")
    durations = (exchanges["end_s"] - exchanges["start_s"]).to_numpy()
    np.testing.assert_allclose(durations, latency + 2 * S / (B / 2), rtol=1e-9)
