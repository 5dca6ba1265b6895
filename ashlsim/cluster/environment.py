"""The simulation's clock: SimPy's environment, plus a timeout at an absolute time."""

from __future__ import annotations

import heapq

import simpy
from simpy.events import NORMAL


class Environment(simpy.Environment):
    """``simpy.Environment`` with ``timeout_at``."""

    def timeout_at(self, at: float) -> simpy.Event:
        """An event that fires at exactly ``at`` (>= now), in the order of a timeout asked for
        now. ``timeout(at - now)`` fires at ``now + (at - now)``, which can round to a
        neighbouring float: one timeout that replaces two in a row (``Worker._iterate``) must
        end at the very float the second would have."""
        delay = at - self._now
        if delay < 0:
            raise ValueError(f"timeout_at({at}) is before now ({self._now})")
        if self._now + delay == at:
            return self.timeout(delay)
        event = simpy.Event(self)  # a triggered event on the queue is what a timeout is
        event._ok, event._value = True, None
        heapq.heappush(self._queue, (at, NORMAL, next(self._eid), event))
        return event
