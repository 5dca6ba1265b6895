"""The engine: time model, real SGD inside simulated time, stop conditions, determinism."""

import numpy as np
import pandas as pd
import pytest
from conftest import make

import ashlsim
from ashlsim import Simulation
from ashlsim.data import BatchSampler, load_dataset, partition
from ashlsim.models import build_model
from ashlsim.rng import Streams


def bsp_round_time(scenario) -> float:
    """Constant speeds, no PS contention: max_i(pull_i + compute_i + push_i)."""
    c, w = scenario.cluster, scenario.workload
    size = 64 * 10 + 10  # softmax on digits
    nbytes = w.header_bytes + size * w.bytes_per_value
    speeds = np.array(c.speed.values)
    up = c.uplink.latency.value + nbytes / c.uplink.bandwidth.value
    down = c.downlink.latency.value + nbytes / c.downlink.bandwidth.value
    return float(np.max(down + scenario.training.batch_size / speeds + up))


def test_bsp_round_time_is_the_hand_computed_one(small):
    result = ashlsim.run(small, events=True)
    T = bsp_round_time(small)
    pulls = result.events.query("worker == 0 and kind == 'pull'")["start_s"].to_numpy()
    np.testing.assert_allclose(pulls, T * np.arange(len(pulls)), rtol=1e-9, atol=1e-12)
    rounds = int(small.stop.time_s // T)
    assert result.history["version"].iloc[-1] == rounds


def test_every_bsp_round_applies_exactly_n_deltas(small):
    sim = Simulation(small)
    result = sim.run()
    n = small.cluster.workers
    assert sim.server.applied_pushes == n * sim.server.version
    per_round = pd.DataFrame(sim.server.staleness, columns=["w", "s", "samples"])
    assert (per_round["s"] == 0).all()  # everybody computed on the round's parameters
    # pushes still in the barrier at the stop are the only ones not applied
    assert 0 <= result.pushes_sent - result.pushes_applied < n


def replay_sgd(scenario, rounds):
    """Synchronous SGD by hand with the simulator's own streams: the mean of each worker's
    gradient step, round after round."""
    streams = Streams(scenario.seed)
    data = load_dataset(scenario.data, streams.get("data"), np.float64)
    model = build_model(scenario.model, data)
    params = model.init(streams.get("init"))
    n = scenario.cluster.workers
    shards = partition(data.y_train, n, streams.get("data.partition"), "iid")
    b = scenario.training.batch_size
    samplers = [BatchSampler(shards[i], b, streams.get("batches", i)) for i in range(n)]
    lr = scenario.training.lr
    for _ in range(rounds):
        steps = []
        for sampler in samplers:
            batch = sampler.next()
            steps.append(
                -lr * model.loss_and_grad(params, data.X_train[batch], data.y_train[batch])[1]
            )
        params = params + (1.0 / n) * np.sum(steps, axis=0)
    return params


@pytest.mark.parametrize("workers", [1, 3])
def test_bsp_is_synchronous_sgd_replayed_by_hand(workers):
    scenario = make(cluster={"workers": workers, "speed": 1000.0})
    sim = Simulation(scenario)
    sim.run()
    expected = replay_sgd(scenario, sim.server.version)
    np.testing.assert_allclose(sim.server.params, expected, rtol=1e-10, atol=1e-12)


def test_same_seed_same_frames_different_seed_different():
    scenario = make(cluster={"speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5},
                             "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.2}})  # fmt: skip
    a, b = ashlsim.run(scenario), ashlsim.run(scenario)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.workers, b.workers)
    c = ashlsim.run(scenario, seed=1)
    assert not a.workers["speed"].equals(c.workers["speed"])
    assert not a.history["loss"].equals(c.history["loss"])


def test_one_workers_stream_does_not_shift_another():
    spec = {"speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5},
            "uplink": {"bandwidth": {"dist": "uniform", "low": 1e6, "high": 1e7}, "latency": 0.001}}  # fmt: skip
    four = Simulation(make(cluster={**spec, "workers": 4}))
    five = Simulation(make(cluster={**spec, "workers": 5}))
    assert [w.speed for w in four.workers] == [w.speed for w in five.workers][:4]
    assert four.network.up_bandwidth == five.network.up_bandwidth[:4]
    # per-worker streams: worker 1 draws the same jitter whether there are 4 workers or 5
    assert four.workers[1].rng_jitter.random() == five.workers[1].rng_jitter.random()


def test_stop_on_epochs_and_target():
    by_epochs = ashlsim.run(make(stop={"time_s": None, "epochs": 2}))
    assert by_epochs.stop_reason == "epochs"
    assert 2 <= by_epochs.history["epoch"].iloc[-1] < 2.1
    by_target = ashlsim.run(make(stop={"time_s": 30, "target_accuracy": 0.8}))
    assert by_target.stop_reason == "target_accuracy"
    assert by_target.history["accuracy"].iloc[-1] >= 0.8
    # located to the update between the last two evaluations (tests/test_verdicts.py)
    assert by_target.history["time_s"].iloc[-2] < by_target.time_to_accuracy()
    assert by_target.time_to_accuracy() <= by_target.history["time_s"].iloc[-1]
    assert by_target.time_to_accuracy() == by_target.time_to_target_s
    assert np.isnan(by_target.time_to_accuracy(1.01))


def test_divergence_stops_the_run_and_keeps_history():
    result = ashlsim.run(make(model={"name": "mlp", "hidden": [32]}, training={"lr": 1e4}))
    assert result.stop_reason == "diverged"
    assert len(result.history) >= 1
    assert not np.isfinite(result.history["loss"].iloc[-1])


def test_history_and_worker_columns(small):
    result = ashlsim.run(small, events=True)
    for column in [
        "time_s",
        "updates",
        "epoch",
        "loss",
        "accuracy",
        "bytes_up",
        "bytes_down",
        "stage",
    ]:
        assert column in result.history
    for column in [
        "compute_s",
        "comm_s",
        "wait_s",
        "iterations",
        "samples",
        "bytes_up",
        "bytes_down",
    ]:
        assert column in result.workers
    assert set(result.events["kind"]) == {"pull", "compute", "push", "wait"}
    assert result.history["time_s"].is_monotonic_increasing
    # busy + waiting never exceeds the elapsed time, per worker
    busy = result.workers[["compute_s", "comm_s", "wait_s"]].sum(axis=1)
    assert (busy <= result.elapsed_s + 1e-9).all()


@pytest.mark.parametrize("scheme", ["bsp", "asp"])
def test_the_books_are_the_sums_of_the_event_log(scheme):
    """Each worker's seconds computing, moving bytes and waiting are the sums of its phases in
    the event log, its bytes those of its pulls and pushes, and the cluster's byte totals the
    sums over the workers (a shared card: transfers of every length)."""
    scenario = make(
        cluster={"server": {"ingress": 2e6, "egress": 2e6}},
        workload={"param_bytes": 1e5},
        strategy={"name": scheme},
    )
    sim = Simulation(scenario, events=True)
    result = sim.run()
    ev = result.events.assign(seconds=lambda e: e["end_s"] - e["start_s"])
    kinds = ["compute", "pull", "push", "wait"]
    spent = ev.pivot_table("seconds", "worker", "kind", aggfunc="sum").reindex(columns=kinds)
    spent = spent.fillna(0.0)
    done = ev[ev["end_s"] < result.elapsed_s]  # a transfer the stop cut short moved no bytes
    counts = done.pivot_table("seconds", "worker", "kind", aggfunc="count").reindex(columns=kinds)
    counts = counts.fillna(0).astype(int)
    w = result.workers
    assert (counts["push"] > 3).all() and ((spent["wait"] > 0).any() or scheme == "asp")
    assert w["compute_s"].to_numpy() == pytest.approx(spent["compute"], rel=1e-12)
    assert w["comm_s"].to_numpy() == pytest.approx(spent["pull"] + spent["push"], rel=1e-12)
    assert w["wait_s"].to_numpy() == pytest.approx(spent["wait"], rel=1e-12)
    assert (w["bytes_down"] == counts["pull"] * sim.dense_bytes).all()
    assert (w["bytes_up"] == counts["push"] * sim.dense_bytes).all()  # (no compression)
    assert (sim.records.bytes_up, sim.records.bytes_down) == (
        w["bytes_up"].sum(),
        w["bytes_down"].sum(),
    )
    for column in ("bytes_up", "bytes_down"):  # the history records the totals as they grow
        seen = result.history[column]
        assert seen.is_monotonic_increasing and 0 < seen.iloc[-1] <= getattr(sim.records, column)


@pytest.mark.parametrize("scheme", ["asp", "adacomm"])  # local steps fixed, and changing
def test_pushes_take_the_uplink_and_pulls_the_downlink(scheme):
    up, down = {"bandwidth": 1e6, "latency": 0.003}, {"bandwidth": 1e7, "latency": 0.001}
    sim = Simulation(make(cluster={"uplink": up, "downlink": down}, strategy={"name": scheme}),
                     events=True)  # fmt: skip
    result = sim.run()
    ev = result.events[result.events["end_s"] < result.elapsed_s]  # (not cut by the stop)
    seconds = ev["end_s"] - ev["start_s"]
    nbytes = sim.dense_bytes
    assert seconds[ev["kind"] == "push"].to_numpy() == pytest.approx(0.003 + nbytes / 1e6)
    assert seconds[ev["kind"] == "pull"].to_numpy() == pytest.approx(0.001 + nbytes / 1e7)


def test_contention_slows_a_round():
    free = make(
        cluster={"server": {"ingress": None, "egress": None}}, workload={"param_bytes": 1e6}
    )
    tight = make(cluster={"server": {"ingress": 1e7, "egress": 1e7}}, workload={"param_bytes": 1e6})
    assert (
        ashlsim.run(tight).history["version"].iloc[-1]
        < ashlsim.run(free).history["version"].iloc[-1]
    )


def test_flops_describe_speed_through_the_workload():
    scenario = make(cluster={"speed": 1.0, "flops": [4e9, 4e9, 1e9, 1e9]},
                    workload={"flops_per_sample": 1e6})  # fmt: skip
    sim = Simulation(scenario)
    assert [w.speed for w in sim.workers] == [4000, 4000, 1000, 1000]


def test_stragglers_slow_workers_down():
    calm = ashlsim.run(make())
    stormy = ashlsim.run(
        make(cluster={"stragglers": {"interval_s": 0.2, "duration_s": 0.5, "factor": 5}})
    )
    assert stormy.workers["compute_s"].sum() / stormy.workers["iterations"].sum() > (
        calm.workers["compute_s"].sum() / calm.workers["iterations"].sum()
    )


def test_per_worker_jitter_is_a_constant_factor_each():
    result = ashlsim.run(
        make(cluster={"speed": 1000.0, "jitter": [1.0, 1.0, 2.0, 2.0]}, strategy={"name": "asp"}),
        events=True,
    )
    ev = result.events.query("kind == 'compute' and end_s < @result.elapsed_s")
    per_step = ev.groupby("worker").apply(lambda e: (e["end_s"] - e["start_s"]).mean())
    assert per_step.to_numpy() == pytest.approx([0.016, 0.016, 0.032, 0.032])


@pytest.mark.parametrize("strategy", [{"name": "bsp"}, {"name": "local_sgd", "local_steps": 3}])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_batched_maths_equals_the_per_worker_path(strategy, momentum):
    """A round's deltas computed as one stacked NumPy computation give the same run
    as computing each worker's delta alone, to float tolerance."""
    results = []
    for stacked in (True, False):
        sim = Simulation(make(strategy=strategy, training={"momentum": momentum}))
        sim.workers[0].trainer.stacked = stacked
        sim.run()
        results.append(sim)
    batched, alone = results
    assert batched.server.version == alone.server.version > 10
    np.testing.assert_allclose(batched.server.params, alone.server.params, rtol=1e-9, atol=1e-12)


def test_a_run_collects_young_objects_in_batches_that_grow_with_the_cluster():
    """During a run the young generation is collected every max(50,000, 100 N) allocations
    (``runloop.gc_threshold``), and the collector's settings are restored after it."""
    import gc

    from conftest import make

    from ashlsim import Simulation

    before = gc.get_threshold()
    for workers, expected in ((4, 50_000), (800, 80_000)):
        sim = Simulation(
            make(
                cluster={"workers": workers, "speed": 4000.0},
                model={"name": "none"},
                workload={"param_bytes": 1e3},
                data={"name": "synthetic", "n_samples": 40 * workers},
                stop={"time_s": 0.05},
            )
        )
        seen: list[int] = []
        sim.progress_callback = lambda now, seen=seen: seen.append(gc.get_threshold()[0])
        sim.run()
        assert seen and set(seen) == {expected}
        assert gc.get_threshold() == before
