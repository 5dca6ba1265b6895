import numpy as np
import pytest

from ashlsim.models import MLP, DataShape, Softmax, build_model, parse_model


def finite_difference(model, params, X, y, eps=1e-6, samples=40, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.choice(params.size, min(samples, params.size), replace=False)
    approx = []
    for i in idx:
        up, down = params.copy(), params.copy()
        up[i] += eps
        down[i] -= eps
        approx.append((model.loss(up, X, y) - model.loss(down, X, y)) / (2 * eps))
    return idx, np.array(approx)


@pytest.mark.parametrize(
    "model",
    [Softmax(7, 3, np.float64), Softmax(5, 2, np.float64), MLP(6, (8, 5), 4, np.float64)],
    ids=["softmax", "logistic", "mlp"],
)
def test_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(1)
    params = model.init(rng) + rng.normal(0, 0.1, model.size)
    X = rng.normal(size=(12, model.widths[0] if hasattr(model, "widths") else model.d))
    y = rng.integers(0, model.n_classes, 12)
    loss, grad = model.loss_and_grad(params, X, y)
    assert loss == pytest.approx(model.loss(params, X, y))
    idx, approx = finite_difference(model, params, X, y)
    np.testing.assert_allclose(grad[idx], approx, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    model = MLP(4, (3,), 2, dtype)
    params = model.init(np.random.default_rng(0))
    X = np.ones((2, 4), dtype=dtype)
    _, grad = model.loss_and_grad(params, X, np.array([0, 1]))
    assert params.dtype == grad.dtype == dtype


def test_sgd_on_softmax_learns_separable_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = Softmax(2, 2, np.float64)
    params = model.init(rng)
    for _ in range(200):
        params -= 0.5 * model.loss_and_grad(params, X, y)[1]
    assert model.accuracy(params, X, y) > 0.95


def test_flop_counts():
    assert Softmax(784, 10).flops_per_sample == 6 * 7840
    assert MLP(784, (128,), 10).flops_per_sample == 6 * (784 * 128 + 128 * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_stacked_gradients_equal_separate_ones(name, dtype):
    """Batched maths: G workers' gradients in one stacked computation."""
    rng = np.random.default_rng(5)
    block = {"name": name, "dtype": dtype, **({"hidden": [3000, 8]} if name == "mlp" else {})}
    model = build_model(parse_model(block), DataShape((12,), 4))  # 12 x 3000: a big layer
    G, B = 5, 7
    params = np.stack([model.init(rng) for _ in range(G)])
    X = rng.normal(size=(G, B, 12)).astype(dtype)
    y = rng.integers(0, 4, size=(G, B))
    losses, grads = model.loss_and_grad(params, X, y)
    assert grads.shape == (G, model.size)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for g in range(G):
        loss, grad = model.loss_and_grad(params[g], X[g], y[g])
        assert losses[g] == pytest.approx(loss, rel=tol)
        np.testing.assert_allclose(grads[g], grad, rtol=tol, atol=tol)
    # a list of G vectors (not copied into a stack) and a per-worker scale (an SGD step's -lr)
    scale = -np.linspace(0.1, 0.5, G).astype(dtype)[:, None, None]
    listed = model.loss_and_grad(list(params), X, y, scale)[1]
    for g in range(G):
        step = model.loss_and_grad(params[g], X[g], y[g], float(scale[g, 0, 0]))[1]
        np.testing.assert_allclose(listed[g], step, rtol=tol, atol=tol)
        np.testing.assert_allclose(step, scale[g, 0, 0] * grads[g], rtol=tol, atol=tol)
