"""The extension API: a scheme written against ``ashlsim.extend`` only (examples/fedbuff.py),
registered by hand or through an entry point, runs everywhere a scheme is named."""

import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from conftest import make

import ashlsim
from ashlsim import Simulation, registry, strategies
from ashlsim.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from examples.fedbuff import FedBuff  # noqa: E402


@pytest.fixture
def fedbuff():
    ashlsim.register_strategy(FedBuff)
    yield FedBuff
    strategies.STRATEGIES.pop("fedbuff", None)


def test_fedbuff_applies_the_mean_of_each_full_buffer(fedbuff):
    sim = Simulation(make(strategy={"name": "fedbuff", "buffer_size": 3}))
    sizes = []
    apply = sim.server.apply
    sim.server.apply = lambda ups, scale=1.0: (sizes.append((len(ups), scale)), apply(ups, scale))
    result = sim.run()
    assert len(sizes) > 10 and set(sizes) == {(3, 1 / 3)}
    assert result.pushes_pending == sim.strategy.pending() < 3
    assert result.pushes_applied + result.pushes_pending == result.pushes_sent
    in_flight = result.workers["iterations"] - 2 * result.workers["pushes"]
    assert in_flight.isin([0, 2]).all()  # two local steps a push (one iteration may be going)
    assert result.workers["wait_s"].sum() == 0  # nobody waits


def test_fedbuff_with_a_buffer_of_one_is_asp(fedbuff):
    block = {"name": "fedbuff", "buffer_size": 1, "local_steps": 1, "staleness_scaling": False}
    buffered = Simulation(make(strategy=block))
    buffered.run()
    asp = Simulation(make(strategy={"name": "asp"}))
    asp.run()
    np.testing.assert_array_equal(buffered.server.params, asp.server.params)


def test_staleness_scaling_weighs_each_delta(fedbuff):
    scaled = ashlsim.run(make(strategy={"name": "fedbuff"}))
    plain = ashlsim.run(make(strategy={"name": "fedbuff", "staleness_scaling": False}))
    assert not np.allclose(scaled.final_params, plain.final_params)


def test_the_command_line_and_compare_find_a_registered_scheme(fedbuff, tmp_path):
    code = main(["run", "--strategy", "fedbuff(buffer_size=2, local_steps=1)", "--set",
                 "stop.time_s=0.5", "--out", str(tmp_path), "--no-progress"])  # fmt: skip
    assert code == 0
    assert ashlsim.load_scenario(tmp_path / "scenario.yaml").strategy.buffer_size == 2
    table = ashlsim.compare(make(stop={"time_s": 0.5}), ["fedbuff", "asp"], seeds=[0])
    assert list(table["strategy"]) == ["fedbuff", "asp"]


def test_an_entry_point_plugin_is_found_by_name(monkeypatch):
    strategies.STRATEGIES.pop("fedbuff", None)
    entry = metadata.EntryPoint("fedbuff", "examples.fedbuff:FedBuff", strategies.ENTRY_POINTS)
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [entry] if group == strategies.ENTRY_POINTS else [])  # fmt: skip
    monkeypatch.setattr(strategies.REGISTRY, "plugins_loaded", False)
    try:
        scenario = make(strategy={"name": "fedbuff", "buffer_size": 2})
        assert scenario.strategy.buffer_size == 2
    finally:
        strategies.STRATEGIES.pop("fedbuff", None)


def test_register_strategy_refuses_what_is_not_a_scheme(fedbuff):
    with pytest.raises(TypeError):
        ashlsim.register_strategy(dict)
    with pytest.raises(ValueError, match="exists"):
        ashlsim.register_strategy(type("Other", (FedBuff,), {}))
    with pytest.raises(TypeError, match="Params.name"):
        ashlsim.register_strategy(type("Misnamed", (FedBuff,), {"name": "other"}))
