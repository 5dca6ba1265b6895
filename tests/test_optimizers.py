"""Worker and server optimizers: where momentum runs, weight decay, Nesterov, schedules."""

import math

import numpy as np
import pytest
from conftest import make

from ashlsim import Scenario, ScenarioError, Simulation
from ashlsim.cluster.server import ParameterServer
from ashlsim.training import schedule_factor


class _Msg:
    def __init__(self, values):
        self.values = values

    def decompress(self):
        return self.values


class _Update:
    """What ``ParameterServer.apply`` needs of a push."""

    def __init__(self, worker, values):
        self.worker, self.message, self.work = worker, _Msg(np.asarray(values, float)), None
        self.pulled_version, self.applied, self.weight, self.key = 0, False, 1.0, (worker, 0)
        self.samples = 1


def _server(**optimizer):
    server = ParameterServer(np.zeros(2), materialize=lambda updates: None)
    server.set_optimizer(**optimizer)
    return server


def test_server_momentum_is_heavy_ball_on_merged_deltas():
    server = _server(lr=0.5, momentum=0.9)
    server.apply([_Update(0, [1.0, 0.0]), _Update(1, [3.0, 2.0])], 0.5)  # mean = [2, 1]
    np.testing.assert_allclose(server.params, [1.0, 0.5])  # v = g, W += 0.5 v
    server.apply([_Update(0, [0.0, 0.0])], 1.0)  # v = 0.9 v
    np.testing.assert_allclose(server.params, [1.0 + 0.9, 0.5 + 0.45])
    server.reset_optimizer()
    server.apply([_Update(0, [0.0, 0.0])], 1.0)  # no buffer: nothing moves
    np.testing.assert_allclose(server.params, [1.9, 0.95])


def test_server_nesterov_adds_the_look_ahead():
    server = _server(lr=1.0, momentum=0.5, nesterov=True)
    server.apply([_Update(0, [2.0, 0.0])])  # v = g = 2; step = g + m v = 3
    np.testing.assert_allclose(server.params, [3.0, 0.0])
    server.apply([_Update(0, [2.0, 0.0])])  # v = 1 + 2 = 3; step = 2 + 1.5 = 3.5
    np.testing.assert_allclose(server.params, [6.5, 0.0])


def _one_worker(strategy, training):
    sc = make(
        cluster={"workers": 1, "speed": [1000]}, strategy=strategy, training=training,
        stop={"time_s": 1.0},
    )  # fmt: skip
    sim = Simulation(sc)
    return sim, sim.run()


@pytest.mark.parametrize("nesterov", [False, True])
def test_one_worker_server_momentum_equals_worker_momentum(nesterov):
    """docs/DESIGN.md section 3: with one worker, BSP's server momentum m on plain worker SGD is worker momentum m
    (v_s = m v_s - lr g equals -lr times the worker's v = m v + g)."""
    opt = {"momentum": 0.9, "nesterov": nesterov}
    server_side, a = _one_worker({"name": "bsp", "server_optimizer": opt}, {})
    worker_side, b = _one_worker({"name": "bsp"}, opt)
    assert server_side.server.version == worker_side.server.version > 40
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-9)
    np.testing.assert_allclose(server_side.server.params, worker_side.server.params, atol=1e-10)
    _, plain = _one_worker({"name": "bsp"}, {})
    assert not np.allclose(plain.history["loss"], a.history["loss"], rtol=1e-3)


def test_server_lr_is_shorthand_for_the_server_optimizer_lr():
    short = make(strategy={"name": "asp", "server_lr": 0.5})
    long = make(strategy={"name": "asp", "server_optimizer": {"lr": 0.5}})
    assert short == long and short.strategy.server_optimizer.lr == 0.5
    with pytest.raises(ScenarioError, match="server_lr"):
        make(strategy={"name": "asp", "server_lr": 0.5, "server_optimizer": {"lr": 2}})
    # the saved scenario round-trips
    assert Scenario.from_dict(short.to_dict()) == short


def test_asp_server_lr_halves_every_step_exactly():
    """ASP with lr_s = 0.5 applies exactly half of each delta (one worker: the same deltas)."""
    _, full = _one_worker({"name": "asp"}, {"lr": 0.1})
    _, half = _one_worker({"name": "asp", "server_lr": 0.5}, {"lr": 0.2})
    # one worker, one plain step: 0.5 * (-0.2 g) = -0.1 g, the same trajectory
    np.testing.assert_allclose(full.history["loss"], half.history["loss"], rtol=1e-9)


def test_server_momentum_survives_a_worker_crash():
    faults = [{"worker": 1, "at_s": 0.3, "kind": "crash", "recover_after_s": 0.2}]
    sim = Simulation(make(strategy={"name": "asp", "server_optimizer": {"momentum": 0.5}},
                          faults=faults))  # fmt: skip
    seen = []
    original = sim.server.reset_optimizer
    sim.server.reset_optimizer = lambda: seen.append(sim.env.now) or original()
    sim.run()
    assert seen == [] and sim.server.velocity is not None
    assert sim.workers[1].down_s == pytest.approx(0.2)


def test_linear_scaling_applies_the_sum_of_a_round():
    mean = Simulation(make(strategy={"name": "bsp"}, training={"lr": 0.01}))
    mean.run()
    summed = Simulation(make(strategy={"name": "bsp", "lr_scaling": "linear"},
                             training={"lr": 0.0025}))  # fmt: skip
    summed.run()
    # 4 workers: the sum at lr/4 is the mean at lr, round for round
    np.testing.assert_allclose(mean.server.params, summed.server.params, rtol=1e-9, atol=1e-12)


def test_weight_decay_adds_l2_to_the_gradient():
    """One worker, one step from the initial parameters: delta(wd) - delta(0) = -lr*wd*w0."""
    for wd in (0.0, 0.1):
        sc = make(cluster={"workers": 1, "speed": [1000]}, training={"weight_decay": wd})
        sim = Simulation(sc)
        w0 = sim.server.params.copy()
        sim.env.run(until=0.0165)  # pull 2 ms + compute 16 ms: one push in flight at most
        assert sim.server.version == 0
        worker = sim.workers[0]
        work = sim.workers[0].trainer.prepare(w0, 1, worker.sampler, 0.0, worker)
        delta = sim.workers[0].trainer.run([work])[0]
        if wd == 0.0:
            plain = delta
    np.testing.assert_allclose(delta - plain, -0.05 * 0.1 * w0, atol=1e-12)


def test_weight_decay_and_nesterov_stack_like_the_one_by_one_path():
    for training in ({"weight_decay": 5e-3, "momentum": 0.9, "nesterov": True},
                     {"weight_decay": 5e-3}):  # fmt: skip
        results = []
        for stacked in (True, False):
            sim = Simulation(make(strategy={"name": "local_sgd", "local_steps": 3},
                                  training=training))  # fmt: skip
            sim.workers[0].trainer.stacked = stacked
            sim.run()
            results.append(sim.server.params)
        np.testing.assert_allclose(results[0], results[1], rtol=1e-10, atol=1e-12)


def _training(**kw):
    return make(training=kw).training


def test_schedules_warmup_cosine_and_step():
    """In epochs applied (more in tests/test_verdicts.py)."""
    cos = _training(lr_schedule="cosine", warmup_epochs=2.0, schedule_epochs=10.0)
    assert schedule_factor(cos, 0.0) == 0.0
    assert schedule_factor(cos, 1.0) == pytest.approx(0.5)
    assert schedule_factor(cos, 2.0) == pytest.approx(1.0)
    assert schedule_factor(cos, 6.0) == pytest.approx(0.5)  # half way through the cosine
    assert schedule_factor(cos, 10.0) == pytest.approx(0.0, abs=1e-12)
    step = _training(lr_schedule="step", step_milestones=[5.0, 7.5], step_gamma=0.1)
    assert [schedule_factor(step, p) for p in (4.9, 5.0, 8.0)] == pytest.approx([1, 0.1, 0.01])
    const = _training()
    assert schedule_factor(const, 7.0) == 1.0
    plain_cos = _training(lr_schedule="cosine", schedule_epochs=3.0)
    assert schedule_factor(plain_cos, 1.5) == pytest.approx(0.5)
    assert schedule_factor(plain_cos, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 3)))


def test_nesterov_needs_momentum():
    with pytest.raises(ScenarioError, match="training.nesterov"):
        _training(nesterov=True)
