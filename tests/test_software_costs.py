"""The software costs a real system adds (``cluster.server.message_s`` and ``apply_s``), as the
simulator models them: closed forms on clusters where every time is known."""

import numpy as np
import pytest
from conftest import make

from ashlsim import run

BYTES = 4e4  # a timing-only model: every message is 40 kB (+ the header)


def timing(**sections):
    return make(
        model={"name": "none"},
        workload={"param_bytes": BYTES, "header_bytes": 0},
        **sections,
    )


def test_message_cost_adds_to_every_pull_and_push():
    server = {"ingress": None, "egress": None, "message_s": 0.004}
    s = timing(cluster={"workers": 1, "speed": [1000], "server": server},
               strategy={"name": "asp"}, stop={"time_s": 1.0})  # fmt: skip
    events = run(s, events=True).events
    transfer = 0.001 + 0.004 + BYTES / 1.0e7  # latency + message cost + bytes / bandwidth
    for kind in ("pull", "push"):
        spans = (
            events.loc[events["kind"] == kind, "end_s"]
            - events.loc[events["kind"] == kind, "start_s"]
        )
        np.testing.assert_allclose(spans, transfer, rtol=1e-9)


def test_the_ps_applies_one_push_at_a_time():
    # 4 identical workers reach the PS together each BSP round: the k-th waits k applies, so a
    # round is compute + pull + push + 4 * apply_s
    apply_s = 0.003
    server = {"ingress": None, "egress": None, "apply_s": apply_s}
    s = timing(cluster={"speed": [1000] * 4, "server": server}, stop={"time_s": 1.0})
    result = run(s, events=True)
    transfer = 0.001 + BYTES / 1.0e7
    round_s = 16 / 1000 + 2 * transfer + 4 * apply_s
    rounds = result.history["version"].iloc[-1]
    assert rounds == int(1.0 / round_s) or rounds == int(1.0 / round_s) - 1
    pushes = result.events[result.events["kind"] == "push"].sort_values("end_s")
    first_round = pushes["end_s"].to_numpy()[:4]
    np.testing.assert_allclose(np.diff(first_round), apply_s, rtol=1e-9)


def test_no_software_cost_is_the_model_of_before():
    s = make(strategy={"name": "asp"})
    zero = s.with_overrides({"cluster.server.message_s": 0.0, "cluster.server.apply_s": 0.0})
    a, b = run(s), run(zero)
    np.testing.assert_array_equal(a.final_params, b.final_params)
    assert a.history.equals(b.history)


@pytest.mark.parametrize("field", ["message_s", "apply_s"])
def test_a_negative_cost_is_refused(field):
    from ashlsim import ScenarioError

    with pytest.raises(ScenarioError, match=f"cluster.server.{field}"):
        make().with_overrides({f"cluster.server.{field}": -1})
