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
    assert list(sc.cluster.speed.values) == pytest.approx([15.7e12 * 0.5 / 24.54e9] * 2)
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
    assert sc.cluster.speed.values[0] == pytest.approx(100e12 * EFFICIENCY / 24.54e9)


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
    assert sc.cluster.speed.values[2] == pytest.approx(65e12 * EFFICIENCY / 24.54e9)  # peak-based


# -- one resolution step: a name means the same numbers whichever way it arrives --------------

NAMED = {"workload.name": "vgg16", "cluster.network": "100gbe",
         "cluster.device": ["t4", "a100", "t4", "a100"]}  # fmt: skip
SHORT = {"stop": {"time_s": 0.3, "target_accuracy": None}, "model": {"name": "softmax"}}


def _by_file(tmp_path):
    data = {**SHORT, "workload": {"name": "vgg16"},
            "cluster": {"network": "100gbe", "device": NAMED["cluster.device"]}}  # fmt: skip
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump(data))
    return ashlsim.load_scenario(path)


def _by_set(tmp_path):
    from ashlsim.cli import resolve_scenario

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(SHORT))
    sets = [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"
            for key, value in NAMED.items()]  # fmt: skip
    return resolve_scenario(str(base), None, sets)


def _by_grid(tmp_path):
    from ashlsim.sweep import plan

    grid = {key: [value] for key, value in NAMED.items()}
    (run,) = plan(ashlsim.Scenario.from_dict(SHORT), grid, ["bsp"], [0])
    return ashlsim.Scenario.from_dict(run.scenario)


def _by_recipe(tmp_path):
    from ashlsim.cli import resolve_scenario

    recipe = tmp_path / "recipe.yaml"
    fragment = {"workload": {"name": "vgg16"},
                "cluster": {"network": "100gbe", "device": NAMED["cluster.device"]}}  # fmt: skip
    recipe.write_text(yaml.safe_dump({"common": fragment, "strategies": {"bsp": {}}}))
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(SHORT))
    return resolve_scenario(str(base), "bsp", [], str(recipe))


def _by_python(tmp_path):
    return ashlsim.Scenario.from_dict(SHORT).with_overrides(NAMED)


@pytest.mark.parametrize("way", [_by_file, _by_set, _by_grid, _by_recipe, _by_python])
def test_a_name_resolves_the_same_whichever_way_it_arrives(way, tmp_path):
    sc = way(tmp_path)
    vgg, table = entries()["models"]["vgg16"], entries()["devices"]
    assert sc.workload.flops_per_sample == vgg["flops_per_sample"]
    assert sc.workload.param_bytes == vgg["params"] * 4
    assert sc.cluster.workers == 4
    t4, a100 = (table[d]["fp16"] * EFFICIENCY / vgg["flops_per_sample"] for d in ("t4", "a100"))
    assert list(sc.cluster.speed.values) == pytest.approx([t4, a100, t4, a100])  # in order
    assert list(sc.cluster.uplink.bandwidth.values) == [1.25e10] * 4
    assert sc.cluster.server.ingress == sc.cluster.server.egress == 1.25e10


def test_a_name_set_over_a_named_file_replaces_it(tmp_path):
    sc = _by_file(tmp_path).with_overrides({"workload.name": "resnet18", "cluster.network": "1gbe"})
    assert sc.workload.flops_per_sample == entries()["models"]["resnet18"]["flops_per_sample"]
    assert sc.cluster.server.ingress == 1.25e8 and sc.cluster.uplink.bandwidth.values[0] == 1.25e8


def test_a_grid_over_names_makes_one_run_per_name(tmp_path):
    from ashlsim.sweep import plan

    runs = plan(ashlsim.Scenario.from_dict(SHORT),
                {"workload.name": ["resnet18", "vgg16"]}, ["bsp"], [0])  # fmt: skip
    assert len({run.key for run in runs}) == 2
    flops = [run.scenario["workload"]["flops_per_sample"] for run in runs]
    assert flops == [entries()["models"][m]["flops_per_sample"] for m in ("resnet18", "vgg16")]


@pytest.mark.parametrize(
    "data, both",
    [({"cluster": {"device": "a100", "speed": 5}}, ("cluster.device", "cluster.speed")),
     ({"cluster": {"device": "a100", "speeds": [5] * 8}}, ("cluster.device", "cluster.speed")),
     ({"workload": {"name": "vgg16", "flops_per_sample": 1e9}},
      ("workload.name", "workload.flops_per_sample")),
     ({"workload": {"name": "vgg16", "param_bytes": 1e6}}, ("workload.name", "workload.param_bytes")),
     ({"cluster": {"network": "1gbe", "uplink": {"bandwidth": 1e6}}},
      ("cluster.network", "cluster.uplink.bandwidth")),
     ({"cluster": {"network": "1gbe", "downlink": {"latency": 0.1}}},
      ("cluster.network", "cluster.downlink.latency"))],
)  # fmt: skip
def test_two_sources_for_one_quantity_are_an_error_naming_both(data, both):
    with pytest.raises(ScenarioError) as caught:
        ashlsim.Scenario.from_dict({**CLUSTER, **data})
    assert all(name in str(caught.value) for name in both)


def test_a_number_set_over_a_name_is_an_error_naming_both(tmp_path):
    with pytest.raises(ScenarioError, match="cluster.device.*cluster.speed|cluster.speed.*device"):
        _by_file(tmp_path).with_overrides({"cluster.speed": 5})


@pytest.mark.parametrize("order", [["1gbe", "10gbe"], ["10gbe", "1gbe"]])
def test_the_ps_card_is_like_the_fastest_link_whatever_the_order(order):
    sc = ashlsim.Scenario.from_dict({**SHORT, "cluster": {"network": order}})
    assert sc.cluster.server.ingress == sc.cluster.server.egress == 1.25e9
    assert list(sc.cluster.uplink.bandwidth.values) == [
        entries()["networks"][n]["bandwidth"] for n in order
    ]


def test_a_server_block_keeps_the_networks_card_where_it_gives_none():
    """Sharding the PS, or setting its software costs, must not drop the card the network
    gave it (it used to fall back to the default card, ten times slower on 10 GbE)."""
    sharded = ashlsim.Scenario.from_dict({"cluster": {"network": "10gbe", "server": {"shards": 4}}})
    assert sharded.cluster.server.ingress == sharded.cluster.server.egress == 1.25e9
    assert sharded.cluster.server.shards == 4
    own = ashlsim.Scenario.from_dict({"cluster": {"network": "10gbe", "server": {"ingress": 5e8}}})
    assert (own.cluster.server.ingress, own.cluster.server.egress) == (5e8, 1.25e9)
    again = ashlsim.Scenario.from_dict({"cluster": {"network": "10gbe"}}).with_overrides(
        {"cluster.server.apply_s": 0.001}
    )
    assert again.cluster.server.ingress == 1.25e9


@pytest.mark.parametrize(
    "body, field",
    [("models: {m: {params: abc, flops_per_sample: 1e9}}", "models.m.params"),
     ("models: {m: {flops_per_sample: 1e9}}", "models.m.params"),
     ("models: {m: {params: 1e6, flops_per_sample: 0}}", "models.m.flops_per_sample"),
     ("models: [1, 2]", "models"),
     ("networks: {n: {bandwidth: 1e9}}", "networks.n.latency"),
     ("networks: {n: {bandwidth: -1, latency: 0}}", "networks.n.bandwidth"),
     ("devices: {d: {fp32: 1e12}}", "devices.d.fp16"),
     ("devices: {d: [1, 2]}", "devices.d"),
     ("devices: {d: {fp16: 1e12, fp32: 1e12, throughput: 5}}", "devices.d.throughput"),
     ("devices: {d: {fp16: 1e12, fp32: 1e12, throughput: {resnet50: 0}}}",
      "devices.d.throughput.resnet50"),
     ("devices: {d: {fp16: true, fp32: 1e12}}", "devices.d.fp16")],
)  # fmt: skip
def test_a_bad_catalogue_entry_is_one_line_naming_it(body, field, tmp_path, monkeypatch, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(body + "\n")
    monkeypatch.setenv("ASHLSIM_CATALOGUE", str(path))
    with pytest.raises(ScenarioError, match=f"catalogue .*mine.yaml: {field}"):
        ashlsim.Scenario.from_dict(CLUSTER)
    assert main(["catalogue"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err and "Traceback" not in err


def test_a_catalogue_that_is_a_pipe_is_refused_at_once(tmp_path, monkeypatch):
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    monkeypatch.setenv("ASHLSIM_CATALOGUE", str(fifo))
    with pytest.raises(ScenarioError, match="regular"):
        ashlsim.Scenario.from_dict(CLUSTER)
