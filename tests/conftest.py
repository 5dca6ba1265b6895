import copy

import numpy as np
import pytest

from ashlsim import Scenario
from ashlsim.strategies import STRATEGIES

# Every registered scheme (built-in and plug-in): the invariant tests run each of them, with
# the small configuration below where its defaults are too slow for a test (a plug-in runs
# with its defaults). ``adsp_authors`` is ADSP's second variant.
SCHEMES = list(STRATEGIES)
SMALL = {"adsp_authors": {"name": "adsp", "variant": "authors", "period_s": 0.3}}


def scheme_block(scheme: str, faults: bool = False) -> dict:
    """The ``strategy`` block a test runs ``scheme`` with; ``faults``: a round-based scheme
    drops a crashed worker after 0.2 s instead of waiting for it (``on_failure``)."""
    block = dict(SMALL.get(scheme, {"name": scheme}))
    params = STRATEGIES[block["name"]].Params.__dataclass_fields__
    if faults and "on_failure" in params:
        block |= {"on_failure": "drop", "failure_timeout_s": 0.2}
    if faults and "profile_iters" in params:  # a profile of 2 iterations, a switch after 1 epoch
        block |= {"profile_iters": 2, "switch": "epochs", "switch_epochs": 1.0}
    return block


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
