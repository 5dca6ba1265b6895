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
