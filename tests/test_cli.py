import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import scenario_dict

from ashlsim.cli import main


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict()))
    return path


def test_run_writes_results(tmp_path, scenario_file, capsys):
    out = tmp_path / "out"
    assert (
        main(["run", str(scenario_file), "--out", str(out), "--strategy", "asp", "--events"]) == 0
    )
    for name in ["history.csv", "workers.csv", "scenario.yaml", "curve.png", "events.csv"]:
        assert (out / name).stat().st_size > 0, name
    text = capsys.readouterr().out
    assert "strategy asp" in text and "idle_share" in text
    assert yaml.safe_load((out / "scenario.yaml").read_text())["strategy"]["name"] == "asp"


@pytest.mark.parametrize("strategy", ["asp", "ashl"])
def test_a_big_timing_only_run_prints_a_spread_and_plots_progress(
    strategy, tmp_path, scenario_file, capsys
):
    """500 workers, no model: the summary gives the workers' spread, not 500 lines, and the
    figure shows updates and bytes (a timing-only ASHL run's figure used to crash: its loss is
    all NaN on a log axis)."""
    out = tmp_path / "out"
    speeds = ", ".join(["1000, 2000, 4000, 8000"] * 125)
    sets = ["cluster.workers=500", f"cluster.speed=[{speeds}]", "model.name=none", "workload.param_bytes=1.0e4", "data.name=synthetic",
            "data.n_samples=20000", "stop.time_s=5"]  # fmt: skip
    argv = ["run", str(scenario_file), "--out", str(out), "--strategy", strategy]
    assert main(argv + [x for kv in sets for x in ("--set", kv)]) == 0
    text = capsys.readouterr().out
    assert "500 workers (one row each in workers.csv)" in text
    assert len(text.splitlines()) < 40
    assert "median" in text and "iterations" in text
    assert len(pd.read_csv(out / "workers.csv")) == 500
    assert (out / "curve.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "cluster.uplink.bandwidth=-1"], "cluster.uplink.bandwidth"),
        (["--set", "cluster.workers=0"], "cluster.workers"),
        (["--strategy", "nope"], "strategy.name"),
        (["--set", "model.name=resnet"], "model.name"),
        (["--set", "nonsense"], "--set"),
        # more classes than vertices of the informative features' hypercube (was a traceback)
        (["--set", "data={name: synthetic, n_classes: 50, n_features: 8}"], "data.n_classes"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, words, scenario_file, tmp_path, capsys):
    assert main(["run", str(scenario_file), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err and "Traceback" not in err


def test_missing_file_through_the_real_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ashlsim.cli", "run", str(tmp_path / "none.yaml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("ashlsim: error: scenario:") and "Traceback" not in proc.stderr


def test_compare_writes_tidy_history_and_summary(tmp_path, scenario_file):
    out = tmp_path / "cmp"
    code = main(["compare", str(scenario_file), "--strategies", "bsp,asp,ssp(staleness=1)",
                 "--seeds", "0,1", "--out", str(out)])  # fmt: skip
    assert code == 0
    history = pd.read_csv(out / "history.csv")
    assert set(history["strategy"]) == {"bsp", "asp", "ssp(staleness=1)"}
    assert set(history["seed"]) == {0, 1}
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["strategy"]) == ["bsp", "asp", "ssp(staleness=1)"]
    assert (summary["runs"] == 2).all()
    assert (out / "accuracy.png").stat().st_size > 0


def test_scenario_command_prints_yaml(capsys):
    assert main(["scenario", "--set", "cluster.workers=3", "--set", "cluster.speed=[1,2,3]"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["cluster"]["workers"] == 3


def test_version_strategies_and_explain(capsys):
    import ashlsim
    from ashlsim.strategies import STRATEGIES

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and ashlsim.__version__ in capsys.readouterr().out
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name in STRATEGIES:
        assert f"\n{name}: " in "\n" + out
    assert "staleness = 3  # max clocks ahead of the slowest worker; an integer >= 0" in out
    assert main(["scenario", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "cluster.workers" in out and "number of workers; an integer from 1 to 100000" in out
    assert "strategy.backup_workers" in out  # the default scheme's own fields too


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_figures_in_the_format_asked(tmp_path, fmt):
    assert main(["run", "--set", "stop.time_s=0.5", "--format", fmt, "--quiet",
                 "--out", str(tmp_path / "r")]) == 0  # fmt: skip
    assert (tmp_path / "r" / f"curve.{fmt}").stat().st_size > 0
    assert main(["compare", "--strategies", "bsp,asp", "--set", "stop.time_s=0.5", "--format",
                 fmt, "--quiet", "--out", str(tmp_path / "c")]) == 0  # fmt: skip
    assert (tmp_path / "c" / f"loss.{fmt}").stat().st_size > 0


def test_figure_functions_draw_on_given_axes():
    import matplotlib.pyplot as plt

    import ashlsim
    from ashlsim.plots import compare_curves, learning_curve

    result = ashlsim.run(ashlsim.Scenario().with_overrides({"stop.time_s": 1.0}))
    fig, axes = plt.subplots(1, 3)
    assert learning_curve(result.history, axes=axes[:2]) is fig
    history = result.history.assign(strategy="bsp", seed=0)
    assert compare_curves(history, ax=axes[2]) is fig
    assert axes[2].get_lines() and axes[0].get_lines()
    plt.close(fig)


def test_two_labels_of_one_scheme_get_two_colours():
    import matplotlib.pyplot as plt
    import pandas as pd

    from ashlsim.plots import compare_curves

    one = pd.DataFrame({"time_s": [0.0, 1.0], "accuracy": [0.1, 0.5], "seed": 0})
    labels = ["allreduce (ring)", "allreduce (halving-doubling)", "bsp", "bsp(backup_workers=1)"]
    history = pd.concat([one.assign(strategy=label) for label in labels])
    fig = compare_curves(history)
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    assert len(set(colours)) == 4
    assert colours[2] == "C0"  # bsp keeps its own
    plt.close(fig)


def test_the_main_job_compares_the_schemes_with_a_verdict(tmp_path, capsys):
    """``ashlsim compare`` with nothing named: five schemes under the authors' recipe, 6 seeds,
    a verdict with intervals and its checks (shortened here: 75 % within 4 simulated s)."""
    argv = ["--set", "stop.time_s=4", "--set", "stop.target_accuracy=0.75"]
    assert main(["compare", *argv, "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Fastest to 75% accuracy" in out and "Too few seeds" not in out
    assert "Holds under: seeds 0-2 only" in out or "Flips to" in out
    assert len(pd.read_csv(tmp_path / "robustness.csv")) == 4  # 2 halves, a finer grid, plain
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(dict.fromkeys(runs["strategy"])) == ["bsp", "asp", "ssp", "local_sgd", "ashl"]
    assert sorted(runs["seed"].unique()) == [0, 1, 2, 3, 4, 5]
