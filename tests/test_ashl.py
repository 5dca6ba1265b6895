"""ASHL against docs/DESIGN.md section 4: profiling arithmetic, the PS rule, the stages, the equivalence."""

import numpy as np
import pytest
from conftest import clock_gaps_at_pulls, make

import ashlsim
from ashlsim import ScenarioError, Simulation, default_scenario
from ashlsim.strategies.ashl_plan import local_steps_plan, robust_mean

SPEEDS = [4000.0, 2000.0, 1000.0, 500.0]
UP = [1.0e7, 4.0e6, 2.0e6, 1.0e6]  # bytes/s
DOWN = [2.0e7, 8.0e6, 4.0e6, 2.0e6]
LATENCY = 0.001
PARAM_BYTES = 4.0e4  # a virtual model of 10,000 float32 values: communication matters


def known_cluster(**strategy):
    return make(
        cluster={"speed": SPEEDS, "uplink": {"bandwidth": UP, "latency": LATENCY},
                 "downlink": {"bandwidth": DOWN, "latency": LATENCY}},
        workload={"param_bytes": PARAM_BYTES},
        strategy={"name": "ashl", **strategy},
    )  # fmt: skip


def test_profiling_measures_the_known_times_and_plans_by_algorithm_1():
    sim = Simulation(known_cluster(h_ahl=8, h_shl=2, r_preset=0.3, min_ratio=0.01))
    result = sim.run()
    profile = result.tables["profile"]
    assert list(profile["worker"]) == [0, 1, 2, 3]  # planned once (no re-profiling)
    dense = 64 + 10_000 * 4
    t_iter = 16 / np.array(SPEEDS)
    t_pull = LATENCY + dense / np.array(DOWN)
    t_push = LATENCY + dense / np.array(UP)
    np.testing.assert_allclose(profile["t_iter_s"], t_iter, rtol=1e-9)
    np.testing.assert_allclose(profile["t_pull_s"], t_pull, rtol=1e-9)
    np.testing.assert_allclose(profile["t_push_s"], t_push, rtol=1e-9)

    # AHL plans with dense pushes; SHL (the authors' get_h) with pushes compressed at r_preset
    for preset, column, push in ((8, "h_ahl", 1.0), (2, "h_shl", 0.3)):
        h = profile[column].to_numpy()
        update = h * t_iter + t_pull + push * t_push
        slowest = np.argmax(t_iter * preset + t_pull + push * t_push)
        assert slowest == 3 and h[slowest] == preset
        assert (h > 1).all()  # no clipping, so the rounding bound below must hold
        assert (np.abs(update - update[slowest]) <= t_iter / 2 + 1e-12).all()
        assert (np.diff(h) < 0).all()  # faster workers take more local steps

    h_shl = profile["h_shl"].to_numpy()
    np.testing.assert_allclose(profile["data_share"], h_shl / h_shl.sum())
    # Algorithm 2, written out again: R[i] = min(1, (max T_update - T_comm[i]) / T_push[i])
    t_comm = [t_iter[i] * h_shl[i] + t_pull[i] for i in range(4)]
    t_upd = [t_comm[i] + 0.3 * t_push[i] for i in range(4)]
    expected = [min(1.0, max(0.01, (max(t_upd) - t_comm[i]) / t_push[i])) for i in range(4)]
    np.testing.assert_allclose(profile["ratio"], expected)
    assert profile["ratio"].min() == pytest.approx(0.3)  # the longest update keeps r_preset


def test_data_is_resplit_in_proportion_to_the_shares():
    sim = Simulation(known_cluster(switch="never"))
    sim.run()
    sizes = np.array([len(w.sampler.shard) for w in sim.workers])
    assert sizes.sum() == sim.data.n_train
    shares = sim.strategy.share
    assert np.abs(sizes - shares * sim.data.n_train).max() < 1.0  # largest-remainder rounding
    assert len(np.unique(np.concatenate([w.sampler.shard for w in sim.workers]))) == sizes.sum()


def test_the_ps_weights_each_push_by_its_data_share():
    sim = Simulation(known_cluster(switch="never", profile_iters=3))
    scales = []
    apply = sim.server.apply

    def recording_apply(updates, scale=1.0):
        scales.append((updates[0].worker, sim.strategy.stage, scale))
        apply(updates, scale)

    sim.server.apply = recording_apply
    sim.run()
    shares = sim.strategy.share
    assert len({stage for _, stage, _ in scales}) == 2
    for worker, stage, scale in scales:
        expected = 0.25 if stage == "profile" else shares[worker]
        assert scale == pytest.approx(expected)


def test_ahl_never_waits_and_shl_keeps_its_bound():
    jitter = {"dist": "lognormal", "mean": 1.0, "sigma": 0.3}
    for switch, bound in (("never", None), ("immediate", 1)):
        scenario = known_cluster(switch=switch, s_preset=bound or 3)
        scenario = scenario.with_overrides({"cluster.jitter": jitter, "stop.time_s": 3.0})
        result = Simulation(scenario, events=True).run()
        profiled = result.stage_changes["time_s"].iloc[0]
        waits = result.events.query("kind == 'wait' and start_s >= @profiled")
        if bound is None:
            assert len(waits) == 0
        else:
            assert len(waits) > 0  # the bound binds: 8x speed spread, bound 1
            assert clock_gaps_at_pulls(result.events, 4, since=profiled).max() <= bound


def test_one_stage_ashl_is_ssp_with_those_local_steps():
    jitter = {"dist": "exponential", "mean": 1.0}
    ssp = Simulation(make(strategy={"name": "ssp", "staleness": 2, "local_steps": 3,
                                    "reads": "fresh"}, cluster={"jitter": jitter}))  # fmt: skip
    ssp.run()
    ashl = Simulation(
        make(
            strategy={
                "name": "ashl",
                "profile_iters": 0,
                "switch": "immediate",
                "h_shl": 3,
                "s_preset": 2,
                "weighting": "none",
                "r_preset": 1.0,
                "shl_bound": "pull",  # SSP gates pulls; the authors' PS holds pushes
            },
            cluster={"jitter": jitter},
        )  # fmt: skip
    )
    ashl.run()
    assert ashl.server.staleness == ssp.server.staleness
    assert len(ssp.server.staleness) > 50
    np.testing.assert_array_equal(ashl.server.params, ssp.server.params)


def test_loss_rule_switches_at_the_first_evaluation_below_the_preset():
    result = ashlsim.run(known_cluster(loss_preset=0.8).with_overrides({"stop.time_s": 6.0}))
    h = result.history
    changes = result.stage_changes
    assert list(changes["to_stage"]) == ["ahl", "shl"]
    first_below = h.loc[(h["stage"] == "ahl") & (h["loss"] < 0.8), "time_s"].iloc[0]
    assert changes["time_s"].iloc[1] == first_below
    assert (h.loc[h["time_s"] > first_below, "stage"] == "shl").all()
    assert (h.loc[h["time_s"] < first_below, "loss"].iloc[1:] >= 0.8).all()


def test_plateau_and_epoch_rules():
    flat = known_cluster(switch="plateau", patience=2, min_delta=0.01)
    flat = flat.with_overrides({"training.lr": 1e-9, "stop.time_s": 4.0})
    result = ashlsim.run(flat)
    assert list(result.stage_changes["to_stage"]) == ["ahl", "shl"]
    assert (result.history["stage"] == "ahl").sum() == 3  # best, then 2 without improvement

    by_epoch = known_cluster(switch="epochs", switch_epochs=1.0)
    result = ashlsim.run(by_epoch.with_overrides({"stop.time_s": 6.0}))
    at = result.stage_changes["time_s"].iloc[1]
    h = result.history
    assert h.loc[h["time_s"] == at, "epoch"].iloc[0] >= 1.0
    assert (h.loc[h["time_s"] < at, "epoch"] < 1.0).all()


def test_shl_pushes_are_compressed_by_their_planned_ratio():
    sim = Simulation(known_cluster(switch="immediate", r_preset=0.2), events=True)
    result = sim.run()
    ratio = result.tables["profile"]["ratio"].to_numpy()
    assert ratio.min() < 1.0
    for worker in sim.workers:
        if ratio[worker.index] < 1.0:
            assert worker.ratio == pytest.approx(ratio[worker.index])
            assert worker.compress_state is None  # no error feedback by default
    before = result.workers["bytes_up"].to_numpy()
    dense = 64 + 10_000 * 4
    assert (before < result.workers["pushes"].to_numpy() * dense).any()


def test_timing_only_ashl_runs_both_stages():
    scenario = known_cluster(switch="epochs", switch_epochs=2.0).with_overrides(
        {"model.name": "none", "stop.time_s": 5.0}
    )
    result = ashlsim.run(scenario)
    assert list(result.stage_changes["to_stage"]) == ["ahl", "shl"]
    assert result.pushes_sent > 100


def test_reprofiling_follows_a_worker_that_slows_down():
    scenario = known_cluster(switch="never", reprofile_threshold=0.5, profile_iters=3)
    sim = Simulation(scenario.with_overrides({"stop.time_s": 8.0}))

    def slow_down():
        yield sim.env.timeout(1.0)
        sim.workers[0].slowdown = 4.0

    sim.env.process(slow_down())
    result = sim.run()
    profile = result.tables["profile"]
    later = profile[profile["at_s"] > 1.0]
    assert len(later) >= 4
    first, last = profile.iloc[0], later[later["worker"] == 0].iloc[-1]
    assert last["t_iter_s"] == pytest.approx(4 * first["t_iter_s"], rel=1e-9)
    assert last["h_ahl"] < first["h_ahl"]

    quiet = ashlsim.run(known_cluster(switch="never", reprofile_threshold=0.5))
    assert len(quiet.tables["profile"]) == 4  # no drift, no re-planning


def test_default_scenario_reaches_the_target_through_both_stages():
    """Under the authors' recipe, as the main job runs it."""
    from ashlsim.compare import load_recipe, resolve

    ashl = resolve(default_scenario(), {"ashl": load_recipe("authors")["ashl"]})["ashl"]
    result = ashlsim.run(ashl)
    assert result.stop_reason == "target_accuracy"
    assert list(result.stage_changes["to_stage"]) == ["ahl", "shl"]
    assert set(result.history["stage"]) == {"profile", "ahl", "shl"}
    assert {"H", "h_ahl", "h_shl", "data_share", "ratio"} <= set(result.workers.columns)
    assert list(result.workers["H"]) == list(result.workers["h_shl"])  # it ended in SHL


def test_robust_mean_drops_the_extremes():
    assert robust_mean([1.0, 2.0, 3.0, 100.0]) == 2.5
    assert robust_mean([4.0, 6.0]) == 5.0


def test_local_steps_plan_by_hand():
    # T_update at H=2: 2.0 and 20.002 -> T_max = 20.002; worker 0: (20.002 - 0) / 1 -> 20
    assert list(local_steps_plan([1.0, 0.001], [0.0, 10.0], [0.0, 10.0], 2)) == [20, 2]
    # nobody gets fewer than the preset: T_max >= T_iter[i] * preset + T_comm[i] for every i
    rng = np.random.default_rng(0)
    t = rng.exponential(size=(3, 50))
    assert (local_steps_plan(*t, 5) >= 5).all()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"switch": "epochs"}, "strategy.switch_epochs"),
        ({"compression": {"name": "topk"}}, "strategy.compression"),
        ({"min_ratio": 0.5, "r_preset": 0.1}, "strategy.min_ratio"),
        ({"switch": "sometime"}, "strategy.switch"),
        ({"h_ahl": 0}, "strategy.h_ahl"),
    ],
)
def test_bad_parameters_name_the_field(params, field):
    with pytest.raises(ScenarioError) as info:
        make(strategy={"name": "ashl", **params})
    assert info.value.field == field


def test_every_push_carries_the_bytes_it_was_charged_across_the_switch():
    """A push computed in AHL and delivered in SHL is dense: it is sized, and compressed, by
    the compressor its worker had when the computation started."""
    scenario = make(
        cluster={"speed": SPEEDS, "jitter": {"dist": "lognormal", "mean": 1.0, "sigma": 0.3}},
        strategy={"name": "ashl", "switch": "epochs", "switch_epochs": 1.0, "r_preset": 0.1,
                  "min_ratio": 0.05},
        stop={"time_s": 4.0},
    )  # fmt: skip
    sim = Simulation(scenario)
    seen = []
    apply = sim.server.apply

    def checking_apply(updates, scale=1.0):
        apply(updates, scale)
        seen.extend(updates)

    sim.server.apply = checking_apply
    result = sim.run()
    assert list(result.stage_changes["to_stage"]) == ["ahl", "shl"]
    sizes = {u.message.wire_bytes(sim.workload) - u.nbytes for u in seen}
    assert sizes == {0}
    assert any(u.message.indices is not None for u in seen)  # SHL pushes were compressed


# ---- the authors' choices (docs/FIDELITY.md) ------------------------------------------------

# The ASHL authors' testbed (experiments/scenarios/paper_setup.yaml), its nominal times: one
# iteration of 32 samples, and a 58.9 MB push or pull on links slowed 4x, 6x, 8x.
TESTBED_ITER = 32 / np.array([500.0, 1000 / 3, 250.0])
TESTBED_LINK = 58_900_064 / np.array([312_500_000.0, 208_333_333.3, 156_250_000.0]) + 0.0005


def test_shl_local_steps_are_planned_with_the_compressed_push():
    """The authors' get_h: T_comm = T_push * r_preset + T_pull + T_compress for SHL."""
    t_iter, link = TESTBED_ITER, TESTBED_LINK
    for factor, t_compress in ((1.0, 0.0), (0.25, 0.0), (0.25, 0.05)):
        comm = link * factor + link + t_compress
        t_max = np.max(t_iter * 2 + comm)
        expected = np.floor((t_max - comm) / t_iter + 0.5)
        h = local_steps_plan(t_iter, link, link, 2, push_factor=factor, t_compress=t_compress)
        np.testing.assert_array_equal(h, expected)
    assert list(local_steps_plan(t_iter, link, link, 2)) == [10, 5, 2]  # dense: nominal times
    assert list(local_steps_plan(t_iter, link, link, 2, push_factor=0.25)) == [8, 4, 2]


def _testbed(**strategy):
    sc = ashlsim.load_scenario("experiments/scenarios/paper_setup.yaml")
    return sc.with_overrides({"strategy": {"name": "ashl", **strategy}, "stop.time_s": 40.0})


def test_the_testbed_profile_and_the_ratios_used():
    """Seed 0 of the testbed (10 % jitter): the authors' plan gives H_SHL [7, 4, 2] and
    Algorithm 2 ratios [0.25, 0.31, 0.26]; planning with dense pushes gave [9, 5, 2]."""
    per_worker = ashlsim.run(_testbed(switch="immediate"), events=False)
    profile = per_worker.tables["profile"]
    assert list(profile["h_shl"]) == [7, 4, 2]
    np.testing.assert_allclose(profile["ratio"], [0.25, 0.31, 0.26], atol=0.01)
    np.testing.assert_allclose(per_worker.workers["ratio_used"], profile["ratio"])
    uniform = ashlsim.run(_testbed(switch="immediate", ratios="uniform"))
    assert list(uniform.workers["ratio_used"]) == [0.25] * 3
    dense_plan = ashlsim.run(_testbed(switch="immediate", shl_plan="dense"))
    assert list(dense_plan.tables["profile"]["h_shl"]) == [9, 5, 2]


def _held_run(bound_at, s_preset=1):
    # no profiling: equal H, so the 8x spread of speeds shows and the bound binds
    sc = known_cluster(switch="immediate", s_preset=s_preset, shl_bound=bound_at, profile_iters=0)
    sim = Simulation(sc.with_overrides({"stop.time_s": 4.0}), events=True)
    return sim, sim.run()


@pytest.mark.parametrize("s_preset", [0, 1, 3])
def test_the_ps_holds_a_push_beyond_the_bound_and_the_bound_is_tight(s_preset):
    """The authors' SHL: an arriving push waits at the PS while its worker's count minus the
    slowest worker's exceeds s_preset. Applied pushes never exceed the bound, and reach it."""
    sim, result = _held_run("push", s_preset)
    strategy = sim.strategy
    assert strategy.held_pushes > 0  # the bound binds: an 8x spread of speeds
    assert strategy.max_applied_gap == s_preset  # never more, and the fast ones get there
    assert result.pushes_applied + result.pushes_pending == result.pushes_sent
    # a held worker waits for its reply: a wait follows each push that was held
    assert result.workers["wait_s"].iloc[0] > 0


def test_holding_pushes_differs_from_gating_pulls():
    push_sim, push = _held_run("push")
    pull_sim, pull = _held_run("pull")
    assert pull_sim.strategy.held_pushes == 0 and push_sim.strategy.held_pushes > 0
    # the slowest worker sets the pace either way; what differs is when a fast worker computes
    # (before its push is held, or after its pull is released) and so how stale it is
    assert abs(push.pushes_applied - pull.pushes_applied) <= 4
    assert push_sim.server.staleness != pull_sim.server.staleness
    assert not np.allclose(push.final_params, pull.final_params)


def test_switch_checks_the_loss_every_switch_check_s():
    checked = ashlsim.run(
        known_cluster(loss_preset=0.8, switch_check_s=2.0).with_overrides({"stop.time_s": 8.0})
    )
    every = ashlsim.run(known_cluster(loss_preset=0.8).with_overrides({"stop.time_s": 8.0}))
    t_every = every.stage_changes["time_s"].iloc[1]
    t_checked = checked.stage_changes["time_s"].iloc[1]
    profiled = checked.stage_changes["time_s"].iloc[0]
    h = checked.history
    first = h.loc[h["time_s"] >= profiled, "time_s"].iloc[0]  # the first check
    grid = first + 2.0 * np.arange(10)  # then every 2 s
    assert t_checked > t_every and np.isclose(grid, t_checked).any()
    # the first check on the grid at or after the loss fell below the preset
    assert t_checked == grid[grid >= t_every][0]


@pytest.mark.parametrize("reset, restart", [(False, True), (True, False), (True, True)])
def test_the_switch_resets_momentum_and_restarts_the_schedule_as_asked(reset, restart):
    sc = known_cluster(loss_preset=0.8, reset_optimizer=reset, restart_schedule=restart)
    sim = Simulation(sc.with_overrides({"training.momentum": 0.9, "stop.time_s": 6.0}))
    port, at_switch = sim.strategy.port, []
    restart_schedule = port.restart_schedule
    port.restart_schedule = lambda: (at_switch.append(sim.server.applied_samples),
                                     restart_schedule())  # fmt: skip
    result = sim.run()
    assert len(result.stage_changes) == 2  # profiled, then the switch
    assert all(w.optimizer_resets == (1 if reset else 0) for w in sim.workers)
    # the schedule's clock counts epochs applied from the switch on
    assert sim.schedule_origin == (at_switch[0] if restart else 0)
    assert (len(at_switch) == 1 and at_switch[0] > 0) if restart else not at_switch


def test_a_worker_dead_for_good_during_profiling_does_not_stall_ashl():
    crash = [{"worker": 1, "at_s": 0.01, "kind": "crash"}]
    result = ashlsim.run(
        known_cluster(loss_preset=0.8).with_overrides({"faults": crash, "stop.time_s": 4.0})
    )
    assert list(result.stage_changes["to_stage"])[:1] == ["ahl"]
    assert result.history["updates"].iloc[-1] > 50
