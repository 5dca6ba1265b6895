"""Bulk synchronous parallel: one gradient step per worker, the PS applies the mean of all N."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import integer, spec, text
from ..errors import ScenarioError
from .base import BarrierParams, BarrierStrategy


@dataclass(frozen=True)
class BSPParams(BarrierParams):
    name: str = spec("bsp", text)
    backup_workers: int = spec(0, integer(0), "b: a round applies the first N - b pushes")

    def check(self, scenario):
        n = scenario.cluster.workers
        if self.backup_workers >= n:
            raise ScenarioError(
                "strategy.backup_workers", self.backup_workers, f"fewer than the {n} workers"
            )


class BSP(BarrierStrategy):
    """BSP (Valiant 1990; synchronous data-parallel SGD): every round each worker pushes one
    gradient step from the same parameters; the PS applies their mean; nobody starts the next
    round before that.

    With ``backup_workers: b`` (Chen et al. 2016, "Revisiting Distributed Synchronous SGD") the
    cluster's workers are N + b: a round closes with the first N pushes to arrive, and the b
    late ones are dropped when they come (counted in ``dropped``, never applied late)."""

    steady = True
    name = "bsp"
    Params = BSPParams

    @property
    def backups(self):
        return self.params.backup_workers
