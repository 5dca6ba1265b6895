"""Output folders: one writer at a time, and what a killed writer left behind cleaned up.

A command that writes into a folder (``run``, ``emulate``, ``compare``, ``sweep`` with
``--out``; ``Result.save`` in Python) first *claims* it: an exclusive ``flock`` on the hidden
file ``.ashlsim-lock`` inside it, held until the writing is done and released by the system
if the process dies. A second process that claims the folder meanwhile gets a
``ScenarioError`` naming it at once, before it runs anything. Holding the claim, a writer
knows that a hidden ``.ashlsim-*`` folder inside is a killed writer's staging folder, and
removes it. (Where ``fcntl`` does not exist, on Windows, folders are not locked.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import ScenarioError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK = ".ashlsim-lock"
STAGING = ".ashlsim-"  # the prefix of a writer's staging folders (and of the lock and manifest)
_held: dict[str, int] = {}  # folder (real path) -> claims this process holds on it


@contextlib.contextmanager
def claim(folder: str | Path, option: str = "--out") -> Iterator[Path]:
    """Hold ``folder`` (made if missing) while the block runs; a claim another process holds
    is a ScenarioError naming ``option``. Claims nest within one process. The folders this
    claim made are removed again if nothing was written into them (the writer failed)."""
    folder = Path(folder)
    made = []  # the folders this claim makes, deepest first
    missing = folder
    while not missing.exists() and missing != missing.parent:
        made.append(missing)
        missing = missing.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(
            option, str(folder), f"a folder we can write ({exc.strerror})"
        ) from None
    key = os.path.realpath(folder)
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ScenarioError(
                    option,
                    str(folder),
                    "a folder no other ashlsim command is writing into (another one holds it "
                    "now: wait for it, or choose another folder)",
                ) from None
        _held[key] = 1
        try:
            yield folder
        finally:
            del _held[key]
    finally:
        os.close(fd)  # (releases the lock)
        if made and [p.name for p in folder.iterdir()] == [LOCK]:
            with contextlib.suppress(OSError):
                (folder / LOCK).unlink()
                for path in made:  # (each empty now, deepest first)
                    path.rmdir()


def clean_staging(folder: Path) -> None:
    """Remove the staging folders a killed writer left in ``folder`` (call holding its claim:
    then no live writer has one there)."""
    for path in folder.glob(f"{STAGING}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
