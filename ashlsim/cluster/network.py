"""The network: per-worker links and the PS network card, a fluid max-min fair model.

Each direction of the PS card (ingress for pushes, egress for pulls) is a ``SharedCapacity``: every
transfer through it is also capped by its worker's own link, and the capacity is divided max-min
fairly (water-filling) among the transfers in flight, recomputed whenever one starts or ends
(DESIGN.md 2). n simultaneous transfers of S bytes through capacity B, with links faster than B/n,
all finish after n*S/B; latency is paid once, before the bytes flow.
"""

from __future__ import annotations

import math

import numpy as np
import simpy


class _Flow:
    __slots__ = ("remaining", "cap", "rate", "done")

    def __init__(self, remaining: float, cap: float, done: simpy.Event):
        self.remaining, self.cap, self.rate, self.done = remaining, cap, 0.0, done


class SharedCapacity:
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
        env = self.env
        if math.isinf(self.capacity):  # no sharing: the link alone sets the pace
            return env.timeout(nbytes / cap)
        done = env.event()
        if nbytes <= 0:
            return done.succeed()
        self._advance()
        self._flows.append(_Flow(float(nbytes), float(cap), done))
        self._reschedule()
        return done

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
        if not self._flows:
            return
        delay = min(f.remaining / f.rate for f in self._flows)
        wakeup = self.env.timeout(max(delay, 0.0))
        wakeup.callbacks.append(self._on_wakeup)
        self._wakeup = wakeup

    def _on_wakeup(self, event: simpy.Event) -> None:
        if event is not self._wakeup:  # superseded by a later start or end
            return
        self._advance()
        still = []
        for flow in self._flows:
            if flow.remaining <= flow.rate * self._EPS_S or flow.remaining <= 1e-9:
                flow.done.succeed()
            else:
                still.append(flow)
        self._flows = still
        self._reschedule()


class Network:
    """Per-worker uplinks and downlinks (bandwidth in bytes/s, latency in s) to a PS whose
    ingress and egress capacities are shared by concurrent transfers."""

    def __init__(
        self,
        env: simpy.Environment,
        up_bandwidth: np.ndarray,
        up_latency: np.ndarray,
        down_bandwidth: np.ndarray,
        down_latency: np.ndarray,
        ingress: float,
        egress: float,
    ):
        self.env = env
        self.up_bandwidth = [float(b) for b in up_bandwidth]
        self.up_latency = [float(x) for x in up_latency]
        self.down_bandwidth = [float(b) for b in down_bandwidth]
        self.down_latency = [float(x) for x in down_latency]
        self.ingress = SharedCapacity(env, ingress)
        self.egress = SharedCapacity(env, egress)

    def push(self, worker: int, nbytes: float):
        """Process: move ``nbytes`` from ``worker`` to the PS (uplink, then the PS ingress)."""
        return self._move(self.ingress, self.up_latency[worker], self.up_bandwidth[worker], nbytes)

    def pull(self, worker: int, nbytes: float):
        """Process: move ``nbytes`` from the PS to ``worker`` (PS egress, then the downlink)."""
        return self._move(
            self.egress, self.down_latency[worker], self.down_bandwidth[worker], nbytes
        )

    def _move(self, shared: SharedCapacity, latency: float, bandwidth: float, nbytes: float):
        env = self.env
        if math.isinf(shared.capacity):  # one event: latency plus the link's own time
            yield env.timeout(latency + nbytes / bandwidth)
            return
        if latency > 0:
            yield env.timeout(latency)
        yield shared.transfer(nbytes, bandwidth)

    def uncontended_time(self, worker: int, nbytes: float, direction: str) -> float:
        """Seconds a transfer would take alone: latency + bytes / min(link, PS capacity)."""
        if direction == "push":
            lat, bw, cap = self.up_latency[worker], self.up_bandwidth[worker], self.ingress.capacity
        else:
            lat, bw, cap = (
                self.down_latency[worker],
                self.down_bandwidth[worker],
                self.egress.capacity,
            )
        return lat + nbytes / min(bw, cap)
