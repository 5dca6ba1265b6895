"""The user's own data: a file named in the scenario, or arrays handed to ``run``.

``data: {path: FILE}`` reads

- ``.npz``: arrays ``X`` (samples first; an image set may keep its shape, e.g. ``(n, c, h, w)``)
  and ``y`` (class labels), and optionally ``X_test`` and ``y_test``: a given test split (then
  ``data.test_fraction`` is not used);
- ``.npy``: ``X`` from ``FILE`` and ``y`` from the file next to it named ``*_y.npy`` (``FILE``
  is then ``*_X.npy``);
- ``.csv`` and ``.parquet`` (pandas): the ``label`` column (``data.label``, default
  ``label``) and the feature columns (``data.features``, default every other column).

In Python, ``ashlsim.run(scenario, data=(X, y))`` or ``data=(X, y, X_test, y_test)``. The
features are flattened for the models (which read the sample shape); labels are classes (integers, or strings:
each distinct value a class) and need at least two. A relative path is taken from the scenario
file's folder. The scenario records the file's SHA-256 (``data.sha256``): a run of a saved
scenario whose file changed since is refused, naming both digests.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .errors import ScenarioError

SUFFIXES = (".npz", ".npy", ".csv", ".parquet")
MAX_FILE_BYTES = 4 << 30  # a data file larger than this is refused before it is read


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a data file (of both files for an ``.npy`` pair)."""
    digest = hashlib.sha256()
    for part in _parts(Path(path)):
        with open(part, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def check_file(path: str, recorded: str | None) -> str:
    """The file's digest, after checking it is a readable data file of a known kind and, if
    the scenario recorded a digest, that it is still that file."""
    file = Path(path)
    if file.suffix not in SUFFIXES:
        raise ScenarioError("data.path", path, f"a file ending in {', '.join(SUFFIXES)}")
    for part in _parts(file):
        if not part.is_file():
            raise ScenarioError("data.path", str(part), "a regular data file that exists")
        if part.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError("data.path", str(part), f"at most {MAX_FILE_BYTES >> 30} GB")
    digest = file_digest(file)
    if recorded is not None and recorded != digest:
        raise ScenarioError(
            "data.sha256",
            recorded,
            f"the digest of {path} as the scenario recorded it: the file has changed since "
            f"(now {digest})",
        )
    return digest


def _parts(file: Path) -> list[Path]:
    if file.suffix == ".npy":
        if not file.stem.endswith("_X"):
            raise ScenarioError("data.path", str(file), "an .npy file named *_X.npy (and *_y.npy)")
        return [file, file.with_name(file.stem[:-2] + "_y.npy")]
    return [file]


def read(spec) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of the file ``spec.path`` (``with_test``: with a given test split, if the
    file has one), checked."""
    file = Path(spec.path)
    try:
        arrays = _read_arrays(file, spec)
    except ScenarioError:
        raise
    except ImportError:
        raise ScenarioError("data.path", spec.path,
                            'a .parquet file needs pyarrow: pip install -e ".[parquet]"') from None  # fmt: skip
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # damaged
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ScenarioError("data.path", spec.path, f"a readable data file ({reason})") from None
    return with_test(arrays, f"data.path {spec.path}")


def with_test(arrays, field: str):
    """``(X, y)`` checked; or, from ``(X, y, X_test, y_test)``, ``((X, X_test), (y, y_test))``:
    a given test split, its samples of the training set's shape."""
    if len(arrays) not in (2, 4):
        raise ScenarioError(field, f"{len(arrays)} arrays", "(X, y) or (X, y, X_test, y_test)")
    X, y = checked(arrays[0], arrays[1], field)
    if len(arrays) == 2:
        return X, y
    X_test, y_test = checked(arrays[2], arrays[3], f"{field}, test split", minimum=1)
    if X_test.shape[1:] != X.shape[1:]:
        raise ScenarioError(f"{field}, test split", f"samples of shape {X_test.shape[1:]}",
                            f"the training samples' shape {X.shape[1:]}")  # fmt: skip
    return (X, X_test), (y, y_test)


def _read_arrays(file: Path, spec) -> tuple:
    if file.suffix == ".npz":
        with np.load(file, allow_pickle=False) as arrays:
            missing = {"X", "y"} - set(arrays.files)
            if missing:
                raise ScenarioError("data.path", str(file), f"arrays X and y (no {missing})")
            test = {"X_test", "y_test"} & set(arrays.files)
            if len(test) == 1:
                raise ScenarioError(
                    "data.path", str(file), "X_test and y_test together, or neither"
                )
            names = ["X", "y", "X_test", "y_test"] if test else ["X", "y"]
            return tuple(arrays[name] for name in names)
    if file.suffix == ".npy":
        x_file, y_file = _parts(file)
        return np.load(x_file, allow_pickle=False), np.load(y_file, allow_pickle=False)
    import pandas as pd

    table = pd.read_csv(file) if file.suffix == ".csv" else pd.read_parquet(file)
    if spec.label not in table.columns:
        raise ScenarioError("data.label", spec.label, f"a column of {file}: {list(table.columns)}")
    features = list(spec.features) if spec.features else [c for c in table if c != spec.label]
    missing = [c for c in features if c not in table.columns]
    if missing:
        raise ScenarioError("data.features", missing[0], f"columns of {file}")
    return table[features].to_numpy(), table[spec.label].to_numpy()


def checked(X, y, field: str, minimum: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Features as floats (samples first, in the array's shape) and labels as classes
    0..k-1, or a ScenarioError naming ``field``."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise ScenarioError(field, f"X {X.shape}, y {y.shape}",
                            "X with samples first and y one label per sample")  # fmt: skip
    if X.dtype.kind not in "biuf":
        raise ScenarioError(field, f"X of {X.dtype}", "numeric features")
    X = X.astype(np.float64)  # (an image set keeps its shape: ``data.load_dataset`` reads it)
    if not np.isfinite(X).all():
        raise ScenarioError(field, "NaN or inf in X", "finite features")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise ScenarioError(field, "labels that are not whole numbers", "class labels")
        y = y.astype(np.int64)
    if y.dtype.kind not in "biuUSO":
        raise ScenarioError(field, f"labels of {y.dtype}", "class labels")
    if minimum > 1 and len(np.unique(y)) < 2:  # (a test split may hold one class)
        raise ScenarioError(field, f"{len(np.unique(y))} class", "at least two classes")
    if len(y) < minimum:
        raise ScenarioError(field, f"{len(y)} samples", f"at least {minimum} samples")
    return X, y


def arrays_digest(*arrays) -> str:
    """The SHA-256 of arrays handed to ``run`` (``X, y`` and any test split; recorded like a
    file's)."""
    digest = hashlib.sha256()
    for array in map(np.ascontiguousarray, arrays):
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
