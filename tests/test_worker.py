"""The worker's loop: a computation and a push that nothing can slow are one timeout
(``Worker.joins_compute_and_push``). It must change nothing but the number of events: every
scheme's run is compared, bit for bit, with the same run made of two timeouts."""

import numpy as np
import pandas as pd
import pytest
from conftest import make
from hypothesis import given, settings
from hypothesis import strategies as st

from ashlsim import Simulation
from ashlsim.cluster import Worker

RANDOM_CLUSTER = {
    "speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5},
    "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.2},
}

CASES = {
    "bsp": {},
    "asp": {},
    "ssp": {"strategy": {"name": "ssp", "staleness": 2}},
    "local_sgd": {"strategy": {"name": "local_sgd", "local_steps": 3}},
    "ashl": {"strategy": {"name": "ashl"}},
    "adsp": {"strategy": {"name": "adsp"}},
    # ties everywhere: constant speeds, one latency
    "bsp-constant": {"cluster": {"speed": 2000.0}},
    "asp-random": {"cluster": RANDOM_CLUSTER},
    "ssp-random-topk": {
        "cluster": RANDOM_CLUSTER,
        "strategy": {"name": "ssp", "compression": {"name": "topk", "ratio": 0.1}},
    },
    "asp-apply-cost": {"cluster": {"server": {"ingress": None, "egress": None, "apply_s": 0.002}}},
    "asp-stragglers": {
        "cluster": {"stragglers": {"interval_s": 0.3, "duration_s": 0.2, "factor": 4.0}},
    },
    "asp-epochs": {"stop": {"time_s": None, "epochs": 1.5, "target_accuracy": None}},
    "bsp-accuracy": {"stop": {"time_s": 5.0, "target_accuracy": 0.6}},
}


def run_both(monkeypatch, scenario, events=True):
    out = []
    for join in (True, False):
        monkeypatch.setattr(Worker, "joins_compute_and_push", join)
        sim = Simulation(scenario, events=events)
        result = sim.run()
        out.append((result, next(sim.env._eid)))  # events scheduled in the whole run
    return out


def assert_same(a, b):
    np.testing.assert_array_equal(a.final_params, b.final_params)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.workers, b.workers)
    if a.events is not None:
        pd.testing.assert_frame_equal(a.events, b.events)
    assert a.stop_reason == b.stop_reason


@pytest.mark.parametrize("case", CASES)
def test_one_timeout_for_compute_and_push_changes_nothing_but_the_events(monkeypatch, case):
    sections = {"strategy": {"name": case.split("-")[0]}, **CASES[case]}
    (joined, joined_events), (apart, apart_events) = run_both(monkeypatch, make(**sections))
    assert_same(joined, apart)
    pushes = int(joined.workers["pushes"].sum())
    assert pushes > 20
    # ... and it is used: one event fewer per push (a push cut off by the stop has none)
    assert apart_events - joined_events >= pushes


def test_contended_pushes_are_not_joined(monkeypatch):
    """Through a card that can be shared, the push's time is not known at the computation's
    start: the two stay apart (and the run is the same either way)."""
    scenario = make(
        cluster={
            "workers": 8,
            "speed": 2000.0,
            "server": {"ingress": 2.0e7, "egress": 2.0e7},
        },  # fmt: skip
        strategy={"name": "asp"},
    )
    (joined, joined_events), (apart, apart_events) = run_both(monkeypatch, scenario)
    assert_same(joined, apart)
    assert joined_events == apart_events


@settings(max_examples=25, deadline=None)
@given(stop=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_a_run_stopped_mid_push_counts_the_computations_that_ended(stop, seed):
    """The stop comes at any time, often while a joined push is under way: the computation
    it follows is on the books if it ended by then, as the event at its end would have put it."""
    scenario = make(
        seed=seed,
        cluster={**RANDOM_CLUSTER, "workers": 6},
        model={"name": "none"},
        workload={"param_bytes": 2.0e5},
        strategy={"name": "asp"},
        stop={"time_s": stop, "target_accuracy": None},
    )
    results = []
    for join in (True, False):
        Worker.joins_compute_and_push = join
        try:
            results.append(Simulation(scenario, events=True).run())
        finally:
            Worker.joins_compute_and_push = True
    assert_same(*results)
