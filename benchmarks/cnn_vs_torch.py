"""The NumPy CNN (``model: {name: cnn}``) against PyTorch on the CPU: one mini-batch's forward
and backward pass, the same architecture, weights, batch, dtype (float32) and threads, in one
run. Prints each one's median milliseconds per mini-batch and the ratio NumPy / PyTorch (below
2: at least half PyTorch's speed), and checks that both give the same loss and gradient.

    OPENBLAS_NUM_THREADS=1 python benchmarks/cnn_vs_torch.py            # needs the torch extra
    OPENBLAS_NUM_THREADS=1 python benchmarks/cnn_vs_torch.py --repeats 200
"""

import argparse
import platform
import time

import numpy as np
import torch

from ashlsim.extend import DataShape
from ashlsim.models import build_model, parse_model

CASES = [  # (name, sample shape, model block, batch)
    ("digits 1x8x8", (1, 8, 8), {"channels": [8, 16], "dense": [32]}, 32),
    ("mnist 1x28x28", (1, 28, 28), {"channels": [8, 16], "dense": [32]}, 32),
    ("mnist 1x28x28", (1, 28, 28), {"channels": [8, 16], "dense": [32]}, 128),
    (
        "mnist 1x28x28, wider",
        (1, 28, 28),
        {"channels": [16, 32], "kernels": [5], "dense": [64]},
        64,
    ),
]


def torch_twin(model, params):
    """The same network in PyTorch (NCHW), with the NumPy model's weights copied in."""
    layers, tensors = [], model._tensors(params)
    for i, (k, pad, p, cin, cout) in enumerate(model.convs):
        conv = torch.nn.Conv2d(cin, cout, k, padding=pad)
        conv.weight.data = torch.from_numpy(
            tensors[2 * i].reshape(k, k, cin, cout).transpose(3, 2, 0, 1).copy()
        )
        conv.bias.data = torch.from_numpy(tensors[2 * i + 1].copy())
        layers += [conv, torch.nn.ReLU()] + ([torch.nn.MaxPool2d(p)] if p > 1 else [])
    layers.append(torch.nn.Flatten())
    first = 2 * len(model.convs)
    for j, (fan_in, out) in enumerate(model.dense):
        W = tensors[first + 2 * j]
        if j == 0:  # NumPy flattens channels last, PyTorch channels first: reorder the rows
            c = model.convs[-1][4]
            W = W.reshape(-1, c, out).transpose(1, 0, 2).reshape(fan_in, out)
        linear = torch.nn.Linear(fan_in, out)
        linear.weight.data = torch.from_numpy(W.T.copy())
        linear.bias.data = torch.from_numpy(tensors[first + 2 * j + 1].copy())
        layers += [linear] + ([torch.nn.ReLU()] if j < len(model.dense) - 1 else [])
    return torch.nn.Sequential(*layers)


def median_ms(step, repeats):
    for _ in range(5):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, numpy "
          f"{np.__version__}, 1 thread, float32, forward + backward per mini-batch")  # fmt: skip
    print(f"{'case':28} {'batch':>5} {'params':>7} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6}")
    rng = np.random.default_rng(0)
    for name, shape, block, batch in CASES:
        ours, theirs, size = one_case(shape, block, batch, rng, args.repeats)
        print(f"{name:28} {batch:5d} {size:7d} {ours:9.3f} {theirs:9.3f} {ours / theirs:6.2f}")


def one_case(shape, block, batch, rng, repeats):
    """Median ms of NumPy's and PyTorch's forward + backward, after checking they agree."""
    model = build_model(parse_model({"name": "cnn", **block}), DataShape(shape, 10))
    params = model.init(rng)
    X = rng.normal(size=(batch, int(np.prod(shape)))).astype(np.float32)
    y = rng.integers(0, 10, batch)
    net = torch_twin(model, params)
    tx, ty = torch.from_numpy(X.reshape(batch, *shape)), torch.from_numpy(y)

    def torch_step():
        net.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(tx), ty)
        loss.backward()
        return loss

    loss, grad = model.loss_and_grad(params, X, y)
    theirs = float(torch_step().detach())
    assert abs(loss - theirs) < 1e-5 * max(1.0, abs(loss)), (loss, theirs)
    last = model.dense[-1]  # the output layer's W gradient: the same layout in both
    np.testing.assert_allclose(grad[model.size - last[1] - last[0] * last[1] : model.size - last[1]].reshape(last),
                               net[-1].weight.grad.numpy().T, rtol=1e-3, atol=1e-5)  # fmt: skip
    return (median_ms(lambda: model.loss_and_grad(params, X, y), repeats),
            median_ms(torch_step, repeats), model.size)  # fmt: skip


if __name__ == "__main__":
    main()
