"""PyTorch models in simulated time (the ``torch`` extra): a PyTorch MLP started from the NumPy
MLP's parameters follows its loss curve, a PyTorch CNN trains under every scheme, and a bad
factory is one line. Skipped, with the reason shown, where PyTorch is not installed."""

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SCHEMES, make, scheme_block

torch = pytest.importorskip("torch", reason='PyTorch absent: pip install -e ".[torch]"')

import ashlsim  # noqa: E402
from ashlsim import Simulation  # noqa: E402
from ashlsim.cli import main  # noqa: E402
from ashlsim.errors import ScenarioError  # noqa: E402
from ashlsim.models import MLP, TorchModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TORCH_MLP = {"name": "torch", "factory": "examples.torch_nets:mlp", "input": "flat",
             "options": {"hidden": [16]}}  # fmt: skip
TORCH_CNN = {"name": "torch", "factory": "examples.torch_nets:cnn", "options": {"channels": [4]}}


def as_torch_layout(vector, widths):
    """The NumPy MLP's vector ([W (in, out), b] per layer) in PyTorch's ([W (out, in), b])."""
    parts, at = [], 0
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        W = vector[at : at + fan_in * fan_out].reshape(fan_in, fan_out)
        parts += [W.T.ravel(), vector[at + fan_in * fan_out : at + fan_in * fan_out + fan_out]]
        at += fan_in * fan_out + fan_out
    return np.concatenate(parts)


@pytest.mark.parametrize("scheme", ["bsp", "asp"])
def test_a_pytorch_mlp_follows_the_numpy_mlps_loss_curve(scheme, monkeypatch):
    numpy_run = ashlsim.run(make(model={"name": "mlp", "hidden": [16], "dtype": "float32"},
                                 strategy={"name": scheme}))  # fmt: skip
    widths = (64, 16, 10)
    monkeypatch.setattr(TorchModel, "init", lambda self, rng: as_torch_layout(
        MLP(64, (16,), 10, np.float32).init(rng), widths))  # fmt: skip
    torch_run = ashlsim.run(make(model={**TORCH_MLP, "dtype": "float32"},
                                 strategy={"name": scheme}))  # fmt: skip
    a, b = numpy_run.history, torch_run.history
    assert len(a) == len(b) and a["loss"].iloc[-1] < 0.5 * a["loss"].iloc[0]
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=2e-4)
    np.testing.assert_allclose(b["accuracy"], a["accuracy"], atol=0.01)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_pytorch_cnn_trains_under_every_scheme_the_same_again(scheme):
    faults = [{"kind": "crash", "worker": 2, "at_s": 0.5, "recover_after_s": 0.4}]
    scenario = make(model=TORCH_CNN, strategy=scheme_block(scheme, faults=True), faults=faults)
    result = ashlsim.run(scenario)
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0]
    assert result.pushes_applied + result.pushes_pending == result.pushes_sent
    np.testing.assert_array_equal(result.final_params, ashlsim.run(scenario).final_params)


def test_the_layout_is_the_modules_parameters_and_the_seed_fixes_them():
    sim = Simulation(make(model=TORCH_CNN))
    module = sim.model.module
    assert sim.model.segments == tuple(p.numel() for p in module.parameters())
    again = Simulation(make(model=TORCH_CNN))
    other = Simulation(make(model=TORCH_CNN, seed=1))
    np.testing.assert_array_equal(sim.server.params, again.server.params)
    assert not np.array_equal(sim.server.params, other.server.params)


def test_the_saved_scenario_keeps_the_factory_and_its_options(tmp_path):
    assert main(["run", "--set", f"model={TORCH_CNN}".replace("'", '"'), "--set",
                 "data.name=digits", "--set", "stop.time_s=0.5", "--out", str(tmp_path),
                 "--no-progress"]) == 0  # fmt: skip
    saved = ashlsim.load_scenario(tmp_path / "scenario.yaml").model
    assert (saved.factory, saved.options) == ("examples.torch_nets:cnn", {"channels": [4]})


@pytest.mark.parametrize("block, message", [
    ({"name": "torch"}, "model.factory: None"),
    ({"name": "torch", "factory": "nowhere"}, "package.module:function"),
    ({"name": "torch", "factory": "examples.torch_nets:nothing"}, "an importable function"),
    ({"name": "torch", "factory": "builtins:slice"}, "a function returning a torch.nn.Module"),
    ({"name": "torch", "factory": "math:sqrt"}, "the arguments math:sqrt takes"),
    ({**TORCH_CNN, "options": {"width": 3}}, "model.options"),
])  # fmt: skip
def test_a_bad_factory_is_one_line(block, message, tmp_path, capsys):
    with pytest.raises(ScenarioError):
        Simulation(make(model=block))
    code = main(["run", "--set", f"model={block}".replace("'", '"'), "--set", "data.name=digits",
                 "--out", str(tmp_path), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present here")
def test_cuda_where_there_is_none_is_one_line():
    with pytest.raises(ScenarioError, match="no CUDA device"):
        Simulation(make(model={**TORCH_CNN, "device": "cuda"}))


def test_the_emulators_worker_processes_build_the_module_too():
    from ashlsim.emulator import emulate

    scenario = make(model=TORCH_CNN, cluster={"workers": 2, "speed": [1000, 500]},
                    training={"batch_size": 64, "lr": 0.05}, strategy={"name": "asp"},
                    stop={"time_s": 1.5})  # fmt: skip
    sim, emu = ashlsim.run(scenario), emulate(scenario, seed=0)
    assert emu.pushes_applied == emu.pushes_sent > 0
    assert emu.history["accuracy"].iloc[-1] == pytest.approx(sim.history["accuracy"].iloc[-1],
                                                             abs=0.08)  # fmt: skip
