"""Models that know nothing of time: one flat parameter vector, ``loss_and_grad``, ``logits``.

The registry ``MODELS`` maps a ``model.name`` to its class. More models come from
``register_model`` or from other packages through the entry-point group ``ashlsim.models``
(``docs/extending.md``); either way a scenario file, ``compare``, sweeps and the command line
find them by name.
"""

from __future__ import annotations

import numpy as np

from ..config import parse_section
from ..errors import ScenarioError
from ..registry import Registry
from .base import DataShape, Model, ModelParams, NoModel, per_vector
from .cnn import CNN
from .mlp import MLP
from .softmax import Logistic, Softmax
from .torch_model import TorchModel

ENTRY_POINTS = "ashlsim.models"
REGISTRY = Registry("model", Model, ModelParams, ENTRY_POINTS,
                    (Softmax, Logistic, MLP, CNN, TorchModel, NoModel))  # fmt: skip
MODELS: dict[str, type[Model]] = REGISTRY.classes
DEFAULT = "mlp"  # the model of a scenario that names none


def register_model(cls: type[Model], *, replace: bool = False) -> type[Model]:
    """Make the model ``cls`` available by its ``name`` everywhere a model is named. ``cls``
    is a ``Model`` subclass with a ``name`` and a frozen dataclass ``Params`` (a subclass of
    ``ModelParams`` whose ``name`` field defaults to that name). Usable as a decorator."""
    return REGISTRY.register(cls, replace=replace)


def all_models() -> dict[str, type[Model]]:
    """Every model a scenario can name, plugins included."""
    return REGISTRY.everything()


def parse_model(data, path: str = "model") -> ModelParams:
    """Validate a ``model:`` block with the parameters of the model it names."""
    if isinstance(data, ModelParams):
        return data
    if data is None:
        data = {}
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ScenarioError(path, data, f"a mapping with a name: one of {', '.join(MODELS)}")
    cls = REGISTRY.lookup(data.get("name", DEFAULT), f"{path}.name")
    return parse_section(cls.Params, data, path)


def build_model(params: ModelParams, shape: DataShape) -> Model | None:
    """The model a scenario's ``model`` block names, for data of ``shape`` (a ``DataShape``
    or a ``Dataset``); ``None`` for the timing-only mode. A model that breaks the port's
    contract is a ``ScenarioError`` naming it."""
    if not params.trains:
        return None
    shape = DataShape(tuple(shape.sample_shape), int(shape.n_classes))
    model = MODELS[params.name].build(params, shape)
    _check(model, params, shape)
    return model


def _check(model: Model, params: ModelParams, shape: DataShape) -> None:
    def wrong(what, allowed):
        raise ScenarioError(f"model.name {params.name}", what, allowed)

    if not isinstance(getattr(model, "size", None), (int, np.integer)) or model.size < 1:
        wrong(f"size {getattr(model, 'size', None)!r}", "a model whose size is a positive int")
    if np.dtype(getattr(model, "dtype", None)) != np.dtype(params.dtype):
        wrong(f"dtype {model.dtype}", f"a model of the block's dtype {params.dtype}")
    if getattr(model, "n_classes", None) != shape.n_classes:
        wrong(f"n_classes {getattr(model, 'n_classes', None)}", f"{shape.n_classes} (the data's)")
    segments = getattr(model, "segments", None)
    if segments is not None and sum(segments) != model.size:
        wrong(f"segments summing to {sum(segments)}", f"tensor sizes summing to {model.size}")


def initial_params(model: Model, rng: np.random.Generator) -> np.ndarray:
    """``model.init(rng)``, checked: a flat vector of the model's size and dtype."""
    params = model.init(rng)
    if not model.trains:  # the timing-only mode keeps no parameters
        return params
    if (
        not isinstance(params, np.ndarray)
        or params.shape != (model.size,)
        or (params.dtype != model.dtype)
    ):
        got = (
            f"{type(params).__name__} {getattr(params, 'shape', '')} {getattr(params, 'dtype', '')}"
        )
        raise ScenarioError(
            f"model.name {getattr(model, 'name', '?')}", f"init() gave {got}",
            f"a flat vector of {model.size} {model.dtype} values",
        )  # fmt: skip
    return params


def loss_and_grad(model: Model):
    """The model's ``loss_and_grad`` with the stacked signature, whatever it declares."""
    return model.loss_and_grad if model.stacks else per_vector(model)


__all__ = [
    "CNN",
    "DEFAULT",
    "ENTRY_POINTS",
    "MLP",
    "MODELS",
    "DataShape",
    "Logistic",
    "Model",
    "ModelParams",
    "NoModel",
    "Softmax",
    "TorchModel",
    "all_models",
    "build_model",
    "initial_params",
    "loss_and_grad",
    "parse_model",
    "register_model",
]
