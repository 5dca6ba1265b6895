"""Bad input gets one clear line and loses nothing; a saved run reproduces itself; nothing is
silently read with another meaning."""

import re
from pathlib import Path

import pytest
import yaml
from conftest import scenario_dict

import ashlsim
from ashlsim import ScenarioError
from ashlsim.cli import main
from ashlsim.yamlio import load_file, loads

README = Path(__file__).resolve().parents[1] / "README.md"


# ---- YAML as a user means it ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.25e7", 1.25e7), ("1e-3", 1e-3), ("-2.5E+3", -2500.0), (".5", 0.5), ("1.0e+300", 1e300),
     ("3", 3), ("0.5", 0.5), ("inf", "inf"), ("1e7x", "1e7x")],
)  # fmt: skip
def test_numbers_are_read_as_yaml_1_2_does(text, value):
    assert loads(text) == value
    assert type(loads(text)) is type(value)


def test_the_readme_scenario_block_is_a_valid_scenario():
    block = re.search(r"```yaml\n(name: default.*?)```", README.read_text(), flags=re.S).group(1)
    scenario = ashlsim.Scenario.from_dict(loads(block))
    assert scenario.cluster.uplink.bandwidth.value == 1.25e7
    assert len(scenario.faults) == 3


def test_set_accepts_exponent_floats(tmp_path):
    out = tmp_path / "o"
    code = main(["run", "--set", "cluster.uplink.bandwidth=1.25e7", "--set", "stop.time_s=0.5",
                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0


def test_a_duplicated_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("cluster:\n  workers: 4\n  workers: 8\n")
    with pytest.raises(ScenarioError, match=r"line 3: 'workers'.*each key once"):
        ashlsim.load_scenario(path)


def test_alias_bombs_are_refused_quickly_and_the_message_stays_short(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    lines.append("unknown_key: *i")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    assert path.stat().st_size < 1500
    with pytest.raises(ScenarioError, match="anchors or aliases") as info:
        ashlsim.load_scenario(path)
    assert len(str(info.value)) < 300


def test_error_messages_never_expand_a_big_value():
    with pytest.raises(ScenarioError) as info:
        ashlsim.Scenario.from_dict({"nonsense": [[list(range(1000))] * 1000] * 1000})
    assert len(str(info.value)) < 600  # bounded whatever the input


def test_a_binary_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ScenarioError, match="not binary"):
        load_file(path)
    assert main(["run", str(path)]) == 2
    assert "not binary" in capsys.readouterr().err


# ---- a saved run reproduces itself, and the output folder holds one run ------------------------


def _scenario_file(tmp_path, **sections):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario_dict(**sections)))
    return path


def test_the_saved_scenario_records_the_seed_used(tmp_path):
    scenario = _scenario_file(tmp_path, strategy={"name": "asp"}, stop={"time_s": 0.5})
    first, again = tmp_path / "a", tmp_path / "b"
    assert main(["run", str(scenario), "--seed", "3", "--out", str(first), "--no-progress"]) == 0
    saved = ashlsim.load_scenario(first / "scenario.yaml")
    assert saved.seed == 3
    assert main(["run", str(first / "scenario.yaml"), "--out", str(again), "--no-progress"]) == 0
    assert (first / "history.csv").read_text() == (again / "history.csv").read_text()


def test_a_reused_output_folder_keeps_no_file_of_the_previous_run(tmp_path):
    out = tmp_path / "out"
    ashl = _scenario_file(tmp_path, strategy={"name": "ashl"}, stop={"time_s": 1.0})
    assert main(["run", str(ashl), "--events", "--out", str(out), "--no-progress"]) == 0
    assert (out / "profile.csv").exists() and (out / "events.csv").exists()
    (out / "notes.txt").write_text("mine")  # a file of the user's: left alone
    plain = _scenario_file(tmp_path, strategy={"name": "bsp"}, stop={"time_s": 0.5})
    assert main(["run", str(plain), "--out", str(out), "--no-progress"]) == 0
    assert not (out / "profile.csv").exists() and not (out / "events.csv").exists()
    assert not (out / "stage_changes.csv").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert ashlsim.load_scenario(out / "scenario.yaml").strategy.name == "bsp"
