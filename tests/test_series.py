"""Bandwidths that change over time (``ashlsim.series``): a transfer across a change finishes
when the integral of its rate reaches its size, for a link and for the PS card, once, on a
loop, with sharing; the scenario reads the series, refuses a bad one, and a run replays it."""

import numpy as np
import pytest
from conftest import make

import ashlsim
from ashlsim import ScenarioError
from ashlsim.cluster import Environment, Network


def _network(env, link, card, n=1, latency=0.0):
    bw, lat = np.full(n, float(link)), np.full(n, latency)
    return Network(env, bw, lat, bw, lat, card, card, varying=True)


def _push(env, net, worker, nbytes, at, done):
    yield env.timeout(at)
    yield from net.move(worker, nbytes, "push")
    done[worker] = env.now


def test_a_push_across_a_link_change_finishes_when_its_bytes_are_through():
    """1 MB at 1 MB/s for 0.5 s (0.5 MB through), then 0.25 MB/s: the other 0.5 MB take 2 s,
    finish at 2.5 s (and 0.01 s of latency before it starts)."""
    env, done = Environment(), [None]
    net = _network(env, 1e6, float("inf"), latency=0.01)
    env.process(_push(env, net, 0, 1e6, 0.0, done))
    env.timeout(0.51).callbacks.append(lambda _: net.set_bandwidth(0, "push", 2.5e5))
    env.run()
    assert done[0] == pytest.approx(0.01 + 0.5 + 2.0, rel=1e-12)


def test_a_card_change_reshares_the_transfers_in_flight():
    """Two pushes of 1 MB through a 1 MB/s card (0.5 MB/s each); at 1 s the card becomes
    4 MB/s (2 MB/s each): 0.5 MB left each, 0.25 s more."""
    env, done = Environment(), [None, None]
    net = _network(env, 1e9, 1e6, n=2)
    for w in range(2):
        env.process(_push(env, net, w, 1e6, 0.0, done))
    env.timeout(1.0).callbacks.append(lambda _: net.set_card("push", 4e6))
    env.run()
    assert done == pytest.approx([1.25, 1.25], rel=1e-12)


def _trace(tmp_path, rows, name="trace.csv", header="time_s,bw"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def test_a_run_replays_a_link_series_and_every_push_moves_its_bytes(tmp_path):
    """One worker whose uplink goes 1e6 -> 2e5 -> 1e6 B/s (looping every 3 s): each push's
    rate integrated over its duration (after its latency) is its size."""
    trace = _trace(tmp_path, [(0, 1e6), (1.0, 2e5), (2.0, 1e6), (3.0, 1e6)])
    series = {"series": str(trace), "column": "bw", "end": "loop"}
    sc = make(cluster={"workers": 1, "speed": [1e6], "uplink": {"bandwidth": series,
                                                                 "latency": 0.001}},
              model={"name": "none"}, workload={"param_bytes": 2e5, "header_bytes": 0},
              strategy={"name": "asp"}, stop={"time_s": 7.0, "target_accuracy": None})  # fmt: skip
    result = ashlsim.run(sc, events=True)
    pushes = result.events.query("kind == 'push' and end_s < @result.elapsed_s")
    assert len(pushes) > 10

    def through(start, end):  # bytes the looping trace moves in [start, end]
        grid = np.linspace(start, end, 200_001)
        rate = np.where((grid % 3.0) < 1.0, 1e6, np.where((grid % 3.0) < 2.0, 2e5, 1e6))
        return np.trapezoid(rate, grid)

    moved = [through(s + 0.001, e) for s, e in zip(pushes["start_s"], pushes["end_s"], strict=True)]
    np.testing.assert_allclose(moved, 2e5, rtol=2e-3)
    saved = result.scenario.to_dict()["cluster"]["uplink"]["bandwidth"]
    assert saved["series"] == str(trace) and saved["end"] == "loop"


def test_a_card_series_on_the_command_line_path_is_relative_to_the_scenario(tmp_path):
    _trace(tmp_path, [(0, 1e7), (0.5, 2e6)], header="time_s,card")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("cluster: {server: {ingress: {series: trace.csv, column: card}}}\n"
                        "stop: {time_s: 1.0, target_accuracy: null}\n")  # fmt: skip
    sc = ashlsim.load_scenario(scenario)
    assert sc.cluster.server.ingress.path == str(tmp_path / "trace.csv")
    assert ashlsim.run(sc).pushes_applied > 0


@pytest.mark.parametrize(
    "rows, spec, field",
    [([(1, 1e6)], {}, "time_s"),
     ([(0, 1e6), (0, 2e6)], {}, "time_s"),
     ([(0, -1)], {}, "column"),
     ([(0, 1e6)], {"end": "loop"}, "end"),
     ([(0, 1e6)], {"end": "forever"}, "end"),
     ([(0, 1e6)], {"column": "nope"}, "column"),
     ([(0, 1e6)], {"column": ["bw", "bw", "bw"]}, "column"),
     ([(0, 1e6)], {"every": 3}, "every")],
)  # fmt: skip
def test_a_bad_series_is_an_error_naming_its_field(tmp_path, rows, spec, field):
    trace = _trace(tmp_path, rows)
    bandwidth = {"series": str(trace), "column": "bw", **spec}
    with pytest.raises(ScenarioError, match=f"cluster.uplink.bandwidth.*{field}"):
        make(cluster={"uplink": {"bandwidth": bandwidth}})
