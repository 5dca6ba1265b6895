"""Every experiment script takes the same flags (``--quick``, ``--out``, ``--quiet``), and a
quiet run writes nothing but its own summary."""

import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SCRIPTS = sorted(p for p in EXPERIMENTS.glob("*.py") if not p.name.startswith("_"))


def test_there_are_scripts():
    assert len(SCRIPTS) >= 9


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_script_takes_the_common_flags(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for flag in ("--quick", "--out", "--quiet"):
        assert flag in out.stdout, f"{script.name} has no {flag}"


def test_quiet_silences_the_progress_bar_even_on_a_terminal(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import _common

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for argv, shown in ((["x"], True), (["x", "--quiet"], False)):
        monkeypatch.setattr(sys, "argv", argv)
        _common.arguments("test")
        bar = _common.progress("test")
        assert bar.enabled is shown
        bar.expect(3)  # compare announces its runs, then reports each
        bar("bsp", 0)
        assert (bar.bar.n, bar.bar.total) == ((1, 3) if shown else (0, 3))  # off: not counted
        bar.close()
    monkeypatch.setattr(_common, "QUIET", False)
