"""Sweeps: identical results whatever runs them, resumable after an interruption or a kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import scenario_dict

from ashlsim import ScenarioError, sweep
from ashlsim.cli import main

BASE = scenario_dict(
    cluster={"speed": {"dist": "uniform", "low": 1000, "high": 4000}},
    stop={"time_s": 0.4, "target_accuracy": None},
    eval={"every_s": 0.2},
)
GRID = {"cluster.workers": [2, 3], "training.lr": [0.05, 0.1]}
STRATEGIES = ["bsp", "asp", "ssp(staleness=1)"]
SEEDS = [0]  # 2 x 2 x 3 x 1 = 12 runs


def run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "runs").iterdir())


@pytest.mark.slow
def test_every_executor_gives_the_same_summary(tmp_path):
    texts = {}
    for executor in ("sequential", "local", "dask"):
        out = tmp_path / executor
        summary = sweep(BASE, GRID, STRATEGIES, SEEDS, out=out, executor=executor, workers=2)
        assert len(summary) == 12
        texts[executor] = (out / "summary.csv").read_text()
        assert (out / "summary.png").exists()
    assert texts["sequential"] == texts["local"] == texts["dask"]
    table = pd.read_csv(tmp_path / "local" / "summary.csv")
    assert list(table.columns[:2]) == ["cluster.workers", "training.lr"]
    assert table["key"].is_unique


def test_an_interrupted_sweep_resumes_without_recomputing(tmp_path):
    done = []

    def interrupt_after_three(spec):
        done.append(spec.key)
        if len(done) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(BASE, GRID, STRATEGIES, SEEDS, out=tmp_path, executor="sequential",
              on_finish=interrupt_after_three)  # fmt: skip
    first = {p.name: p.stat().st_mtime_ns for p in run_dirs(tmp_path)}
    assert sorted(first) == sorted(done)

    again = []
    summary = sweep(BASE, GRID, STRATEGIES, SEEDS, out=tmp_path, executor="sequential",
                    on_finish=lambda spec: again.append(spec.key))  # fmt: skip
    assert len(again) == 9 and not set(again) & set(done)  # only the rest ran
    assert len(summary) == 12 and summary["key"].is_unique
    for name, mtime in first.items():
        assert (tmp_path / "runs" / name).stat().st_mtime_ns == mtime


def test_a_killed_sweep_leaves_only_whole_runs(tmp_path):
    spec = {"base": BASE | {"stop": {"time_s": 2.0, "target_accuracy": None}},
            "grid": GRID, "strategies": STRATEGIES, "seeds": SEEDS}  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ashlsim.cli", "sweep", str(path), "--out", str(out),
           "--executor", "sequential", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        finished = [p for p in (out / "runs").glob("*") if ".tmp-" not in p.name]
        if len(finished) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = list((out / "runs").glob("*.tmp-*"))
    whole = [p for p in run_dirs(out) if ".tmp-" not in p.name]
    assert 2 <= len(whole) < 12
    assert all((p / "summary.json").exists() for p in whole)

    assert main(["sweep", str(path), "--out", str(out), "--executor", "sequential",
                 "--no-progress"]) == 0  # fmt: skip
    names = [p.name for p in run_dirs(out)]
    assert len(names) == 12 and not any(".tmp-" in n for n in names)
    assert not any(p.exists() for p in partial)
    assert len(pd.read_csv(out / "summary.csv")) == 12


@pytest.mark.parametrize(
    ("grid", "field"),
    [
        ({"cluster.wrokers": [2]}, "grid: cluster.wrokers"),
        ({"cluster.workers": [2, -1]}, "grid: cluster.workers"),
        ({"cluster.workers": 3}, "grid.cluster.workers"),
    ],
)
def test_a_bad_grid_is_refused_before_anything_runs(tmp_path, grid, field):
    with pytest.raises(ScenarioError) as info:
        sweep(BASE, grid, ["bsp"], [0], out=tmp_path / "o", executor="sequential")
    assert info.value.field == field
    assert not (tmp_path / "o").exists()


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    # model none needs workload.param_bytes: the run fails inside the simulator
    spec = {"base": BASE, "grid": {"model.name": ["softmax", "none"]}, "strategies": ["asp"]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = main(["sweep", str(path), "--out", str(tmp_path / "o"), "--executor", "sequential"])
    assert code == 1
    failed = pd.read_csv(tmp_path / "o" / "failed.csv")
    assert list(failed["model.name"]) == ["none"]
    assert "workload.param_bytes" in failed["error"].iloc[0]
    assert len(pd.read_csv(tmp_path / "o" / "summary.csv")) == 1


def test_a_grid_of_per_worker_lists_is_summarised_and_plotted(tmp_path):
    grid = {"cluster.speed": [[1000, 1000, 1000, 1000], [4000, 2000, 1000, 500]]}
    summary = sweep(BASE, grid, ["bsp"], [0], out=tmp_path, executor="sequential")
    assert len(summary) == 2 and (tmp_path / "summary.png").exists()


def test_a_timing_only_sweep_plots_pushes_per_simulated_second(tmp_path, monkeypatch):
    """No model, no accuracy: the sweep's figure is each scheme's median pushes applied per
    simulated second against the grid (it was an empty plot of NaN accuracies)."""
    import matplotlib.figure

    figures = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig)
    )
    base = {**BASE, "model": {"name": "none"}, "workload": {"param_bytes": 1.0e4}}
    summary = sweep(base, {"cluster.workers": [2, 4]}, ["bsp", "asp"], [0, 1],
                    out=tmp_path, executor="sequential")  # fmt: skip
    (ax,) = figures[0].axes
    assert "pushes per simulated s" in ax.get_ylabel()
    for line in ax.lines[:2]:  # one per scheme: x = workers, y = the median over the seeds
        runs = summary[summary["strategy"] == line.get_label()]
        rates = (runs["updates"] / runs["elapsed_s"]).groupby(runs["cluster.workers"]).median()
        assert list(line.get_xdata()) == pytest.approx([2, 4], rel=0.05)  # (set apart)
        assert list(line.get_ydata()) == pytest.approx(list(rates))
    assert summary["final_accuracy"].isna().all() and (summary["updates"] > 0).all()
