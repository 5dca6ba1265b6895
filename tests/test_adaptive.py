"""The adaptive baselines: ADSP, ADACOMM and BSP with backup workers ."""

import math

import numpy as np
import pytest
from conftest import make

from ashlsim import Simulation

THREE_SPEEDS = [4000, 4000, 2000, 2000, 1000, 1000]


def _evaluation(time_s: float, loss: float):
    from ashlsim.extend import Evaluation

    return Evaluation(time_s, 0, 0, 0.0, loss, loss, 0.0, 0, 0, "")


def test_adsp_evens_out_commit_rates_and_nobody_waits():
    scenario = make(cluster={"workers": 6, "speed": THREE_SPEEDS},
                    strategy={"name": "adsp", "search_interval_s": 1.0}, stop={"time_s": 8.0})  # fmt: skip
    sim = Simulation(scenario, events=True)
    result = sim.run()
    pushes = result.events.query("kind == 'push' and end_s > 4.0")
    rates = pushes.groupby("worker").size() / 4.0  # commits per second, second half of the run
    assert len(rates) == 6
    assert (rates.max() - rates.min()) / rates.mean() <= 0.10, rates.to_dict()
    assert (result.workers["wait_s"] == 0).all()
    steps = np.array(sim.strategy.steps)
    assert steps[0] > steps[2] > steps[4] >= sim.strategy.params.min_commit_steps // 2
    assert len(sim.strategy.trials) >= 2  # the commit rate was searched


def test_adsp_keeps_its_commit_period_between_an_iteration_and_a_trial():
    """The hill climb moves the period by its factor each trial, in the better direction: while
    the loss falls faster and faster it would double for ever (a long run reached 4e16 steps
    per commit); it stays within one trial, so that each trial sees commits."""
    scenario = make(strategy={"name": "adsp", "search_interval_s": 5.0})
    strategy = Simulation(scenario).strategy
    strategy.start()
    strategy.t_iter, strategy.t_comm = [0.01] * 4, [0.002] * 4
    strategy.schedule.commit_s = 0.1
    loss, periods = 10.0, []
    for trial in range(40):  # each trial's loss falls by more than the last one's
        strategy.observe(_evaluation(5.0 * trial, loss))
        loss -= 0.01 * (trial + 1)
        periods.append(strategy.schedule.commit_s)
    assert periods[5] > periods[1]  # it did climb
    assert max(periods) == 5.0 and strategy.local_steps(0) <= 5.0 / 0.01
    strategy.t_iter = [10.0] * 4  # an iteration longer than a trial: one iteration, one commit
    strategy.observe(_evaluation(5.0 * 41, loss - 1))
    assert strategy.schedule.commit_s == 10.002 and strategy.local_steps(0) == 1


def test_adacomm_shrinks_tau_by_its_formula_as_the_loss_falls():
    scenario = make(strategy={"name": "adacomm", "tau_0": 12, "interval_s": 0.5},
                    eval={"every_s": 0.25, "max_samples": 1437}, stop={"time_s": 4.0})  # fmt: skip
    sim = Simulation(scenario)
    result = sim.run()
    taus = [tau for _, tau in sim.strategy.history]
    assert taus[0] == 12 and taus[-1] < 12
    assert all(a >= b for a, b in zip(taus, taus[1:], strict=False))  # non-increasing
    h = result.history.set_index("time_s")["loss"]
    loss_0 = h.iloc[0]
    for at, tau in sim.strategy.history[1:]:
        assert tau == max(1, math.ceil(math.sqrt(h.loc[at] / loss_0) * 12 - 1e-12))


def test_adacomm_is_local_sgd_while_the_loss_does_not_move():
    frozen = {"training": {"lr": 1e-12}, "stop": {"time_s": 2.0}}
    ada = Simulation(make(strategy={"name": "adacomm", "tau_0": 5, "interval_s": 0.25}, **frozen))
    ada.run()
    local = Simulation(make(strategy={"name": "local_sgd", "local_steps": 5}, **frozen))
    local.run()
    assert [tau for _, tau in ada.strategy.history] == [5]
    assert ada.server.staleness == local.server.staleness
    np.testing.assert_array_equal(ada.server.params, local.server.params)


def test_zero_backup_workers_is_bsp():
    plain = Simulation(make(strategy={"name": "bsp"}))
    plain.run()
    backup = Simulation(make(strategy={"name": "bsp", "backup_workers": 0}))
    result = backup.run()
    np.testing.assert_array_equal(plain.server.params, backup.server.params)
    assert result.pushes_dropped == 0


def test_backup_workers_apply_the_first_n_and_drop_the_rest():
    # 3 fast workers and a persistently slow one; N = 3, b = 1
    speeds, latency, bandwidth = [4000, 3000, 2000, 500], 0.001, 1.0e7
    scenario = make(cluster={"speed": speeds, "uplink": {"bandwidth": bandwidth, "latency": latency},
                             "downlink": {"bandwidth": bandwidth, "latency": latency}},
                    strategy={"name": "bsp", "backup_workers": 1})  # fmt: skip
    sim = Simulation(scenario)
    sizes = []
    apply = sim.server.apply
    sim.server.apply = lambda ups, scale=1.0: (sizes.append(len(ups)), apply(ups, scale))
    result = sim.run()
    assert set(sizes) == {3}  # every round applies exactly N deltas
    assert result.pushes_pending == len(sim.strategy.barrier._buffer)
    assert (
        result.pushes_applied + result.pushes_dropped + result.pushes_pending == result.pushes_sent
    )
    assert result.pushes_dropped == result.workers.loc[3, "dropped"] > 0
    assert result.workers.loc[3, "applied"] == 0  # the slow worker is always late
    # a round lasts as long as the N-th fastest worker's pull + compute + push
    message = sim.dense_bytes
    times = sorted(16 / s + 2 * (latency + message / bandwidth) for s in speeds)
    rounds = np.diff(np.array(sim.strategy.barrier.round_ends), prepend=0.0)
    np.testing.assert_allclose(rounds, times[2], rtol=1e-9)


def test_backup_workers_must_leave_someone_to_wait_for():
    from ashlsim import ScenarioError

    with pytest.raises(ScenarioError) as info:
        make(strategy={"name": "bsp", "backup_workers": 4})
    assert info.value.field == "strategy.backup_workers"


# ---- ADSP as the ASHL authors re-implemented it -------------------------------------------------


def test_the_authors_adsp_reward_is_one_whenever_the_fit_exists():
    from ashlsim.strategies.adsp import fit_loss_curve, fit_reward

    x2, y, z = 3.0, 0.5, 0.1

    def curve(t):
        return 1.0 / (x2 * t + y) + z

    np.testing.assert_allclose(fit_loss_curve(curve(0), curve(0.5), curve(1)), (x2, y, z))
    assert fit_reward(curve(0), curve(0.5), curve(1)) == 1.0
    assert fit_reward(2.0, 1.5, 1.0) is None  # a straight line: 1/(l - z) cannot be linear
    assert fit_reward(1.0, 1.0, 1.0) is None


def test_accumulating_workers_sum_lr_times_the_gradients_at_the_pulled_parameters():
    sim = Simulation(make(strategy={"name": "adsp", "variant": "authors"}))
    worker, trainer = sim.workers[0], sim.workers[0].trainer
    params = sim.server.params
    work = trainer.prepare(params, 4, worker.sampler, 0.0, worker, accumulate=True)
    delta = trainer.run([work])[0]
    X, yy = sim.data.X_train, sim.data.y_train
    expected = sum(sim.model.loss_and_grad(params, X[b], yy[b])[1] for b in work.batches)
    np.testing.assert_allclose(delta, -0.05 * expected, rtol=1e-10, atol=1e-12)


def test_the_authors_adsp_runs_periods_of_commits_between_barriers():
    period = 1.0
    scenario = make(cluster={"workers": 3, "speed": [4000, 2000, 1000]},
                    strategy={"name": "adsp", "variant": "authors", "period_s": period,
                              "search_periods": 4},
                    stop={"time_s": 9.0}, eval={"every_s": 0.05})  # fmt: skip
    sim = Simulation(scenario, events=True)
    result = sim.run()
    trials = sim.strategy.trials
    # the search: one more commit per period after the first reward (1 > 0), back after the
    # second (1 is not > 1); a new cycle every 4 periods aligns the counts again
    assert [t["commits"] for t in trials[:3]] == [[2, 2, 2], [1, 1, 1], [1, 1, 1]]
    assert [t["event"] for t in trials[:4]] == ["reward", "reward", "align", "reward"]
    ends = sim.strategy.schedule.period_ends
    assert len(ends) >= 7
    gaps = np.diff(ends)
    assert (np.abs(gaps - period) < 0.1 * period).all()  # a period lasts about period_s
    # within a period every worker commits as often as planned, the fast ones with more steps
    steps = result.workers["commit_steps"].to_numpy()
    assert steps[0] > steps[1] > steps[2] > 1
    assert result.workers["wait_s"].sum() > 0  # the barriers hold somebody
    assert result.pushes_applied == result.pushes_sent


CRASHES = [
    {"worker": 1, "at_s": 0.002, "kind": "crash", "recover_after_s": 1.0},  # before its probe
    {"worker": 2, "at_s": 0.8, "kind": "crash", "recover_after_s": 0.5},
    {"worker": 3, "at_s": 2.0, "kind": "crash"},
]


@pytest.mark.parametrize("variant", ["paper", "authors"])
def test_adsp_counts_what_it_waits_for_as_a_scan_would(monkeypatch, variant):
    """ADSP waits for every running worker (its first measurement; the authors' period
    barrier). It keeps counts instead of scanning the N workers at every push (a scan made a
    push cost 0.2 ms at 4,096 workers): at every decision, through crashes and recoveries, the
    counts are what a scan finds."""
    from ashlsim.strategies import adsp

    checks = []
    plan, release = adsp._PaperSchedule._maybe_plan, adsp._AuthorsSchedule._maybe_release

    def checked_plan(self):
        waiting = [w for w in range(self.s.n)
                   if w not in self._down and math.isnan(self.s.t_iter[w])]  # fmt: skip
        checks.append(self._unmeasured == len(waiting))
        plan(self)

    def checked_release(self):
        owing = [w for w in range(self.s.n) if self.done[w] < self.planned[w] and not self.down[w]]
        checks.append(self.owing == len(owing))
        release(self)

    monkeypatch.setattr(adsp._PaperSchedule, "_maybe_plan", checked_plan)
    monkeypatch.setattr(adsp._AuthorsSchedule, "_maybe_release", checked_release)
    scenario = make(
        strategy={"name": "adsp", "variant": variant, "period_s": 0.5, "search_periods": 3},
        cluster={"workers": 6, "speed": [4000, 3000, 2000, 1000, 1500, 2500]},
        faults=CRASHES,
        stop={"time_s": 8.0, "target_accuracy": None},
        eval={"every_s": 0.05},
    )
    Simulation(scenario).run()
    assert len(checks) > 20 and all(checks)
