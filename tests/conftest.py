import copy

import numpy as np
import pytest

from ashlsim import Scenario

# A small, fast, fully deterministic cluster: constant speeds, no jitter, no PS contention.
BASE = {
    "name": "test",
    "seed": 0,
    "cluster": {
        "workers": 4,
        "speed": [4000, 4000, 1000, 1000],
        "jitter": 1.0,
        "uplink": {"bandwidth": 1.0e7, "latency": 0.001},
        "downlink": {"bandwidth": 1.0e7, "latency": 0.001},
        "server": {"ingress": None, "egress": None},
    },
    "model": {"name": "softmax", "dtype": "float64"},
    "data": {"name": "digits"},
    "training": {"batch_size": 16, "lr": 0.05},
    "strategy": {"name": "bsp"},
    "stop": {"time_s": 2.0, "target_accuracy": None},
    "eval": {"every_s": 0.5},
}


def scenario_dict(**sections):
    """BASE with sections merged in (one level deep)."""
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def make(**sections) -> Scenario:
    return Scenario.from_dict(scenario_dict(**sections))


@pytest.fixture
def small():
    return make()


def clock_gaps_at_pulls(events, n: int, since: float = -1.0) -> np.ndarray:
    """From the event log alone: at each pull after ``since``, the worker's clock (pushes
    completed after ``since``) minus the slowest worker's."""
    pushes = events[(events["kind"] == "push") & (events["end_s"] > since)]
    push_ends = [np.sort(pushes.loc[pushes["worker"] == w, "end_s"].to_numpy()) for w in range(n)]
    gaps = []
    for row in events[(events["kind"] == "pull") & (events["start_s"] >= since)].itertuples():
        clocks = [np.searchsorted(ends, row.start_s, side="right") for ends in push_ends]
        gaps.append(clocks[row.worker] - min(clocks))
    return np.array(gaps)
