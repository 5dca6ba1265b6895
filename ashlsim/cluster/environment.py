"""The simulation's clock: SimPy's environment, plus a timeout at an absolute time."""

from __future__ import annotations

import heapq

import simpy
from simpy.events import NORMAL


class Environment(simpy.Environment):
    """``simpy.Environment`` with ``timeout_at``, and ``now`` a plain attribute."""

    now = 0.0  # shadows SimPy's property over ``_now``: read millions of times (``step``)

    def __init__(self, initial_time: float = 0):
        super().__init__(initial_time)
        self.now = self._now

    def step(self) -> None:
        """SimPy's ``step`` (4.1), keeping ``now`` equal to ``_now``."""
        try:
            now, _, _, event = heapq.heappop(self._queue)
        except IndexError:
            raise simpy.core.EmptySchedule from None
        self._now = self.now = now
        callbacks, event.callbacks = event.callbacks, None
        try:
            for callback in callbacks:
                callback(event)
        except simpy.core.StopSimulation:
            event.callbacks = callbacks[callbacks.index(callback) + 1 :]
            self.schedule(event, -1)  # SimPy's EventPriority(-1)
            raise
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc

    def timeout_at(self, at: float, kind: type[Due] | None = None) -> Due:
        """An event (a ``Due``, or of the subclass ``kind``) that fires at exactly ``at``
        (>= now), in the order of a timeout asked for now. ``timeout(at - now)`` fires at
        ``now + (at - now)``, which can round to a neighbouring float: a worker's steps ask for
        a timeout at a time (``worker.Iterations``), and one that replaces two in a row must end
        at the very float the second would have."""
        if at < self._now:
            raise ValueError(f"timeout_at({at}) is before now ({self._now})")
        event = Due(self) if kind is None else kind(self)
        heapq.heappush(self._queue, (at, NORMAL, next(self._eid), event))
        return event

    def due(self, delay: float, kind: type[Due] | None = None) -> Due:
        """``timeout(delay)`` as a slotted ``Due`` (or ``kind``): the same time, ``now +
        delay``, and the same order, without the dict a ``simpy.Timeout`` carries (the
        network makes one for most transfers and wakeups)."""
        return self.timeout_at(self._now + delay, kind)


class Due:
    """A triggered event, not on the queue yet: what a timeout is once it is (``timeout_at``).
    It has what a process and ``step`` read of an event (``callbacks``, ``_ok``,
    ``_value``), in slots: a process makes one per timeout it asks for, and a ``simpy.Event``
    carries a dict."""

    __slots__ = ("env", "callbacks", "_ok", "_value")

    def __init__(self, env: Environment):
        self.env, self.callbacks, self._ok, self._value = env, [], True, None
