"""Fault injection: crashes, slowdowns and link outages under every scheme (issue: trust)."""

import numpy as np
import pytest
from conftest import SCHEMES, make, scheme_block

import ashlsim
from ashlsim import ScenarioError, Simulation

FAULTS = {
    "crash": {"worker": 2, "at_s": 0.7, "kind": "crash", "recover_after_s": 0.6},
    "crash_forever": {"worker": 2, "at_s": 0.7, "kind": "crash"},
    "slowdown": {"worker": 2, "at_s": 0.7, "kind": "slowdown", "factor": 5, "duration_s": 0.8},
    "link_down": {"worker": 2, "at_s": 0.7, "kind": "link_down", "duration_s": 0.8},
}


SCHEMES_AND_VARIANTS = [*SCHEMES, "adsp_authors"]


def strategy_block(scheme):
    return scheme_block(scheme, faults=True)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("scheme", SCHEMES_AND_VARIANTS)
def test_every_scheme_survives_every_fault(scheme, fault):
    scenario = make(
        strategy=strategy_block(scheme),
        faults=[FAULTS[fault]],
        cluster={"jitter": {"dist": "exponential", "mean": 1.0}},
        stop={"time_s": 3.0},
    )
    sim = Simulation(scenario, events=True)
    result = sim.run()  # the server refuses a second application of any push
    assert result.stop_reason == "time_limit"
    assert result.history["time_s"].iloc[-1] == 3.0
    assert result.pushes_applied + result.pushes_pending == result.pushes_sent
    lost = result.workers["lost_pushes"]
    assert lost.drop(index=2).sum() == 0  # only the crashed worker loses anything
    assert lost[2] <= (1 if fault.startswith("crash") else 0)
    assert result.lost_pushes == lost.sum()
    # the run goes on after the fault: updates are applied in its last second
    h = result.history
    assert h["updates"].iloc[-1] > h.loc[h["time_s"] <= 2.0, "updates"].iloc[-1]
    assert len(result.faults) == 1
    assert FAULTS[fault]["kind"] in set(result.events["kind"])


@pytest.mark.parametrize("model", ["softmax", "none"])
@pytest.mark.parametrize(
    ("speeds", "phase", "lost"),
    [
        ([4000, 4000, 50, 4000], "compute", 1),  # worker 2 computes 0.32 s an iteration
        ([50, 50, 4000, 50], "gate", 0),  # worker 2 waits for BSP's round most of the time
    ],
)
def test_a_crash_loses_the_push_in_flight_while_computing_not_while_waiting(
    speeds, phase, lost, model
):
    """The worker's phase at the crash decides whether a push is lost (``Worker.run``):
    computing, its push is; waiting at the barrier, nothing is."""
    crash = {"worker": 2, "at_s": 0.2, "kind": "crash", "recover_after_s": 0.5}
    sections = {"cluster": {"speed": speeds}, "model": {"name": model}}
    if model == "none":  # timing only: workers on the queue without faults, a process with
        sections["workload"] = {"param_bytes": 2.6e4}  # them, the phase on the worker
    scenario = make(**sections, faults=[crash])
    log = ashlsim.run(make(**sections), events=True)
    ev = log.events
    mine = ev[(ev["worker"] == 2) & (ev["start_s"] <= 0.2) & (ev["end_s"] > 0.2)]
    assert list(mine["kind"]) == ["wait" if phase == "gate" else phase]  # (without the crash)
    result = ashlsim.run(scenario)
    assert result.lost_pushes == lost
    assert list(result.faults["lost_push"]) == [bool(lost)]


def _inside(events, worker, kind, after):
    """The middle of ``worker``'s first ``kind`` phase that starts after ``after``."""
    rows = events[(events["worker"] == worker) & (events["kind"] == kind)]
    row = rows[rows["start_s"] > after].iloc[0]
    return (row["start_s"] + row["end_s"]) / 2


def test_two_crashes_lose_two_pushes_and_add_up_their_downtime():
    # ASP, worker 2 computes 0.32 s an iteration: each crash in a computation loses its push
    sections = {"cluster": {"speed": [4000, 4000, 50, 4000]}, "strategy": {"name": "asp"}}
    first = {"worker": 2, "at_s": 0.2, "kind": "crash", "recover_after_s": 0.5}
    once = ashlsim.run(make(**sections, faults=[first]), events=True)
    second = {**first, "at_s": _inside(once.events, 2, "compute", 0.7), "recover_after_s": 0.25}
    result = ashlsim.run(make(**sections, faults=[first, second]))
    assert result.lost_pushes == 2 and list(result.faults["lost_push"]) == [True, True]
    assert result.workers["down_s"].tolist() == pytest.approx([0.0, 0.0, 0.75, 0.0])


@pytest.mark.parametrize("model", ["softmax", "none"])
def test_a_crash_during_a_push_loses_it(model):
    # a 1 MB push through worker 2's 1 MB/s uplink: it pushes for a second each iteration
    sections = {
        "cluster": {"uplink": {"bandwidth": [1e7, 1e7, 1e6, 1e7], "latency": 0.001}},
        "workload": {"param_bytes": 1e6},
        "model": {"name": model},
        "strategy": {"name": "asp"},
    }
    plain = ashlsim.run(make(**sections), events=True)
    at = _inside(plain.events, 2, "push", 0.0)
    crash = {"worker": 2, "at_s": at, "kind": "crash", "recover_after_s": 0.3}
    result = ashlsim.run(make(**sections, faults=[crash]))
    assert result.lost_pushes == 1 and list(result.faults["lost_push"]) == [True]


def test_a_restarted_worker_starts_a_fresh_compression_residual():
    """A crash loses the machine's memory: its error-feedback residual restarts from zero."""
    sections = {"strategy": {"name": "asp", "compression": {"name": "topk", "ratio": 0.05,
                                                            "error_feedback": True}}}  # fmt: skip
    # back at 0.7; stopped at 0.705, before its next push (a pull, then 16 ms computing)
    crash = {"worker": 2, "at_s": 0.5, "kind": "crash", "recover_after_s": 0.2}
    sim = Simulation(make(**sections, faults=[crash], stop={"time_s": 0.705}))
    sim.run()
    worker = sim.workers[2]
    residual = worker.compress_state
    before = Simulation(make(**sections, stop={"time_s": 0.5}))
    before.run()
    assert np.any(before.workers[2].compress_state != 0)  # it had one
    assert type(residual) is type(worker.compressor.init(sim.model_size))
    assert not np.any(residual)


def test_bsp_wait_stalls_until_recovery_and_drop_goes_on_without_the_worker():
    crash = {"worker": 0, "at_s": 0.5, "kind": "crash", "recover_after_s": 1.0}
    wait = ashlsim.run(make(faults=[crash], stop={"time_s": 3.0}), events=True)
    ev = wait.events
    stalled = ev[(ev["kind"] == "push") & (ev["end_s"] > 0.6) & (ev["end_s"] < 1.5)]
    assert len(stalled) == 0  # nobody finishes a round while worker 0 is down
    assert (ev.query("kind == 'push'")["end_s"] > 1.5).sum() > 20  # and all go on after it
    assert wait.workers.loc[0, "down_s"] == pytest.approx(1.0)

    forever = {"worker": 0, "at_s": 0.5, "kind": "crash"}
    drop = Simulation(
        make(faults=[forever], strategy={"name": "bsp", "on_failure": "drop",
                                         "failure_timeout_s": 0.1}, stop={"time_s": 3.0})
    )  # fmt: skip
    sizes = []
    apply = drop.server.apply
    drop.server.apply = lambda updates, scale=1.0: (
        sizes.append(len(updates)),
        apply(updates, scale),
    )
    drop.run()
    assert sizes[0] == 4 and sizes[-1] == 3  # the dropped worker is no longer waited for
    assert 3 in sizes and set(sizes) <= {3, 4}


def test_ssp_leaves_a_crashed_worker_out_of_the_slowest_clock():
    forever = {"worker": 3, "at_s": 0.3, "kind": "crash"}
    result = ashlsim.run(
        make(strategy={"name": "ssp", "staleness": 0}, faults=[forever], stop={"time_s": 2.0})
    )
    w = result.workers
    assert w.loc[3, "pushes"] < w.loc[0, "pushes"] / 3  # the others went on without it
    assert result.stop_reason == "time_limit"


def test_a_restarted_worker_pulls_the_current_model():
    crash = {"worker": 3, "at_s": 0.5, "kind": "crash", "recover_after_s": 0.5}
    sim = Simulation(make(strategy={"name": "asp"}, faults=[crash]), events=True)
    result = sim.run()
    pulls = result.events.query("worker == 3 and kind == 'pull'")
    assert (pulls["start_s"] == 1.0).any()  # straight after the restart
    late = [s for w, s, _ in sim.server.staleness if w == 3]
    assert max(late) < 20  # its next push was computed on a fresh model, not a pre-crash one


def test_a_crash_frees_the_crashed_transfer_share_at_the_ps():
    # two workers push 1e6 bytes at once through a 1e6 B/s ingress; worker 1 dies at 0.5 s
    # into the push: worker 0 then has 0.75e6 bytes left at the full 1e6 B/s -> 1.25 s in all
    scenario = make(
        cluster={"workers": 2, "speed": [1000, 1000],
                 "uplink": {"bandwidth": 1e9, "latency": 0.0},
                 "downlink": {"bandwidth": 1e12, "latency": 0.0},
                 "server": {"ingress": 1e6, "egress": None}},
        model={"name": "none"}, workload={"param_bytes": 1e6 - 64, "bytes_per_value": 1,
                                          "header_bytes": 64},
        strategy={"name": "asp"}, stop={"time_s": 3.0, "target_accuracy": None},
        faults=[{"worker": 1, "at_s": 1e-6 + 0.016 + 0.5, "kind": "crash"}],
    )  # fmt: skip
    events = ashlsim.run(scenario, events=True).events
    first_push = events.query("worker == 0 and kind == 'push'").iloc[0]
    assert first_push["start_s"] == pytest.approx(1e-6 + 0.016)  # pull, then 16 samples
    assert first_push["end_s"] - first_push["start_s"] == pytest.approx(1.25)


def test_a_link_outage_stalls_a_transfer_for_its_duration():
    scenario = make(
        cluster={"workers": 1, "speed": [1000],
                 "uplink": {"bandwidth": 1e6, "latency": 0.0},
                 "downlink": {"bandwidth": 1e12, "latency": 0.0}},
        model={"name": "none"}, workload={"param_bytes": 1e6 - 64, "bytes_per_value": 1,
                                          "header_bytes": 64},
        strategy={"name": "asp"}, stop={"time_s": 3.0, "target_accuracy": None},
        faults=[{"worker": 0, "at_s": 0.3, "kind": "link_down", "duration_s": 0.4}],
    )  # fmt: skip
    pushes = ashlsim.run(scenario, events=True).events.query("kind == 'push'")
    durations = (pushes["end_s"] - pushes["start_s"]).to_numpy()
    np.testing.assert_allclose(durations[:2], [1.4, 1.0])  # 1 s of bytes + 0.4 s stalled


def test_a_slowdown_multiplies_compute_time_in_its_window():
    slow = {"worker": 0, "at_s": 0.5, "kind": "slowdown", "factor": 3.0, "duration_s": 0.5}
    result = ashlsim.run(make(strategy={"name": "asp"}, faults=[slow]), events=True)
    events = result.events[result.events["end_s"] < result.elapsed_s]  # (not cut by the stop)
    computes = events.query("worker == 0 and kind == 'compute'")
    length = computes["end_s"] - computes["start_s"]
    inside = computes["start_s"].between(0.5, 0.999)
    np.testing.assert_allclose(length[inside], 3 * 16 / 4000)
    np.testing.assert_allclose(length[~inside], 16 / 4000)


def test_when_everybody_is_gone_for_good_the_run_ends():
    faults = [{"worker": w, "at_s": 0.2 + 0.1 * w, "kind": "crash"} for w in range(4)]
    result = ashlsim.run(make(strategy={"name": "asp"}, faults=faults, stop={"time_s": 50.0}))
    assert result.stop_reason == "all_workers_down"
    assert result.elapsed_s == pytest.approx(0.5)


def test_a_fault_for_a_worker_that_does_not_exist_is_refused():
    with pytest.raises(ScenarioError) as info:
        make(faults=[{"worker": 9, "at_s": 1.0, "kind": "crash"}])
    assert info.value.field == "faults[0].worker"
    with pytest.raises(ScenarioError) as info:
        make(faults=[{"worker": 0, "at_s": 1.0, "kind": "meteor"}])
    assert info.value.field == "faults[0].kind"


def test_the_fault_table_and_the_log_hold_each_fault_from_start_to_end():
    faults = [
        {"worker": 1, "at_s": 0.2, "kind": "crash", "recover_after_s": 0.3},
        {"worker": 2, "at_s": 0.4, "kind": "slowdown", "factor": 2.0, "duration_s": 0.25},
        {"worker": 3, "at_s": 0.5, "kind": "link_down", "duration_s": 0.35},
        {"worker": 0, "at_s": 0.6, "kind": "crash"},  # never back: no end
    ]
    result = ashlsim.run(make(faults=faults, strategy={"name": "asp"}), events=True)
    table = result.faults.sort_values("start_s")
    assert table[["worker", "kind"]].values.tolist() == [
        [1, "crash"], [2, "slowdown"], [3, "link_down"], [0, "crash"]]  # fmt: skip
    assert table["start_s"].tolist() == pytest.approx([0.2, 0.4, 0.5, 0.6])
    assert table["end_s"].tolist() == pytest.approx([0.5, 0.65, 0.85, np.inf])
    logged = result.events[result.events["kind"].isin(["crash", "slowdown", "link_down"])]
    logged = logged.sort_values("start_s")
    assert logged[["worker", "kind"]].values.tolist() == table[["worker", "kind"]].values.tolist()
    assert logged["start_s"].tolist() == pytest.approx([0.2, 0.4, 0.5, 0.6])
    # (in the log a crash never recovered from lasts to the end of the run)
    assert logged["end_s"].tolist() == pytest.approx([0.5, 0.65, 0.85, result.elapsed_s])
