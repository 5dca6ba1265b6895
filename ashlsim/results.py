"""What a run returns: records turned into pandas DataFrames (docs/DESIGN.md section 5)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ScenarioError
from .folders import STAGING, claim, clean_staging

# columns a run always fills (a loss, an accuracy or a staleness may be nan; these never are)
COUNTED = {"time_s", "updates", "version", "epoch", "bytes_up", "bytes_down", "worker", "speed",
           "compute_s", "comm_s", "wait_s", "down_s", "iterations", "samples", "pushes",
           "lost_pushes", "dropped", "applied", "start_s", "end_s"}  # fmt: skip
HISTORY_COLUMNS = [
    "time_s",
    "updates",
    "version",
    "epoch",
    "loss",
    "test_loss",
    "accuracy",
    "bytes_up",
    "bytes_down",
    "stage",
]
WORKER_COLUMNS = [
    "worker", "speed", "compute_s", "comm_s", "wait_s", "down_s", "idle_share", "iterations",
    "samples", "pushes", "lost_pushes", "dropped", "applied", "bytes_up", "bytes_down",
    "mean_staleness", "max_staleness", "mean_staleness_samples",
]  # fmt: skip
EVENT_COLUMNS = ["worker", "kind", "start_s", "end_s"]
FAULT_COLUMNS = ["worker", "kind", "start_s", "end_s", "lost_push"]
STAGE_COLUMNS = ["time_s", "from_stage", "to_stage", "loss", "reason"]
# the scalar facts of a run, saved in run.json next to its frames
RUN_FACTS = [
    "engine",
    "seed",
    "stop_reason",
    "elapsed_s",
    "pushes_sent",
    "pushes_applied",
    "lost_pushes",
    "pushes_dropped",
    "pushes_pending",
    "scheme_columns",
    "time_to_target_s",
    "updates_to_target",
    "time_to_target_resolution_s",
]
FACT_TYPES = {
    "engine": (str,), "seed": (int,), "stop_reason": (str,), "elapsed_s": (float, int),
    "pushes_sent": (int,), "pushes_applied": (int,), "lost_pushes": (int,),
    "pushes_dropped": (int,), "pushes_pending": (int,), "scheme_columns": (list,),
    "time_to_target_s": (float, int), "updates_to_target": (float, int),
    "time_to_target_resolution_s": (float, int), "tables": (list,),
}  # fmt: skip
# the files a saved run wrote are listed here, so that a new run in the same folder removes the
# ones it does not write (and nothing else); curve.png is the command line's figure of the run
MANIFEST = ".ashlsim-run"
ALWAYS_STALE = ["curve.png", "curve.pdf", "curve.svg", "trace.json"]


@dataclass
class Result:
    """The outcome of one run.

    ``history``: one row per evaluation of the global model (simulated ``time_s``). ``workers``:
    one row per worker (seconds computing, communicating and waiting, counts and bytes).
    ``events``: pull/compute/push/wait/exchange intervals (and faults) when recorded. ``faults``: one row
    per injected fault (``end_s`` inf: never over). ``lost_pushes``: pushes computed by a worker
    that crashed before delivering them (never applied). ``pushes_dropped``: pushes the scheme
    refused on arrival (late ones a barrier drops) or lost after it (an all-reduce's delta whose
    machine crashed), never applied. ``pushes_pending``: pushes received
    but not applied when the run stopped (a round's buffer, pushes held at a bound):
    ``pushes_sent == pushes_applied + pushes_dropped + pushes_pending``. ``stop_reason``: ``time_limit``,
    ``target_accuracy``, ``epochs``, ``diverged`` or ``all_workers_down``.
    """

    scenario: object
    seed: int
    stop_reason: str
    elapsed_s: float
    history: pd.DataFrame
    workers: pd.DataFrame
    events: pd.DataFrame | None = None
    tables: dict = field(default_factory=dict)  # the scheme's own tables (name -> DataFrame)
    scheme_columns: list = field(default_factory=list)  # the scheme's own columns of workers
    stage_changes: pd.DataFrame = field(default_factory=pd.DataFrame)
    faults: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAULT_COLUMNS))
    pushes_sent: int = 0
    pushes_applied: int = 0
    lost_pushes: int = 0
    pushes_dropped: int = 0
    pushes_pending: int = 0
    final_params: np.ndarray | None = None
    # "simulator" (times are simulated seconds) or "emulator" (measured seconds of real
    # processes, ``ashlsim.emulator``)
    engine: str = "simulator"
    # when the global model first reached ``stop.target_accuracy``, located to the version
    # applied between two evaluations that made it (nan: never); the resolution is 0 when
    # exact (``runloop.RunLoop._reached``)
    time_to_target_s: float = math.nan
    updates_to_target: float = math.nan
    time_to_target_resolution_s: float = math.nan

    @classmethod
    def from_simulation(cls, sim) -> Result:
        elapsed = sim.env.now
        workers = _worker_table(sim, elapsed)
        scheme_columns = sim.strategy.worker_columns()
        for column, values in scheme_columns.items():
            workers[column] = values
        records, events = sim.records, None
        if records.events is not None:
            events = pd.DataFrame(records.events, columns=EVENT_COLUMNS).sort_values(
                ["start_s", "worker"], kind="stable", ignore_index=True
            )
        return cls(
            scenario=sim.scenario,
            seed=sim.seed,
            stop_reason=sim.stop_reason,
            elapsed_s=elapsed,
            history=pd.DataFrame(records.history, columns=HISTORY_COLUMNS),
            workers=workers,
            events=events,
            tables=dict(sim.strategy.tables()),
            scheme_columns=list(scheme_columns),
            stage_changes=pd.DataFrame(records.stage_changes, columns=STAGE_COLUMNS),
            faults=pd.DataFrame(records.faults, columns=FAULT_COLUMNS),
            pushes_sent=sum(w.stats.pushes for w in sim.workers),
            lost_pushes=sum(w.lost_pushes for w in sim.workers),
            pushes_dropped=sum(w.dropped for w in sim.workers),
            pushes_applied=sim.server.applied_pushes,
            pushes_pending=sim.strategy.pending(),
            final_params=sim.server.params,
            engine=sim.engine,
            **(sim.target_crossing or {}),
        )

    def to_trace(self, path: str | Path) -> Path:
        """Write the run's timeline as a Chrome trace (JSON) to ``path``, for Perfetto
        (https://ui.perfetto.dev) or ``chrome://tracing`` (``ashlsim.trace``); the run must
        have recorded its events (``events=True``)."""
        from .trace import write_trace

        return write_trace(self, path)

    def time_to_accuracy(self, target: float | None = None) -> float:
        """First simulated time (s) the test accuracy reached ``target``; NaN if it never did.
        For the scenario's ``stop.target_accuracy`` (the default) it is the located crossing
        (``time_to_target_s``); for another target, the first evaluation that reached it (on
        the evaluation grid)."""
        scenario_target = self.scenario.stop.target_accuracy
        if target is None:
            target = scenario_target
        if target is None:
            return math.nan
        if target == scenario_target:
            return self.time_to_target_s
        hit = self.history.loc[self.history["accuracy"] >= target, "time_s"]
        return float(hit.iloc[0]) if len(hit) else math.nan

    def __eq__(self, other) -> bool:
        """Two results are equal when everything they hold is: the scenario and seed, every
        fact of ``RUN_FACTS`` (NaN equal to NaN), every frame and table (``DataFrame.equals``:
        values, dtypes and order) and the final parameters. Same scenario and seed, same
        engine: equal (the simulator is deterministic)."""
        if not isinstance(other, Result):
            return NotImplemented
        if self.scenario != other.scenario or list(self.tables) != list(other.tables):
            return False
        for key in RUN_FACTS:
            mine, theirs = getattr(self, key), getattr(other, key)
            both_nan = isinstance(mine, float) and isinstance(theirs, float) and mine != mine
            if mine != theirs and not (both_nan and theirs != theirs):
                return False
        frames = ["history", "workers", "events", "stage_changes", "faults"]
        pairs = [(getattr(self, f), getattr(other, f)) for f in frames]
        pairs += [(self.tables[name], other.tables[name]) for name in self.tables]
        if any((a is None) != (b is None) or (a is not None and not a.equals(b)) for a, b in pairs):
            return False
        a, b = self.final_params, other.final_params
        return (a is None) == (b is None) and (a is None or np.array_equal(a, b))

    __hash__ = None  # (mutable frames)

    def summary(self) -> dict:
        """Headline numbers of the run, one flat dict."""
        last = self.history.iloc[-1]
        return {
            "strategy": self.scenario.strategy.name,
            "seed": self.seed,
            "stop_reason": self.stop_reason,
            "elapsed_s": self.elapsed_s,
            "time_to_target_s": self.time_to_accuracy(),
            "time_to_target_resolution_s": self.time_to_target_resolution_s,
            "final_accuracy": float(last["accuracy"]),
            "final_loss": float(last["loss"]),
            "updates": int(last["updates"]),
            "epochs": float(last["epoch"]),
            "bytes_up": int(self.workers["bytes_up"].sum()),
            "bytes_down": int(self.workers["bytes_down"].sum()),
            "mean_idle_share": float(self.workers["idle_share"].mean()),
        }

    def save(self, directory: str | Path) -> Path:
        """Write history.csv, workers.csv, scenario.yaml (and events, the scheme's own tables,
        stage changes, faults when there are any) into a folder. ``scenario.yaml`` records the seed the run
        used, so running it again reproduces the run. The files are written aside first and then
        moved in, and a file of an earlier run that this one does not write is removed only if
        it is, byte for byte, what that run wrote (the manifest records each file's SHA-256;
        anything else in the folder, or a file edited since, is left alone): the folder holds
        one whole run. A target that is a folder or a link is refused before anything moves."""
        with claim(directory):  # no other writer meanwhile; a killed one's leftovers go
            out = Path(directory)
            clean_staging(out)
            return self._save(out)

    def _save(self, out: Path) -> Path:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}staging-", dir=out))
        try:
            written = self._write(staging)
            for name in [*written, *ALWAYS_STALE]:
                check_target(out / name)
            digests = {name: _digest(staging / name) for name in written}
            for name, digest in _read_manifest(out / MANIFEST).items():
                path = out / name
                if name not in digests and path.is_file() and _digest(path) == digest:
                    path.unlink()
            for name in set(ALWAYS_STALE) - set(written):  # the command line draws them anew
                (out / name).unlink(missing_ok=True)
            for name in written:
                os.replace(staging / name, out / name)
            lines = [f"{digest}  {name}" for name, digest in digests.items()]
            (out / MANIFEST).write_text("\n".join(lines) + "\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return out

    def _write(self, folder: Path) -> list[str]:
        tables = {
            "history.csv": self.history,
            "workers.csv": self.workers,
            "events.csv": self.events,
            "stage_changes.csv": self.stage_changes if len(self.stage_changes) else None,
            "faults.csv": self.faults if len(self.faults) else None,
            **{f"{name}.csv": table for name, table in self.tables.items()},
        }
        written = []
        for name, table in tables.items():
            if table is not None:
                table.to_csv(folder / name, index=False)
                written.append(name)
        scenario = self.scenario.replace(seed=self.seed)  # the seed this run used
        (folder / "scenario.yaml").write_text(scenario.to_yaml())
        facts = {key: getattr(self, key) for key in RUN_FACTS}
        facts["tables"] = list(self.tables)
        (folder / "run.json").write_text(json.dumps(facts, indent=1, default=float))
        written += ["scenario.yaml", "run.json"]
        if self.final_params is not None:
            np.save(folder / "final_params.npy", self.final_params)
            written.append("final_params.npy")
        return written

    @classmethod
    def load(cls, directory: str | Path) -> Result:
        """The ``Result`` a ``save`` wrote into ``directory`` (frames as CSV gives them back).
        Each file is checked as it is read: a folder that is not a whole saved run (a file
        missing, truncated or edited into another shape) is a ``ScenarioError`` naming it."""
        from .scenario import load_scenario

        folder = Path(directory)
        field = f"result {folder}"
        facts = _read_facts(folder / "run.json", field)
        scenario = load_scenario(folder / "scenario.yaml")
        if scenario.seed != facts["seed"]:
            raise ScenarioError(f"{field}: run.json seed", facts["seed"],
                                f"the seed of scenario.yaml ({scenario.seed})")  # fmt: skip

        def frame(name, columns=None, numeric=(), rows=None, absent="missing"):
            """The table in file ``name``; ``absent``: what a missing file means (an error,
            None, or an empty table)."""
            path = folder / name
            if path.exists():
                return _read_frame(path, f"{field}: {name}", columns, numeric, rows)
            if absent == "missing":
                raise ScenarioError(f"{field}: {name}", None, "the file a run saves (missing)")
            return None if absent is None else pd.DataFrame(columns=columns)

        worker_columns = [*WORKER_COLUMNS, *facts["scheme_columns"]]
        params = folder / "final_params.npy"
        return cls(
            scenario=scenario,
            history=frame("history.csv", HISTORY_COLUMNS, HISTORY_COLUMNS[:-1]),
            workers=frame("workers.csv", worker_columns, WORKER_COLUMNS, scenario.cluster.workers),
            events=frame("events.csv", EVENT_COLUMNS, ("worker", "start_s", "end_s"), absent=None),
            stage_changes=frame("stage_changes.csv", STAGE_COLUMNS, absent="empty"),
            faults=frame("faults.csv", FAULT_COLUMNS, absent="empty"),
            tables={name: frame(f"{name}.csv") for name in facts.pop("tables")},
            final_params=_read_params(params, f"{field}: final_params.npy"),
            **facts,
        )


def _worker_table(sim, elapsed: float) -> pd.DataFrame:
    """One row per worker: its own report (``Worker.report``), and what the PS's books say of
    its pushes: how many it applied, and their staleness in versions and in samples (samples
    other pushes applied between this worker's pull and its push's application: comparable
    across schemes, where versions count pushes in one and rounds in another)."""
    staleness = pd.DataFrame(
        np.asarray(sim.server.staleness), columns=["worker", "staleness", "staleness_samples"]
    )
    per_worker = staleness.groupby("worker")
    every = range(sim.n_workers)
    table = pd.DataFrame([w.report(elapsed) for w in sim.workers])
    table["applied"] = per_worker.size().reindex(every, fill_value=0).to_numpy()
    table["mean_staleness"] = per_worker["staleness"].mean().reindex(every).to_numpy(float)
    table["max_staleness"] = per_worker["staleness"].max().reindex(every).to_numpy(float)
    table["mean_staleness_samples"] = (
        per_worker["staleness_samples"].mean().reindex(every).to_numpy(float)
    )
    return table[WORKER_COLUMNS]


RESULT_FILE_LIMIT = 1 << 30  # bytes of one saved file read back


def _readable(path: Path, field: str) -> None:
    if path.is_symlink() or not path.is_file():
        raise ScenarioError(field, str(path), "a regular file a run saved")
    if path.stat().st_size > RESULT_FILE_LIMIT:
        raise ScenarioError(
            field, path.stat().st_size, f"a file of at most {RESULT_FILE_LIMIT} bytes"
        )


def _read_facts(path: Path, field: str) -> dict:
    """run.json: exactly the facts a run saves, each of its type."""
    if not path.exists():
        raise ScenarioError(field, str(path.parent), "a folder a run was saved into (run.json)")
    _readable(path, f"{field}: run.json")
    try:
        facts = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(
            f"{field}: run.json", str(path), f"the JSON a run saves ({exc})"
        ) from None
    expected = {*RUN_FACTS, "tables"}
    if not isinstance(facts, dict) or set(facts) != expected:
        keys = sorted(facts) if isinstance(facts, dict) else type(facts).__name__
        raise ScenarioError(
            f"{field}: run.json", keys, f"a mapping of {', '.join(sorted(expected))}"
        )
    for key, kinds in FACT_TYPES.items():
        value = facts[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ScenarioError(f"{field}: run.json {key}", value, f"a {kinds[0].__name__}")
    for key in ("tables", "scheme_columns"):
        if not all(
            isinstance(name, str) and Path(name).name == name and name for name in facts[key]
        ):
            raise ScenarioError(f"{field}: run.json {key}", facts[key], "a list of plain names")
    for key in (
        "time_to_target_s",
        "time_to_target_resolution_s",
        "updates_to_target",
        "elapsed_s",
    ):
        facts[key] = float(facts[key]) if key != "updates_to_target" else facts[key]
    return facts


def _read_frame(path: Path, field: str, columns, numeric, rows) -> pd.DataFrame:
    _readable(path, field)
    try:
        table = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(field, str(path), f"a CSV table a run saves ({reason[:120]})") from None
    if columns is not None and list(table.columns) != list(columns):
        raise ScenarioError(field, list(table.columns), f"the columns {', '.join(columns)}")
    for column in numeric:
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise ScenarioError(f"{field} column {column}", table[column].dtype.name, "numbers")
    for column in set(numeric) & COUNTED:  # (a truncated row leaves them empty)
        if table[column].isna().any():
            raise ScenarioError(
                f"{field} column {column}", "an empty cell", "a number in every row"
            )
    if rows is not None and len(table) != rows:
        raise ScenarioError(field, f"{len(table)} rows", f"one row per worker ({rows})")
    return table


def _read_params(path: Path, field: str):
    if not path.exists():
        return None
    _readable(path, field)
    try:
        params = np.load(path, allow_pickle=False)
    # (a damaged header fails NumPy's parse of it: a TokenError or a SyntaxError)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:
        raise ScenarioError(field, str(path), f"a NumPy array file ({str(exc)[:120]})") from None
    if params.ndim != 1 or not np.issubdtype(params.dtype, np.floating):
        raise ScenarioError(field, f"{params.dtype}{params.shape}", "a flat float array")
    return params


def check_target(path: Path) -> None:
    """Refuse a path a run is to write a file to that is a folder or a link (``--out``)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ScenarioError("--out", str(path), "a file or nothing (not a folder or a link)")


MANIFEST_LIMIT = 1 << 20  # bytes of a manifest read; a longer one is not ours


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    """``name -> SHA-256`` of the files an earlier run wrote, from its manifest: only plain file
    names (no folder, no path out of the folder, not hidden) with a well-formed digest; anything
    else, or a manifest that is not a small regular file, names nothing."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MANIFEST_LIMIT:
        return {}
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        plain = name and Path(name).name == name and not name.startswith(".")
        if plain and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            out[name] = digest
    return out
