"""Fingerprints of simulator runs: one SHA-256 per case over everything a run returns (history,
workers, events, the scheme's tables, stage changes, faults, the final parameters, the push
accounting). A refactoring that must not change results prints the same lines before and after:

    python benchmarks/fingerprints.py > before.txt   # on the old commit
    python benchmarks/fingerprints.py > after.txt    # on the new one
    diff before.txt after.txt                        # nothing: bit for bit the same

The cases cover every registered scheme under each of: a shared PS card with jitter, top-K
compression, straggler episodes, crashes and recoveries, link outages and slowdowns, and a
modelled PS apply cost.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ashlsim  # noqa: E402
from ashlsim.strategies import STRATEGIES  # noqa: E402

BASE = {
    "cluster": {"workers": 5, "speed": [4000, 3000, 2000, 1000, 800],
                "uplink": {"bandwidth": 2e7, "latency": 0.001},
                "downlink": {"bandwidth": 2e7, "latency": 0.001}},
    "model": {"name": "softmax", "dtype": "float64"}, "data": {"name": "digits"},
    "training": {"batch_size": 16, "lr": 0.05, "momentum": 0.5},
    "stop": {"time_s": 1.5, "target_accuracy": None}, "eval": {"every_s": 0.25},
}  # fmt: skip
VARIANTS = {
    "plain": {},
    "card-jitter": {"cluster": {"server": {"ingress": 3e7, "egress": 3e7},
                                "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.3}}},
    "topk": {"strategy": {"compression": {"name": "topk", "ratio": 0.1}}},
    "stragglers": {"cluster": {"stragglers": {"interval_s": 0.3, "duration_s": 0.2,
                                              "factor": 4.0}}},
    "faults": {"faults": [{"kind": "crash", "worker": 1, "at_s": 0.3, "recover_after_s": 0.4},
                          {"kind": "crash", "worker": 3, "at_s": 0.9},
                          {"kind": "link_down", "worker": 0, "at_s": 0.5, "duration_s": 0.2},
                          {"kind": "slowdown", "worker": 2, "at_s": 0.2, "factor": 3.0,
                           "duration_s": 0.5}]},
    "apply-cost": {"cluster": {"server": {"ingress": None, "egress": None, "apply_s": 0.001}}},
}  # fmt: skip


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def fingerprint(result) -> str:
    digest = hashlib.sha256()
    frames = [result.history, result.workers, result.events, result.stage_changes, result.faults,
              *(result.tables[name] for name in sorted(result.tables))]  # fmt: skip
    for frame in frames:
        if frame is not None:
            digest.update(frame.to_csv(index=False, float_format="%.17g").encode())
    if result.final_params is not None:
        digest.update(np.ascontiguousarray(result.final_params).tobytes())
    for key in ("stop_reason", "elapsed_s", "pushes_sent", "pushes_applied", "lost_pushes",
                "pushes_dropped", "pushes_pending"):  # fmt: skip
        digest.update(repr(getattr(result, key)).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    for name in sorted(STRATEGIES):
        for variant, extra in VARIANTS.items():
            data = merged(merged(BASE, {"strategy": {"name": name}}), extra)
            try:
                scenario = ashlsim.Scenario.from_dict(data)
            except ashlsim.ScenarioError as exc:  # e.g. a scheme with its own compression
                print(f"{name:10s} {variant:12s} not applicable ({exc.field})", flush=True)
                continue
            result = ashlsim.run(scenario, events=True)
            print(f"{name:10s} {variant:12s} {fingerprint(result)}", flush=True)


if __name__ == "__main__":
    main()
