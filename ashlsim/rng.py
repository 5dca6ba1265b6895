"""One integer seed, split into independent named streams (docs/DESIGN.md section 6).

Each stream is a ``numpy.random.Generator`` on ``SeedSequence(seed, spawn_key=key)`` where the key
is derived from the stream's name (and worker index), never from the order streams were asked for:
adding a worker or a new consumer of randomness does not shift anybody else's draws.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


class Streams:
    """Named random streams spawned from one seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def get(self, name: str, worker: int | None = None) -> np.random.Generator:
        """The stream ``name`` (per worker when ``worker`` is given)."""
        key = (_key(name),) if worker is None else (_key(name), int(worker))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))
