import numpy as np
import pytest

from ashlsim import ScenarioError
from ashlsim.dist import (
    Constant,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    PerWorker,
    Uniform,
    parse_value,
)

CASES = [
    ({"dist": "uniform", "low": 1, "high": 3}, Uniform, 2.0, (2 / 12) ** 0.5),
    ({"dist": "exponential", "mean": 2.0}, Exponential, 2.0, 2.0),
    ({"dist": "normal", "mean": 10.0, "std": 1.0}, Normal, 10.0, 1.0),
    (
        {"dist": "lognormal", "mean": 5.0, "sigma": 0.5},
        LogNormal,
        5.0,
        5.0 * (np.e**0.25 - 1) ** 0.5,
    ),
    ({"dist": "gamma", "mean": 3.0, "shape": 4.0}, Gamma, 3.0, 3.0 / 2),
]


@pytest.mark.parametrize(("spec", "cls", "mean", "std"), CASES)
def test_sample_mean_matches_parameters(spec, cls, mean, std):
    dist = parse_value("x", spec)
    assert isinstance(dist, cls)
    assert dist.mean == pytest.approx(mean)
    draws = dist.sample(np.random.default_rng(1), 200_000)
    # 5 standard errors: fails for a wrong parametrisation, not by chance
    assert abs(draws.mean() - mean) < 5 * std / len(draws) ** 0.5
    assert (draws > 0).all()
    assert parse_value("x", dist.to_spec()) == dist  # round trip


def test_numbers_lists_and_round_trip():
    assert parse_value("x", 3) == Constant(3.0)
    per = parse_value("x", [1, 2, 3])
    assert isinstance(per, PerWorker)
    assert per.per_worker(None, 3).tolist() == [1, 2, 3]
    assert parse_value("x", per.to_spec()) == per


def test_empirical_from_values_and_csv(tmp_path):
    dist = parse_value("x", {"dist": "empirical", "values": [1, 2, 4]})
    assert set(dist.sample(np.random.default_rng(0), 100)) <= {1.0, 2.0, 4.0}
    path = tmp_path / "trace.csv"
    path.write_text("t,speed\n0,100\n1,300\n")
    trace = parse_value(
        "cluster.speed", {"dist": "empirical", "path": str(path), "column": "speed"}
    )
    assert trace.values == (100.0, 300.0)
    assert trace.mean == 200.0
    assert parse_value("x", trace.to_spec()) == trace


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (-1, "f"),
        ("fast", "f"),
        ({"dist": "weibull"}, "f.dist"),
        ({"dist": "lognormal", "mean": 2}, "f.sigma"),
        ({"dist": "lognormal", "mean": 2, "sigma": 1, "mu": 3}, "f.mu"),
        ({"dist": "uniform", "low": 3, "high": 1}, "f.high"),
        ([1, -2], "f[1]"),
        ({"dist": "empirical", "path": "/no/such.csv", "column": "a"}, "f.path"),
    ],
)
def test_bad_specs_name_the_field(spec, field):
    with pytest.raises(ScenarioError) as info:
        parse_value("f", spec)
    assert info.value.field == field


def test_zero_latency_allowed_only_where_asked():
    assert parse_value("lat", 0, allow_zero=True) == Constant(0.0)
    with pytest.raises(ScenarioError):
        parse_value("bw", 0)
