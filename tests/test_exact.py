"""Exact magnitudes, so that a mechanism off by one, a factor or a stream fails an assertion
(not a deadlock, a crash or an out-of-memory kill)."""

import numpy as np
import pytest
from conftest import SCHEMES, make

import ashlsim
from ashlsim import Simulation


@pytest.mark.parametrize("reads", ["fresh", "cached"])
@pytest.mark.parametrize("s", [0, 1, 2, 4])
def test_the_ssp_bound_is_tight(s, reads):
    """A worker 1000x faster than a stalled one pushes exactly s + 1 times, then waits: its
    clock runs exactly s ahead at its last start, never s + 1 (SSP(s), not SSP(s - 1))."""
    sim = Simulation(make(cluster={"workers": 2, "speed": [4000.0, 4.0]},
                          strategy={"name": "ssp", "staleness": s, "reads": reads},
                          stop={"time_s": 2.0}))  # fmt: skip
    result = sim.run()
    assert list(result.workers["pushes"]) == [s + 1, 0]  # then it waits for the slow one
    assert sim.strategy.clocks.max_gap_seen == s


def test_a_straggler_episode_slows_by_exactly_its_factor():
    """One worker, an episode from 1 ms to the end of the run, factor 3: every iteration that
    starts inside it takes exactly 3 x batch / speed."""
    sim = Simulation(make(cluster={"workers": 1, "speed": [4000.0],
                                   "stragglers": {"interval_s": 0.001, "duration_s": 100.0,
                                                  "factor": 3.0}},
                          stop={"time_s": 0.5}), events=True)  # fmt: skip
    result = sim.run()
    compute = result.events.query("kind == 'compute' and end_s < @result.elapsed_s")
    later = compute[compute["start_s"] > 0.001]
    assert len(later) > 10
    np.testing.assert_allclose(later["end_s"] - later["start_s"], 3 * 16 / 4000.0, rtol=1e-12)


def test_straggler_episodes_come_and_go_from_the_workers_own_stream():
    """Episodes at random intervals (the worker's ``stragglers`` stream), each 0.05 s at factor
    3: the log has each episode, and a computation takes 3x inside one, 3 x 2 = 6x inside one
    and a slowdown fault, 2x in the fault alone and 1x after, exactly."""
    stragglers = {"interval_s": {"dist": "exponential", "mean": 0.1}, "duration_s": 0.05,
                  "factor": 3.0}  # fmt: skip
    fault = {"worker": 0, "at_s": 0.6, "kind": "slowdown", "factor": 2.0, "duration_s": 0.3}
    scenario = make(cluster={"workers": 1, "speed": [4000.0], "stragglers": stragglers},
                    faults=[fault], stop={"time_s": 1.2})  # fmt: skip
    result = Simulation(scenario, events=True).run()
    ev = result.events
    episodes = ev[ev["kind"] == "straggle"]
    assert len(episodes) >= 4
    np.testing.assert_allclose(episodes["end_s"] - episodes["start_s"], 0.05, rtol=1e-9)
    assert not np.allclose(np.diff(episodes["start_s"]), np.diff(episodes["start_s"])[0])
    base, checked = 16 / 4000.0, []
    for row in ev[ev["kind"] == "compute"].itertuples():
        inside = ((episodes["start_s"] <= row.start_s) & (row.start_s < episodes["end_s"])).any()
        slow = 0.6 <= row.start_s < 0.9
        ends = [*episodes["start_s"], *episodes["end_s"], 0.6, 0.9]
        if any(row.start_s < t < row.end_s for t in ends):
            continue  # (an episode or the fault began or ended during it: fixed at its start)
        expected = base * (3.0 if inside else 1.0) * (2.0 if slow else 1.0)
        assert row.end_s - row.start_s == pytest.approx(expected, rel=1e-9), row
        checked.append(expected / base)
    assert sorted(set(checked)) == [1.0, 2.0, 3.0, 6.0] and len(checked) > 100
    again = Simulation(scenario, events=True).run().events
    assert again[again["kind"] == "straggle"].equals(episodes)
    other = Simulation(scenario.with_overrides({"seed": 1}), events=True).run().events
    assert not np.array_equal(other[other["kind"] == "straggle"]["start_s"], episodes["start_s"])
    two = make(cluster={"workers": 2, "speed": [4000.0] * 2, "stragglers": stragglers})
    ev2 = Simulation(two, events=True).run().events
    starts = [
        ev2.query("kind == 'straggle' and worker == @w")["start_s"].to_numpy() for w in (0, 1)
    ]
    assert len(starts[0]) and len(starts[1]) and not np.array_equal(*starts)  # a stream each


@pytest.mark.parametrize("scheme", SCHEMES)
def test_compute_time_is_steps_times_batch_over_speed(scheme):
    """Without jitter, a worker's compute seconds are exactly iterations * batch / speed, and a
    computation the stop cuts short (logged up to the stop) its seconds so far."""
    result = ashlsim.run(make(strategy={"name": scheme}, stop={"time_s": 1.0}), events=True)
    w = result.workers
    ev = result.events.query("kind == 'compute' and end_s == @result.elapsed_s")
    cut = (ev["end_s"] - ev["start_s"]).groupby(ev["worker"]).sum().reindex(w["worker"])
    done = w["compute_s"] - cut.fillna(0.0).to_numpy()
    np.testing.assert_allclose(done, w["iterations"] * 16 / w["speed"], rtol=1e-9)
    assert (w["samples"] == 16 * w["iterations"]).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_push_is_applied_at_most_once_counted_independently(scheme):
    """The keys of what the PS applied, recorded as it applies them (not from its own log):
    no key twice, each a push its worker made, all pushes accounted for."""
    sim = Simulation(make(strategy={"name": scheme},
                          cluster={"jitter": {"dist": "exponential", "mean": 1}}))  # fmt: skip
    applied = []
    original = sim.server.apply
    sim.server.apply = lambda ups, scale=1.0: (applied.extend(u.key for u in ups),
                                               original(ups, scale))  # fmt: skip
    result = sim.run()
    assert len(applied) == len(set(applied)) > 20
    pushes = result.workers.set_index("worker")["pushes"]
    assert all(0 <= seq < pushes[w] for w, seq in applied)
    assert len(applied) + result.pushes_pending + result.pushes_dropped == pushes.sum()


def test_error_feedback_loses_nothing_in_a_run(monkeypatch):
    """One worker, top-K 10 % with error feedback: everything the PS received plus the residual
    the worker still holds is everything it computed."""
    from ashlsim.cluster.worker import Worker

    sim = Simulation(make(cluster={"workers": 1, "speed": [1000]}, stop={"time_s": 1.0},
                          strategy={"name": "asp", "compression": {
                              "name": "topk", "ratio": 0.1, "error_feedback": True}}))  # fmt: skip
    worker = sim.workers[0]
    computed, sent = [], []
    original = Worker.message_for

    def spy(self, delta, compressor):
        computed.append(delta.astype(float))
        message = original(self, delta, compressor)
        sent.append(message.decompress().astype(float))
        return message

    monkeypatch.setattr(Worker, "message_for", spy)
    sim.run()
    assert len(computed) > 20
    residual = worker.compress_state
    np.testing.assert_allclose(np.sum(sent, 0) + residual, np.sum(computed, 0), atol=1e-9)
    assert np.abs(residual).max() > 0


def test_each_worker_draws_from_its_own_streams():
    """Worker i's jitter and batch streams are its own: equal across cluster sizes, different
    from every other worker's."""
    spec = {"jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.3}, "speed": 2000.0}
    four = Simulation(make(cluster={**spec, "workers": 4}))
    five = Simulation(make(cluster={**spec, "workers": 5}))
    draws4 = [w.rng_jitter.random(3).tolist() for w in four.workers]
    draws5 = [w.rng_jitter.random(3).tolist() for w in five.workers]
    assert draws4 == draws5[:4]
    assert len({tuple(d) for d in draws5}) == 5
    batch4 = [w.sampler.rng.random() for w in four.workers]
    assert len(set(batch4)) == 4


# ---- killing the mutants that survived `mutmut` on ASHL's planning (strategies/ashl_plan.py) and compression.py ------------


def test_build_compressor_builds_what_the_block_names():
    from ashlsim.compression import CompressionSpec, build_compressor

    v = np.array([0.1, -5.0, 0.2, 4.0, -0.3, 0.05, 3.0, 0.0])
    rng = np.random.default_rng(0)
    top = build_compressor(CompressionSpec("topk", 0.25), rng)
    assert top.compress(v, top.init(8))[0].indices.tolist() == [1, 3]  # the largest, not random
    rand = build_compressor(CompressionSpec("randk", 0.5), np.random.default_rng(1))
    picks = {tuple(rand.compress(v, None)[0].indices) for _ in range(10)}
    assert len(picks) > 1 and all(len(set(p)) == 4 for p in picks)  # random, without repeats
    ident = build_compressor(CompressionSpec("identity", 0.1), rng)
    assert ident.compress(v, ident.init(8))[0].indices is None  # identity whatever the ratio
    full = build_compressor(CompressionSpec("topk", 1.0), rng)
    assert full.init(8) is None and full.compress(v, None)[0].indices is None
    fed = build_compressor(CompressionSpec("topk", 1.0, error_feedback=True), rng)
    message, state = fed.compress(v, fed.init(8))
    assert message.indices is None and isinstance(state, np.ndarray) and not state.any()
    layered = build_compressor(CompressionSpec("topk", 0.5, scope="layer"), rng, segments=(2, 6))
    flat = build_compressor(CompressionSpec("topk", 0.5, scope="vector"), rng, segments=(2, 6))
    w = np.array([9.0, 8.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert layered.compress(w, None)[0].indices.tolist() == [0, 5, 6, 7]  # 1 of 2, 3 of 6
    assert flat.compress(w, None)[0].indices.tolist() == [0, 1, 6, 7]  # 4 of 8


def test_topk_offsets_every_tensor_of_many():
    from ashlsim.compression import topk

    v = np.array([1.0, 9.0, 2.0, 8.0, 3.0, 7.0])  # three tensors of 2
    message, _ = topk(0.5, segments=(2, 2, 2)).compress(v, None)
    assert message.indices.tolist() == [1, 3, 5]


def test_randk_at_ratio_one_sends_dense_and_never_repeats():
    from ashlsim.compression import randk

    v = np.arange(1.0, 11.0)
    assert randk(1.0, np.random.default_rng(0)).compress(v, None)[0].indices is None
    idx = randk(0.9, np.random.default_rng(0)).compress(v, None)[0].indices
    assert len(idx) == len(set(idx.tolist())) == 9


def test_states_of_the_compressors():
    from ashlsim.compression import identity, topk

    assert identity().init(3) is None and topk(0.5).init(3) is None
    assert topk(0.5, True).init(3).tolist() == [0.0, 0.0, 0.0]


def test_wire_bytes_of_dense_and_sparse_messages_with_and_without_a_virtual_model():
    from ashlsim.compression import Message, virtual_values
    from ashlsim.scenario import WorkloadSpec

    w, virtual = WorkloadSpec(), WorkloadSpec(param_bytes=4e6)  # 1 M values behind the proxy
    dense = Message(np.ones(200), None, 200)
    assert dense.wire_bytes(w) == 64 + 800
    assert dense.wire_bytes(virtual, 200) == 64 + 4_000_000
    sparse = Message(np.ones(10), np.arange(10), 200)
    assert sparse.wire_bytes(w) == 64 + 10 * 4 + 25  # the proxy's own K and bitmap
    assert sparse.wire_bytes(virtual) == 64 + 50_000 * 4 + 125_000  # its 5 %, of 1 M values
    assert sparse.wire_bytes(virtual, 200) == sparse.wire_bytes(virtual)
    assert virtual_values(WorkloadSpec(param_bytes=4.0), 10) == 1


def test_robust_mean_small_samples():
    from ashlsim.strategies.ashl_plan import robust_mean

    assert robust_mean([2.0]) == 2.0
    assert robust_mean([1.0, 5.0]) == 3.0
    assert robust_mean([1.0, 2.0, 9.0]) == 2.0  # three samples: the extremes dropped
    assert robust_mean([1, 2, 3, 100]) == 2.5
    with pytest.raises(ValueError):
        robust_mean([])


def test_local_steps_plan_gives_the_slowest_its_preset_even_one():
    from ashlsim.strategies.ashl_plan import local_steps_plan

    h = local_steps_plan([0.01, 0.04], [0.0, 0.0], [0.0, 0.0], 1)
    assert h.tolist() == [4, 1]


def test_compression_plan_clips_and_guards_zero_push_times():
    from ashlsim.strategies.ashl_plan import compression_plan

    # worker 0 has a lot of spare time: capped at 1; worker 1 sets the pace: r_preset
    r = compression_plan([0.001, 0.2], [0.1, 0.1], [0.2, 0.2], [1, 1], 0.25)
    assert r.tolist() == pytest.approx([1.0, 0.25])  # 0.249 s spare of a 0.2 s push: 1
    # a tiny spare gives a tiny ratio: no clipping below by default, min_ratio when asked
    r = compression_plan([0.04, 0.04], [0.1, 0.1], [0.2, 10.0], [1, 1], 0.001)
    assert r.tolist() == pytest.approx([0.05, 0.001])  # 0.01 s spare each
    assert compression_plan([0.04, 0.04], [0.1, 0.1], [0.2, 10.0], [1, 1], 0.001,
                            min_ratio=0.01)[1] == 0.01  # fmt: skip
    # a push that takes no time needs no compression
    r = compression_plan([0.1, 0.2], [0.1, 0.1], [0.0, 0.2], [1, 1], 0.25)
    assert r.tolist() == pytest.approx([1.0, 0.25])


def test_error_feedback_keeps_the_delta_dtype_and_a_usable_state():
    from ashlsim.compression import topk

    v = np.array([3.0, -1.0, 0.5, 2.0], dtype=np.float32)
    sparse = topk(0.5, True)
    message, state = sparse.compress(v, sparse.init(4))
    assert message.values.dtype == np.float32
    dense = topk(1.0, True)
    state = dense.init(4)
    for _ in range(2):  # the state a dense push leaves is a state the next push can use
        message, state = dense.compress(v, state)
        assert message.values.dtype == np.float32 and not state.any()


# ---- ClockGate and RoundBarrier against models written out by hand ----------------------------


class _Port:
    """Just enough of a port for the gates: events that record whether they succeeded."""

    class Event:
        def __init__(self):
            self.triggered, self.callbacks = False, []

        def succeed(self):
            assert not self.triggered, "an event succeeded twice"
            self.triggered = True
            for fn in self.callbacks:
                fn(self)

    def event(self):
        return self.Event()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 5), st.integers(0, 3),
       st.lists(st.tuples(st.sampled_from(["tick", "tick", "tick", "leave", "join", "gate"]),
                          st.integers(0, 4)), max_size=60))  # fmt: skip
def test_the_clock_gate_against_a_brute_force_model(n, bound, ops):
    """Ticks, crashes (leave) and restarts (join) in any order: the slowest clock is the minimum
    over running workers, a worker is held exactly when it is more than ``bound`` ahead of it,
    and a held worker is released exactly when that stops being true."""
    from ashlsim.strategies.base import ClockGate

    gate = ClockGate(_Port(), n, bound)
    clocks, active, held = [0] * n, [True] * n, {}
    for op, w in ops:
        w %= n
        if op == "tick" and active[w] and w not in held:
            gate.tick(w)
            clocks[w] += 1
        elif op == "leave" and active[w] and sum(active) > 1:
            gate.leave(w)
            active[w] = False
            held.pop(w, None)
        elif op == "join" and not active[w]:
            gate.join(w)
            active[w] = True  # back at the slowest clock of those running
            others = [clocks[i] for i in range(n) if active[i] and i != w]
            clocks[w] = min(others) if others else clocks[w]
        elif op == "gate" and active[w] and w not in held:
            event = gate.gate(w)
            slowest = min(clocks[i] for i in range(n) if active[i])
            assert (event is None) == (clocks[w] - slowest <= bound)
            if event is not None:
                held[w] = event
        slowest = min(clocks[i] for i in range(n) if active[i])
        assert gate.min_clock == slowest
        for h, event in list(held.items()):
            assert event.triggered == (clocks[h] - slowest <= bound)
            if event.triggered:
                del held[h]
    assert gate.clocks == [clocks[i] if active[i] else gate.clocks[i] for i in range(n)]


def test_barrier_counters_are_exact():
    sim = Simulation(make(strategy={"name": "bsp", "backup_workers": 1},
                          cluster={"speed": [4000, 3000, 2000, 500]}))  # fmt: skip
    result = sim.run()
    barrier = sim.strategy.barrier
    assert barrier.rounds == len(barrier.round_ends) == sim.server.version > 10
    assert barrier.dropped == result.pushes_dropped > 0


def test_the_slowest_clock_jumps_when_the_slowest_worker_leaves():
    """Worker 0 at clock 0, the others at 2: when 0 crashes the slowest clock is 2 (not 1), and
    a worker held for it is released; when 0 comes back it counts from 2."""
    from ashlsim.strategies.base import ClockGate

    gate = ClockGate(_Port(), 3, 1)
    for w in (1, 1, 2, 2):
        gate.tick(w)
    held = gate.gate(1)
    assert held is not None and not held.triggered
    gate.leave(0)
    assert gate.min_clock == 2 and held.triggered
    gate.join(0)
    assert gate.clocks[0] == 2 and gate.min_clock == 2


def test_a_run_stops_at_the_first_evaluation_that_reaches_the_target_exactly():
    """Reaching the target means accuracy >= target: a target equal to an evaluation's accuracy
    stops the run at that evaluation."""
    history = ashlsim.run(make(stop={"time_s": 2.0})).history
    row = history[history["accuracy"] > history["accuracy"].iloc[0]].iloc[0]
    result = ashlsim.run(make(stop={"time_s": 2.0, "target_accuracy": float(row["accuracy"])}))
    assert result.stop_reason == "target_accuracy"
    assert result.elapsed_s == row["time_s"] >= result.time_to_accuracy()
    assert result.history["accuracy"].iloc[-1] == row["accuracy"]
