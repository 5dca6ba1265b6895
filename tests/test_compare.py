"""Comparisons: per-scheme settings, recipes, parsing, medians with intervals, tuning."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import make

import ashlsim
from ashlsim import ScenarioError
from ashlsim.cli import main
from ashlsim.compare import (
    compare,
    load_recipe,
    median_interval,
    parse_strategy_label,
    resolve,
    split_top_level,
    summarize,
    verdict,
)


def test_labels_with_commas_inside_parentheses():
    assert split_top_level("bsp,ssp(staleness=2,local_steps=2), asp") == [
        "bsp", "ssp(staleness=2,local_steps=2)", "asp"]  # fmt: skip
    assert parse_strategy_label("ssp(staleness=2, local_steps=2)") == {
        "strategy.name": "ssp", "strategy.staleness": 2, "strategy.local_steps": 2}  # fmt: skip
    nested = parse_strategy_label("asp(server_optimizer={momentum: 0.9, lr: 2})")
    assert nested["strategy.server_optimizer"] == {"momentum": 0.9, "lr": 2}
    for bad in ["ssp(staleness=[1)", "ssp(staleness=2", ","]:
        with pytest.raises(ScenarioError):
            resolve(make(), bad)


def test_each_scheme_gets_its_own_settings():
    resolved = resolve(make(), {
        "asp": {"strategy": {"name": "asp", "server_optimizer": {"momentum": 0.9}}},
        "local_sgd(local_steps=3)": {"training": {"momentum": 0.9}},
        "bsp_fast": {"strategy": "bsp", "training.lr": 0.2},
    })  # fmt: skip
    asp, local, bsp = resolved.values()
    assert asp.strategy.server_optimizer.momentum == 0.9 and asp.training.momentum == 0.0
    assert local.strategy.name == "local_sgd" and local.strategy.local_steps == 3
    assert local.training.momentum == 0.9 and local.strategy.server_optimizer.momentum == 0.0
    assert bsp.strategy.name == "bsp" and bsp.training.lr == 0.2
    with pytest.raises(ScenarioError, match=r"strategies.asp: training.momentum"):
        resolve(make(), {"asp": {"training": {"momentum": 5}}})
    with pytest.raises(ScenarioError, match="strategies"):
        resolve(make(), ["bsp", "bsp"])  # two entries, one label


def test_the_authors_recipe_puts_momentum_where_they_did():
    recipe = load_recipe("authors")
    resolved = resolve(make(), recipe)
    for label in ("bsp", "asp", "ssp"):
        sc = resolved[label]
        assert sc.strategy.server_optimizer.momentum == 0.9 and sc.training.momentum == 0.0
    for label in ("local_sgd", "ashl"):
        sc = resolved[label]
        assert sc.training.momentum == 0.9 and sc.strategy.server_optimizer.momentum == 0.0
    assert all(sc.training.weight_decay == 5e-4 for sc in resolved.values())
    assert all(sc.training.lr_schedule == "cosine" for sc in resolved.values())
    assert resolved["ssp"].strategy.staleness == 3
    assert resolved["local_sgd"].strategy.local_steps == 2
    with pytest.raises(ScenarioError, match="recipe"):
        load_recipe("nonsense")


def test_median_interval_counts_unreached_runs_as_never():
    median, low, high = median_interval([10.0, 12.0, math.nan])
    assert median == 12.0 and low == 10.0 and high == math.inf
    assert median_interval([5.0] * 5) == (5.0, 5.0, 5.0)
    assert median_interval([math.nan, math.nan, 3.0])[0] == math.inf


def test_median_interval_is_the_order_statistic_interval():
    from ashlsim.compare import interval_rank

    # n = 10: [X(2), X(9)] covers the median with 1 - 2 * (1 + 10) / 1024 = 0.9785
    assert interval_rank(10) == (2, pytest.approx(1 - 22 / 1024))
    assert median_interval(list(range(1, 11))) == (5.5, 2.0, 9.0)
    # n = 5 cannot reach 95 %: [min, max] with its true coverage, 1 - 2 / 32
    assert interval_rank(5) == (1, pytest.approx(0.9375))
    # the coverage, simulated: uniform samples, true median 0.5
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(4000):
        _, low, high = median_interval(rng.uniform(size=10))
        hits += low <= 0.5 <= high
    assert abs(hits / 4000 - (1 - 22 / 1024)) < 0.01


def _table(times):
    return pd.DataFrame(
        [{"strategy": s, "seed": i, "time_to_target_s": t, "final_accuracy": 0.9,
          "bytes_up": 1, "bytes_down": 1, "mean_idle_share": 0.1}
         for s, ts in times.items() for i, t in enumerate(ts)]
    )  # fmt: skip


def test_summary_reports_medians_intervals_and_significance():
    summary = summarize(_table({
        "fast": [1.0, 1.1, 0.9, 1.0, 1.05, 0.95],
        "close": [1.05, 1.2, 0.95, 1.1, 1.0, 1.0],
        "slow": [5.0, 6.0, 5.5, 5.2, 5.8, 5.4],
        "never": [math.nan, math.nan, math.nan, 9.0, math.nan, math.nan],
    }))  # fmt: skip
    s = summary.set_index("strategy")
    assert s.loc["fast", "time_to_target_s_median"] == pytest.approx(1.0)
    assert s.loc["never", "reached_target"] == 1 and s.loc["never", "runs"] == 6
    assert s.loc["never", "time_to_target_s_median"] == math.inf  # not the mean of the one
    assert s.loc["close", "overlaps_best"] and not s.loc["slow", "overlaps_best"]
    assert s.loc["fast", "interval_coverage"] == pytest.approx(1 - 2 / 64)
    text = verdict(summary, 0.95)
    assert text.startswith("Fastest to 95% accuracy: fast")
    assert "close: median 1.02 s (6/6): not significant" in text
    assert "slow: median 5.45 s (6/6): significantly slower" in text
    assert "never: did not reach it (1/6)" in text
    # with 5 seeds no interval reaches 95 %: nothing is called significant
    few = verdict(summarize(_table({"a": [1.0] * 5, "b": [9.0] * 5})), 0.95)
    assert "Too few seeds" in few and "b: median 9 s (5/5): not judged" in few


def test_untuned_averaging_against_whole_pushes_warns():
    sc = make(stop={"time_s": 0.3})
    with pytest.warns(UserWarning, match="steps per sample differ by about 4x"):
        compare(sc, ["bsp", "asp"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare(sc, ["bsp", "local_sgd"])  # same convention: no warning
        compare(sc, {"bsp": {"strategy.lr_scaling": "linear"}, "asp": None})


def test_tuning_picks_each_schemes_value_on_its_own_seeds():
    sc = make(stop={"time_s": 4.0, "target_accuracy": 0.9}, cluster={"workers": 2,
              "speed": [4000, 2000]})  # fmt: skip
    table = compare(sc, ["bsp", "asp"], seeds=[0, 1], tune={"training.lr": [0.001, 0.2]},
                    tune_seeds=[7, 8])  # fmt: skip
    tuning = pd.DataFrame(table.attrs["tuning"])
    assert set(tuning.columns) >= {"strategy", "training.lr", "median_time_to_target_s", "chosen"}
    assert len(tuning) == 4 and tuning.groupby("strategy")["chosen"].sum().tolist() == [1, 1]
    chosen = tuning[tuning["chosen"]].set_index("strategy")["training.lr"]
    assert (chosen == 0.2).all()  # lr 0.001 never reaches 90 % in 4 s
    assert sorted(table["seed"].unique()) == [0, 1]
    with pytest.raises(ScenarioError, match="tune_seeds"):
        compare(sc, ["bsp"], seeds=[0], tune={"training.lr": [0.1]}, tune_seeds=[0])


def test_cli_compare_with_a_recipe_tuning_and_a_verdict(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--recipe", "authors", "--strategies", "bsp,ashl", "--seeds", "0",
                 "--set", "stop.time_s=1.5", "--set", "stop.target_accuracy=0.5",
                 "--tune", "training.lr=[0.05,0.1]", "--tune-seeds", "5", "--out", str(out),
                 "--quiet"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Fastest to 50% accuracy" in printed
    assert (out / "tuning.csv").exists() and (out / "summary.csv").exists()
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["strategy"]) == {"bsp", "ashl"}
    assert main(["compare", "--strategies", "ssp(staleness=[1)", "--out", str(out)]) == 2
    assert main(["compare", "--recipe", "authors", "--strategies", "nope"]) == 2
    assert main(["compare", "--tune", "training.lr=0.1"]) == 2


def test_a_timing_only_comparison_ranks_throughput(tmp_path, capsys):
    """No model, no accuracy to reach: the comparison ranks pushes applied per simulated
    second (median and 95 % interval over the seeds) and plots them."""
    out = tmp_path / "cmp"
    sets = ["cluster.workers=6", "cluster.speed={dist: lognormal, mean: 2000, sigma: 0.5}",
            "model.name=none", "workload.param_bytes=1.0e5", "stop.time_s=5",
            "stop.target_accuracy=null"]  # fmt: skip
    argv = ["compare", "--strategies", "bsp,asp,local_sgd(local_steps=4)", "--out", str(out)]
    assert main(argv + [x for kv in sets for x in ("--set", kv)] + ["--quiet"]) == 0
    printed = capsys.readouterr().out
    runs = pd.read_csv(out / "runs.csv")
    summary = pd.read_csv(out / "summary.csv").set_index("strategy")
    for label, group in runs.groupby("strategy"):
        rate = group["updates"] / group["elapsed_s"]
        assert summary.loc[label, "pushes_per_s_median"] == pytest.approx(rate.median())
        assert summary.loc[label, "pushes_per_s_low"] <= rate.median()
    assert "Most pushes per simulated second: asp" in printed
    assert "bsp: median" in printed and "significantly fewer" in printed
    assert "Fastest to" not in printed and "reached" not in printed
    assert (out / "updates.png").stat().st_size > 0 and not (out / "accuracy.png").exists()


def test_run_takes_the_label_syntax(tmp_path):
    assert main(["run", "--strategy", "ssp(staleness=2,local_steps=2)", "--set",
                 "stop.time_s=0.5", "--out", str(tmp_path / "r"), "--no-progress"]) == 0  # fmt: skip
    saved = ashlsim.load_scenario(tmp_path / "r" / "scenario.yaml")
    assert saved.strategy.staleness == 2 and saved.strategy.local_steps == 2


def test_sweep_files_take_per_scheme_settings_and_recipes(tmp_path):
    from ashlsim.sweep import load_sweep, plan

    (tmp_path / "s.yaml").write_text(
        "grid: {cluster.workers: [2]}\n"
        "strategies:\n  - bsp\n  - asp_momentum: {strategy: {name: asp, server_optimizer: "
        "{momentum: 0.9}}}\nseeds: [0]\n"
    )
    spec = load_sweep(tmp_path / "s.yaml")
    runs = plan(spec["base"], spec["grid"], spec["strategies"], spec["seeds"])
    assert [r.strategy for r in runs] == ["bsp", "asp_momentum"]
    assert runs[1].scenario["strategy"]["server_optimizer"]["momentum"] == 0.9
    (tmp_path / "r.yaml").write_text("recipe: authors\nstrategies: [asp, ashl]\nseeds: [0]\n")
    spec = load_sweep(tmp_path / "r.yaml")
    runs = plan(spec["base"], spec["grid"], spec["strategies"], spec["seeds"])
    assert [r.scenario["training"]["momentum"] for r in runs] == [0.0, 0.9]
    assert np.isclose(runs[0].scenario["training"]["weight_decay"], 5e-4)


def test_the_verdict_names_the_learning_problem():
    """So that a digits-softmax answer is not read as a ResNet answer."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = ashlsim.compare(make(model={"name": "mlp", "hidden": [8]},
                                     stop={"time_s": 1.0, "target_accuracy": 0.5}),
                                ["asp"], seeds=[0], robustness="none")  # fmt: skip
    text = ashlsim.verdict(ashlsim.summarize(table), 0.5, table)
    assert text.startswith("Fastest to 50% accuracy (learning mlp(hidden=[8]) on digits): asp")
