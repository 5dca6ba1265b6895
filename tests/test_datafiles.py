"""The user's data: files (.npz, .npy pairs, .csv, .parquet) named in the scenario, arrays handed
to ``run``; the saved scenario records their digest, a changed file is refused, bad files are one
line each."""

import numpy as np
import pytest
import yaml
from conftest import make

import ashlsim
from ashlsim import ScenarioError
from ashlsim.cli import main


def _arrays(n=300, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.argmax(X[:, :classes], axis=1)  # learnable: the largest of the first features
    return X, y


SHORT = {"stop": {"time_s": 1.0, "target_accuracy": None}, "model": {"name": "softmax"}}


def test_an_npz_trains_like_the_same_arrays_given_in_python(tmp_path):
    X, y = _arrays()
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    from_file = ashlsim.run(
        make(data={"name": "file", "path": str(tmp_path / "mine.npz")}, **SHORT)
    )
    from_arrays = ashlsim.run(make(**SHORT), data=(X, y))
    assert from_file.scenario.data.name == "file" and from_arrays.scenario.data.name == "arrays"
    np.testing.assert_array_equal(from_file.final_params, from_arrays.final_params)
    assert from_file.history["accuracy"].iloc[-1] > 0.8  # it learned the rule
    assert len(from_file.scenario.data.sha256) == len(from_arrays.scenario.data.sha256) == 64


@pytest.mark.parametrize("kind", ["npy", "csv", "parquet"])
def test_every_kind_of_file_gives_the_same_data(tmp_path, kind):
    import pandas as pd

    if kind == "parquet":
        pytest.importorskip("pyarrow")  # (the parquet extra)
    X, y = _arrays()
    if kind == "npy":
        np.save(tmp_path / "d_X.npy", X)
        np.save(tmp_path / "d_y.npy", y)
        path = tmp_path / "d_X.npy"
    else:
        table = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=y)
        path = tmp_path / f"d.{kind}"
        table.to_csv(path, index=False) if kind == "csv" else table.to_parquet(path)
    np.savez(tmp_path / "ref.npz", X=X, y=y)
    mine = ashlsim.run(make(data={"name": "file", "path": str(path)}, **SHORT))
    ref = ashlsim.run(make(data={"name": "file", "path": str(tmp_path / "ref.npz")}, **SHORT))
    np.testing.assert_allclose(mine.final_params, ref.final_params, rtol=1e-12)


def test_an_image_set_keeps_working_flattened(tmp_path):
    X, y = _arrays(d=16)
    np.savez(tmp_path / "img.npz", X=X.reshape(-1, 1, 4, 4), y=y)
    result = ashlsim.run(make(data={"name": "file", "path": str(tmp_path / "img.npz")}, **SHORT))
    assert result.final_params.size == (16 + 1) * 3  # softmax over 16 flattened pixels


def test_the_saved_scenario_records_the_file_and_refuses_it_changed(tmp_path, capsys):
    X, y = _arrays()
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"data": {"path": "mine.npz"}, **SHORT}))
    out = tmp_path / "o"
    assert main(["run", str(scenario), "--out", str(out), "--no-progress"]) == 0
    saved = yaml.safe_load((out / "scenario.yaml").read_text())["data"]
    assert saved["path"] == str(tmp_path / "mine.npz") and len(saved["sha256"]) == 64
    assert main(["run", str(out / "scenario.yaml"), "--out", str(tmp_path / "again"),
                 "--no-progress"]) == 0  # fmt: skip
    np.savez(tmp_path / "mine.npz", X=X + 1, y=y)  # the file changes
    capsys.readouterr()
    assert main(["run", str(out / "scenario.yaml"), "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("ashlsim: error: data.sha256") and saved["sha256"] in err
    assert err.count("\n") == 1


def _bad(tmp_path, how):
    X, y = _arrays()
    path = tmp_path / "bad.npz"
    if how == "nan":
        X[3, 2] = np.nan
    if how == "one class":
        y[:] = 1
    if how == "fractional labels":
        y = y + 0.5
    if how == "lengths":
        y = y[:-1]
    if how == "no y":
        np.savez(path, X=X)
        return path
    if how == "garbage":
        path.write_bytes(b"PK\x03\x04 not a zip at all")
        return path
    if how == "text":
        path = tmp_path / "bad.txt"
        path.write_text("1,2,3")
        return path
    np.savez(path, X=X, y=y)
    return path


@pytest.mark.parametrize(
    "how", ["nan", "one class", "fractional labels", "lengths", "no y", "garbage", "text"]
)
def test_a_bad_data_file_is_one_line_naming_the_field(tmp_path, how, capsys):
    path = _bad(tmp_path, how)
    assert main(["run", "--set", f"data.path={path}", "--set", "stop.time_s=0.5",
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("ashlsim: error: data") and err.count("\n") == 1, err


def test_a_path_and_another_data_sets_name_are_an_error():
    with pytest.raises(ScenarioError, match="data.path or data.name"):
        ashlsim.Scenario.from_dict({"data": {"name": "digits", "path": "x.npz"}})
    with pytest.raises(ScenarioError, match="arrays given"):
        ashlsim.run(ashlsim.Scenario.from_dict({"data": {"name": "arrays"}, **SHORT}))


def test_a_given_test_split_is_the_test_set(tmp_path):
    """``X_test``/``y_test`` in the .npz (or four arrays in Python) are the test set as given:
    the training set is all of X, standardised with its own statistics."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(120, 5)), rng.integers(0, 3, 120)
    X_test, y_test = rng.normal(size=(30, 5)) + 1.0, rng.integers(0, 3, 30)
    np.savez(tmp_path / "split.npz", X=X, y=y, X_test=X_test, y_test=y_test)
    sim = ashlsim.Simulation(make(data={"name": "file", "path": str(tmp_path / "split.npz")}))
    data = sim.data
    assert (data.n_train, len(data.y_test)) == (120, 30)
    np.testing.assert_array_equal(data.y_test, y_test)  # in the order given
    mean, std = X.mean(axis=0), X.std(axis=0)
    np.testing.assert_allclose(data.X_test, (X_test - mean) / std, rtol=1e-12)
    in_python = ashlsim.Simulation(make(data={"name": "arrays"}), data=(X, y, X_test, y_test))
    np.testing.assert_array_equal(in_python.data.X_test, data.X_test)


@pytest.mark.parametrize("arrays, message", [
    ({"X_test": np.zeros((5, 4))}, "X_test and y_test together"),
    ({"X_test": np.zeros((5, 3)), "y_test": np.zeros(5)}, "training samples' shape"),
    ({"X_test": np.zeros((5, 4)), "y_test": np.full(5, 7)}, "absent from training"),
])  # fmt: skip
def test_a_bad_test_split_is_one_line(arrays, message, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "bad.npz", X=rng.normal(size=(40, 4)), y=rng.integers(0, 2, 40), **arrays)
    with pytest.raises(ScenarioError, match=message):
        ashlsim.Simulation(make(data={"name": "file", "path": str(tmp_path / "bad.npz")}))
