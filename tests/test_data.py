import numpy as np
import pytest

from ashlsim import ScenarioError
from ashlsim.data import BatchSampler, load_dataset, partition
from ashlsim.scenario import DataSpec


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "synthetic"])
def test_datasets_are_standardised_and_split(name):
    spec = DataSpec(name=name, test_fraction=0.25, n_samples=400, n_features=10, n_classes=3)
    data = load_dataset(spec, np.random.default_rng(0))
    n = data.n_train + len(data.y_test)
    assert len(data.y_test) == round(0.25 * n)
    assert np.allclose(data.X_train.mean(axis=0), 0, atol=1e-4)
    std = data.X_train.std(axis=0)
    varying = std > 1e-6  # constant pixels stay 0
    assert varying.sum() >= 2 and np.allclose(std[varying], 1.0, atol=1e-3)
    assert set(np.unique(data.y_train)) <= set(range(data.n_classes))


def test_partitions_cover_every_sample_once():
    labels = np.repeat(np.arange(10), 50)
    rng = np.random.default_rng(0)
    for how, kw in [
        ("iid", {}),
        ("dirichlet", {"alpha": 0.1}),
        ("proportional", {"weights": [1, 2, 3, 4]}),
    ]:
        shards = partition(labels, 4, rng, how, **kw)
        joined = np.sort(np.concatenate(shards))
        assert (joined == np.arange(500)).all(), how
        assert all(len(s) > 0 for s in shards)


def test_proportional_sizes_follow_weights():
    shards = partition(
        np.zeros(1000, int), 3, np.random.default_rng(0), "proportional", weights=[1, 1, 2]
    )
    assert [len(s) for s in shards] == [250, 250, 500]


def test_dirichlet_skews_labels():
    labels = np.repeat(np.arange(10), 100)
    shards = partition(labels, 5, np.random.default_rng(0), "dirichlet", alpha=0.05)
    classes_per_worker = [len(np.unique(labels[s])) for s in shards]
    assert min(classes_per_worker) < 10  # strongly skewed: somebody misses classes


def test_too_many_workers():
    with pytest.raises(ScenarioError, match="cluster.workers"):
        partition(np.zeros(3, int), 5, np.random.default_rng(0))


def test_batch_sampler_epochs_without_replacement():
    sampler = BatchSampler(np.arange(10), 5, np.random.default_rng(0))
    seen = np.concatenate([sampler.next(), sampler.next()])
    assert sorted(seen) == list(range(10))


def test_a_batch_is_always_the_batch_even_from_a_small_shard():
    """A shard of 3 with a batch of 8 cycles through fresh permutations: every batch has 8
    indices, and every 3 consecutive draws of the stream use each sample equally often."""
    sampler = BatchSampler(np.array([7, 8, 9]), 8, np.random.default_rng(0))
    batches = [sampler.next() for _ in range(3)]
    assert all(len(b) == 8 for b in batches)
    counts = np.bincount(np.concatenate(batches), minlength=10)[7:]
    assert counts.tolist() == [8, 8, 8]
    sampler.reshard(np.array([1]))
    assert sampler.next().tolist() == [1] * 8


@pytest.mark.parametrize("first", ["batch", "reshard"])
@pytest.mark.parametrize("shard_size", [3, 40])
def test_a_deferred_stream_gives_the_batches_of_one_made_at_once(first, shard_size):
    """A sampler on a ``Deferred`` stream draws its first permutation at the first batch (a
    timing-only run never does), and a reshard before any batch draws the one it owes: the
    batches are those of a sampler whose stream was made at once and drew at construction."""
    from ashlsim.rng import Deferred, Streams

    streams = Streams(3)
    eager = BatchSampler(np.arange(shard_size), 8, streams.get("batches", 1))
    eager._order = eager.rng.permutation(eager.shard)  # drawn at construction, as it was
    lazy = BatchSampler(np.arange(shard_size), 8, streams.deferred("batches", 1))
    assert isinstance(lazy._rng, Deferred)
    for sampler in (eager, lazy):
        if first == "reshard":
            sampler.reshard(np.arange(100, 100 + shard_size))
    batches = [np.concatenate([s.next() for _ in range(7)]) for s in (eager, lazy)]
    assert batches[0].tolist() == batches[1].tolist()
    assert eager.rng.random() == lazy.rng.random()  # the streams are at the same draw


def test_a_timing_only_run_with_a_constant_jitter_makes_no_per_worker_stream():
    from conftest import make

    from ashlsim import Simulation
    from ashlsim.rng import Deferred

    timing = make(model={"name": "none"}, workload={"param_bytes": 1e4}, stop={"time_s": 0.5})
    sim = Simulation(timing)
    sim.run()
    assert all(isinstance(w.sampler._rng, Deferred) for w in sim.workers)
    assert all(isinstance(w._rng_jitter, Deferred) for w in sim.workers)
    trained = Simulation(make(stop={"time_s": 0.5}))  # SGD draws batches; jitter still constant
    trained.run()
    assert not any(isinstance(w.sampler._rng, Deferred) for w in trained.workers)
    assert all(isinstance(w._rng_jitter, Deferred) for w in trained.workers)


def test_many_workers_on_a_small_dataset_compute_full_batches():
    """64 workers on digits: shards of ~22 samples, batch 32. Compute time is batch/speed."""
    from conftest import make

    import ashlsim

    result = ashlsim.run(make(cluster={"workers": 64, "speed": 1000.0}, model={"name": "softmax"},
                              training={"batch_size": 32}, strategy={"name": "asp"},
                              stop={"time_s": 0.5}))  # fmt: skip
    w = result.workers
    assert (w["samples"] == 32 * w["iterations"]).all()
    cut = w["compute_s"] - w["iterations"] * 32 / 1000.0  # a computation the stop cut short
    assert ((cut > -1e-9) & (cut < 32 / 1000.0)).all()


def test_a_batch_larger_than_the_training_set_is_refused():
    from conftest import make

    import ashlsim

    with pytest.raises(ScenarioError, match="training.batch_size"):
        ashlsim.run(make(training={"batch_size": 100_000}))


@pytest.mark.parametrize(
    "n_samples, n_features, n_informative, n_classes, class_sep",
    [
        (70000, 64, 32, 10, 1.0),  # draws in chunks; above 30 informative features
        (333, 20, 10, 2, 1.0),  # hypercube vertices by permutation
        (333, 20, 2, 4, 0.5),  # ... by reservoir sampling (every vertex)
        (2000, 12, 10, 10, 2.0),  # ... by tracking selection (10 of 1,024)
        (100, 8, 8, 7, 1.0),  # no noise feature
    ],
)
def test_the_synthetic_generator_is_scikit_learns(
    n_samples, n_features, n_informative, n_classes, class_sep
):
    """Our copy of make_classification draws what scikit-learn's draws and makes the same
    values (signed zeros too), and leaves the generator where it leaves it."""
    from sklearn.datasets import make_classification as reference

    from ashlsim.data import make_classification

    ours, theirs = np.random.RandomState(7), np.random.RandomState(7)
    X, y = make_classification(n_samples, n_features, n_informative, n_classes, class_sep, ours)
    X_ref, y_ref = reference(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        class_sep=class_sep,
        shuffle=False,
        random_state=theirs,
    )
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(np.signbit(X), np.signbit(X_ref))
    np.testing.assert_array_equal(y, y_ref)
    assert ours.random() == theirs.random()


def test_too_many_classes_for_the_informative_features_is_a_scenario_error():
    from ashlsim.data import make_classification

    with pytest.raises(ScenarioError, match="data.n_classes"):
        make_classification(100, 4, 2, 5, 1.0, np.random.RandomState(0))


@pytest.mark.parametrize("n", [1, 2, 7, 5000, 20000])
def test_rows_are_gathered_in_place_as_by_fancy_indexing(n):
    from ashlsim.data import _gather_in_place

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3))
    for source in (rng.permutation(n), np.arange(n), np.roll(np.arange(n), 1)):
        expected, got = X[source], X.copy()
        _gather_in_place(got, source)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_samples, n_features", [(70000, 20), (333, 20), (333, 7)])
def test_the_lean_data_set_is_the_plain_formula_bit_for_bit(dtype, n_samples, n_features):
    # load_dataset generates a synthetic set with its own copy of make_classification,
    # shuffles it by indices, puts its rows in the split's order and standardises them a chunk
    # at a time in the set's own memory (a big set stays small); the values must be those of
    # scikit-learn's shuffled set and the plain expressions (7 features: the float32 result
    # takes an odd number of float32 values)
    from sklearn.datasets import make_classification

    from ashlsim import Scenario
    from ashlsim.data import load_dataset
    from ashlsim.rng import Streams

    spec = (
        Scenario()
        .with_overrides(
            {"data": {"name": "synthetic", "n_samples": n_samples, "n_features": n_features}}
        )
        .data
    )
    got = load_dataset(spec, Streams(5).get("data"), dtype)
    rng = Streams(5).get("data")
    X, y = make_classification(
        n_samples=spec.n_samples,
        n_features=spec.n_features,
        n_informative=spec.n_features // 2,
        n_redundant=0,
        n_classes=spec.n_classes,
        n_clusters_per_class=1,
        class_sep=spec.class_sep,
        random_state=int(rng.integers(2**31 - 1)),
    )
    order = rng.permutation(len(y))
    n_test = max(1, int(round(spec.test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0] = 1.0
    X = (X - mean) / std
    np.testing.assert_array_equal(got.X_train, np.ascontiguousarray(X[train], dtype=dtype))
    np.testing.assert_array_equal(got.X_test, np.ascontiguousarray(X[test], dtype=dtype))
    np.testing.assert_array_equal(got.y_train, y[train])
    np.testing.assert_array_equal(got.y_test, y[test])


@pytest.mark.parametrize("strategy", ["asp", "ashl"])  # ASHL reshards the data: sizes only
def test_a_timing_only_run_builds_no_synthetic_set_and_runs_the_same(monkeypatch, strategy):
    import pandas as pd
    from conftest import make

    import ashlsim.engine as engine
    from ashlsim import Simulation

    scenario = make(
        cluster={"speed": {"dist": "lognormal", "mean": 2000, "sigma": 0.5}},
        model={"name": "none"},
        workload={"param_bytes": 1.0e5},
        data={"name": "synthetic", "n_samples": 3000},
        strategy={"name": strategy},
        stop={"time_s": 20.0, "target_accuracy": None},
    )
    lean = Simulation(scenario)
    assert lean.data.X_train.shape == (2400, 0)
    real = engine.load_dataset
    monkeypatch.setattr(
        engine, "load_dataset", lambda spec, rng, dtype, features, arrays: real(spec, rng, dtype)
    )
    full = Simulation(scenario)
    assert full.data.X_train.shape == (2400, 16)
    a, b = lean.run(), full.run()
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.workers, b.workers)
    assert a.workers["iterations"].sum() > 100
    # a label skew reads the labels: the set is built
    skewed = Simulation(scenario.with_overrides({"data.partition": "dirichlet"}))
    assert skewed.data.X_train.shape == (2400, 16)
