"""Scenarios are data: round trips, defaults, and one clear error per kind of bad input."""

import pytest
import yaml
from conftest import scenario_dict

from ashlsim import Scenario, ScenarioError, load_scenario


def test_default_round_trips_through_yaml(tmp_path):
    scenario = Scenario()
    path = tmp_path / "s.yaml"
    path.write_text(scenario.to_yaml())
    assert load_scenario(path) == scenario
    assert Scenario.from_dict(yaml.safe_load(scenario.to_yaml())) == scenario


def test_default_matches_the_documented_one():
    s = Scenario()
    assert s.cluster.workers == 8
    assert s.cluster.speed.to_spec() == {"dist": "lognormal", "mean": 2000.0, "sigma": 0.6}
    assert s.model.name == "mlp" and s.model.hidden == (32,)
    assert (s.data.name, s.data.n_samples, s.data.n_features, s.data.n_classes) == (
        "teacher", 20000, 16, 3)  # fmt: skip
    assert (s.data.teacher_hidden, s.data.teacher_gain, s.data.task_seed) == (8, 1.8, 0)
    assert s.training.schedule_epochs == 80.0 and s.training.lr_schedule == "constant"
    assert s.strategy.name == "bsp"
    assert (s.stop.time_s, s.stop.target_accuracy, s.eval.every_s) == (300.0, 0.95, 1.0)


def test_per_worker_lists_and_speeds_alias():
    data = scenario_dict()
    data["cluster"]["speeds"] = data["cluster"].pop("speed")
    s = Scenario.from_dict(data)
    assert s.cluster.speed.values == (4000, 4000, 1000, 1000)
    again = Scenario.from_dict(s.to_dict())
    assert again == s


def test_overrides_and_strategy_switch():
    s = Scenario().with_overrides({"cluster.workers": 3, "cluster.speed": [1, 2, 3]})
    assert s.cluster.workers == 3
    ssp = Scenario.from_dict(scenario_dict(strategy={"name": "ssp", "staleness": 7}))
    asp = ssp.with_overrides({"strategy.name": "asp"})
    assert asp.strategy.name == "asp" and not hasattr(asp.strategy, "staleness")


def test_an_override_changes_one_place_even_where_a_dict_was_given_for_two():
    """One dict given for two sections is one object: setting the downlink's bandwidth must
    leave the uplink's alone (``copy.deepcopy`` keeps such sharing; files cannot: YAML anchors
    are refused)."""
    link = {"bandwidth": [1.0e6, 2.0e6], "latency": 0.001}
    shared = Scenario.from_dict({"cluster": {"workers": 2, "uplink": link, "downlink": link}})
    changed = shared.with_overrides({"cluster.downlink.bandwidth": 5.0e6})
    assert changed.cluster.downlink.bandwidth.value == 5.0e6
    assert changed.cluster.uplink.bandwidth.values == (1.0e6, 2.0e6)
    again = changed.with_overrides({"cluster.uplink.latency": 0.002})
    assert again.cluster.downlink.latency.value == 0.001


@pytest.mark.parametrize(
    ("sections", "field", "words"),
    [
        ({"cluster": {"bogus": 1}}, "cluster.bogus", "one of the keys"),
        ({"cluster": {"workers": "four"}}, "cluster.workers", "integer"),
        ({"cluster": {"workers": 0}}, "cluster.workers", "from 1"),
        ({"cluster": {"uplink": {"bandwidth": -5}}}, "cluster.uplink.bandwidth", "> 0"),
        ({"cluster": {"speed": [1, 2]}}, "cluster.speed", "one value per worker (4 values)"),
        ({"strategy": {"name": "hogwild"}}, "strategy.name", "bsp, asp"),
        ({"strategy": {"name": "ssp", "staleness": -1}}, "strategy.staleness", ">= 0"),
        ({"strategy": {"name": "bsp", "staleness": 2}}, "strategy.staleness", "one of the keys"),
        ({"model": {"name": "resnet"}}, "model.name", "softmax"),
        ({"data": {"name": "cifar"}}, "data.name", "digits"),
        ({"data": {"partition": "proportional"}}, "data.weights", "4 positive numbers"),
        ({"stop": {"time_s": None, "epochs": None}}, "stop", "time_s or epochs"),
        ({"training": {"lr": 0}}, "training.lr", "> 0"),
    ],
)
def test_bad_input_names_field_value_and_allowed(sections, field, words):
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(scenario_dict(**sections))
    assert info.value.field == field
    assert words in str(info.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ScenarioError, match="readable YAML file"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: [unclosed")
    with pytest.raises(ScenarioError, match="valid YAML"):
        load_scenario(bad)


def test_timing_only_mode_needs_a_message_size():
    import ashlsim

    with pytest.raises(ScenarioError, match="workload.param_bytes"):
        ashlsim.run(Scenario.from_dict(scenario_dict(model={"name": "none"})))
