"""The validation report's cases, smaller: simulated values against closed forms.

Random cases pass within ``Z_TOL`` standard errors of their own estimate; deterministic ones to
float rounding (``ashlsim.validation``). Seeds differ from the report's, so these are new draws.
"""

import pytest

from ashlsim import validation as v


@pytest.mark.parametrize("n", [2, 8, 32, 128])
def test_bsp_round_time_is_c_times_harmonic_n(n):
    check = v.bsp_exponential_round(n, mean_compute=0.5, rounds=1500, seed=100 + n)
    assert check.passed, check.row()
    assert check.tolerance < 0.1 * check.predicted  # tight enough to catch a wrong model


def test_asp_throughput_is_the_sum_of_rates():
    check = v.asp_exponential_throughput(time_s=600.0, seed=7)
    assert check.passed, check.row()


@pytest.mark.parametrize("n", [2, 8, 32])
def test_simultaneous_pushes_share_the_ingress(n):
    check = v.ps_ingress_contention(n)
    assert check.passed, check.row()


def test_staggered_pushes_worked_by_hand():
    check = v.ps_ingress_staggered(lag=0.4)
    assert check.passed, check.row()


@pytest.mark.parametrize("staleness", [0, 2, 5])
def test_ssp_holds_fast_workers_to_the_slow_rate(staleness):
    check = v.ssp_two_speed_classes(staleness=staleness, time_s=40.0)
    assert check.passed, check.row()


def test_local_sgd_round_is_the_slowest_worker_with_its_communication():
    check = v.local_sgd_round(h=3)
    assert check.passed, check.row()


@pytest.mark.parametrize("shards", [1, 2, 8])
def test_a_sharded_ps_divides_the_contention_by_its_shards(shards):
    check = v.sharded_ingress_contention(n=8, shards=shards)
    assert check.passed, check.row()


@pytest.mark.parametrize("m", [2, 5])
def test_a_rack_uplink_is_shared_by_its_rack(m):
    check = v.rack_uplink_contention(m=m, racks=3)
    assert check.passed, check.row()


@pytest.mark.parametrize("algorithm, n", [("ring", 5), ("ring", 8), ("halving_doubling", 8)])
def test_an_allreduce_round_waits_for_the_slowest_link_at_every_step(algorithm, n):
    check = v.allreduce_round(algorithm, n=n)
    assert check.passed, check.row()


def test_a_wrong_prediction_fails():
    check = v.bsp_exponential_round(8, rounds=300, seed=1)
    check.predicted *= 1.15  # e.g. forgetting that a round waits for the slowest
    assert not check.passed
