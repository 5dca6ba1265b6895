"""The straightforward O(n)-per-event water-filling fluid model: the oracle the fast
``SharedCapacity`` is checked against (tests/test_network.py)."""

from __future__ import annotations

import math

import simpy


class _Flow:
    __slots__ = ("remaining", "cap", "rate", "done")

    def __init__(self, remaining: float, cap: float, done: simpy.Event):
        self.remaining, self.cap, self.rate, self.done = remaining, cap, 0.0, done


class ReferenceSharedCapacity:
    """A capacity in bytes/s shared max-min fairly by concurrent transfers, each with a cap."""

    # A flow this close to done (in seconds at its rate) is done: float rounding, not bytes.
    _EPS_S = 1e-12

    def __init__(self, env: simpy.Environment, capacity: float):
        self.env = env
        self.capacity = float(capacity)
        self._flows: list[_Flow] = []
        self._last = 0.0
        self._wakeup: simpy.Event | None = None

    def transfer(self, nbytes: float, cap: float) -> simpy.Event:
        """An event that succeeds when ``nbytes`` have passed at most ``cap`` bytes/s."""
        if math.isinf(self.capacity):  # no sharing: the link alone sets the pace
            return self.env.timeout(nbytes / cap)
        return self.start(nbytes, cap).done

    def start(self, nbytes: float, cap: float) -> _Flow:
        """Start a transfer that can be re-capped (``set_cap``) or cancelled (``cancel``)."""
        flow = _Flow(float(nbytes), float(cap), self.env.event())
        if nbytes <= 0:
            flow.done.succeed()
            return flow
        self._advance()
        self._flows.append(flow)
        self._reschedule()
        return flow

    def set_cap(self, flow: _Flow, cap: float) -> None:
        """Change a flow's cap mid-transfer (0 stalls it: a link outage)."""
        if flow.done.triggered:
            return
        self._advance()
        flow.cap = float(cap)
        self._reschedule()

    def cancel(self, flow: _Flow) -> None:
        """Drop a flow that will never finish (its worker crashed); frees its share."""
        if flow.done.triggered or flow not in self._flows:
            return
        self._advance()
        self._flows.remove(flow)
        self._reschedule()

    @property
    def active(self) -> int:
        """Transfers in flight."""
        return len(self._flows)

    def _advance(self) -> None:
        now = self.env.now
        elapsed = now - self._last
        if elapsed > 0:
            for flow in self._flows:
                flow.remaining -= flow.rate * elapsed
        self._last = now

    def _allocate(self) -> None:
        """Water-filling: flows capped below the fair share keep their cap, the rest share."""
        flows = self._flows
        left, count = self.capacity, len(flows)
        if sum(f.cap for f in flows) <= left:
            for flow in flows:
                flow.rate = flow.cap
            return
        for flow in sorted(flows, key=lambda f: f.cap):
            share = left / count
            if flow.cap <= share:
                flow.rate = flow.cap
                left -= flow.cap
                count -= 1
            else:
                flow.rate = share
        # flows after the break all get the same share: set in the loop above

    def _reschedule(self) -> None:
        self._allocate()
        delays = [f.remaining / f.rate for f in self._flows if f.rate > 0]
        if not delays:  # nothing moves (no flows, or all stalled): nothing to wake up for
            self._wakeup = None
            return
        delay = min(delays)
        wakeup = self.env.timeout(max(delay, 0.0))
        wakeup.callbacks.append(self._on_wakeup)
        self._wakeup = wakeup

    def _on_wakeup(self, event: simpy.Event) -> None:
        if event is not self._wakeup:  # superseded by a later start or end
            return
        self._advance()
        still = []
        for flow in self._flows:
            if flow.rate > 0 and (
                flow.remaining <= flow.rate * self._EPS_S or flow.remaining <= 1e-9
            ):
                flow.done.succeed()
            else:
                still.append(flow)
        self._flows = still
        self._reschedule()
