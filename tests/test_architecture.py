"""The architecture, checked: strategies reach the cluster only through their port, and shared
code names no scheme."""

import ast
import dataclasses
import re
from pathlib import Path

import ashlsim
from ashlsim.models import MODELS, ModelParams
from ashlsim.strategies import STRATEGIES

PACKAGE = Path(ashlsim.__file__).resolve().parent
SHARED = [*PACKAGE.glob("engine*.py"), *(PACKAGE / "cluster").glob("*.py"),
          PACKAGE / "results.py", PACKAGE / "cli.py", PACKAGE / "scenario.py",
          PACKAGE / "simport.py", PACKAGE / "runloop.py", PACKAGE / "faults.py",
          PACKAGE / "training.py", PACKAGE / "compression.py", PACKAGE / "sweep.py",
          PACKAGE / "plots.py", PACKAGE / "stats.py", PACKAGE / "report.py", PACKAGE / "compare.py",
          *[PACKAGE / "emulator" / f for f in ("ps.py", "wire.py", "worker.py")]]  # fmt: skip
# scheme names, and parameters only one scheme has
NAMES = [*STRATEGIES, "backup_workers", "h_ahl", "h_shl", "loss_preset", "s_preset", "r_preset",
         "min_commit_steps", "tau_0", "profile_iters", "switch_epochs"]  # fmt: skip


def test_shared_code_names_no_scheme_nor_its_parameters():
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b", re.I)
    found = [f"{path.name}:{i}: {line.strip()}" for path in SHARED
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]  # fmt: skip
    assert not found, found


def test_shared_code_names_no_model_nor_its_parameters():
    """Models are found by name in the registry; shared code reads what a model declares
    (``trains``, ``stacks``, ``segments``). ("none" is also a value of other settings.)"""
    names = [name for name in MODELS if name != "none"]
    fields = {f.name for cls in MODELS.values() for f in dataclasses.fields(cls.Params)}
    only_one = sorted(fields - {f.name for f in dataclasses.fields(ModelParams)})
    quoted, attributes = "|".join(names), "|".join(only_one)
    pattern = re.compile(rf"""(['"])({quoted})\1|\bmodel\.({attributes})\b""")
    found = [f"{path.name}:{i}: {line.strip()}" for path in [*SHARED, PACKAGE / "data.py"]
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]  # fmt: skip
    assert only_one and not found, found


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


def test_no_function_of_the_package_is_longer_than_a_screen():
    """60 lines at most, docstring included (ruff checks complexity and statements)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long.append((str(path.relative_to(PACKAGE)), node.name, length))
    assert not long, long


def test_the_import_graph_has_no_cycle():
    import collections

    edges = collections.defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = parts[:-1] if parts[-1] == "__init__" else parts
        for node in ast.parse(path.read_text()).body:  # module-level imports only
            if isinstance(node, ast.ImportFrom) and node.level:
                base = list(module if parts[-1] == "__init__" else module[:-1])
                base = base[: len(base) - (node.level - 1)]
                target = tuple(base + (node.module.split(".") if node.module else []))
                edges[tuple(module)].add(target)

    def visit(node, stack):
        assert node not in stack, " -> ".join(".".join(m) for m in [*stack, node])
        for nxt in edges.get(node, ()):
            visit(nxt, [*stack, node])

    for module in list(edges):
        visit(module, [])


def test_the_emulator_drives_the_same_strategy_classes():
    from ashlsim.emulator import Emulation
    from ashlsim.strategies.base import Port

    for name in ("bsp", "ssp", "ashl"):
        emulation = Emulation(ashlsim.Scenario().with_overrides({"strategy.name": name}))
        try:
            assert type(emulation.strategy) is STRATEGIES[name]
            port = emulation.strategy.port
            missing = [m for m in dir(Port) if not m.startswith("_") and not hasattr(port, m)]
            assert not missing, missing
        finally:
            emulation.close()
