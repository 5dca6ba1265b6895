"""Asynchronous parallel SGD: every push applied on arrival, nobody ever waits."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import real, spec, text
from .base import Strategy, StrategyParams


@dataclass(frozen=True)
class ASPParams(StrategyParams):
    name: str = spec("asp", text)
    server_lr: float = spec(1.0, real(0, exclusive_min=True), "PS applies w += server_lr * delta")


class ASP(Strategy):
    """ASP (Hogwild!-style parameter server, Recht et al. 2011; Dean et al. 2012): one local
    step, then push; the PS applies ``w += server_lr * delta`` at once."""

    name = "asp"
    Params = ASPParams

    def receive(self, update):
        self.sim.server.apply([update], self.params.server_lr)
