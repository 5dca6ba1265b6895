"""Reading YAML the way a user means it, and refusing what would hurt.

One loader for scenario, sweep and recipe files and for values on the command line:

- numbers as YAML 1.2 reads them: ``1.25e7`` and ``1e-3`` are floats (PyYAML's YAML 1.1
  resolver reads them as strings);
- a key given twice in one mapping is an error (YAML would silently keep the last);
- anchors and aliases are refused: a 1 kB file of nested aliases expands to 10^9 values, and a
  scenario never needs them;
- a file that is not UTF-8 text is an error, not a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .errors import ScenarioError

_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$""",
    re.X,
)


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats, no duplicate keys and no aliases."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ScenarioError(
                f"line {event.start_mark.line + 1}",
                f"*{event.anchor}",
                "no YAML anchors or aliases (write the values out)",
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the parser below says so
                continue
            if duplicate:
                raise ScenarioError(
                    f"line {key_node.start_mark.line + 1}", key, "each key once per mapping"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def loads(text: str, source: str = "value"):
    """Parse YAML text; a syntax error is a ``ScenarioError`` naming ``source``."""
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(source, _short(text), f"valid YAML ({_first_line(exc)})") from None


MAX_FILE_BYTES = 64 << 20  # a scenario, recipe or sweep file longer than this is not one


def refuse_special(path: Path, field: str, kind: str) -> None:
    """Refuse a path to read that exists but is not a regular file: a FIFO or a device would
    block or never end, a folder is no file (a missing one is left to ``open`` to name)."""
    if path.exists() and not path.is_file():
        raise ScenarioError(
            field, str(path), f"a regular {kind} file (not a device, pipe or folder)"
        )


def load_file(path: str | Path, what: str = "scenario"):
    """Read and parse a YAML file: unreadable, binary, malformed or oversized files, and
    anything that is not a regular file (a FIFO or a device would block or never end), are
    ScenarioErrors."""
    path = Path(path)
    try:
        refuse_special(path, what, "YAML")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ScenarioError(
                what, str(path), f"a YAML file of at most {MAX_FILE_BYTES >> 20} MB"
            )
    except ScenarioError:
        raise
    except OSError as exc:
        raise ScenarioError(what, str(path), f"a readable YAML file ({exc.strerror})") from None
    except ValueError:  # e.g. a NUL byte in the name
        raise ScenarioError(what, str(path), "a file name without NUL bytes") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(what, str(path), "a YAML text file (UTF-8), not binary") from None
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(what, str(path), f"valid YAML ({_first_line(exc)})") from None


def _first_line(exc) -> str:
    return " ".join(str(exc).split())[:200]


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
