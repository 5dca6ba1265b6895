"""PyTorch networks for ``model: {name: torch, factory: "examples.torch_nets:NAME"}`` (the
``torch`` extra). A factory takes the data's sample shape and class count, and the block's
``options`` as keyword arguments, and returns a ``torch.nn.Module`` from samples to scores."""

import math

import torch


def mlp(sample_shape, n_classes, hidden=(32,)):
    """ReLU layers on the flattened sample (``input: flat``), like ``model: {name: mlp}``."""
    widths = [math.prod(sample_shape), *hidden]
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], n_classes))


def cnn(sample_shape, n_classes, channels=(8, 16), dense=32):
    """Conv 3x3 + ReLU + max-pool 2 blocks, a ReLU dense layer, the output (``input: image``)."""
    c, h, w = sample_shape
    layers = []
    for out in channels:
        layers += [torch.nn.Conv2d(c, out, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    return torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(c * h * w, dense),
                               torch.nn.ReLU(), torch.nn.Linear(dense, n_classes))  # fmt: skip
