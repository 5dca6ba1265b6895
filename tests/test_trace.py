"""A run's timeline as a Chrome trace (Perfetto): every event of the log is there once, with its
times; the PS card's counters integrate to the bytes that crossed it; stage changes and faults
are instants."""

import json

import numpy as np
import pytest
from conftest import make

import ashlsim
from ashlsim import ScenarioError
from ashlsim.cli import main


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    faults = [{"worker": 1, "at_s": 0.4, "kind": "crash", "recover_after_s": 0.3}]
    scenario = make(strategy={"name": "ashl", "profile_iters": 2, "switch": "epochs",
                              "switch_epochs": 1.0},
                    cluster={"server": {"ingress": 2e7, "egress": 2e7}}, faults=faults,
                    stop={"time_s": 2.0})  # fmt: skip
    result = ashlsim.run(scenario, events=True)
    path = result.to_trace(tmp_path_factory.mktemp("trace") / "trace.json")
    return result, json.loads(path.read_text())["traceEvents"]


def test_every_logged_event_is_a_slice_once_with_its_times(traced):
    result, events = traced
    slices = sorted((e["tid"], e["name"], e["ts"], e["ts"] + e["dur"])
                    for e in events if e["ph"] == "X")  # fmt: skip
    logged = sorted((int(r.worker), str(r.kind), round(r.start_s * 1e6), round(r.end_s * 1e6))
                    for r in result.events.itertuples())  # fmt: skip
    assert slices == logged and len(slices) > 100
    names = {e["args"]["name"] for e in events if e["ph"] == "M"}
    assert {"parameter server", "workers", "worker 0", "worker 3"} <= names


def test_stage_changes_and_faults_are_instants(traced):
    result, events = traced
    instants = [e for e in events if e["ph"] == "i"]
    stages = [e for e in instants if e["cat"] == "stage"]
    assert [e["ts"] for e in stages] == [round(t * 1e6) for t in result.stage_changes["time_s"]]
    assert [e["name"] for e in stages] == ["profile -> ahl", "ahl -> shl"]
    (crash,) = [e for e in instants if e["cat"] == "fault"]
    assert crash["tid"] == 1 and crash["ts"] == 400_000


def test_the_card_counters_integrate_to_the_bytes_that_crossed_it(traced):
    """Each transfer counted at its worker's mean size over its duration: the integral of the
    ingress counter over the run is the bytes of the pushes that ended (a push cut by the stop
    or a crash adds its share too), within the spread of the message sizes."""
    result, events = traced
    ingress = [e for e in events if e["ph"] == "C" and e["name"].startswith("ingress")]
    t = np.array([e["ts"] for e in ingress]) / 1e6
    rate = np.array([e["args"]["bytes/s"] for e in ingress])
    crossed = float(np.sum(rate[:-1] * np.diff(t)))
    assert rate[-1] == pytest.approx(0.0, abs=1e-6) and (rate >= 0).all()
    assert crossed == pytest.approx(result.workers["bytes_up"].sum(), rel=0.25)


def test_a_run_without_events_has_no_trace():
    with pytest.raises(ScenarioError, match="events"):
        ashlsim.run(make(stop={"time_s": 0.2})).to_trace("x.json")


def test_the_command_line_writes_the_trace(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--set", "stop.time_s=0.5", "--trace", "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    data = json.loads((out / "trace.json").read_text())
    assert data["displayTimeUnit"] == "ms" and (out / "events.csv").is_file()
    assert sum(e["ph"] == "X" for e in data["traceEvents"]) > 10
