"""Models, devices and networks by name, so that a cluster can be written as users think of it:
``workload: {name: resnet50}``, ``cluster: {device: [a100, a100, t4, t4], network: 10gbe}``.

``resolve(data)`` rewrites such names in a scenario mapping into the numbers the simulator
uses (``workload.flops_per_sample`` and ``param_bytes``; each worker's ``speed``; link
``bandwidth`` and ``latency``, and the PS card like the fastest link unless ``server`` is
given), so a saved scenario keeps the resolved numbers. A name and an explicit number for the
same quantity (``GIVES``) are an error naming both. ``Scenario.with_overrides`` sets its keys in
the scenario as written and resolves it again, so a name arrives the same way from a file,
``--set``, a sweep grid, a recipe or Python. A device's
speed is its peak FLOP/s in the chosen ``precision`` times ``efficiency`` (the share of peak a
training step reaches: 0.2 by default, a stated assumption), over the model's training FLOP
per sample, unless the device's entry gives a measured ``throughput`` for that model. Entries of your own come from YAML files of the same shape as ``builtin.yaml``,
named in ``ASHLSIM_CATALOGUE`` (separated by ``:``) or added with ``add(path)``.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path

from ..errors import ScenarioError

SECTIONS = ("models", "devices", "networks")
EFFICIENCY = 0.2  # a stated assumption (docs/CATALOGUE.md): set cluster.efficiency to yours
_extra: list[Path] = []


def add(path: str | Path) -> None:
    """Use the entries of the YAML file ``path`` too (they replace built-in ones by name)."""
    _extra.append(Path(path))


def entries() -> dict[str, dict]:
    """The catalogue: built-in entries, then ``ASHLSIM_CATALOGUE`` files, then ``add``ed ones;
    every entry checked (a bad one is a ``ScenarioError`` naming its file and key)."""
    from ..yamlio import load_file, loads

    out = {section: {} for section in SECTIONS}
    sources = [("builtin", loads((resources.files(__package__) / "builtin.yaml").read_text(),
                                 "catalogue"))]  # fmt: skip
    env = [Path(p) for p in os.environ.get("ASHLSIM_CATALOGUE", "").split(os.pathsep) if p]
    sources += [(str(path), load_file(path, "catalogue")) for path in [*env, *_extra]]
    for origin, data in sources:
        if data is None:
            continue
        if not isinstance(data, dict) or set(data) - set(SECTIONS):
            raise ScenarioError(
                f"catalogue {origin}", _keys(data), f"a mapping of {', '.join(SECTIONS)}"
            )
        for section in SECTIONS:
            table = data.get(section) or {}
            if not isinstance(table, dict):
                raise ScenarioError(
                    f"catalogue {origin}: {section}", table, "a mapping of names to entries"
                )
            for name, entry in table.items():
                _check_entry(section, name, entry, f"catalogue {origin}: {section}.{name}")
            out[section].update(table)
    return out


def _keys(data):
    return sorted(map(str, data)) if isinstance(data, dict) else data


# each section's fields: required, then optional; numbers are > 0 unless ">= 0"
FIELDS = {
    "models": ({"params": "> 0", "flops_per_sample": "> 0"}, {"input": "text", "name": "text"}),
    "devices": ({"fp16": "> 0", "fp32": "> 0"}, {"throughput": "rates", "name": "text"}),
    "networks": ({"bandwidth": "> 0", "latency": ">= 0"}, {"name": "text"}),
}


def _check_entry(section: str, name, entry, field: str) -> None:
    required, optional = FIELDS[section]
    if not isinstance(name, str):
        raise ScenarioError(field, name, "a name (text)")
    if not isinstance(entry, dict):
        keys = ", ".join(required)
        raise ScenarioError(field, entry, f"a mapping with {keys}")
    unknown = set(entry) - set(required) - set(optional)
    if unknown:
        raise ScenarioError(f"{field}.{sorted(map(str, unknown))[0]}", "?",
                            f"one of {', '.join([*required, *optional])}")  # fmt: skip
    for key, kind in {**required, **optional}.items():
        if key in entry:
            _check_value(entry[key], kind, f"{field}.{key}")
        elif key in required:
            raise ScenarioError(f"{field}.{key}", None, f"a number {kind} (required)")


def _check_value(value, kind: str, field: str) -> None:
    if kind == "text":
        if not isinstance(value, str):
            raise ScenarioError(field, value, "text")
    elif kind == "rates":  # a measured throughput (samples/s) per model name
        if not isinstance(value, dict):
            raise ScenarioError(field, value, "a mapping of model names to samples/s")
        for model, rate in value.items():
            _check_number(rate, "> 0", f"{field}.{model}")
    else:
        _check_number(value, kind, field)


def _check_number(value, kind: str, field: str) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (kind == "> 0" and value == 0):
        raise ScenarioError(field, value, f"a finite number {kind}")


def _entry(section: str, name, field: str) -> dict:
    table = entries()[section]
    if not isinstance(name, str) or name not in table:
        raise ScenarioError(field, name, f"one of {', '.join(table)} (ashlsim catalogue)")
    return table[name]


# quantities a catalogue name gives, and the keys that would give them a second time
GIVES = {
    "workload.name": ("workload.flops_per_sample", "workload.param_bytes"),
    "cluster.device": ("cluster.speed", "cluster.speeds", "cluster.flops"),
    "cluster.network": tuple(
        f"cluster.{side}.{key}"
        for side in ("uplink", "downlink")
        for key in ("bandwidth", "latency")
    ),  # fmt: skip
}


def resolve(data: dict) -> dict:
    """``data`` (a scenario mapping, as written) with catalogue names replaced by their
    numbers. A name and an explicit number for the same quantity are an error naming both."""
    data = _without_null_names(data)
    _check_one_source(data)
    data = dict(data)
    workload = data.get("workload")
    model_name = None
    if isinstance(workload, dict) and "name" in workload:
        workload = dict(workload)
        model_name = workload.pop("name")
        model = _entry("models", model_name, "workload.name")
        workload["flops_per_sample"] = float(model["flops_per_sample"])
        bytes_per_value = workload.get("bytes_per_value", 4)
        if isinstance(bytes_per_value, int) and not isinstance(bytes_per_value, bool):
            workload["param_bytes"] = float(model["params"]) * bytes_per_value
        data["workload"] = workload  # (a bad bytes_per_value is the parser's to name)
    cluster = data.get("cluster")
    if isinstance(cluster, dict) and ({"device", "network"} & set(cluster)):
        data["cluster"] = _resolve_cluster(dict(cluster), data.get("workload") or {}, model_name)
    return data


def _check_one_source(data: dict) -> None:
    """A name and an explicit number for one quantity (``GIVES``) are an error naming both;
    a device's ``efficiency`` or ``precision`` needs the device."""
    for named, keys in GIVES.items():
        for key in keys if _has(data, named) else ():
            if _has(data, key):
                name = key.replace("speeds", "speed")
                raise ScenarioError(
                    name, _get(data, key),
                    f"{name} or {named} ({_get(data, named)!r}), not both: each gives it",
                )  # fmt: skip
    cluster = data.get("cluster")
    if isinstance(cluster, dict) and "device" not in cluster:
        for key in ("efficiency", "precision"):
            if key in cluster:
                raise ScenarioError(f"cluster.{key}", cluster[key], "a cluster.device to apply to")


def _without_null_names(data: dict) -> dict:
    """``data`` without names set to null (``--set workload.name=null`` removes a name)."""
    data = dict(data)
    for named in GIVES:
        section, key = named.split(".")
        if (
            isinstance(data.get(section), dict)
            and key in data[section]
            and data[section][key] is None
        ):
            data[section] = {k: v for k, v in data[section].items() if k != key}
    return data


def _get(data, path: str):
    node = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _has(data, path: str) -> bool:
    return _get(data, path) is not None


def _per_worker(value, n, field):
    if isinstance(value, list):
        if len(value) != n:
            raise ScenarioError(field, value, f"one name per worker ({n}) or one name for all")
        return value
    return [value] * n


def _speed(name, model_name, flops, precision, efficiency) -> float:
    """A device's samples/s for the model: its measured ``throughput`` for that model when the
    entry has one, else peak FLOP/s x efficiency / FLOP per sample."""
    entry = _entry("devices", name, "cluster.device")
    measured = (entry.get("throughput") or {}).get(model_name)
    if measured is not None:
        return float(measured)
    return float(entry[precision]) * efficiency / float(flops)


def _resolve_cluster(cluster: dict, workload: dict, model_name=None) -> dict:
    if "device" in cluster:
        device = cluster.pop("device")
        n = cluster.setdefault("workers", len(device) if isinstance(device, list) else 8)
        flops = workload.get("flops_per_sample") if isinstance(workload, dict) else None
        if flops is None:
            raise ScenarioError(
                "cluster.device", device, "a workload with flops_per_sample (workload.name: ...)"
            )
        precision = cluster.pop("precision", "fp16")
        efficiency = cluster.pop("efficiency", EFFICIENCY)
        if precision not in ("fp16", "fp32"):
            raise ScenarioError("cluster.precision", precision, "one of fp16, fp32")
        if isinstance(efficiency, bool) or not isinstance(efficiency, (int, float)) or not (
                0 < efficiency <= 1):  # fmt: skip
            raise ScenarioError("cluster.efficiency", efficiency, "a number > 0 and <= 1")
        names = _per_worker(device, n, "cluster.device")
        cluster["speed"] = [
            _speed(name, model_name, flops, precision, efficiency) for name in names
        ]
    if "network" in cluster:
        network = cluster.pop("network")
        n = cluster.setdefault("workers", len(network) if isinstance(network, list) else 8)
        links = [_entry("networks", name, "cluster.network")
                 for name in _per_worker(network, n, "cluster.network")]  # fmt: skip
        for side in ("uplink", "downlink"):
            link = dict(cluster.get(side) or {})
            link["bandwidth"] = [float(e["bandwidth"]) for e in links]
            link["latency"] = [float(e["latency"]) for e in links]
            cluster[side] = link
        # the PS has a card like the fastest of its workers', in each direction the server
        # block does not give (``server: {shards: 4}`` keeps the network's card)
        server = cluster.get("server")
        if server is None or isinstance(server, dict):
            card = max(float(e["bandwidth"]) for e in links)
            cluster["server"] = {"ingress": card, "egress": card, **(server or {})}
    return cluster
