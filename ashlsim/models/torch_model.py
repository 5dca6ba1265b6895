"""Any PyTorch module as a model (the ``torch`` extra): ``model: {name: torch, factory:
"package.module:make_net", ...}``.

The factory is called as ``factory(sample_shape, n_classes, **options)`` and returns a
``torch.nn.Module`` mapping a batch of samples to class scores. Its parameters travel as the
simulator's flat vector (``module.parameters()`` in order, each one tensor of ``segments``), so
compression, the server optimizer, faults and the emulator work unchanged; the gradient of the
mean cross-entropy comes from ``torch.func.functional_call`` and autograd, on the CPU or on
``device: cuda``. The initial parameters are the module's own initialisation, drawn with a
PyTorch generator seeded from the run's ``init`` stream, so the run's seed fixes them.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

import numpy as np

from ..config import choice, spec, text, text_or_none
from ..errors import ScenarioError
from .base import Model, ModelParams

EVAL_BATCH = 1024  # samples per forward pass when evaluating


def _options(path, value):
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ScenarioError(path, value, "a mapping of the factory's keyword arguments")
    return dict(value)


@dataclass(frozen=True)
class TorchParams(ModelParams):
    name: str = spec("torch", text)
    factory: str | None = spec(
        None, text_or_none, "package.module:function(sample_shape, n_classes, **options)"
    )
    options: dict | None = spec(None, _options, "keyword arguments for the factory")
    input: str = spec("image", choice("image", "flat"), "image: (batch, *sample_shape)")
    device: str = spec("cpu", choice("cpu", "cuda"))

    def __post_init__(self):
        module, _, function = (self.factory or "").partition(":")
        if self.factory is not None and (not module or not function):
            raise ScenarioError("model.factory", self.factory, "package.module:function")


def _torch():
    try:
        import torch
    except ImportError:
        raise ScenarioError(
            "model.name", "torch", 'PyTorch installed: pip install -e ".[torch]"'
        ) from None
    return torch


def load_factory(path: str | None):
    """The callable ``package.module:function`` names (imported: the user's own code)."""
    if path is None:
        raise ScenarioError("model.factory", None, "package.module:function, the network's maker")
    module, _, function = path.partition(":")
    try:
        found = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise ScenarioError("model.factory", path, f"an importable function ({exc})") from None
    if not callable(found):
        raise ScenarioError("model.factory", path, "a callable returning a torch.nn.Module")
    return found


class TorchModel(Model):
    """Any PyTorch module (the ``torch`` extra), made by ``factory(sample_shape, n_classes,
    **options)`` and trained in simulated time, on the CPU or a GPU."""

    name = "torch"
    Params = TorchParams

    def __init__(self, params: TorchParams, shape):
        self.torch = torch = _torch()
        if params.device == "cuda" and not torch.cuda.is_available():
            raise ScenarioError("model.device", "cuda", "cpu (no CUDA device is available here)")
        self.params, self.shape = params, shape
        self.device = torch.device(params.device)
        self.dtype, self.n_classes = np.dtype(params.dtype), shape.n_classes
        self.torch_dtype = getattr(torch, params.dtype)
        self.factory = load_factory(params.factory)
        self.module = self._build()
        self.names = [name for name, _ in self.module.named_parameters()]
        self.shapes = [tuple(p.shape) for p in self.module.parameters()]
        self.segments = tuple(int(np.prod(s)) for s in self.shapes)
        self.size = sum(self.segments)
        self._input = (
            (-1, *shape.sample_shape) if params.input == "image" else (-1, shape.n_features)
        )

    def _build(self):
        options = self.params.options or {}
        try:
            inspect.signature(self.factory).bind(self.shape.sample_shape, 1, **options)
        except ValueError:  # no signature to read (a built-in): the call will tell
            pass
        except TypeError as exc:
            raise ScenarioError("model.options", options,
                                f"the arguments {self.params.factory} takes ({exc})") from None  # fmt: skip
        module = self.factory(tuple(self.shape.sample_shape), self.shape.n_classes, **options)
        if not isinstance(module, self.torch.nn.Module):
            raise ScenarioError("model.factory", self.params.factory,
                                f"a function returning a torch.nn.Module, not {type(module).__name__}")  # fmt: skip
        return module.to(device=self.device, dtype=self.torch_dtype)

    def init(self, rng):
        """The module's own initialisation under a PyTorch seed drawn from ``rng``."""
        torch = self.torch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**63 - 1)))
            module = self._build()
        vector = torch.nn.utils.parameters_to_vector(module.parameters())
        return vector.detach().cpu().numpy().astype(self.dtype)

    def _tensors(self, vector):
        flat = self.torch.from_numpy(np.ascontiguousarray(vector)).to(self.device)
        out, at = {}, 0
        for name, shape, n in zip(self.names, self.shapes, self.segments, strict=True):
            out[name] = flat[at : at + n].view(shape)
            at += n
        return out

    def _inputs(self, X):
        return self.torch.from_numpy(np.ascontiguousarray(X)).to(self.device).view(self._input)

    def loss_and_grad(self, params, X, y):
        torch = self.torch
        tensors = {k: v.detach().requires_grad_(True) for k, v in self._tensors(params).items()}
        logits = torch.func.functional_call(self.module, tensors, (self._inputs(X),))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y).to(self.device))
        grads = torch.autograd.grad(loss, list(tensors.values()))
        grad = torch.cat([g.reshape(-1) for g in grads]).cpu().numpy()
        return float(loss.detach()), grad.astype(self.dtype, copy=False)

    def logits(self, params, X):
        torch = self.torch
        tensors = self._tensors(params)
        with torch.no_grad():
            parts = [torch.func.functional_call(self.module, tensors, (self._inputs(X[at : at + EVAL_BATCH]),))
                     for at in range(0, len(X), EVAL_BATCH)]  # fmt: skip
        return torch.cat(parts).cpu().numpy()
