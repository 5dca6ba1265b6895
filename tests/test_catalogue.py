"""The catalogue: names become the numbers the simulator uses, and the saved scenario keeps them."""

import pytest
import yaml

import ashlsim
from ashlsim import ScenarioError
from ashlsim.catalogue import EFFICIENCY, entries
from ashlsim.cli import main

CLUSTER = {"workload": {"name": "resnet50"},
           "cluster": {"device": ["a100", "a100", "t4", "t4"], "network": "10gbe"},
           "model": {"name": "softmax"}, "stop": {"time_s": 2.0, "target_accuracy": None}}  # fmt: skip


def test_names_become_numbers():
    sc = ashlsim.Scenario.from_dict(CLUSTER)
    model, table = entries()["models"]["resnet50"], entries()["devices"]
    assert sc.workload.flops_per_sample == model["flops_per_sample"]
    assert sc.workload.param_bytes == model["params"] * 4
    expected = [table[d]["fp16"] * EFFICIENCY / model["flops_per_sample"]
                for d in ("a100", "a100", "t4", "t4")]  # fmt: skip
    assert list(sc.cluster.speed.values) == pytest.approx(expected)
    assert sc.cluster.workers == 4
    assert list(sc.cluster.uplink.bandwidth.values) == [1.25e9] * 4
    assert list(sc.cluster.downlink.latency.values) == [25e-6] * 4
    assert sc.cluster.server.ingress == sc.cluster.server.egress == 1.25e9
    # an A100 is 312/65 = 4.8 times a T4 here
    assert sc.cluster.speed.values[0] / sc.cluster.speed.values[2] == pytest.approx(312 / 65)


def test_the_saved_scenario_keeps_the_resolved_numbers(tmp_path):
    sc = ashlsim.Scenario.from_dict(CLUSTER)
    result = ashlsim.run(sc)
    result.save(tmp_path)
    saved = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    assert "device" not in saved["cluster"] and len(saved["cluster"]["speed"]) == 4
    assert ashlsim.load_scenario(tmp_path / "scenario.yaml") == sc


def test_efficiency_precision_and_per_worker_networks():
    data = {**CLUSTER, "cluster": {"device": "v100", "workers": 2, "precision": "fp32",
                                   "efficiency": 0.5, "network": ["1gbe", "wan_100mbit"]}}  # fmt: skip
    sc = ashlsim.Scenario.from_dict(data)
    assert list(sc.cluster.speed.values) == pytest.approx([15.7e12 * 0.5 / 12.27e9] * 2)
    assert list(sc.cluster.uplink.bandwidth.values) == [1.25e8, 1.25e7]


@pytest.mark.parametrize(
    ("change", "field"),
    [({"workload": {"name": "resnet5000"}}, "workload.name"),
     ({"cluster": {"device": "tpu"}}, "cluster.device"),
     ({"cluster": {"device": ["a100", "t4"], "workers": 3}}, "cluster.device"),
     ({"cluster": {"network": "5g"}}, "cluster.network"),
     ({"cluster": {"device": "a100", "efficiency": 2}}, "cluster.efficiency"),
     ({"workload": {}, "cluster": {"device": "a100"}}, "cluster.device")],
)  # fmt: skip
def test_unknown_names_are_errors_naming_the_field(change, field):
    with pytest.raises(ScenarioError, match=field):
        ashlsim.Scenario.from_dict({**CLUSTER, **change})


def test_entries_of_your_own(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text("devices:\n  my_gpu: {fp16: 100e12, fp32: 10e12}\n")
    monkeypatch.setenv("ASHLSIM_CATALOGUE", str(path))
    sc = ashlsim.Scenario.from_dict({**CLUSTER, "cluster": {"device": "my_gpu", "workers": 2}})
    assert sc.cluster.speed.values[0] == pytest.approx(100e12 * EFFICIENCY / 12.27e9)


def test_the_command_lists_the_catalogue(capsys):
    assert main(["catalogue"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "a100" in out and "10gbe" in out and "CATALOGUE.md" in out


def test_a_measured_throughput_is_used_as_is(tmp_path, monkeypatch):
    path = tmp_path / "measured.yaml"
    path.write_text(
        "devices:\n  a100: {fp16: 312e12, fp32: 19.5e12, throughput: {resnet50: 2600}}\n"
    )
    monkeypatch.setenv("ASHLSIM_CATALOGUE", str(path))
    sc = ashlsim.Scenario.from_dict(CLUSTER)
    assert sc.cluster.speed.values[:2] == (2600.0, 2600.0)  # measured
    assert sc.cluster.speed.values[2] == pytest.approx(65e12 * EFFICIENCY / 12.27e9)  # peak-based
