"""A scenario is data: a frozen dataclass tree that round-trips to YAML (docs/DESIGN.md sections 2 and 5).

``Scenario.from_dict`` validates every field and raises ``ScenarioError`` naming its path, the bad
value and what is allowed; ``to_dict`` gives plain data back; ``load_scenario(path)`` reads YAML.
The strategy block is validated by the strategy class it names (``strategies.parse_strategy``),
the model block by the model class it names (``models.parse_model``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import yaml

from .config import (
    bandwidth,
    boolean,
    choice,
    dump,
    dump_section,
    integer,
    optional_section,
    parse_section,
    real,
    real_tuple,
    section,
    spec,
    text,
    text_or_none,
    text_tuple,
    value,
)
from .data import DATASETS, PARTITIONS
from .dist import Constant, Distribution, LogNormal, PerWorker
from .errors import ScenarioError
from .models import DEFAULT as DEFAULT_MODEL
from .models import ModelParams, parse_model
from .series import Series
from .yamlio import load_file


@dataclass(frozen=True)
class LinkSpec:
    """A worker's link to the PS in one direction."""

    bandwidth: Distribution = spec(
        Constant(1.25e7), bandwidth(value()), "bytes/s; or {series: FILE, column: ...} over time"
    )
    latency: Distribution = spec(Constant(0.001), value(allow_zero=True), "s, one way")


@dataclass(frozen=True)
class ServerSpec:
    """The PS: its network card (capacities shared max-min fairly by concurrent transfers)
    and the software costs a real system adds (``ashlsim calibrate`` measures them)."""

    ingress: float = spec(1.25e8, bandwidth(real(0, exclusive_min=True, allow_inf=True)),
                          "bytes/s (null: unbounded); or {series: FILE, column: ...} over time")  # fmt: skip
    egress: float = spec(1.25e8, bandwidth(real(0, exclusive_min=True, allow_inf=True)),
                         "bytes/s (null: unbounded); or {series: FILE, column: ...} over time")  # fmt: skip
    message_s: float = spec(
        0.0,
        real(0),
        "s of software cost per message (serializing, sockets), on every pull and push",
    )
    apply_s: float = spec(0.0, real(0), "s the PS is busy with each push, one push at a time")
    shards: int = spec(
        1, integer(1, 1024), "k servers, each with its own cards and 1/k of the parameters"
    )


@dataclass(frozen=True)
class RackLinkSpec:
    """A rack's link to the core (the other racks and the PS) in one direction."""

    bandwidth: float = spec(
        1.25e9, real(0, exclusive_min=True, allow_inf=True), "bytes/s, shared by all crossing it"
    )


@dataclass(frozen=True)
class RackSpec:
    """Workers in racks, filled in index order; whatever leaves a rack (a push, a message to
    another rack) shares its uplink, whatever enters it its downlink."""

    size: int = spec(8, integer(1), "workers per rack")
    uplink: RackLinkSpec = spec(RackLinkSpec(), section(RackLinkSpec), "rack to core")
    downlink: RackLinkSpec = spec(RackLinkSpec(), section(RackLinkSpec), "core to rack")


@dataclass(frozen=True)
class StragglerSpec:
    """Episodes in which a worker computes ``factor`` times slower for ``duration_s``."""

    interval_s: Distribution = spec(Constant(60.0), value(), "s between episodes, per worker")
    duration_s: Distribution = spec(Constant(10.0), value(), "s")
    factor: Distribution = spec(Constant(4.0), value(), "slowdown, > 1 is slower")


@dataclass(frozen=True)
class ClusterSpec:
    # names the catalogue turns into numbers before this section is parsed (``catalogue``):
    # ``efficiency`` and ``precision`` go with ``device``
    CATALOGUE_KEYS: ClassVar[tuple[str, ...]] = ("device", "network", "efficiency", "precision")
    workers: int = spec(8, integer(1, 100_000), "number of workers")
    speed: Distribution = spec(LogNormal(2000.0, 0.6), value(), "samples/s, drawn once per worker")
    flops: Distribution | None = spec(None, value(optional=True), "FLOP/s; replaces speed")
    jitter: Distribution = spec(Constant(1.0), value(), "per-iteration factor on compute time")
    uplink: LinkSpec = spec(LinkSpec(), section(LinkSpec))
    downlink: LinkSpec = spec(LinkSpec(), section(LinkSpec))
    server: ServerSpec = spec(ServerSpec(), section(ServerSpec))
    racks: RackSpec | None = spec(None, optional_section(RackSpec), "null: one switch for all")
    stragglers: StragglerSpec | None = spec(None, optional_section(StragglerSpec))


@dataclass(frozen=True)
class WorkloadSpec:
    """Timing and message sizes of a virtual DNN; empty means: those of the proxy model."""

    CATALOGUE_KEYS: ClassVar[tuple[str, ...]] = ("name",)  # a model of the catalogue

    flops_per_sample: float | None = spec(None, real(0, exclusive_min=True, optional=True), "FLOP")
    param_bytes: float | None = spec(None, real(0, exclusive_min=True, optional=True), "bytes")
    bytes_per_value: int = spec(4, integer(1), "bytes")
    bytes_per_index: int = spec(4, integer(1), "bytes")
    header_bytes: int = spec(64, integer(0), "bytes per message")


@dataclass(frozen=True)
class DataSpec:
    name: str = spec("teacher", choice(*DATASETS))
    partition: str = spec("iid", choice(*PARTITIONS))
    alpha: float = spec(0.5, real(0, exclusive_min=True), "Dirichlet concentration")
    weights: tuple[float, ...] | None = spec(None, real_tuple(optional=True), "proportional")
    test_fraction: float = spec(0.2, real(0, 0.9, exclusive_min=True))
    n_samples: int = spec(20000, integer(20), "synthetic, teacher")
    n_features: int = spec(16, integer(2), "synthetic, teacher")
    n_classes: int = spec(3, integer(2), "synthetic, teacher")
    n_informative: int | None = spec(None, integer(2, optional=True), "synthetic")
    class_sep: float = spec(1.0, real(0, exclusive_min=True), "synthetic")
    teacher_hidden: int = spec(8, integer(1), "teacher: hidden units of the teacher network")
    teacher_gain: float = spec(
        1.8, real(0, exclusive_min=True), "teacher: std of its hidden pre-activations"
    )
    task_seed: int = spec(0, integer(0), "teacher: the task's seed (a run's seed splits it)")
    path: str | None = spec(None, text_or_none, "file: .npz, .npy, .csv or .parquet (datafiles)")
    label: str = spec("label", text, "file (.csv, .parquet): the label column")
    features: tuple[str, ...] | None = spec(
        None, text_tuple, "file: feature columns (default: all others)"
    )
    sha256: str | None = spec(None, text_or_none, "file, arrays: the data's digest, as recorded")


@dataclass(frozen=True)
class TrainingSpec:
    """The worker optimizer: mini-batch SGD with optional momentum, Nesterov and weight decay
    (PyTorch's ``torch.optim.SGD`` conventions), and a learning-rate schedule on the training's
    own clock: epochs of the training set applied at the PS (samples in applied pushes over the
    training-set size), as published recipes state them, never a share of ``stop.time_s``. The
    PS side has its own optimizer, set per scheme (``strategy.server_optimizer``)."""

    batch_size: int = spec(32, integer(1), "samples per local step")
    lr: float = spec(0.05, real(0, exclusive_min=True), "worker learning rate")
    momentum: float = spec(0.0, real(0, 0.999), "worker-side momentum")
    nesterov: bool = spec(False, boolean, "Nesterov momentum (needs momentum > 0)")
    weight_decay: float = spec(0.0, real(0), "L2 penalty added to the gradient")
    lr_schedule: str = spec(
        "constant", choice("constant", "cosine", "step"), "lr after the warm-up (epochs applied)"
    )
    warmup_epochs: float = spec(0.0, real(0), "epochs of a linear warm-up from 0")
    warmup_share: float | None = spec(
        None, real(0, 1, optional=True), "the warm-up as a share of schedule_epochs instead"
    )
    schedule_epochs: float | None = spec(
        80.0,
        real(0, exclusive_min=True, optional=True),
        "cosine: the schedule's length in epochs; its lr reaches 0 there and the run stops",
    )
    step_milestones: tuple[float, ...] | None = spec(
        None, real_tuple(optional=True), "step: epochs at which lr is multiplied by step_gamma"
    )
    step_gamma: float = spec(0.1, real(0, 1, exclusive_min=True), "step: lr multiplier")

    def __post_init__(self):
        if self.nesterov and not self.momentum:
            raise ScenarioError("training.nesterov", True, "false when training.momentum is 0")
        if self.lr_schedule == "cosine" and self.schedule_epochs is None:
            raise ScenarioError(
                "training.schedule_epochs", None, "a number of epochs for a cosine schedule"
            )
        if self.warmup_share is not None:
            if self.warmup_epochs:
                raise ScenarioError(
                    "training.warmup_share", self.warmup_share, "null when warmup_epochs is set"
                )
            if self.schedule_epochs is None:
                raise ScenarioError(
                    "training.schedule_epochs", None, "a number of epochs for warmup_share"
                )
        uses_length = self.lr_schedule == "cosine" or self.warmup_share is not None
        if uses_length and self.schedule_epochs <= self.warmup:
            raise ScenarioError(
                "training.schedule_epochs",
                self.schedule_epochs,
                f"more than the warm-up's {self.warmup:g} epochs",
            )
        if self.lr_schedule == "step" and self.step_milestones is None:
            raise ScenarioError(
                "training.step_milestones", None, "a list of epochs for a step schedule"
            )

    @property
    def warmup(self) -> float:
        """The warm-up's length in epochs."""
        if self.warmup_share is not None:
            return self.warmup_share * self.schedule_epochs
        return self.warmup_epochs


@dataclass(frozen=True)
class StopSpec:
    time_s: float | None = spec(300.0, real(0, exclusive_min=True, optional=True), "simulated s")
    target_accuracy: float | None = spec(0.95, real(0, 1, optional=True))
    epochs: float | None = spec(None, real(0, exclusive_min=True, optional=True))


@dataclass(frozen=True)
class EvalSpec:
    every_s: float = spec(1.0, real(0, exclusive_min=True), "simulated s between evaluations")
    max_samples: int = spec(2000, integer(1), "training samples used for the training loss")
    events: bool = spec(False, boolean, "record pull/compute/push/wait intervals")


FAULT_KINDS = ("crash", "slowdown", "link_down")


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault: ``worker`` suffers ``kind`` at ``at_s`` simulated seconds."""

    worker: int = spec(0, integer(0), "worker index")
    at_s: float = spec(0.0, real(0), "s")
    kind: str = spec("crash", choice(*FAULT_KINDS))
    recover_after_s: float | None = spec(
        None, real(0, exclusive_min=True, optional=True), "crash: s until restart; null: never"
    )
    factor: float = spec(4.0, real(0, exclusive_min=True), "slowdown: compute time multiplier")
    duration_s: float = spec(10.0, real(0, exclusive_min=True), "slowdown, link_down: s")


# the keys each kind of fault takes: any other is refused rather than silently ignored
FAULT_KEYS = {
    "crash": {"worker", "at_s", "kind", "recover_after_s"},
    "slowdown": {"worker", "at_s", "kind", "factor", "duration_s"},
    "link_down": {"worker", "at_s", "kind", "duration_s"},
}


def _faults(path, data):
    if data is None:
        return ()
    if not isinstance(data, (list, tuple)):
        raise ScenarioError(path, data, "a list of faults, each {worker, at_s, kind, ...}")
    faults = []
    for i, item in enumerate(data):
        fault = parse_section(FaultSpec, item, f"{path}[{i}]")
        for key in item or {}:
            if key not in FAULT_KEYS[fault.kind]:
                hint = " (a crash ends with recover_after_s)" if key == "duration_s" else ""
                raise ScenarioError(
                    f"{path}[{i}].{key}",
                    item[key],
                    f"only {sorted(FAULT_KEYS[fault.kind])} for a {fault.kind}{hint}",
                )
        faults.append(fault)
    return tuple(faults)


def _strategy(path, data):
    from .strategies import parse_strategy  # strategies import the cluster, not the scenario

    return parse_strategy(data, path)


def _default_strategy():
    from .strategies import DEFAULT, parse_strategy

    return parse_strategy({"name": DEFAULT}, "strategy")


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; validated on construction from a dict."""

    name: str = spec("default", text)
    seed: int = spec(0, integer(0))
    cluster: ClusterSpec = spec(ClusterSpec(), section(ClusterSpec))
    workload: WorkloadSpec = spec(WorkloadSpec(), section(WorkloadSpec))
    model: ModelParams = dataclasses.field(
        default_factory=lambda: parse_model({"name": DEFAULT_MODEL}),
        metadata={"parse": lambda path, data: parse_model(data, path)},
    )
    data: DataSpec = spec(DataSpec(), section(DataSpec))
    training: TrainingSpec = spec(TrainingSpec(), section(TrainingSpec))
    strategy: object = dataclasses.field(
        default_factory=_default_strategy, metadata={"parse": _strategy}
    )
    stop: StopSpec = spec(StopSpec(), section(StopSpec))
    eval: EvalSpec = spec(EvalSpec(), section(EvalSpec))
    faults: tuple = spec((), _faults, "injected crashes, slowdowns, link outages")

    def __post_init__(self):
        _check(self)

    @classmethod
    def from_dict(cls, data: dict) -> Scenario:
        """The scenario a mapping describes (as a file has it: catalogue names allowed)."""
        from .catalogue import resolve

        written = copy.deepcopy(data)
        if isinstance(data, dict):
            data = resolve(written)  # names from the catalogue -> numbers
        data = _data_source(data)
        cluster = data.get("cluster")
        if isinstance(cluster, dict) and "speeds" in cluster:  # alias: one speed per worker
            if "speed" in cluster:
                raise ScenarioError(
                    "cluster.speeds", cluster["speeds"], "speeds or speed, not both"
                )
            cluster = data["cluster"] = dict(cluster)
            cluster["speed"] = cluster.pop("speeds")
        scenario = parse_section(cls, data, "")
        object.__setattr__(scenario, "_written", written)
        return scenario

    def to_dict(self) -> dict:
        """The scenario with every number resolved (no catalogue names): what a run saves."""
        data = dump_section(self)
        # each fault with its kind's keys only, so that the dict parses again
        data["faults"] = [
            {key: value for key, value in fault.items() if key in FAULT_KEYS[fault["kind"]]}
            for fault in data["faults"]
        ]
        return data

    def written(self) -> dict:
        """The mapping this scenario was made from, names and all; for a scenario made
        otherwise (``Scenario(...)``), the values that differ from the defaults."""
        written = getattr(self, "_written", None)
        if written is None:
            return _differences(self.to_dict(), Scenario.from_dict({}).to_dict())
        return copy.deepcopy(written)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes) -> Scenario:
        """A copy with top-level sections replaced (validated again)."""
        new = dataclasses.replace(self, **changes)
        written = self.written()
        dumped = new.to_dict()
        for key in changes:
            written[key] = dumped[key]
        object.__setattr__(new, "_written", written)
        return new

    def with_overrides(self, overrides: dict[str, object]) -> Scenario:
        """A copy with dotted key paths set, e.g. ``{"cluster.workers": 4}``. They are set in
        the scenario as written, so a catalogue name set here (``workload.name``,
        ``cluster.device``, ``cluster.network``) is resolved as a file's would be."""
        data = self.written()
        for path, new in overrides.items():
            set_path(data, path, new)
        return Scenario.from_dict(data)


def _data_source(data: dict) -> dict:
    """``data.path`` names the user's file (``data.name: file``, which it implies); a path
    with another data set's name is an error naming both."""
    section = data.get("data")
    if not isinstance(section, dict) or section.get("path") is None:
        return data
    name = section.get("name", "file")
    if name != "file":
        raise ScenarioError("data.path", section["path"],
                            f"data.path or data.name ({name!r}), not both: each names the data")  # fmt: skip
    return {**data, "data": {**section, "name": "file"}}


WHOLE = ("strategy", "model")  # blocks whose fields depend on the name they give
KEPT = {"strategy": (), "model": ("dtype",)}  # what a new name keeps of the old block


def _differences(data: dict, default: dict) -> dict:
    """The keys of ``data`` whose values differ from ``default``'s, section by section (a
    scheme, a distribution or a list differs as a whole)."""
    out = {}
    for key, mine in data.items():
        base = default.get(key)
        if mine == base:
            continue
        nested = isinstance(mine, dict) and isinstance(base, dict) and "dist" not in mine
        out[key] = _differences(mine, base) if nested and key not in WHOLE else mine
    return out


def set_path(data: dict, path: str, new) -> None:
    """Set ``a.b.c`` in nested dicts; a new strategy (model) name drops the old one's
    parameters (but the model's dtype)."""
    keys = path.split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is not None and not isinstance(child, dict):
            raise ScenarioError(".".join(keys[: i + 1]), child, "a mapping to set keys inside")
        # a copy of each mapping on the way: one dict given for two sections (a deep copy
        # keeps such sharing) changes in this place only
        child = node[key] = dict(child or {})
        node = child
    if len(keys) == 2 and keys[0] in WHOLE and keys[1] == "name" and node.get("name") != new:
        for key in [key for key in node if key not in KEPT[keys[0]]]:
            del node[key]
    node[keys[-1]] = new


def _check(s: Scenario) -> None:
    """Cross-field rules that no single field can check."""
    n = s.cluster.workers
    _check_per_worker(s.cluster, n)
    if s.data.name == "file" and not s.data.path:
        raise ScenarioError("data.path", s.data.path, "the data file (data.name: file)")
    if s.data.partition == "proportional" and (s.data.weights is None or len(s.data.weights) != n):
        raise ScenarioError("data.weights", s.data.weights, f"{n} positive numbers")
    if s.stop.time_s is not None and s.eval.every_s < s.stop.time_s * 1e-5:
        raise ScenarioError(
            "eval.every_s",
            s.eval.every_s,
            f"at least stop.time_s / 100000 = {s.stop.time_s * 1e-5:.3g} s (at most 100,000 "
            "evaluations)",
        )
    if s.stop.time_s is None and s.stop.epochs is None:
        raise ScenarioError("stop", dump(s.stop), "a time_s or epochs limit, so the run ends")
    s.strategy.check(s)  # the scheme's own cross-field rules
    for i, fault in enumerate(s.faults):
        if fault.worker >= n:
            raise ScenarioError(f"faults[{i}].worker", fault.worker, f"a worker index < {n}")
    if not s.model.trains and s.stop.target_accuracy is not None:
        raise ScenarioError(
            "stop.target_accuracy", s.stop.target_accuracy, f"null with model.name: {s.model.name}"
        )
    if s.stop.time_s is not None and math.isinf(s.stop.time_s):  # pragma: no cover - parser
        raise ScenarioError("stop.time_s", s.stop.time_s, "a finite number")


def _check_per_worker(c: ClusterSpec, n: int) -> None:
    """Per-worker lists of ``n`` values; a bandwidth series with one column, or one per
    worker (the PS card's: one)."""
    per_worker = [
        ("cluster.speed", c.speed),
        ("cluster.flops", c.flops),
        ("cluster.jitter", c.jitter),
        ("cluster.uplink.bandwidth", c.uplink.bandwidth),
        ("cluster.uplink.latency", c.uplink.latency),
        ("cluster.downlink.bandwidth", c.downlink.bandwidth),
        ("cluster.downlink.latency", c.downlink.latency),
    ]
    for path, dist in per_worker:
        if isinstance(dist, PerWorker) and len(dist.values) != n:
            raise ScenarioError(path, list(dist.values), f"one value per worker ({n} values)")
        if isinstance(dist, Series) and len(dist.columns) not in (1, n):
            raise ScenarioError(f"{path}.column", list(dist.columns), f"one column, or {n}")
    for card in ("ingress", "egress"):
        series = getattr(c.server, card)
        if isinstance(series, Series) and len(series.columns) != 1:
            raise ScenarioError(f"cluster.server.{card}.column", list(series.columns), "one column")


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario YAML file; keys it leaves out take the defaults."""
    data = load_file(path, "scenario") or {}
    if not isinstance(data, dict):
        raise ScenarioError("scenario", str(path), "a YAML mapping of sections")
    return Scenario.from_dict(resolve_paths(data, Path(path).parent))


def resolve_paths(data, base: Path):
    """A copy of ``data`` whose trace paths (``{dist: empirical, path: ...}``) are taken
    relative to ``base``, the folder of the file that names them, not the working directory."""
    if isinstance(data, dict):
        out = {key: resolve_paths(value, base) for key, value in data.items()}
        path = out.get("path")
        if (
            out.get("dist") == "empirical"
            and isinstance(path, str)
            and not Path(path).is_absolute()
        ):
            out["path"] = str((base / path).resolve())
        section = out.get("data")  # the user's data file (ashlsim.datafiles)
        file = section.get("path") if isinstance(section, dict) else None
        if isinstance(file, str) and file and not Path(file).is_absolute():
            out["data"] = {**section, "path": str((base / file).resolve())}
        series = out.get("series")  # a bandwidth over time (ashlsim.series)
        if isinstance(series, str) and series and not Path(series).is_absolute():
            out["series"] = str((base / series).resolve())
        return out
    if isinstance(data, list):
        return [resolve_paths(item, base) for item in data]
    return data


def default_scenario() -> Scenario:
    """The built-in default: 8 heterogeneous workers training an MLP on the teacher task (the
    default scheme)."""
    return Scenario.from_dict({})
