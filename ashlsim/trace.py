"""A run's timeline as a Chrome trace (the JSON trace-event format), for Perfetto
(https://ui.perfetto.dev: "Open trace file") or ``chrome://tracing``.

One track per worker with its phases (pull, compute, push, wait) and faults as slices; the PS
card as two counters, the bytes per second in flight into it (pushes) and out of it (pulls);
stage changes and the start of each fault as instant events. Times are the run's own seconds
(simulated, or measured for an emulation), written in microseconds as the format asks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

PHASES = ("pull", "compute", "push", "wait", "exchange")
PS_PID, WORKERS_PID = 0, 1  # two "processes" in the viewer: the PS card, the workers


def trace_events(result) -> list[dict]:
    """The trace events of ``result`` (which must hold its ``events``: ``events=True``)."""
    if result.events is None:
        from .errors import ScenarioError

        raise ScenarioError("events", None, "a run with its events recorded (events=True)")
    out = _names(result)
    events = result.events
    for row in events.itertuples(index=False):
        start, end = float(row.start_s), float(row.end_s)
        out.append({
            "name": str(row.kind), "cat": "phase" if row.kind in PHASES else "fault", "ph": "X",
            "pid": WORKERS_PID, "tid": int(row.worker), "ts": _us(start),
            "dur": _us(end) - _us(start), "args": {"start_s": start, "end_s": end},
        })  # fmt: skip
    out += _card_counters(result, "push", "ingress (push bytes/s in flight)", "bytes_up")
    out += _card_counters(result, "pull", "egress (pull bytes/s in flight)", "bytes_down")
    for change in result.stage_changes.itertuples(index=False):
        out.append({
            "name": f"{change.from_stage} -> {change.to_stage}", "cat": "stage", "ph": "i",
            "s": "g", "pid": WORKERS_PID, "tid": 0, "ts": _us(float(change.time_s)),
            "args": {"reason": str(change.reason)},
        })  # fmt: skip
    for fault in result.faults.itertuples(index=False):
        out.append({
            "name": f"{fault.kind} (worker {fault.worker})", "cat": "fault", "ph": "i", "s": "t",
            "pid": WORKERS_PID, "tid": int(fault.worker), "ts": _us(float(fault.start_s)),
        })  # fmt: skip
    return out


def write_trace(result, path: str | Path) -> Path:
    """Write ``result``'s trace (``trace_events``) as JSON to ``path``."""
    path = Path(path)
    data = {"traceEvents": trace_events(result), "displayTimeUnit": "ms",
            "otherData": {"engine": result.engine, "seed": result.seed,
                          "scenario": result.scenario.name}}  # fmt: skip
    path.write_text(json.dumps(data, separators=(",", ":")))
    return path


def _us(seconds: float) -> int:
    """Seconds as the format's integer microseconds (rounded, so that ends meet)."""
    return int(round(seconds * 1e6))


def _names(result) -> list[dict]:
    """The viewer's names for the two processes and each worker's track."""
    out = [
        {"name": "process_name", "ph": "M", "pid": PS_PID, "args": {"name": "parameter server"}},
        {"name": "process_name", "ph": "M", "pid": WORKERS_PID, "args": {"name": "workers"}},
    ]
    for worker in range(result.scenario.cluster.workers):
        out.append({"name": "thread_name", "ph": "M", "pid": WORKERS_PID, "tid": worker,
                    "args": {"name": f"worker {worker}"}})  # fmt: skip
    return out


def _card_counters(result, kind: str, name: str, column: str) -> list[dict]:
    """A counter of the bytes per second the transfers of ``kind`` in flight move through the
    PS card: each transfer at its mean rate (its worker's mean message size over its
    duration; the event log keeps no per-transfer size), summed, at every start and end."""
    events = result.events[result.events["kind"] == kind]
    if not len(events):
        return []
    workers = result.workers.set_index("worker")
    counts = events.groupby("worker").size()
    sizes = (workers[column] / counts.reindex(workers.index)).fillna(0.0)
    duration = (events["end_s"] - events["start_s"]).to_numpy(float)
    size = sizes.reindex(events["worker"]).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(duration > 0, size / duration, 0.0)
    steps = pd.DataFrame({
        "t": np.concatenate([events["start_s"].to_numpy(float), events["end_s"].to_numpy(float)]),
        "delta": np.concatenate([rate, -rate]),
    }).groupby("t", sort=True)["delta"].sum()  # fmt: skip
    level = steps.cumsum().clip(lower=0.0)
    return [{"name": name, "ph": "C", "pid": PS_PID, "ts": _us(float(t)),
             "args": {"bytes/s": 0.0 if not math.isfinite(v) or abs(v) < 1e-9 else float(v)}}
            for t, v in level.items()]  # fmt: skip
