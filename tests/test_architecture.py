"""The architecture, checked: strategies reach the cluster only through their port, and shared
code names no scheme."""

import ast
import re
from pathlib import Path

import ashlsim
from ashlsim.strategies import STRATEGIES

PACKAGE = Path(ashlsim.__file__).resolve().parent
SHARED = [*PACKAGE.glob("engine*.py"), *(PACKAGE / "cluster").glob("*.py"),
          PACKAGE / "results.py", PACKAGE / "cli.py", PACKAGE / "scenario.py",
          PACKAGE / "simport.py"]  # fmt: skip
# scheme names, and parameters only one scheme has
NAMES = [*STRATEGIES, "backup_workers", "h_ahl", "h_shl", "loss_preset", "s_preset", "r_preset",
         "min_commit_steps", "tau_0", "profile_iters", "switch_epochs"]  # fmt: skip


def test_shared_code_names_no_scheme_nor_its_parameters():
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b", re.I)
    found = [f"{path.name}:{i}: {line.strip()}" for path in SHARED
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]  # fmt: skip
    assert not found, found


def test_strategies_import_neither_simpy_nor_the_engine_nor_the_cluster():
    for path in (PACKAGE / "strategies").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                assert not name.startswith("simpy"), (path.name, name)
                assert "engine" not in name and "cluster" not in name and "simport" not in name, (
                    path.name, name)  # fmt: skip


def test_a_strategy_sees_the_port_not_the_simulation():
    sim = ashlsim.Simulation(ashlsim.Scenario())
    strategy = sim.strategy
    assert not any(value is sim for value in vars(strategy).values())
    assert type(strategy.port).__name__ == "SimPort"
