"""Whatever a user writes — a scenario, a sweep file, a command line — it either runs or is a
ScenarioError (exit 2 with one line); nothing else escapes, and nothing runs unbounded."""

import time

import pytest
import yaml
from conftest import scenario_dict
from hypothesis import HealthCheck, event, example, given, settings
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
    for key in ("hidden", "channels", "dense"):  # the model's widths, if it has them
        if key in data["model"]:
            data["model"][key] = [min(h, 64) for h in data["model"][key]][:2]
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


# ---- the newer surfaces: catalogue files, recipes, --tune specs, sweep grids, saved runs ------


def _refused(exc: ScenarioError) -> None:
    assert "\n" not in str(exc) and len(str(exc)) < 1000


entry_keys = st.sampled_from(["params", "flops_per_sample", "input", "fp16", "fp32",
                              "throughput", "bandwidth", "latency", "name", "x"])  # fmt: skip
entry = st.dictionaries(entry_keys, values, max_size=4) | junk
catalogue = st.dictionaries(
    st.sampled_from(["models", "devices", "networks", "other"]),
    st.dictionaries(st.sampled_from(["resnet50", "a100", "10gbe", "mine"]), entry, max_size=2)
    | junk,
    max_size=3,
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(catalogue)
def test_any_catalogue_file_works_or_is_a_scenario_error(tmp_path_factory, data):
    import os

    path = tmp_path_factory.mktemp("cat") / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    named = {"workload": {"name": "resnet50"}, "model": {"name": "none"},
             "cluster": {"device": ["a100", "mine"], "network": ["10gbe", "mine"]},
             "stop": {"time_s": 0.2, "target_accuracy": None}}  # fmt: skip
    before = os.environ.get("ASHLSIM_CATALOGUE")
    os.environ["ASHLSIM_CATALOGUE"] = str(path)
    try:
        scenario = Scenario.from_dict(named)
    except ScenarioError as exc:
        _refused(exc)
        return
    finally:
        if before is None:
            os.environ.pop("ASHLSIM_CATALOGUE")
        else:
            os.environ["ASHLSIM_CATALOGUE"] = before
    assert all(speed > 0 for speed in scenario.cluster.speed.values)
    event("resolved")


fragment = st.dictionaries(st.sampled_from(KEYS), values, max_size=3) | junk
recipes = st.dictionaries(
    st.sampled_from(["common", "strategies", "other"]),
    st.dictionaries(st.sampled_from(["bsp", "asp", "ssp(staleness=2)", "nope"]), fragment,
                    max_size=2) | fragment,
    max_size=2,
)  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(recipes)
def test_any_recipe_file_gives_scenarios_or_is_a_scenario_error(tmp_path_factory, data):
    from ashlsim.compare import load_recipe, resolve

    path = tmp_path_factory.mktemp("recipe") / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        resolved = resolve(Scenario.from_dict(scenario_dict()), load_recipe(str(path)))
    except ScenarioError as exc:
        _refused(exc)
        return
    assert all(isinstance(sc, Scenario) for sc in resolved.values())
    event("resolved")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=2))
def test_any_tune_spec_runs_or_is_one_line(tmp_path_factory, capsys, specs):
    out = tmp_path_factory.mktemp("tune")
    argv = ["compare", "--strategies", "bsp", "--seeds", "0", "--tune-seeds", "0",
            "--robustness", "none", "--quiet", "--out", str(out / "o"),
            "--set", "stop.time_s=0.1", "--set", "cluster.workers=2",
            "--set", "cluster.speed=[4000, 1000]", "--set", "model.name=softmax",
            "--set", "data.name=digits"]  # fmt: skip
    for key, value in specs:
        argv += ["--tune", f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"]
    capsys.readouterr()
    started = time.perf_counter()
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert len([line for line in err.splitlines() if line.startswith("ashlsim:")]) == 1
    event(f"exit {code}")
    assert time.perf_counter() - started < 60


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from([*KEYS, "workload.name", "cluster.device",
                                        "cluster.network", "training", "cluster"]),
                       st.lists(values, max_size=3) | junk, max_size=3))  # fmt: skip
def test_any_sweep_grid_plans_or_is_a_scenario_error(grid):
    from ashlsim.sweep import plan

    try:
        runs = plan(Scenario.from_dict(scenario_dict()), grid, ["bsp", "asp"], [0])
    except ScenarioError as exc:
        _refused(exc)
        return
    assert len({run.key for run in runs}) == len(runs)  # no two runs under one name
    event("planned")


@pytest.fixture(scope="module")
def a_saved_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "r"
    sc = Scenario.from_dict(scenario_dict(strategy={"name": "ashl"}, stop={"time_s": 0.5}))
    ashlsim.run(sc, events=True).save(folder)
    return folder


FILES = ["run.json", "history.csv", "workers.csv", "events.csv", "scenario.yaml",
         "final_params.npy", "profile.csv"]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(FILES),
                          st.sampled_from(["delete", "truncate", "flip", "junk", "empty"]),
                          st.floats(0, 1), st.binary(max_size=40)), min_size=1, max_size=3))  # fmt: skip
@example(damage=[("history.csv", "truncate", 0.625, b"")])  # a row cut mid-way: empty cells
@example(damage=[("final_params.npy", "flip", 0.0119, b"\x00\x00\x00")])  # a broken .npy header
def test_any_damaged_saved_run_loads_or_is_a_scenario_error(tmp_path_factory, a_saved_run, damage):
    import shutil

    folder = tmp_path_factory.mktemp("damaged") / "r"
    shutil.copytree(a_saved_run, folder)
    for name, how, where, junk_bytes in damage:
        path = folder / name
        if not path.exists():
            continue
        raw = path.read_bytes()
        at = int(where * len(raw))
        if how == "delete":
            path.unlink()
        elif how == "truncate":
            path.write_bytes(raw[:at])
        elif how == "flip":
            path.write_bytes(raw[:at] + junk_bytes + raw[at + len(junk_bytes) :])
        elif how == "junk":
            path.write_bytes(junk_bytes)
        else:
            path.write_bytes(b"")
    try:
        result = ashlsim.Result.load(folder)
    except ScenarioError as exc:
        _refused(exc)
        event("refused")
        return
    event("loaded")
    result.summary()  # what it loaded reads as a run's
