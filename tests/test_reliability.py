"""Bad input gets one clear line and loses nothing; a saved run reproduces itself; nothing is
silently read with another meaning."""

import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import scenario_dict

import ashlsim
from ashlsim import ScenarioError
from ashlsim.cli import main
from ashlsim.strategies import STRATEGIES
from ashlsim.yamlio import load_file, loads

README = Path(__file__).resolve().parents[1] / "README.md"


# ---- YAML as a user means it ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.25e7", 1.25e7), ("1e-3", 1e-3), ("-2.5E+3", -2500.0), (".5", 0.5), ("1.0e+300", 1e300),
     ("3", 3), ("0.5", 0.5), ("inf", "inf"), ("1e7x", "1e7x")],
)  # fmt: skip
def test_numbers_are_read_as_yaml_1_2_does(text, value):
    assert loads(text) == value
    assert type(loads(text)) is type(value)


def test_the_readme_scenario_block_is_a_valid_scenario():
    block = re.search(r"```yaml\n(name: default.*?)```", README.read_text(), flags=re.S).group(1)
    scenario = ashlsim.Scenario.from_dict(loads(block))
    assert scenario.cluster.uplink.bandwidth.value == 1.25e7
    assert len(scenario.faults) == 3


def test_set_accepts_exponent_floats(tmp_path):
    out = tmp_path / "o"
    code = main(["run", "--set", "cluster.uplink.bandwidth=1.25e7", "--set", "stop.time_s=0.5",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0


def test_a_duplicated_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("cluster:\n  workers: 4\n  workers: 8\n")
    with pytest.raises(ScenarioError, match=r"line 3: 'workers'.*each key once"):
        ashlsim.load_scenario(path)


def test_alias_bombs_are_refused_quickly_and_the_message_stays_short(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    lines.append("unknown_key: *i")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    assert path.stat().st_size < 1500
    with pytest.raises(ScenarioError, match="anchors or aliases") as info:
        ashlsim.load_scenario(path)
    assert len(str(info.value)) < 300


def test_error_messages_never_expand_a_big_value():
    with pytest.raises(ScenarioError) as info:
        ashlsim.Scenario.from_dict({"nonsense": [[list(range(1000))] * 1000] * 1000})
    assert len(str(info.value)) < 600  # bounded whatever the input


def test_a_binary_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ScenarioError, match="not binary"):
        load_file(path)
    assert main(["run", str(path)]) == 2
    assert "not binary" in capsys.readouterr().err


# ---- a saved run reproduces itself, and the output folder holds one run ------------------------


def _scenario_file(tmp_path, **sections):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict(**sections)))
    return path


def test_the_saved_scenario_records_the_seed_used(tmp_path):
    scenario = _scenario_file(tmp_path, strategy={"name": "asp"}, stop={"time_s": 0.5})
    first, again = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(scenario), "--seed", "3", "--out", str(first), "--no-progress"]) == 0
    saved = ashlsim.load_scenario(first / "scenario.yaml")
    assert saved.seed == 3
    assert main(["run", str(first / "scenario.yaml"), "--out", str(again), "--no-progress"]) == 0
    assert (first / "history.csv").read_text() == (again / "history.csv").read_text()


def test_a_reused_output_folder_keeps_no_file_of_the_previous_run(tmp_path):
    out = tmp_path / "out"
    ashl = _scenario_file(tmp_path, strategy={"name": "ashl"}, stop={"time_s": 1.0})
    assert main(["run", str(ashl), "--events", "--out", str(out), "--no-progress"]) == 0
    assert (out / "profile.csv").exists() and (out / "events.csv").exists()
    (out / "notes.txt").write_text("mine")  # a file of the user's: left alone
    plain = _scenario_file(tmp_path, strategy={"name": "bsp"}, stop={"time_s": 0.5})
    assert main(["run", str(plain), "--out", str(out), "--no-progress"]) == 0
    assert not (out / "profile.csv").exists() and not (out / "events.csv").exists()
    assert not (out / "stage_changes.csv").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert ashlsim.load_scenario(out / "scenario.yaml").strategy.name == "bsp"


# ---- accepted with another meaning: now errors naming the key ---------------------------------


@pytest.mark.parametrize(
    ("fault", "field", "words"),
    [
        ({"worker": 1, "at_s": 1, "kind": "crash", "duration_s": 0.5}, "faults[0].duration_s",
         "recover_after_s"),
        ({"worker": 1, "at_s": 1, "kind": "slowdown", "recover_after_s": 2}, "faults[0].recover_after_s",
         "factor"),
        ({"worker": 1, "at_s": 1, "kind": "link_down", "factor": 2}, "faults[0].factor", "duration_s"),
    ],
)  # fmt: skip
def test_a_fault_key_its_kind_does_not_take_is_an_error(fault, field, words):
    with pytest.raises(ScenarioError, match=re.escape(field)) as info:
        ashlsim.Scenario.from_dict(scenario_dict(faults=[fault]))
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("spec", "field"),
    [({"dist": "empirical", "values": [1, 2], "mean": 3}, "cluster.speed.mean"),
     ({"dist": "empirical", "values": 5}, "cluster.speed.values"),
     ({"dist": "empirical", "path": 5, "column": "x"}, "cluster.speed")],
)  # fmt: skip
def test_empirical_specs_are_checked(spec, field):
    with pytest.raises(ScenarioError, match=re.escape(field)):
        ashlsim.Scenario.from_dict(scenario_dict(cluster={"speed": spec}))


def test_a_trace_is_read_relative_to_its_scenario_file_and_checked(tmp_path, monkeypatch):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "trace.csv").write_text("speed,name\n1000,a\n2000,b\n")
    data = scenario_dict(cluster={"speed": {"dist": "empirical", "path": "trace.csv",
                                            "column": "speed"}})  # fmt: skip
    (folder / "s.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    scenario = ashlsim.load_scenario(folder / "s.yaml")
    assert sorted(scenario.cluster.speed.values) == [1000.0, 2000.0]
    data["cluster"]["speed"]["column"] = "name"
    (folder / "t.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=r"cluster.speed.column.*line 2.*numbers"):
        ashlsim.load_scenario(folder / "t.yaml")


def test_a_second_crash_of_a_worker_already_down_changes_nothing():
    crashes = [{"worker": 2, "at_s": 0.3, "kind": "crash"},
               {"worker": 2, "at_s": 0.6, "kind": "crash"}]  # fmt: skip
    for scheme in ("asp", "ashl", "adsp"):
        result = ashlsim.run(ashlsim.Scenario.from_dict(
            scenario_dict(strategy={"name": scheme}, faults=crashes, stop={"time_s": 1.0})))  # fmt: skip
        second = result.faults.iloc[1]
        assert second["kind"] == "crash (already down)" and second["end_s"] == second["start_s"]
        assert result.faults["lost_push"].sum() == result.lost_pushes


def test_adsp_plans_when_a_worker_dies_before_its_first_commit():
    crash = [{"worker": 1, "at_s": 0.0001, "kind": "crash"}]
    sim = ashlsim.Simulation(ashlsim.Scenario.from_dict(
        scenario_dict(strategy={"name": "adsp"}, faults=crash, stop={"time_s": 2.0})))  # fmt: skip
    result = sim.run()
    assert sim.strategy.schedule.commit_s == sim.strategy.schedule.commit_s  # planned (not nan)
    steps = result.workers["commit_steps"]
    assert steps.drop(index=1).max() > 1  # the running workers take several steps a commit


def test_a_huge_model_is_refused_before_it_is_allocated():
    with pytest.raises(ScenarioError, match=r"model: .*'hidden': \[1000000000\].* at most 2e\+07"):
        ashlsim.run(ashlsim.Scenario.from_dict(scenario_dict(model={"name": "mlp",
                                                                    "hidden": [10**9]})))  # fmt: skip


# ---- runs that cannot finish end at once, naming the field -----------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"cluster": {"stragglers": {"interval_s": 1e-9, "duration_s": 1e-9, "factor": 2}}},
      "cluster.stragglers"),
     ({"cluster": {"speed": 1e300, "uplink": {"bandwidth": 1e308, "latency": 0},
                   "downlink": {"bandwidth": 1e308, "latency": 0},
                   "server": {"ingress": None, "egress": None}}}, "cluster."),
     ({"eval": {"every_s": 1e-300}, "stop": {"time_s": None, "epochs": 5}}, "eval.every_s")],
)  # fmt: skip
def test_a_run_that_cannot_advance_stops_with_the_field(overrides, field):
    import time

    started = time.perf_counter()
    with pytest.raises(ScenarioError, match=re.escape(field)):
        ashlsim.run(ashlsim.Scenario.from_dict(scenario_dict(**overrides)))
    assert time.perf_counter() - started < 30


def test_a_cluster_larger_than_the_guard_window_starts_at_one_instant_and_runs():
    """20,000 workers start at t=0 with 20,000 events: more than the run guard's window of
    16,384, none of them advancing the clock; that burst is a start, not a run going nowhere."""
    scenario = ashlsim.Scenario.from_dict(
        scenario_dict(
            cluster={"workers": 20_000, "speed": 2000.0},
            model={"name": "none"},
            workload={"param_bytes": 1.0e4},
            data={"name": "synthetic", "n_samples": 40_000, "n_features": 4},
            stop={"time_s": 0.03, "target_accuracy": None},
            eval={"every_s": 0.03},
            strategy={"name": "asp"},
        )
    )
    result = ashlsim.run(scenario)
    assert result.stop_reason == "time_limit"
    assert (result.workers["pushes"] >= 1).all()


def test_too_frequent_evaluations_are_refused_up_front():
    with pytest.raises(ScenarioError, match="eval.every_s"):
        ashlsim.Scenario.from_dict(scenario_dict(eval={"every_s": 1e-300}))


# ---- sweep files validated whole, up front -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [("seeds: [a]", "seeds[0]"), ("seeds: 5", "seeds"), ("seeds: [-1]", "seeds[0]"),
     ("seeds: [0, 0]", "seeds"), ("strategies: [5]", "strategies"), ("base: 5", "sweep.base"),
     ("strategies: ['ssp(staleness=[1)']", "strategies"),
     ("strategies: ['nope']", "strategy.name")],
)  # fmt: skip
def test_a_bad_sweep_file_is_one_line_naming_the_field(tmp_path, capsys, body, field):
    path = tmp_path / "sweep.yaml"
    path.write_text(body + "\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and field in err, err


def test_a_sweep_rerun_replaces_an_incomplete_run_folder(tmp_path):
    from ashlsim.sweep import sweep

    base = scenario_dict(stop={"time_s": 0.3})
    first = sweep(base, {}, ["asp"], [0], out=tmp_path, executor="sequential", progress=False)
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    (run / "summary.json").unlink()  # a folder without its summary: incomplete
    again = sweep(base, {}, ["asp"], [0], out=tmp_path, executor="sequential", progress=False)
    assert len(first) == len(again) == 1 and (run / "summary.json").exists()


# ---- the command line: one clear line, exit 2 -------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["compare", "--strategies", ","], ["compare", "--strategies", "ssp(staleness=[1)"],
     ["run", "--seed", "-1"], ["compare", "--seeds=-1"], ["compare", "--seeds", "0,0"],
     ["sweep", "experiments/sweeps/speed_spread.yaml", "--workers", "-1"]],
)  # fmt: skip
def test_command_line_mistakes_are_one_line(capsys, argv, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ashlsim: error:") and "\n" not in err


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_a_bad_output_folder_fails_before_anything_runs(capsys, command, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    extra = ["experiments/sweeps/speed_spread.yaml"] if command == "sweep" else []
    for out in (str(afile), "/proc/ashlsim-cannot-write"):
        assert main([command, *extra, "--out", out]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "Traceback" not in err


# ---- BLAS threads -----------------------------------------------------------------------------


def test_a_run_limits_blas_to_one_thread_unless_told(monkeypatch):
    from threadpoolctl import threadpool_info

    seen = []
    original = ashlsim.Simulation.run

    def spy(self):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return original(self)

    monkeypatch.setattr(ashlsim.Simulation, "run", spy)
    small = ashlsim.Scenario.from_dict(scenario_dict(stop={"time_s": 0.2}))
    ashlsim.run(small)
    ashlsim.run(small, blas_threads=2)
    monkeypatch.setenv("ASHLSIM_BLAS_THREADS", "2")
    ashlsim.run(small)
    assert seen == [1, 2, 2]
    monkeypatch.setenv("ASHLSIM_BLAS_THREADS", "many")
    with pytest.raises(ScenarioError, match="ASHLSIM_BLAS_THREADS"):
        ashlsim.run(small)


def test_a_saved_result_loads_back(tmp_path):
    import numpy as np
    import pandas as pd

    scenario = ashlsim.Scenario.from_dict(scenario_dict(strategy={"name": "ashl"},
                                                       stop={"time_s": 1.0}))  # fmt: skip
    result = ashlsim.run(scenario, seed=4, events=True)
    result.save(tmp_path / "r")
    back = ashlsim.Result.load(tmp_path / "r")
    assert back.scenario == scenario.replace(seed=4) and back.seed == 4
    for name in ("history", "workers", "events", "stage_changes"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name), check_dtype=False)
    pd.testing.assert_frame_equal(
        back.tables["profile"], result.tables["profile"], check_dtype=False
    )
    np.testing.assert_array_equal(back.final_params, result.final_params)
    assert pd.Series(back.summary()).equals(pd.Series(result.summary()))  # nan equal to nan
    with pytest.raises(ScenarioError, match="result"):
        ashlsim.Result.load(tmp_path)


@pytest.mark.parametrize(
    "argv",
    [["compare", "--recipe", "authors", "--strategies", "nope"],
     ["run", "--strategy", "nope"], ["compare", "--tune", "training.lr=0.1"]],
)  # fmt: skip
def test_a_refused_command_leaves_no_output_folder(capsys, tmp_path, argv):
    out = tmp_path / "new" / "folder"
    assert main([*argv, "--out", str(out)]) == 2
    assert not (tmp_path / "new").exists()
    assert capsys.readouterr().err.startswith("ashlsim: error:")


def test_a_scenario_with_faults_survives_to_dict_and_back():
    # to_dict wrote every fault field (a crash's factor too), which from_dict refuses: a saved
    # scenario.yaml with faults could not be loaded, nor overridden (found by the emulator)
    from ashlsim import Scenario

    faults = [
        {"worker": 1, "at_s": 1.0, "kind": "crash", "recover_after_s": 1.0},
        {"worker": 0, "at_s": 1.0, "kind": "slowdown", "factor": 3.0, "duration_s": 2.0},
        {"worker": 2, "at_s": 2.0, "kind": "link_down", "duration_s": 1.0},
    ]
    s = Scenario().with_overrides({"faults": faults})
    assert Scenario.from_dict(s.to_dict()) == s
    assert s.with_overrides({"cluster.workers": 4}).faults == s.faults


def _run_into(out, *extra):
    from ashlsim.cli import main

    argv = ["run", "--set", "stop.time_s=0.5", "--out", str(out), "--no-progress", *extra]
    return main(argv)


def test_a_forged_manifest_deletes_nothing_of_the_users(tmp_path):
    """The manifest names what an earlier run wrote, with each file's SHA-256: a name it lists
    that is not byte for byte that file, a path out of the folder, or a folder, is left alone."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    (tmp_path / "outside.csv").write_text("mine too")
    (out / "sub").mkdir()
    (out / ".ashlsim-run").write_text(
        "precious.txt\n"
        + "0" * 64
        + "  precious.txt\n"
        + "0" * 64
        + "  ../outside.csv\n"
        + "..\n"
        + "0" * 64
        + "  sub\n"
    )
    assert _run_into(out) == 0
    assert (out / "precious.txt").read_text() == "mine"
    assert (tmp_path / "outside.csv").read_text() == "mine too"
    assert (out / "sub").is_dir() and (out / "history.csv").is_file()


def test_a_stale_file_goes_only_if_it_is_what_the_earlier_run_wrote(tmp_path):
    out = tmp_path / "o"
    assert _run_into(out, "--events") == 0 and (out / "events.csv").is_file()
    assert _run_into(out) == 0 and not (out / "events.csv").exists()  # stale: removed
    assert _run_into(out, "--events") == 0
    (out / "events.csv").write_text("edited by hand")
    assert _run_into(out) == 0
    assert (out / "events.csv").read_text() == "edited by hand"  # edited: left alone


def test_a_folder_where_a_run_writes_a_file_is_refused_before_the_run(tmp_path, capsys):
    out = tmp_path / "o"
    assert _run_into(out) == 0
    before = (out / "history.csv").read_bytes()
    (out / "workers.csv").unlink()
    (out / "workers.csv").mkdir()
    assert _run_into(out, "--seed", "3") == 2
    err = capsys.readouterr().err
    assert "workers.csv" in err and "Traceback" not in err
    assert (out / "history.csv").read_bytes() == before  # the earlier run is untouched
    result = ashlsim.run(ashlsim.Scenario().with_overrides({"stop.time_s": 0.5}))
    with pytest.raises(ScenarioError, match="workers.csv"):
        result.save(out)
    assert (out / "history.csv").read_bytes() == before


def test_a_recipe_fragment_merges_key_by_key(tmp_path):
    from ashlsim.compare import resolve

    base = ashlsim.Scenario().with_overrides({"training.lr": 0.3})
    resolved = resolve(base, {"asp": {"training": {}}, "bsp": {"training": {"momentum": 0.5}}})
    assert resolved["asp"].training.lr == 0.3  # an empty section sets nothing
    assert (resolved["bsp"].training.lr, resolved["bsp"].training.momentum) == (0.3, 0.5)


@pytest.mark.parametrize(
    "argv, field",
    [
        (
            ["compare", "--strategies", "bsp,asp", "--tune", "strategy.name=[asp]"],
            "tune.strategy.name",
        ),
        (["compare", "--tune", "training.lr=[0.1]", "--tune", "training.lr=[0.2]"], "--tune"),
        (["compare", "--recipe", "/dev/zero"], "recipe"),
        (["run", "/dev/zero"], "scenario"),
        (["emulate", "--listen", "127.0.0.1:99999"], "listen"),
    ],
)
def test_more_bad_input_is_one_line(argv, field, tmp_path, capsys):
    from ashlsim.cli import main

    started = time.monotonic()
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ashlsim: error: {field}") and "Traceback" not in err
    assert time.monotonic() - started < 10 and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv, field", [(["--seconds", "1e-9"], "--seconds"), (["--out", "."], "--out")]
)
def test_calibrate_refuses_a_useless_probe_and_a_folder_to_write(argv, field, capsys):
    from ashlsim.cli import main

    assert main(["calibrate", "--set", "cluster.workers=2", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ashlsim: error: {field}") and "Traceback" not in err


@pytest.mark.parametrize(
    "grid, keys",
    [({"training.lr": [0.1], "training": [{"lr": 0.2}]}, ("training", "training.lr")),
     ({"cluster.uplink": [{"bandwidth": 1e6}], "cluster.uplink.bandwidth": [1e7]},
      ("cluster.uplink", "cluster.uplink.bandwidth"))],
)  # fmt: skip
def test_a_grid_whose_keys_overlap_is_an_error_naming_both(grid, keys):
    from ashlsim.sweep import plan

    with pytest.raises(ScenarioError) as caught:
        plan(None, grid, ["bsp"], [0])
    assert all(key in str(caught.value) for key in keys)


@pytest.mark.parametrize(
    "body, field",
    [("strategies: {bsp: [1, 2]}", "strategies.bsp"),
     ("common: [1, 2]\nstrategies: {bsp: {}}", "common"),
     ("strategies: {bsp: 5}", "strategies.bsp")],
)  # fmt: skip
def test_a_recipe_fragment_that_is_not_a_mapping_is_one_line(body, field, tmp_path, capsys):
    from ashlsim.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(body + "\n")
    assert main(["compare", "--recipe", str(recipe), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ashlsim: error: recipe {recipe}: {field}") and "Traceback" not in err


def _damage(folder, how):
    import json

    facts = folder / "run.json"
    if how == "truncated run.json":
        facts.write_text(facts.read_text()[:40])
    elif how == "run.json without tables":
        data = json.loads(facts.read_text())
        del data["tables"]
        facts.write_text(json.dumps(data))
    elif how == "run.json with an extra key":
        facts.write_text(json.dumps({**json.loads(facts.read_text()), "extra": 1}))
    elif how == "run.json a list":
        facts.write_text("[1, 2]")
    elif how == "run.json with a wrong seed":
        facts.write_text(json.dumps({**json.loads(facts.read_text()), "seed": 9}))
    elif how == "no history.csv":
        (folder / "history.csv").unlink()
    elif how == "binary events.csv":
        (folder / "events.csv").write_bytes(bytes(range(256)) * 4)
    elif how == "empty workers.csv":
        (folder / "workers.csv").write_text("")
    elif how == "a worker row missing":
        lines = (folder / "workers.csv").read_text().splitlines()
        (folder / "workers.csv").write_text("\n".join(lines[:-1]) + "\n")
    elif how == "accuracy not a number":
        lines = (folder / "history.csv").read_text().splitlines()
        head = lines[0].split(",")
        cells = lines[-1].split(",")
        cells[head.index("accuracy")] = "oops"
        (folder / "history.csv").write_text("\n".join([*lines[:-1], ",".join(cells)]) + "\n")
    elif how == "a column missing":
        import pandas as pd

        pd.read_csv(folder / "history.csv").drop(columns="loss").to_csv(
            folder / "history.csv", index=False
        )
    elif how == "garbage final_params.npy":
        (folder / "final_params.npy").write_bytes(b"\x93NUMPY garbage")
    elif how == "a scheme table missing":
        (folder / "profile.csv").unlink()


DAMAGES = ["truncated run.json", "run.json without tables", "run.json with an extra key",
           "run.json a list", "run.json with a wrong seed", "no history.csv", "binary events.csv",
           "empty workers.csv", "a worker row missing", "accuracy not a number",
           "a column missing", "garbage final_params.npy", "a scheme table missing"]  # fmt: skip


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    scenario = ashlsim.Scenario.from_dict(scenario_dict(strategy={"name": "ashl"},
                                                       stop={"time_s": 1.0}))  # fmt: skip
    folder = tmp_path_factory.mktemp("saved") / "r"
    ashlsim.run(scenario, seed=4, events=True).save(folder)
    return folder


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_saved_run_is_a_scenario_error_naming_the_file(saved_run, how, tmp_path):
    import shutil

    folder = tmp_path / "r"
    shutil.copytree(saved_run, folder)
    ashlsim.Result.load(folder)  # whole: loads
    _damage(folder, how)
    with pytest.raises(ScenarioError, match=f"result {folder}"):
        ashlsim.Result.load(folder)


def _accounted(result):
    w = result.workers
    return (w["compute_s"] + w["comm_s"] + w["wait_s"] + w["down_s"]).to_numpy()


CRASHES = [{"kind": "crash", "worker": 2, "at_s": 0.41, "recover_after_s": 0.3},
           {"kind": "crash", "worker": 0, "at_s": 0.77}]  # fmt: skip


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize(
    "card, stop, faults", [(None, 1.0, []), (2.0e7, 1.37, []), (None, 1.37, CRASHES)]
)  # fixed transfers or a shared PS card; crashes in the middle of phases
def test_every_second_of_every_worker_is_accounted_for_up_to_the_stop(name, card, stop, faults):
    """Computing, communicating, waiting or down: the four add up to the run's length for every
    worker, whatever the phase under way at the stop or at a crash."""
    import numpy as np

    sc = ashlsim.Scenario.from_dict(scenario_dict(
        strategy={"name": name}, stop={"time_s": stop}, faults=faults,
        cluster={"server": {"ingress": card, "egress": card}},
        workload={"param_bytes": 4.0e6}))  # fmt: skip
    result = ashlsim.run(sc, events=True)
    np.testing.assert_allclose(_accounted(result), result.elapsed_s, rtol=1e-9)
    events = result.events
    assert events["end_s"].max() <= result.elapsed_s + 1e-12


def test_a_push_under_way_at_the_stop_counts_as_communication():
    """A pull of 1e8 bytes at 1e11 B/s (1 ms, and 1 ms latency), one batch (1 ms), then a push
    of 1e8 bytes at 1e7 B/s (10 s) that the stop at 1 s cuts: 0.999 s of communication."""
    sc = ashlsim.Scenario.from_dict(scenario_dict(
        cluster={"workers": 1, "speed": [16000], "downlink": {"bandwidth": 1e11}},
        strategy={"name": "asp"}, workload={"param_bytes": 1.0e8},
        stop={"time_s": 1.0}))  # fmt: skip
    row = ashlsim.run(sc).workers.iloc[0]
    assert row["pushes"] == 0 and row["bytes_up"] == 0  # nothing delivered
    assert row["compute_s"] == pytest.approx(0.001)  # one batch of 16
    assert row["comm_s"] == pytest.approx(1.0 - 0.001) and row["wait_s"] == 0


@pytest.mark.parametrize(
    "argv, field",
    [(["--strategy", "ssp(local_steps=100000000)"], "strategy.local_steps"),
     (["--strategy", "ashl(h_ahl=100000000)"], "strategy.h_ahl")],
)  # fmt: skip
def test_local_steps_no_run_could_take_are_refused_at_once(argv, field, tmp_path, capsys):
    started = time.monotonic()
    assert main(["run", *argv, "--set", "stop.time_s=1", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith(f"ashlsim: error: {field}")
    assert time.monotonic() - started < 10


def test_a_scheme_that_chooses_too_many_local_steps_stops_with_its_name():
    """ASHL's profile gives the fastest worker H times its speed ratio: within each field's
    bound, 40,000 x 16 local steps, more than one computation may take."""
    sc = ashlsim.Scenario.from_dict(scenario_dict(
        strategy={"name": "ashl", "h_ahl": 40_000}, cluster={"speed": [16000, 1000, 1000, 1000]},
        stop={"time_s": 1.0}))  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ScenarioError, match=r"strategy \(ashl\): local steps of worker 0"):
        ashlsim.run(sc)
    assert time.monotonic() - started < 10


# ---- output folders: one writer at a time, a killed writer's leftovers cleaned ---------------


def test_a_killed_runs_staging_folder_is_cleaned_by_the_next_run(tmp_path):
    out = tmp_path / "o"
    assert _run_into(out) == 0
    for name in (".ashlsim-k1ll3d", ".ashlsim-staging-x"):  # what a killed save leaves
        (out / name).mkdir()
        (out / name / "history.csv").write_text("half")
    (out / ".ashlsim-keep").write_text("a file of that name is not a staging folder")
    assert _run_into(out) == 0
    assert not (out / ".ashlsim-k1ll3d").exists() and not (out / ".ashlsim-staging-x").exists()
    assert (out / ".ashlsim-keep").is_file() and (out / "history.csv").is_file()


@pytest.fixture
def held_elsewhere(tmp_path):
    """A folder another process holds (as a command writing into it does)."""
    import subprocess
    import sys

    folder = tmp_path / "busy"
    code = ("import sys, time\nfrom ashlsim.folders import claim\n"
            "with claim(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    yield folder
    holder.kill()
    holder.wait()


@pytest.mark.parametrize(
    "argv",
    [["run", "--set", "stop.time_s=0.2", "--no-progress"],
     ["compare", "--strategies", "bsp", "--seeds", "0", "--robustness", "none", "--quiet",
      "--set", "stop.time_s=0.2"]],
)  # fmt: skip
def test_a_folder_another_command_is_writing_is_refused_with_one_line(held_elsewhere, argv, capsys):
    before = sorted(p.name for p in held_elsewhere.iterdir())
    assert main([*argv, "--out", str(held_elsewhere)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ashlsim: error: --out") and "another" in err and err.count("\n") == 1
    assert sorted(p.name for p in held_elsewhere.iterdir()) == before  # nothing written


def test_two_sweeps_into_one_folder_one_is_refused(held_elsewhere, tmp_path, capsys):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("base: {stop: {time_s: 0.2}}\ngrid: {cluster.workers: [2]}\n")
    assert main(["sweep", str(sweep_file), "--out", str(held_elsewhere), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("ashlsim: error: --out")
    assert not (held_elsewhere / "summary.csv").exists()
    result = ashlsim.run(ashlsim.Scenario().with_overrides({"stop.time_s": 0.2}))
    with pytest.raises(ScenarioError, match="--out"):
        result.save(held_elsewhere)


def test_a_folder_is_free_again_when_its_writer_ends(tmp_path):
    from ashlsim.folders import claim

    with claim(tmp_path / "o"), claim(tmp_path / "o"):  # one process may nest its claims
        pass
    assert _run_into(tmp_path / "o") == 0


@pytest.mark.parametrize(
    "grid",
    [{"cluster.workers": [2, 2]}, {"cluster.workers": [2, 2.0]}, {"cluster.flops": [None, None]}],
)
def test_two_grid_points_that_make_one_run_are_an_error(grid):
    from ashlsim.sweep import plan

    with pytest.raises(ScenarioError, match="^grid: .*makes the same run"):
        plan(None, grid, ["bsp"], [0])


@pytest.mark.parametrize("what", ["scenario", "sweep", "recipe"])
def test_a_pipe_given_as_a_file_is_refused_at_once(what, tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    argv = {"scenario": ["run", str(fifo)], "sweep": ["sweep", str(fifo)],
            "recipe": ["compare", "--recipe", str(fifo)]}[what]  # fmt: skip
    started = time.monotonic()
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ashlsim: error: {what}") and "regular YAML file" in err
    assert time.monotonic() - started < 10


def test_a_trace_that_is_a_pipe_is_refused_at_once(tmp_path):
    import os

    fifo = tmp_path / "trace.csv"
    os.mkfifo(fifo)
    speed = {"dist": "empirical", "path": str(fifo), "column": "speed"}
    started = time.monotonic()
    with pytest.raises(ScenarioError, match=r"cluster.speed.path.*regular CSV"):
        ashlsim.Scenario.from_dict(scenario_dict(cluster={"speed": speed}))
    assert time.monotonic() - started < 10


def test_results_compare_by_everything_they_hold():
    sc = ashlsim.Scenario.from_dict(scenario_dict(stop={"time_s": 0.5}))
    one, again, other = ashlsim.run(sc), ashlsim.run(sc), ashlsim.run(sc, seed=1)
    assert one == again and one != other and one != "a result"
    again.history.loc[0, "loss"] += 1e-12
    assert one != again


def test_a_rerun_sweep_says_how_many_runs_it_reused(tmp_path, capsys):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text("base: {stop: {time_s: 0.3}, data: {name: digits}}\n"
                          "grid: {cluster.workers: [2, 3]}\nseeds: [0]\n")  # fmt: skip
    argv = ["sweep", str(sweep_file), "--out", str(tmp_path / "o"), "--executor", "sequential",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "2 runs finished, 0 failed" in capsys.readouterr().out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 runs finished (2 already done, reused)" in out and "schemes.csv" in out


def test_compare_says_what_it_runs_even_when_quiet(tmp_path, capsys):
    assert main(["compare", "--strategies", "bsp", "--seeds", "0", "--robustness", "none",
                 "--quiet", "--set", "stop.time_s=0.2", "--set", "data.name=digits",
                 "--out", str(tmp_path / "o")]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("Comparing bsp on default (8 workers)")
