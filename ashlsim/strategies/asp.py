"""Asynchronous parallel SGD: every push applied on arrival, nobody ever waits."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import spec, text
from .base import Strategy, StrategyParams


@dataclass(frozen=True)
class ASPParams(StrategyParams):
    name: str = spec("asp", text)

    def merges(self) -> str | None:
        return "each"


class ASP(Strategy):
    """ASP (Hogwild!-style parameter server, Recht et al. 2011; Dean et al. 2012): one local
    step, then push; the PS applies each delta at once, through the server optimizer
    (plain: ``w += lr_s * delta``)."""

    steady = True
    name = "asp"
    Params = ASPParams

    def receive(self, update):
        self.port.apply([update])
