"""The model port: a model written against ``ashlsim.extend`` only (examples/tanhnet.py),
registered by hand or through an entry point, trains everywhere a model is named, under every
scheme; a model that computes one vector at a time gives the same run as one that stacks."""

import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from conftest import SCHEMES, make, scheme_block

import ashlsim
from ashlsim import Simulation, models, registry
from ashlsim.cli import main
from ashlsim.errors import ScenarioError
from ashlsim.extend import DataShape, spec, text
from ashlsim.models import MLP, build_model, parse_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from examples.tanhnet import TanhNet, TanhNetParams  # noqa: E402


@pytest.fixture
def tanhnet():
    ashlsim.register_model(TanhNet)
    yield TanhNet
    models.MODELS.pop("tanhnet", None)


def finite_difference_check(model, features, rng, n=40, B=6, eps=1e-6, tol=1e-6):
    """The model's gradient against central differences of its loss at ``n`` coordinates."""
    params = model.init(rng)
    d = model.size
    X = rng.normal(size=(B, features)).astype(model.dtype)
    y = rng.integers(0, model.n_classes, B)
    loss, grad = model.loss_and_grad(params, X, y)
    for i in rng.choice(d, min(n, d), replace=False):
        up, down = params.copy(), params.copy()
        up[i] += eps
        down[i] -= eps
        numeric = (model.loss_and_grad(up, X, y)[0] - model.loss_and_grad(down, X, y)[0]) / (
            2 * eps
        )
        assert grad[i] == pytest.approx(numeric, abs=tol, rel=tol), i
    return loss


def test_the_example_gradient_is_its_loss_derivative(tanhnet):
    model = build_model(parse_model({"name": "tanhnet", "width": 5, "dtype": "float64"}),
                        DataShape((7,), 3))  # fmt: skip
    finite_difference_check(model, 7, np.random.default_rng(0))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_registered_model_trains_under_every_scheme(tanhnet, scheme):
    scenario = make(model={"name": "tanhnet", "width": 12}, strategy=scheme_block(scheme),
                    stop={"time_s": 3.0})  # fmt: skip
    result = ashlsim.run(scenario)
    history = result.history
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert result.pushes_applied + result.pushes_pending == result.pushes_sent
    again = ashlsim.run(scenario)  # the same seed: the same run
    np.testing.assert_array_equal(result.final_params, again.final_params)


class OneAtATime(MLP):
    """The MLP computing one vector at a time: the simulator's adapter does the rest."""

    name = "mlp_one"
    stacks = False

    def loss_and_grad(self, params, X, y):
        return super().loss_and_grad(params, X, y)


@pytest.mark.parametrize("training", [{}, {"momentum": 0.9, "weight_decay": 1e-4}])
@pytest.mark.parametrize("scheme", ["bsp", "asp", "local_sgd"])
def test_a_model_that_does_not_stack_gives_the_same_run(scheme, training):
    """``per_vector`` (G separate calls, the step's scale applied to the gradient) against
    the MLP's own stacked computation (the scale applied to the output's gradient): the same
    parameters to float64 rounding."""
    block = {"name": "mlp", "hidden": [16], "dtype": "float64"}
    stacked = Simulation(make(model=block, strategy={"name": scheme}, training=training))
    stacked.run()
    models.MODELS["mlp"] = OneAtATime
    try:
        single = Simulation(make(model=block, strategy={"name": scheme}, training=training))
        assert not single.model.stacks and not single.trainer.stacked
        single.run()
    finally:
        models.MODELS["mlp"] = MLP
    np.testing.assert_allclose(stacked.server.params, single.server.params, rtol=1e-10, atol=1e-13)


def test_the_command_line_compare_and_sweep_find_a_registered_model(tanhnet, tmp_path, capsys):
    code = main(["run", "--set", "model.name=tanhnet", "--set", "model.width=6", "--set",
                 "stop.time_s=0.5", "--out", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    assert code == 0
    saved = ashlsim.load_scenario(tmp_path / "run" / "scenario.yaml")
    assert (saved.model.name, saved.model.width) == ("tanhnet", 6)
    assert ashlsim.Result.load(tmp_path / "run").scenario.model == saved.model
    table = ashlsim.compare(make(model={"name": "tanhnet"}, stop={"time_s": 0.5}),
                            ["bsp", "asp"], seeds=[0], workers=2)  # fmt: skip
    assert list(table["strategy"]) == ["bsp", "asp"]
    # spawned processes: the sweep's pool hands them the model registered here
    grid = ashlsim.sweep(make(stop={"time_s": 0.5}).to_dict(),
                         {"model": [{"name": "tanhnet", "width": 4}, {"name": "softmax"}]},
                         ["asp"], [0], out=tmp_path / "sweep", workers=2)  # fmt: skip
    assert len(grid) == 2
    capsys.readouterr()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "tanhnet: One hidden layer" in listing and "width = 16  # hidden units" in listing


def test_an_entry_point_model_is_found_by_name(monkeypatch):
    models.MODELS.pop("tanhnet", None)
    entry = metadata.EntryPoint("tanhnet", "examples.tanhnet:TanhNet", models.ENTRY_POINTS)
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [entry] if group == models.ENTRY_POINTS else [])  # fmt: skip
    monkeypatch.setattr(models.REGISTRY, "plugins_loaded", False)
    try:
        assert make(model={"name": "tanhnet", "width": 3}).model.width == 3
    finally:
        models.MODELS.pop("tanhnet", None)


def test_a_new_model_name_drops_the_old_models_parameters_but_its_dtype():
    scenario = make(model={"name": "mlp", "hidden": [8, 8], "dtype": "float64"})
    softmax = scenario.with_overrides({"model.name": "softmax"})
    assert softmax.model == parse_model({"name": "softmax", "dtype": "float64"})
    assert scenario.with_overrides({"model.hidden": [4]}).model.hidden == (4,)


def test_a_model_block_names_its_model_and_keys():
    with pytest.raises(ScenarioError, match=r"model\.name.*one of softmax, logistic, mlp"):
        make(model={"name": "resnet"})
    with pytest.raises(ScenarioError, match=r"model\.hidden"):
        make(model={"name": "softmax", "hidden": [3]})


@dataclass(frozen=True)
class BrokenParams(TanhNetParams):
    name: str = spec("broken", text)


def test_a_model_that_breaks_the_contract_is_one_line(tmp_path, capsys):
    class WrongSegments(TanhNet):
        name = "wrong_segments"
        Params = BrokenParams

        def __init__(self, params, shape):
            super().__init__(params, shape)
            self.segments = (*self.segments, 1)

    class WrongInit(TanhNet):
        name = "wrong_init"
        Params = BrokenParams

        def init(self, rng):
            return super().init(rng).astype(np.float16)

    for cls, message in [(WrongSegments, "segments summing to"), (WrongInit, "init")]:
        models.MODELS["broken"] = cls
        try:
            with pytest.raises(ScenarioError, match=message):
                Simulation(make(model={"name": "broken"}))
            assert main(["run", "--set", "model.name=broken", "--out", str(tmp_path / cls.name),
                         "--no-progress"]) == 2  # fmt: skip
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "model.name" in err[0] and message in err[0]
        finally:
            models.MODELS.pop("broken", None)


def test_register_model_refuses_what_is_not_a_model(tanhnet):
    with pytest.raises(TypeError):
        ashlsim.register_model(dict)
    with pytest.raises(ValueError, match="exists"):
        ashlsim.register_model(type("Other", (TanhNet,), {}))
    with pytest.raises(TypeError, match="Params.name"):
        ashlsim.register_model(type("Misnamed", (TanhNet,), {"name": "other"}))


class DtypeChecked(MLP):
    """The MLP, refusing any vector or batch not of its dtype."""

    name = "mlp"

    def loss_and_grad(self, params, X, y, scale=None):
        for p in params if isinstance(params, list) else [params]:
            assert p.dtype == self.dtype, p.dtype
        assert X.dtype == self.dtype, X.dtype
        return super().loss_and_grad(params, X, y, scale)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_float32_model_is_given_float32_under_every_scheme_and_schedule(scheme, monkeypatch):
    """A schedule restarted mid-run (ASHL's switch) with a warm-up once made the learning
    rate a NumPy float64, which turned the local steps into float64 maths."""
    monkeypatch.setitem(models.MODELS, "mlp", DtypeChecked)
    training = {"momentum": 0.9, "weight_decay": 5e-4, "lr_schedule": "cosine",
                "warmup_share": 0.1, "schedule_epochs": 20.0}  # fmt: skip
    block = scheme_block(scheme)
    if block["name"] == "ashl":  # switch early: the schedule restarts, warm-up and all
        block |= {"switch": "epochs", "switch_epochs": 1.0, "profile_iters": 2}
    cluster = {"workers": 6, "speed": {"dist": "lognormal", "mean": 4000.0, "sigma": 0.6}}
    result = ashlsim.run(make(model={"name": "mlp", "hidden": [8], "dtype": "float32"},
                              cluster=cluster, training=training, strategy=block,
                              stop={"time_s": 3.0}))  # fmt: skip
    assert result.final_params.dtype == np.float32
