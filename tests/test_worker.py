"""The worker's loop (``cluster.worker.Iterations``): a computation and a push that nothing can
slow are one timeout (``Worker.joins_compute_and_push``); a computation that nothing can change
while the pull before it lasts is drawn at the pull's start (``Worker.draws_early``); and
without faults the steps run as callbacks on the event queue instead of a SimPy process
(``Worker.in_process``). None may change anything but the number of wake-ups: every scheme's
run is compared, bit for bit, with the same run as a process whose worker wakes at the end of
every phase."""

import numpy as np
import pandas as pd
import pytest
import simpy
from conftest import SCHEMES, make, scheme_block
from hypothesis import given, settings
from hypothesis import strategies as st

from ashlsim import Simulation
from ashlsim.cluster import Worker

RANDOM_CLUSTER = {
    "speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5},
    "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.2},
}

CASES = {
    **{name: {"strategy": scheme_block(name)} for name in SCHEMES},  # every registered scheme
    "ssp": {"strategy": {"name": "ssp", "staleness": 2}},
    "local_sgd": {"strategy": {"name": "local_sgd", "local_steps": 3}},
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

TIMING = {"model": {"name": "none"}, "workload": {"param_bytes": 2.0e4}}  # timing only
# every phase 1/64 s, evaluations every 16/64 s: pulls end at evaluations' very times
TIES = {
    "workers": 4,
    "speed": 1024.0,
    "uplink": {"bandwidth": 1.0e6, "latency": 0.0},
    "downlink": {"bandwidth": 1.0e6, "latency": 0.0},
}
TIES_BYTES = {"param_bytes": 15624.0, "header_bytes": 1}  # 15,625 B a message: 1/64 s
TIMING_CASES = {
    "asp": {},
    "bsp": {},
    "ssp": {"strategy": {"name": "ssp", "staleness": 1}},  # cached reads: some iterations pull
    "ssp-fresh": {"strategy": {"name": "ssp", "staleness": 2, "reads": "fresh"}},
    "local_sgd": {"strategy": {"name": "local_sgd", "local_steps": 2}},
    "asp-random": {"cluster": {**RANDOM_CLUSTER, "workers": 12}},
    "bsp-random-topk": {
        "cluster": {**RANDOM_CLUSTER, "workers": 12},
        "strategy": {"name": "bsp", "compression": {"name": "topk", "ratio": 0.1}},
    },
    "asp-ties": {"cluster": TIES, "workload": TIES_BYTES, "eval": {"every_s": 0.25}},
    "bsp-ties": {"cluster": TIES, "workload": TIES_BYTES, "eval": {"every_s": 0.25}},
    "asp-epochs": {"stop": {"time_s": None, "epochs": 3.0, "target_accuracy": None}},
    "ashl": {"strategy": {"name": "ashl"}},
    "asp-stragglers": {
        "cluster": {"stragglers": {"interval_s": 0.3, "duration_s": 0.2, "factor": 4.0}},
    },
}


def count_wakes(monkeypatch) -> list[int]:
    """Count the times a worker is woken from now on (``[count]``), as a process or on the
    queue: a phase that joins the next one ends without waking its worker."""
    from ashlsim.cluster.worker import Iterations

    calls = [0]
    for cls in (simpy.Process, Iterations):
        monkeypatch.setattr(cls, "_resume", counted(cls._resume, calls))
    return calls


def counted(resume, calls):
    def wrapper(self, event):
        calls[0] += 1
        return resume(self, event)

    return wrapper


REFERENCE = (False, False, True)  # no joins, drawn at the pull's end, a process


def run_both(monkeypatch, scenario, events=True, joins=(True, True, False)):
    """The run with ``joins`` (compute and push, drawn early, ``in_process``) and with the
    reference's."""
    out = []
    for compute_and_push, early, in_process in (joins, REFERENCE):
        monkeypatch.setattr(Worker, "joins_compute_and_push", compute_and_push)
        monkeypatch.setattr(Worker, "draws_early", early)
        monkeypatch.setattr(Worker, "in_process", in_process)
        wakes = count_wakes(monkeypatch)
        result = Simulation(scenario, events=events).run()
        out.append((result, wakes[0]))  # wake-ups in the whole run
    return out


def assert_same(a, b):
    np.testing.assert_array_equal(a.final_params, b.final_params)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.workers, b.workers)
    if a.events is not None:
        pd.testing.assert_frame_equal(a.events, b.events)
    assert a.stop_reason == b.stop_reason


ALL_CASES = {**CASES, **{f"timing-{name}": case for name, case in TIMING_CASES.items()}}


def sections_of(case: str) -> dict:
    timing = case.startswith("timing-")
    name = case.removeprefix("timing-")
    own = TIMING_CASES[name] if timing else CASES[name]
    # (a case's own sections replace TIMING's)
    return {"strategy": {"name": name.split("-")[0]}, **(TIMING if timing else {}), **own}


def check_same_with_fewer_wakes(monkeypatch, case, joins):
    (joined, joined_wakes), (apart, apart_wakes) = run_both(
        monkeypatch, make(**sections_of(case)), joins=joins
    )
    assert_same(joined, apart)
    pushes = int(joined.workers["pushes"].sum())
    assert pushes > 20
    # ... and the join is used: one wake-up fewer per push (a push cut off by the stop saves
    # none); drawing early and the queue save none
    saved = apart_wakes - joined_wakes
    assert joins[0] * pushes <= saved <= joins[0] * (pushes + len(joined.workers))


@pytest.mark.parametrize("case", ALL_CASES)
def test_joined_phases_on_the_queue_change_nothing_but_the_wake_ups(monkeypatch, case):
    check_same_with_fewer_wakes(monkeypatch, case, (True, True, False))


@pytest.mark.parametrize(
    "joins",
    [(True, False, True), (False, True, True), (False, False, False), (True, True, True)],
    ids=["join-only", "early-only", "queue-only", "all-but-queue"],
)
@pytest.mark.parametrize(
    "case", ["asp-random", "timing-asp-random", "timing-ssp", "timing-bsp-random-topk"]
)
def test_each_alone_changes_nothing_but_the_wake_ups(monkeypatch, case, joins):
    check_same_with_fewer_wakes(monkeypatch, case, joins)


def test_the_queue_and_the_process_take_the_same_event_numbers(monkeypatch):
    """Ties at one time go by event number: the queue's steps must take them exactly when the
    process's timeouts would (SSP's cached reads depend on the order of pushes)."""
    scenario = make(**sections_of("timing-ssp"))
    numbers = []
    for in_process in (False, True):
        monkeypatch.setattr(Worker, "in_process", in_process)
        sim = Simulation(scenario)
        sim.run()
        numbers.append(next(sim.env._eid))
    assert numbers[0] == numbers[1]


def test_a_tie_between_a_pull_end_and_an_evaluation_goes_by_the_event_order():
    """Pulls that end at an evaluation's very time are counted in the bytes it records only if
    their end's event came first: here the evaluation's timeout is older, so none is."""
    scenario = make(strategy={"name": "asp"}, **{**TIMING, **TIMING_CASES["asp-ties"]})
    result = Simulation(scenario).run()
    # pull k of a worker ends at (3k + 1) / 64 s: the sixth (k = 5), at 16/64 s, ties with
    # the first evaluation after the start, whose timeout is older: five pulls each before it
    row = result.history.set_index("time_s").loc[0.25]
    assert row["bytes_down"] == 4 * 5 * 15625
    assert result.history["bytes_down"].iloc[-1] % 15625 == 0


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
    (joined, joined_wakes), (apart, apart_wakes) = run_both(
        monkeypatch, scenario, joins=(True, True, True)
    )
    assert_same(joined, apart)
    assert joined_wakes == apart_wakes


@settings(max_examples=25, deadline=None)
@given(stop=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_a_run_stopped_mid_push_counts_the_computations_that_ended(stop, seed):
    """The stop comes at any time, often while a joined push or an early-drawn pull is under
    way: the computation it follows is on the books if it ended by then, as the event at its
    end would have put it, and a pull if it ended."""
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
        Worker.joins_compute_and_push = Worker.draws_early = join
        Worker.in_process = not join
        try:
            results.append(Simulation(scenario, events=True).run())
        finally:
            Worker.joins_compute_and_push = Worker.draws_early = True
            Worker.in_process = False
    assert_same(*results)


def test_a_subclass_of_a_steady_scheme_is_steady_only_if_it_says_so():
    """A subclass may vary its local steps: steadiness is read from the class that declares
    it, never inherited (``Strategy.steady``)."""
    from ashlsim.cluster.worker import is_steady
    from ashlsim.strategies.asp import ASP

    class Varying(ASP):
        def local_steps(self, worker):
            return 1 + int(self.port.now()) % 3

    class Declared(Varying):
        steady = True

    assert is_steady(object.__new__(ASP))
    assert not is_steady(object.__new__(Varying))
    assert is_steady(object.__new__(Declared))
