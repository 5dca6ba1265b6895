"""Verdicts that hold (docs/DESIGN.md section 3, "The training's own clock" and "A verdict is a
measurement"): schedules in epochs applied, the budget only a budget, times to target located
to the update, the robustness checks, one set of defaults, every row reproducible, and the
mutants of the verdict code that once survived the suite."""

import importlib
import math

import numpy as np
import pandas as pd
import pytest
from conftest import make

import ashlsim
from ashlsim import ScenarioError, Simulation
from ashlsim.cli import main
from ashlsim.compare import (
    DEFAULT_SEEDS,
    MAIN_STRATEGIES,
    compare,
    load_recipe,
    median_interval,
    resolve,
    summarize,
    throughput_verdict,
    tune_each,
    verdict,
)
from ashlsim.training import schedule_factor

cmp = importlib.import_module("ashlsim.compare")  # the module (``ashlsim.compare`` is the function)

# plain-SGD digits + softmax (conftest), with momentum and a cosine over a few epochs: the
# target is reached in a few simulated seconds, well inside the schedule
SCHEDULED = {
    "training": {"batch_size": 16, "lr": 0.05, "momentum": 0.9, "lr_schedule": "cosine",
                 "warmup_epochs": 0.5, "schedule_epochs": 20.0},
    "stop": {"time_s": 30.0, "target_accuracy": 0.9},
}  # fmt: skip


# ---- 1. schedules on the training's own clock ------------------------------------------------
def test_schedules_count_epochs_applied():
    cos = make(training=SCHEDULED["training"]).training
    assert schedule_factor(cos, 0.0) == 0.0
    assert schedule_factor(cos, 0.25) == pytest.approx(0.5)  # half the warm-up
    assert schedule_factor(cos, 0.5) == pytest.approx(1.0)
    assert schedule_factor(cos, 0.5 + 19.5 / 2) == pytest.approx(0.5)  # half the cosine
    assert schedule_factor(cos, 20.0) == pytest.approx(0.0, abs=1e-12)
    assert schedule_factor(cos, 50.0) == pytest.approx(0.0, abs=1e-12)  # over: it stays at 0
    share = make(training={"lr_schedule": "cosine", "warmup_share": 0.025,
                           "schedule_epochs": 200.0}).training  # fmt: skip
    assert share.warmup == 5.0 and schedule_factor(share, 2.5) == pytest.approx(0.5)
    # a constant lr has no length: a warm-up longer than the default length is fine
    assert make(training={"warmup_epochs": 100.0}).training.warmup == 100.0
    step = make(training={"lr_schedule": "step", "step_milestones": [3.0, 6.0]}).training
    assert [schedule_factor(step, e) for e in (2.9, 3.0, 7.0)] == pytest.approx([1, 0.1, 0.01])


@pytest.mark.parametrize(
    "training, field",
    [
        ({"lr_schedule": "cosine", "schedule_epochs": None}, "training.schedule_epochs"),
        ({"lr_schedule": "step"}, "training.step_milestones"),
        ({"warmup_epochs": 1.0, "warmup_share": 0.1}, "training.warmup_share"),
        (
            {"lr_schedule": "cosine", "warmup_epochs": 90.0, "schedule_epochs": 80.0},
            "training.schedule_epochs",
        ),
        ({"warmup": 0.1}, "training.warmup"),  # the old share of the budget is gone
    ],
)
def test_schedules_refuse_what_they_cannot_mean(training, field):
    with pytest.raises(ScenarioError, match=field):
        make(training=training)


def test_the_clock_is_samples_applied_at_the_ps():
    """Every scheme's clock reads ``applied samples / training-set size``: a worker's lr at
    its computation's start is the schedule at that clock (checked against the PS's count)."""
    strategies = [
        {"name": "bsp"},
        {"name": "asp"},
        {"name": "local_sgd", "local_steps": 3},
        {"name": "bsp", "backup_workers": 1},
    ]  # its late pushes arrive, never applied
    for strategy in strategies:
        sim = Simulation(make(strategy=strategy, training=SCHEDULED["training"]))
        trainer, seen = sim.workers[0].trainer, []
        prepare = trainer.prepare

        def recording(params, steps, sampler, epochs, owner, *rest, sim=sim, prepare=prepare,
                      seen=seen):  # fmt: skip
            seen.append((epochs, sim.server.applied_samples / sim.data.n_train))
            return prepare(params, steps, sampler, epochs, owner, *rest)

        trainer.prepare = recording
        sim.run()
        assert len(seen) > 50 and all(e == pytest.approx(c) for e, c in seen)
        assert seen[-1][0] > 1.0
    assert sim.records.samples > sim.server.applied_samples  # (the backups: arrived is not applied)


def test_the_budget_changes_nothing_before_it_is_reached():
    """Runs that reach the target before every budget are the same, bit for bit, whatever the
    budget (30, 120 or 600 s); so are comparisons of such runs."""
    results = [
        ashlsim.run(make(strategy=s, **SCHEDULED).with_overrides({"stop.time_s": budget}))
        for s in ({"name": "asp", "server_optimizer": {"momentum": 0.5}}, {"name": "bsp"})
        for budget in (30.0, 120.0, 600.0)
    ]
    for group in (results[:3], results[3:]):
        first = group[0]
        assert first.stop_reason == "target_accuracy"
        for other in group[1:]:
            pd.testing.assert_frame_equal(first.history, other.history)
            np.testing.assert_array_equal(first.final_params, other.final_params)
            assert other.time_to_target_s == first.time_to_target_s


def test_a_cosine_schedule_ends_the_run_at_its_end():
    sc = make(training={**SCHEDULED["training"], "schedule_epochs": 2.0, "warmup_epochs": 0.0})
    result = ashlsim.run(sc.with_overrides({"stop.time_s": 60.0}))
    assert result.stop_reason == "schedule_end"
    assert result.history["epoch"].iloc[-1] == pytest.approx(2.0, abs=0.1)
    assert result.elapsed_s < 60.0


# ---- 2. times measured, not quantized --------------------------------------------------------
def test_the_crossing_is_the_first_update_at_the_target_between_two_evaluations():
    """Against every version: with evaluations more often than updates, the history holds each
    version's accuracy. The coarse run's time is a version's time at which the accuracy reached
    the target, and no version between the previous evaluation and it did."""
    base = make(strategy={"name": "bsp"}, stop={"time_s": 3.0, "target_accuracy": 0.9})
    coarse = ashlsim.run(base.with_overrides({"eval.every_s": 0.5}))
    fine = ashlsim.run(base.with_overrides({"eval.every_s": 0.001}))
    every = fine.history.drop_duplicates("version")  # one row per version, at its first sight
    t = coarse.time_to_target_s
    assert coarse.time_to_target_resolution_s == 0.0
    assert t < coarse.history["time_s"].iloc[-1]  # located before the evaluation that saw it
    hit = every[np.isclose(every["time_s"], t, atol=1.5e-3)]
    assert len(hit) == 1 and hit["accuracy"].iloc[0] >= 0.9
    previous = coarse.history["time_s"].iloc[-2]
    between = every[(every["time_s"] > previous + 1e-3) & (every["time_s"] < t - 1e-3)]
    assert len(between) > 3 and (between["accuracy"] < 0.9).all()
    # the fine grid sees every version: its first hit is the exact first time
    assert fine.time_to_target_s <= t
    assert coarse.updates_to_target == int(hit["updates"].iloc[0])


def test_the_trail_thins_to_every_other_version_keeping_the_newest():
    from ashlsim.cluster.server import VersionTrail

    clock = iter(range(100)).__next__
    trail = VersionTrail(clock, capacity=4)
    for version in range(1, 6):  # the fifth overflows: 1, 3, 5 stay
        trail.applied(version, 10 * version)
    assert list(trail.kept) == [1, 3, 5] and trail.thinned
    trail.applied(6, 60)
    trail.applied(7, 70)  # five again: 1, 5, 7 (every other of 1, 3, 5, 6, 7, the newest kept)
    assert list(trail.kept) == [1, 5, 7]
    for version in range(1, 8):  # computed later, in order: only the kept ones are held
        trail.computed(version, np.full(2, version))
    assert [(t, n, p.tolist()) for t, n, p in trail.versions()] == [
        (0, 10, [1, 1]), (4, 50, [5, 5]), (6, 70, [7, 7])]  # fmt: skip
    trail.clear()
    assert not trail.kept and not trail.thinned


def test_a_version_exactly_at_the_target_reaches_it():
    """Reaching means accuracy >= target: a version whose accuracy equals the target is the
    crossing, not the next one above it."""
    base = make(strategy={"name": "bsp"}, stop={"time_s": 3.0, "target_accuracy": None})
    every = ashlsim.run(base.with_overrides({"eval.every_s": 0.001})).history
    every = every.drop_duplicates("version").reset_index(drop=True)
    record = every["accuracy"].cummax().shift(fill_value=0.0)
    new_best = every[(every["accuracy"] > record) & (every.index > 10)].iloc[1]
    target = float(new_best["accuracy"])
    coarse = ashlsim.run(base.with_overrides({"eval.every_s": 0.5, "stop.target_accuracy": target}))
    assert coarse.updates_to_target == new_best["updates"]


def test_a_thinned_trail_states_its_resolution(monkeypatch):
    """Over its capacity the trail keeps every other version: the crossing is then a kept
    version, and the resolution the gap to the kept version before it."""
    from ashlsim.cluster.server import VersionTrail

    kept = []
    versions = VersionTrail.versions

    def recording(trail):
        kept.append(list(trail.times))
        return versions(trail)

    monkeypatch.setattr(VersionTrail, "versions", recording)
    monkeypatch.setattr("ashlsim.runloop.TRAIL_BYTES", 4 * 8 * 650)  # 4 versions of 650 values
    base = make(strategy={"name": "asp"}, stop={"time_s": 3.0, "target_accuracy": 0.9})
    thinned = ashlsim.run(base.with_overrides({"eval.every_s": 0.5}))
    monkeypatch.undo()
    exact = ashlsim.run(base.with_overrides({"eval.every_s": 0.5}))
    times = kept[-1]
    assert len(times) <= 4 and thinned.time_to_target_s in times
    at = times.index(thinned.time_to_target_s)
    assert at > 0  # (here the crossing is not the bracket's first kept version)
    assert thinned.time_to_target_resolution_s == thinned.time_to_target_s - times[at - 1] > 0
    assert exact.time_to_target_resolution_s == 0.0
    located = thinned.time_to_target_s
    assert (
        exact.time_to_target_s
        <= located
        <= exact.time_to_target_s + (thinned.time_to_target_resolution_s)
    )


@pytest.mark.slow
def test_halving_the_evaluation_interval_moves_no_median_beyond_the_interval():
    """Crossings are located to the update, so only a touch of the target that falls back
    before the next evaluation can move them: by less than the interval, in the median."""
    base = make(
        cluster={"workers": 4, "speed": {"dist": "lognormal", "mean": 2000.0, "sigma": 0.5}},
        stop={"time_s": 20.0, "target_accuracy": 0.92},
    )
    for every in (0.5, 0.25):
        tables = [
            compare(base.with_overrides({"eval.every_s": e}), ["bsp", "asp"], DEFAULT_SEEDS,
                    robustness="none")
            for e in (every, every / 2)
        ]  # fmt: skip
        coarse, fine = (summarize(t).set_index("strategy") for t in tables)
        moved = (coarse["time_to_target_s_median"] - fine["time_to_target_s_median"]).abs()
        assert (moved <= every).all(), moved


# ---- 3. the built-in problem --------------------------------------------------------------
def test_the_built_in_problem_is_one_task_that_takes_thousands_of_rounds():
    """The teacher task is one data set whatever the run's seed; BSP needs over 2,000 rounds
    (model versions) to reach its 95 % under the authors' recipe."""
    sc = ashlsim.Scenario()
    data = [Simulation(sc, seed=s).data for s in (0, 1)]
    assert sorted(data[0].y_test.tolist() + data[0].y_train.tolist()) == sorted(
        data[1].y_test.tolist() + data[1].y_train.tolist()
    )
    bsp = resolve(sc, {"bsp": load_recipe("authors")["bsp"]})["bsp"]
    result = ashlsim.run(bsp, seed=0)
    assert result.stop_reason == "target_accuracy"
    assert result.history["version"].iloc[-1] >= 2000
    # reached at about half its schedule, as the recipe's horizon intends
    share = result.history["epoch"].iloc[-1] / bsp.training.schedule_epochs
    assert 0.3 < share < 0.7


# ---- 4. robustness on screen -------------------------------------------------------------
def _fake_runs(monkeypatch, times):
    """Replace each run with a summary whose time to target is ``times(label, scenario,
    seed)``: a comparison's logic without its simulations. Returns the runs made."""
    made = []

    def one_run(scenario, seed):
        sc = ashlsim.Scenario.from_dict(scenario)
        made.append((sc, seed))
        t = times(sc, seed)
        summary = {"strategy": sc.strategy.name, "seed": seed, "stop_reason": "target_accuracy",
                   "elapsed_s": 10.0, "time_to_target_s": t, "time_to_target_resolution_s": 0.0,
                   "final_accuracy": 0.95, "final_loss": 0.1, "updates": 100, "epochs": 1.0,
                   "bytes_up": 1, "bytes_down": 1, "mean_idle_share": 0.0}  # fmt: skip
        history = pd.DataFrame({"time_s": [0.0, t], "accuracy": [0.1, 0.95], "loss": [2, 0.1]})
        return summary, history

    monkeypatch.setattr(cmp, "_one_run", one_run)
    return made


def test_compare_defaults_are_the_command_lines(monkeypatch, tmp_path):
    made = _fake_runs(monkeypatch, lambda sc, seed: 1.0 + seed)
    table = compare(robustness="none")
    assert table.attrs["recipe"] == "authors"
    assert list(dict.fromkeys(table["strategy"])) == list(MAIN_STRATEGIES)
    assert sorted(set(table["seed"])) == list(DEFAULT_SEEDS)
    python = [(sc.to_dict(), seed) for sc, seed in made]
    made.clear()
    assert main(["compare", "--out", str(tmp_path), "--quiet", "--robustness", "none",
                 "--workers", "1"]) == 0  # fmt: skip
    assert [(sc.to_dict(), seed) for sc, seed in made] == python


def test_the_verdict_says_what_it_holds_under_and_what_flips_it(monkeypatch):
    """ashl leads by far under the authors' recipe; under the plain recipe ssp is fastest."""

    def times(sc, seed):
        plain = sc.training.lr_schedule == "constant"
        base = {"bsp": 50.0, "asp": 30.0, "ssp": 40.0, "local_sgd": 45.0, "ashl": 10.0}
        t = base[sc.strategy.name] + seed * 0.1
        return (5.0 + seed * 0.1 if sc.strategy.name == "ssp" else t + 20) if plain else t

    _fake_runs(monkeypatch, times)
    table = compare(ashlsim.Scenario(), robustness="quick")
    checks = {c["check"]: c for c in table.attrs["robustness"]}
    assert checks["seeds 0-2 only"]["holds"] and checks["seeds 3-5 only"]["holds"]
    assert checks["evaluations every 0.5 s"]["holds"]
    assert not checks["the plain recipe"]["holds"]
    assert checks["the plain recipe"]["fastest"] == "ssp"
    text = verdict(summarize(table), 0.95, table)
    assert "Holds under: seeds 0-2 only; seeds 3-5 only; evaluations every 0.5 s." in text
    assert "Flips to ssp under: the plain recipe (seeds 0-2)." in text


def test_a_check_holds_when_its_fastest_is_not_significantly_slower_than_the_verdicts(
    monkeypatch,
):
    """asp leads and ssp is not significantly slower: ssp fastest under the plain recipe is
    within the verdict (it holds); bsp fastest there would flip it."""

    def times(sc, seed, plain_best="ssp"):
        base = {"bsp": 50.0, "asp": 10.0 + seed % 2 * 4, "ssp": 12.0 + seed % 3, "local_sgd": 45.0,
                "ashl": 30.0}  # fmt: skip
        if sc.training.lr_schedule == "constant" and sc.strategy.name == plain_best:
            return 1.0
        return base[sc.strategy.name]

    _fake_runs(monkeypatch, times)
    table = compare(ashlsim.Scenario(), robustness="quick")
    summary = summarize(table).set_index("strategy")
    assert summary.loc["ssp", "overlaps_best"] and not summary.loc["bsp", "overlaps_best"]
    plain = {c["check"]: c for c in table.attrs["robustness"]}["the plain recipe"]
    assert plain["fastest"] == "ssp" and plain["holds"]
    _fake_runs(monkeypatch, lambda sc, seed: times(sc, seed, plain_best="bsp"))
    table = compare(ashlsim.Scenario(), robustness="quick")
    plain = {c["check"]: c for c in table.attrs["robustness"]}["the plain recipe"]
    assert plain["fastest"] == "bsp" and not plain["holds"]


def test_robustness_checks_rerun_half_the_seeds_with_the_finer_grid(monkeypatch):
    made = _fake_runs(monkeypatch, lambda sc, seed: 1.0)
    compare(ashlsim.Scenario(), ["bsp", "asp"], seeds=[0, 1, 2, 3], robustness="quick")
    finer = [(sc.strategy.name, seed) for sc, seed in made if sc.eval.every_s == 0.5]
    assert finer == [("bsp", 0), ("bsp", 1), ("asp", 0), ("asp", 1)]
    made.clear()
    compare(ashlsim.Scenario(), ["bsp", "asp"], seeds=[0, 1, 2, 3], robustness="none")
    assert len(made) == 8


def test_tuning_neighbours_and_edges_are_checked(monkeypatch):
    """asp tuned at lr 0.1, the grid's top (flagged); at its neighbour 0.05 it loses to bsp."""

    def times(sc, seed):
        if sc.strategy.name == "asp":
            return {0.01: 9.0, 0.05: 3.0, 0.1: 1.0}[sc.training.lr]
        if sc.strategy.name == "ssp":  # chooses the middle value: both neighbours are checked
            return {0.01: 5.0, 0.05: 2.2, 0.1: 6.0}[sc.training.lr]
        return {0.01: 2.0, 0.05: 2.5, 0.1: 2.8}[sc.training.lr]

    _fake_runs(monkeypatch, times)
    table = compare(make(), ["bsp", "asp", "ssp"], seeds=DEFAULT_SEEDS, robustness="quick",
                    tune={"training.lr": [0.01, 0.05, 0.1]}, tune_seeds=[100, 101])  # fmt: skip
    checks = {c["check"]: c for c in table.attrs["robustness"]}
    assert checks["asp at training.lr = 0.05"] == {
        "check": "asp at training.lr = 0.05",
        "seeds": "0-2",
        "fastest": "bsp",
        "holds": False,
    }
    assert checks["bsp at training.lr = 0.05"]["holds"]
    assert "bsp at training.lr = 0.1" not in checks  # bsp chose 0.01: one neighbour only
    assert checks["ssp at training.lr = 0.01"]["holds"] and checks["ssp at training.lr = 0.1"]
    assert table.attrs["tuning_edges"] == [
        "bsp: training.lr = 0.01, the grid's smallest",
        "asp: training.lr = 0.1, the grid's largest",
    ]
    text = verdict(summarize(table), 0.95, table)
    assert "Flips to bsp under: asp at training.lr = 0.05 (seeds 0-2)." in text
    assert (
        "Tuned at the edge of the grid (widen it): bsp: training.lr = 0.01, the grid's "
        "smallest; asp: training.lr = 0.1, the grid's largest."
    ) in text


# ---- 5. one set of defaults, every row reproducible -------------------------------------------
@pytest.mark.slow
def test_each_row_of_a_comparison_can_be_run_again_alone(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(make(stop={"time_s": 6.0, "target_accuracy": 0.9}).to_yaml())
    out = tmp_path / "cmp"
    assert main(["compare", str(base), "--recipe", "authors", "--strategies", "asp,local_sgd",
                 "--seeds", "3", "--out", str(out), "--quiet", "--robustness", "none"]) == 0  # fmt: skip
    runs = pd.read_csv(out / "runs.csv").set_index("strategy")
    for label in ("asp", "local_sgd"):
        again = tmp_path / label
        assert main(["run", str(out / "scenarios" / f"{label}.yaml"), "--seed", "3",
                     "--out", str(again), "--no-progress"]) == 0  # fmt: skip
        alone = ashlsim.Result.load(again).summary()
        assert alone["time_to_target_s"] == runs.loc[label, "time_to_target_s"]
        assert alone["updates"] == runs.loc[label, "updates"]
        # and the same from the base scenario with --recipe
        recipe = tmp_path / f"{label}-recipe"
        assert main(["run", str(base), "--recipe", "authors", "--strategy", label, "--seed", "3",
                     "--out", str(recipe), "--no-progress"]) == 0  # fmt: skip
        assert ashlsim.Result.load(recipe).summary()["updates"] == runs.loc[label, "updates"]


def test_run_recipe_names_a_label_of_the_recipe(capsys):
    assert main(["run", "--recipe", "authors", "--strategy", "fedavg", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "--strategy" in err and "authors" in err and "Traceback" not in err


def test_the_step_size_warning_fires_under_a_recipe_in_plain_words(monkeypatch):
    _fake_runs(monkeypatch, lambda sc, seed: 1.0)
    with pytest.warns(UserWarning) as caught:
        compare(make(), ["bsp", "asp", "ssp"], recipe="plain", seeds=[0], robustness="none")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("bsp averages the 4 workers' deltas each round, while asp and ssp "
                              "apply each push whole")  # fmt: skip


# ---- 6. the mutants of the verdict code that once survived -------------------------------
def _table(times: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"strategy": s, "seed": i, "time_to_target_s": t, "final_accuracy": 0.9,
             "bytes_up": 0, "bytes_down": 0, "mean_idle_share": 0.0}
            for s, ts in times.items() for i, t in enumerate(ts)]  # fmt: skip
    return pd.DataFrame(rows)


def test_touching_intervals_are_not_significant():
    summary = summarize(_table({"a": [1, 1, 1, 1, 1, 2], "b": [2] * 6})).set_index("strategy")
    assert summary.loc["a", "time_to_target_s_high"] == summary.loc["b", "time_to_target_s_low"]
    assert summary.loc["b", "overlaps_best"]
    assert "b: median 2 s (6/6): not significant." in verdict(summarize(_table(
        {"a": [1, 1, 1, 1, 1, 2], "b": [2] * 6})))  # fmt: skip


def test_overlap_is_judged_by_the_low_end_not_the_median():
    table = _table({"a": [1, 1, 1, 1, 1, 1.2], "b": [1.1, 1.3, 1.3, 1.3, 1.3, 1.3]})
    summary = summarize(table).set_index("strategy")
    assert summary.loc["b", "time_to_target_s_median"] > summary.loc["a", "time_to_target_s_high"]
    assert summary.loc["b", "overlaps_best"]  # its low end, 1.1, is inside a's interval


def test_one_scheme_with_too_few_runs_means_no_difference_is_called():
    table = _table({"a": [1.0] * 6, "b": [5.0] * 5})
    text = verdict(summarize(table))
    assert "Too few seeds" in text and "b: median 5 s (5/5): not judged." in text


def test_the_throughput_verdict_judges_overlap_by_the_intervals():
    rows = [
        {"strategy": "best", "updates": u, "elapsed_s": 1.0} for u in (90, 95, 100, 100, 105, 110)
    ]
    rows += [
        {"strategy": "other", "updates": u, "elapsed_s": 1.0} for u in (80, 80, 80, 80, 90, 95)
    ]
    table = pd.DataFrame(rows).assign(seed=0, time_to_target_s=math.nan, final_accuracy=math.nan,
                                      bytes_up=0, bytes_down=0, mean_idle_share=0.0)  # fmt: skip
    text = throughput_verdict(summarize(table))
    assert "other: median 80: not significant." in text


def test_tuning_runs_the_tuning_seeds_and_scores_as_documented(monkeypatch):
    """Tuning never touches an evaluation seed; a candidate that never reached the target
    counts 0 reached; ties in time go to the lower loss, then to the grid's order."""
    seen = []

    def one_run(scenario, seed):
        sc = ashlsim.Scenario.from_dict(scenario)
        seen.append(seed)
        lr = sc.training.lr
        t = {0.01: math.nan, 0.02: 5.0, 0.03: 5.0, 0.04: 5.0}[lr]
        loss = {0.01: 1.0, 0.02: 0.5, 0.03: 0.2, 0.04: 0.2}[lr]
        return {"time_to_target_s": t, "final_loss": loss}, pd.DataFrame()

    monkeypatch.setattr(cmp, "_one_run", one_run)
    resolved = resolve(make(), ["asp"])
    chosen, tuning = tune_each(resolved, {"training.lr": [0.01, 0.02, 0.03, 0.04]}, [7, 8, 9],
                               [0, 1])  # fmt: skip
    assert set(seen) == {7, 8, 9}
    rows = tuning.set_index("training.lr")
    assert rows.loc[0.01, "reached"] == 0 and rows.loc[0.02, "reached"] == 3
    assert chosen["asp"].training.lr == 0.03  # 0.03 and 0.04 tie in time and loss: the first
    assert list(tuning["chosen"]) == [False, False, True, False]


def test_bsp_with_backup_workers_applies_the_mean_of_the_pushes_it_received():
    from ashlsim.strategies.base import RoundBarrier

    class Port:
        version = 0
        applied = []

        def apply(self, updates, scale):
            self.applied.append((len(updates), scale))

        def event(self):
            return type("Event", (), {"succeed": lambda self: None})()

        def now(self):
            return 0.0

    port = Port()
    barrier = RoundBarrier(port, 5, backups=2)
    for worker in range(3):
        barrier.receive(type("U", (), {"worker": worker, "pulled_version": 0})())
    assert port.applied == [(3, 1.0 / 3)]


def test_staleness_in_samples_is_zero_inside_a_bsp_round():
    result = ashlsim.run(make(strategy={"name": "bsp"}, stop={"time_s": 1.0}))
    sim_rows = result.workers
    assert (sim_rows["mean_staleness_samples"] == 0.0).all()
    assert (sim_rows["max_staleness"] == 0.0).all()
    local = ashlsim.run(make(strategy={"name": "local_sgd", "local_steps": 2},
                             stop={"time_s": 1.0}))  # fmt: skip
    assert (local.workers["mean_staleness_samples"] == 0.0).all()


def test_a_worker_crashed_before_its_first_probe_is_planned_as_the_slowest():
    from test_ashl import known_cluster

    crash = [{"worker": 0, "at_s": 0.0, "kind": "crash"}]  # the fastest, gone for good
    result = ashlsim.run(known_cluster(h_ahl=8, switch="never").with_overrides(
        {"faults": crash, "stop.time_s": 2.0}))  # fmt: skip
    profile = result.tables["profile"].set_index("worker")
    assert profile.loc[0, "h_ahl"] == 8 == profile.loc[3, "h_ahl"]  # the slowest's H
    assert profile.loc[0, "t_iter_s"] == profile.loc[1:, "t_iter_s"].max()


def test_median_interval_treats_nan_as_never():
    assert median_interval([1.0, math.nan, 2.0])[2] == math.inf


def test_a_comparison_is_the_same_in_a_pool_of_processes():
    """Each run is seeded on its own: two processes give the runs one gives, in order."""
    sc = make(stop={"time_s": 1.0, "target_accuracy": 0.8})
    one, history_one = compare(sc, ["bsp", "asp"], seeds=[0, 1], robustness="none", workers=1,
                               return_history=True)  # fmt: skip
    two, history_two = compare(sc, ["bsp", "asp"], seeds=[0, 1], robustness="none", workers=2,
                               return_history=True)  # fmt: skip
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(history_one, history_two)
    assert one["time_to_target_s"].notna().all()
