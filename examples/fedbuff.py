"""FedBuff (Nguyen et al., AISTATS 2022, "Federated Learning with Buffered Asynchronous
Aggregation") as an ashlsim scheme, written only against ``ashlsim.extend``.

Workers never wait: each pulls the current model, takes ``local_steps`` SGD steps and pushes its
delta. The PS keeps arriving deltas in a buffer and, once it holds ``buffer_size`` of them,
applies their mean, each weighted by ``1 / sqrt(1 + staleness)`` (the paper's polynomial
staleness scaling), in one step through the server optimizer.

    from examples.fedbuff import FedBuff
    ashlsim.register_strategy(FedBuff)
    ashlsim.run(scenario.with_overrides({"strategy": {"name": "fedbuff", "buffer_size": 4}}))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ashlsim.extend import Strategy, StrategyParams, boolean, integer, spec, text


@dataclass(frozen=True)
class FedBuffParams(StrategyParams):
    name: str = spec("fedbuff", text)
    buffer_size: int = spec(4, integer(1), "K: deltas aggregated per server step")
    local_steps: int = spec(2, integer(1), "local SGD steps per push")
    staleness_scaling: bool = spec(True, boolean, "weight each delta by 1/sqrt(1 + staleness)")


class FedBuff(Strategy):
    """Buffered asynchronous aggregation: the PS steps once per ``buffer_size`` pushes."""

    name = "fedbuff"
    Params = FedBuffParams

    def start(self):
        super().start()
        self.buffer = []

    def local_steps(self, worker):
        return self.params.local_steps

    def receive(self, update):
        if self.params.staleness_scaling:  # versions applied since this delta's pull
            update.weight = 1.0 / math.sqrt(1.0 + self.port.version - update.pulled_version)
        self.buffer.append(update)
        if len(self.buffer) >= self.params.buffer_size:
            self.port.apply(self.buffer, 1.0 / len(self.buffer))
            self.buffer = []

    def pending(self):
        return len(self.buffer)
