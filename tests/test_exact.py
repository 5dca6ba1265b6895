"""Exact magnitudes, so that a mechanism off by one, a factor or a stream fails an assertion
(not a deadlock, a crash or an out-of-memory kill)."""

import numpy as np
import pytest
from conftest import make

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
    compute = result.events.query("kind == 'compute'")
    later = compute[compute["start_s"] > 0.001]
    assert len(later) > 10
    np.testing.assert_allclose(later["end_s"] - later["start_s"], 3 * 16 / 4000.0, rtol=1e-12)


@pytest.mark.parametrize("scheme", ["bsp", "asp", "ssp", "local_sgd", "ashl", "adsp", "adacomm"])
def test_compute_time_is_steps_times_batch_over_speed(scheme):
    """Without jitter, a worker's compute seconds are exactly iterations * batch / speed."""
    result = ashlsim.run(make(strategy={"name": scheme}, stop={"time_s": 1.0}))
    w = result.workers
    np.testing.assert_allclose(w["compute_s"], w["iterations"] * 16 / w["speed"], rtol=1e-9)
    assert (w["samples"] == 16 * w["iterations"]).all()


@pytest.mark.parametrize("scheme", ["bsp", "asp", "ssp", "local_sgd", "ashl", "adsp", "adacomm"])
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
