"""Local SGD: H local steps from the pulled model, then the PS averages the N deltas."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import integer, spec, text
from .base import MAX_LOCAL_STEPS, BarrierParams, BarrierStrategy


@dataclass(frozen=True)
class LocalSGDParams(BarrierParams):
    name: str = spec("local_sgd", text)
    local_steps: int = spec(2, integer(1, MAX_LOCAL_STEPS), "H: local SGD steps per round")


class LocalSGD(BarrierStrategy):
    """Local SGD / periodic averaging (Stich, ICLR 2019; Lin et al., ICLR 2020): every worker
    takes H steps, the PS applies the mean of the N deltas, a barrier ends the round."""

    steady = True
    name = "local_sgd"
    Params = LocalSGDParams

    def local_steps(self, worker):
        return self.params.local_steps
