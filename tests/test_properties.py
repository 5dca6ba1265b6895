"""Whatever a user writes — a scenario, a sweep file, a command line — it either runs or is a
ScenarioError (exit 2 with one line); nothing else escapes, and nothing runs unbounded."""

import time

import pytest
import yaml
from conftest import scenario_dict
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import ashlsim
from ashlsim import Scenario, ScenarioError
from ashlsim.cli import main


def _leaves(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


KEYS = sorted(set(_leaves(Scenario().to_dict())) | {"strategy.name", "strategy.staleness",
              "strategy.local_steps", "strategy.server_lr", "cluster.speed", "nonsense.key",
              "cluster.uplink.bandwidth", "strategy.compression.ratio"})  # fmt: skip

junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from(["bsp", "asp", "ssp", "ashl", "adsp", "lognormal", "inf", "1e7", "-1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["dist", "mean", "sigma", "values", "low", "high", "name", "x"]),
        inner, max_size=3),
    max_leaves=8,
)  # fmt: skip

# values a user would plausibly write, so that many generated scenarios are valid and run
plausible = st.one_of(
    st.floats(1e-4, 1e4), st.integers(0, 16), st.booleans(),
    st.sampled_from(["bsp", "asp", "ssp", "local_sgd", "ashl", "adsp", "adacomm", "cosine",
                     "step", "topk", "softmax", "mlp", "digits", "synthetic", "dirichlet"]),
    st.fixed_dictionaries({"dist": st.sampled_from(["lognormal", "exponential", "gamma"]),
                           "mean": st.floats(100, 5000)}),
)  # fmt: skip
values = st.one_of(junk, plausible, plausible, plausible)


def _bounded(scenario: Scenario) -> Scenario:
    """The same scenario made small enough to run in a test (the property is about what a
    scenario may hold, not about running it long)."""
    data = scenario.to_dict()
    data["cluster"]["workers"] = min(data["cluster"]["workers"], 3)
    for key in ("speed", "flops", "jitter"):
        if isinstance(data["cluster"].get(key), list):
            data["cluster"][key] = data["cluster"][key][: data["cluster"]["workers"]]
    for side in ("uplink", "downlink"):
        for key, value in data["cluster"][side].items():
            if isinstance(value, list):
                data["cluster"][side][key] = value[: data["cluster"]["workers"]]
    data["faults"] = [f for f in data["faults"] if f["worker"] < data["cluster"]["workers"]]
    data["stop"] = {"time_s": 0.3, "target_accuracy": None, "epochs": None}
    data["eval"]["every_s"] = 0.1
    data["model"]["hidden"] = [min(h, 64) for h in data["model"]["hidden"]][:2]
    data["data"]["n_samples"] = min(data["data"]["n_samples"], 2000)
    data["data"]["weights"] = None if data["data"]["partition"] != "proportional" else \
        [1.0] * data["cluster"]["workers"]  # fmt: skip
    return Scenario.from_dict(data)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=3))
def test_any_scenario_mapping_runs_or_is_a_scenario_error(overrides):
    try:
        scenario = Scenario.from_dict(scenario_dict()).with_overrides(overrides)
    except ScenarioError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 1000
        event("refused")
        return
    try:
        small = _bounded(scenario)
    except ScenarioError:
        event("valid, but not once made small")
        return  # made small, it broke a cross-field rule: not what this test is about
    started = time.perf_counter()
    try:
        result = ashlsim.run(small)
    except ScenarioError as exc:
        assert "\n" not in str(exc)
        event("refused at run time")
        return
    event("ran")
    assert result.stop_reason in ("time_limit", "diverged", "all_workers_down", "epochs",
                                  "target_accuracy")  # fmt: skip
    assert time.perf_counter() - started < 60


SWEEP_KEYS = ["base", "grid", "strategies", "seeds", "recipe", "extra"]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(SWEEP_KEYS), junk, max_size=4))
def test_any_sweep_file_loads_or_is_a_scenario_error(tmp_path_factory, data):
    from ashlsim.sweep import load_sweep

    path = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        spec = load_sweep(path)
    except ScenarioError as exc:
        assert "\n" not in str(exc)
        return
    assert set(spec) == {"base", "grid", "strategies", "seeds"}


TOKENS = ["run", "compare", "sweep", "scenario", "--strategy", "--strategies", "--seeds",
          "--seed", "--set", "--tune", "--recipe", "--workers", "--executor", "asp", "ssp(s=2)",
          "bsp,asp", ",", "-1", "0", "3", "cluster.workers=2", "nonsense", "authors", "[0.1]",
          "training.lr=[0.1]", "stop.time_s=0.2", "x.yaml", "sequential", "ssp(staleness=[1)"]  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=6))
def test_any_command_line_exits_cleanly(tmp_path_factory, capsys, argv):
    out = tmp_path_factory.mktemp("out")
    # keep whatever runs short: a tiny time limit the command line cannot lengthen
    argv = [*argv, "--out", str(out)]
    if argv[0] in ("run", "compare"):
        argv += ["--set", "stop.time_s=0.2", "--set", "cluster.workers=2",
                 "--set", "cluster.speed=[4000, 1000]"]  # fmt: skip
    if argv[0] == "sweep":
        return  # a sweep needs a file; sweep files have their own property above
    capsys.readouterr()  # this example's output only
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage and one error line, exit 2
        assert exc.code in (0, 2)
        return
    err = capsys.readouterr().err
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    if code == 2:
        lines = [line for line in err.strip().splitlines() if line.startswith("ashlsim:")]
        assert len(lines) == 1, err


@pytest.mark.parametrize("argv", [["run", "--strategy", "ssp(staleness=2,local_steps=2)"]])
def test_a_label_with_commas_runs_from_the_command_line(tmp_path, argv):
    assert main([*argv, "--set", "stop.time_s=0.2", "--out", str(tmp_path), "--no-progress"]) == 0
