"""The network: per-worker links and the PS network card, a fluid max-min fair model.

Each direction of the PS card (ingress for pushes, egress for pulls) is a ``SharedCapacity``: every
transfer through it is also capped by its worker's own link, and the capacity is divided max-min
fairly (water-filling) among the transfers in flight, recomputed whenever one starts or ends
(docs/DESIGN.md section 2). n simultaneous transfers of S bytes through capacity B, with links faster than B/n,
all finish after n*S/B; latency is paid once, before the bytes flow.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import simpy

from .environment import Due


class _Flow:
    __slots__ = ("cap", "done", "where", "key", "stamp", "remaining", "since", "timed", "seq")

    def __init__(self, cap: float, done: simpy.Event | None):
        self.cap, self.done = cap, done
        self.timed = False  # ``done`` is a timeout at the finish (see ``SharedCapacity.start``)
        self.where = None  # "level": shares the level; "capped": runs at its cap; None: gone
        self.key = 0.0  # U: virtual finish (bytes of level service); K: absolute finish time
        self.stamp = 0  # bumped on every move: heap entries with an old stamp are stale
        self.remaining = 0.0  # K: bytes left at ``since``
        self.since = 0.0


class _TimedDone(Due):
    """A timed flow's timeout (``Environment.due``), and the flow it ends
    (``SharedCapacity._timed_done``)."""

    __slots__ = ("flow",)


class SharedCapacity:
    """A capacity in bytes/s shared max-min fairly by concurrent transfers, each with a cap.

    Water-filling gives every flow ``min(cap, L)`` with the level ``L`` chosen so the rates fill
    the capacity. A flow runs at the level (``where == "level"``) or at its cap (``"capped"``). Uncapped flows all gain
    the same bytes, so one virtual clock ``V`` (bytes served per uncapped flow) tracks them all:
    a flow joining with ``r`` bytes finishes when ``V`` reaches ``V_join + r``. Capped flows
    finish at a fixed time. Heaps (lazy deletion) hold finish keys and caps, so a start, an end
    or a cap change costs O(log n), plus one move per flow that crosses the level: nothing is
    O(n) per event, and thousands of concurrent transfers stay cheap (tests compare it with a
    plain O(n) water-filling).

    A transfer that starts at its cap while nothing shares the capacity (``timed``) finishes
    at a time known now, unless later arrivals push the capacity into sharing: its ``done`` is
    a plain timeout at that time, one event instead of a wakeup and a completion (most
    transfers on a lightly loaded card). If sharing does come, the timeout is defused (the
    waiting process moves to a new event) and the flow is shared like any other.

    A transfer can also be ``reserve``d ahead of its start (its link latency): if the card
    cannot fill up before then (nothing shares it, and the flows running, reserved or
    ``expect``ed to join fit together with it), it will start at its cap, and its timeout can be
    set now for latency + transfer; it joins the card's books when its start time comes.
    """

    # A flow this close to done (in seconds at its rate) is done: float rounding, not bytes.
    _EPS_S = 1e-12

    def __init__(self, env: simpy.Environment, capacity: float):
        self.env = env
        self.capacity = float(capacity)
        self._virtual = 0.0  # V
        self._last = 0.0
        self._n_level = 0
        self._capped_rate = 0.0
        self._count = 0
        self._seq = 0
        self._u_finish: list = []  # (V at finish, seq, stamp, flow)
        self._level_caps: list = []  # (cap, ...): the smallest cap among uncapped flows
        self._k_finish: list = []  # (time of finish, ...)
        self._capped_caps: list = []  # (-cap, ...): the largest cap among capped flows
        self._wakeup: simpy.Event | None = None
        self._wakeup_at = math.inf
        self._timed_done_cb = self._timed_done  # one bound method, recognised by identity
        self._reserved: list = []  # (start time, seq, flow): reserved, not started yet
        # Capped timed flows whose entry in ``_capped_caps`` is not pushed yet (insertion
        # ordered; each holds the seq of that entry): only sharing looks at that heap, and
        # most timed flows finish before any sharing, so their entries are pushed when
        # ``_settle`` needs them, with the seq they would have had: the heap's order is the same
        self._unheaped: dict = {}
        self._reserved_caps = 0.0
        self._expected = 0.0  # caps of transfers announced to join after their latency

    def transfer(self, nbytes: float, cap: float) -> simpy.Event:
        """An event that succeeds when ``nbytes`` have passed at most ``cap`` bytes/s."""
        if math.isinf(self.capacity):  # no sharing: the link alone sets the pace
            return self.env.timeout(nbytes / cap)
        return self.start(nbytes, cap).done

    def start(self, nbytes: float, cap: float, timed: bool = False) -> _Flow:
        """Start a transfer that can be re-capped (``set_cap``) or cancelled (``cancel``).
        ``timed``: it may finish through a plain timeout (only for a waiter that is never
        interrupted: the timeout it waits on may be replaced)."""
        env = self.env
        flow = _Flow(float(cap), None)
        if nbytes <= 0:
            flow.done = env.timeout(0.0)
            return flow
        if self._reserved and self._reserved[0][0] <= self.env.now:
            self._start_reserved()
        self._advance()
        self._count += 1
        if (
            not self._n_level and self._capped_rate + cap <= self.capacity
        ):  # fits at its cap: no sharing
            if timed:
                flow.timed = True
                self._time(flow, nbytes / cap)
            else:
                flow.done = env.event()
            self._to_k(flow, float(nbytes))
            if not timed:
                self._wake_at(flow.key)
        else:
            flow.done = env.event()
            self._to_u(flow, float(nbytes))
            self._settle()
        return flow

    def expect(self, cap: float) -> None:
        """A transfer capped at ``cap`` bytes/s will join after its latency (negative: it
        joined, or never will): ``reserve`` counts it as running."""
        self._expected += cap

    def reserve(self, nbytes: float, cap: float, delay: float) -> _Flow | None:
        """A timed flow of ``nbytes`` that starts ``delay`` s from now at ``cap`` bytes/s, if it
        is sure to start at its cap: no flow joins before it but those running, reserved or
        expected (the caller knows: no transfer asked later can start earlier), and all of them
        fit with it. Else None."""
        if self._reserved and self._reserved[0][0] <= self.env.now:
            self._start_reserved()
        if (
            self._n_level
            or self._capped_rate + self._reserved_caps + self._expected + cap > self.capacity
        ):
            return None
        flow = _Flow(float(cap), None)
        flow.timed, flow.remaining = True, float(nbytes)
        self._time(flow, delay + nbytes / cap)
        self._seq += 1
        heapq.heappush(self._reserved, (self.env.now + delay, self._seq, flow))
        self._reserved_caps += flow.cap
        return flow

    def _start_reserved(self) -> None:
        """Put the reserved flows whose start time has come on the books, as of that time
        (nothing was shared meanwhile, so nothing else depended on them)."""
        now, reserved = self.env.now, self._reserved
        while reserved and reserved[0][0] <= now:
            at, _, flow = heapq.heappop(reserved)
            self._reserved_caps -= flow.cap
            self._count += 1
            flow.stamp += 1
            flow.where, flow.since = "capped", at
            flow.key = at + flow.remaining / flow.cap
            self._capped_rate += flow.cap
            self._seq += 1
            flow.seq = self._seq
            self._unheaped[flow] = None
        if not reserved:
            self._reserved_caps = 0.0  # no drift from float sums

    def set_capacity(self, capacity: float) -> None:
        """The capacity changes now: the flows in flight go on at their new shares."""
        self._advance()
        self.capacity = float(capacity)
        self._settle()

    def set_cap(self, flow: _Flow, cap: float) -> None:
        """Change a flow's cap mid-transfer (0 stalls it: a link outage)."""
        if flow.where is None:
            return
        self._untime(flow)
        self._advance()
        left = self._take(flow)
        flow.cap = float(cap)
        self._to_u(flow, left)
        self._settle()

    def cancel(self, flow: _Flow) -> None:
        """Drop a flow that will never finish (its worker crashed); frees its share."""
        if flow.where is None:
            return
        self._untime(flow)
        self._advance()
        self._take(flow)
        self._count -= 1
        self._settle()

    @property
    def active(self) -> int:
        """Transfers in flight."""
        return self._count

    @property
    def level(self) -> float:
        """The rate of every uncapped flow (inf when none is uncapped)."""
        return (self.capacity - self._capped_rate) / self._n_level if self._n_level else math.inf

    # ---- bookkeeping ------------------------------------------------------------------------
    def _push(self, heap, key, flow) -> None:
        self._seq += 1
        heapq.heappush(heap, (key, self._seq, flow.stamp, flow))

    def _top(self, heap, where):
        """The first live entry of ``heap`` (dropping stale ones), or None."""
        while heap:
            _, _, stamp, flow = heap[0]
            if flow.where == where and flow.stamp == stamp:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _to_u(self, flow: _Flow, left: float) -> None:
        flow.stamp += 1
        flow.where, flow.key = "level", self._virtual + left
        self._n_level += 1
        self._push(self._u_finish, flow.key, flow)
        self._push(self._level_caps, flow.cap, flow)

    def _to_k(self, flow: _Flow, left: float) -> None:
        flow.stamp += 1
        now = self.env.now
        flow.where, flow.remaining, flow.since = "capped", left, now
        flow.key = now + left / flow.cap if flow.cap > 0 else math.inf
        self._capped_rate += flow.cap
        if not flow.timed:  # a timed flow finishes by its own timeout
            self._push(self._k_finish, flow.key, flow)
            self._push(self._capped_caps, -flow.cap, flow)
        else:
            self._seq += 1
            flow.seq = self._seq
            self._unheaped[flow] = None

    def _take(self, flow: _Flow) -> float:
        """Remove ``flow`` from its set; its bytes left now."""
        if flow.where == "level":
            self._n_level -= 1
            left = flow.key - self._virtual
            flow.where = None
            flow.stamp += 1
        else:
            left = flow.remaining - flow.cap * (self.env.now - flow.since)
            self._take_capped(flow)
        return max(left, 0.0)

    def _take_capped(self, flow: _Flow) -> None:
        """Remove ``flow``, which runs at its cap (``_take`` without the bytes left)."""
        self._capped_rate -= flow.cap
        if self._unheaped:
            self._unheaped.pop(flow, None)
        flow.where = None
        flow.stamp += 1

    def _advance(self) -> None:
        now = self.env.now
        if self._n_level and now > self._last:
            self._virtual += self.level * (now - self._last)
        self._last = now

    def _settle(self) -> None:
        """Move flows across the level until every capped cap <= L < every uncapped cap, then
        schedule the next completion."""
        if not self._count:
            self._capped_rate = 0.0  # no drift from float sums
        if self._unheaped:
            heap = self._capped_caps
            for flow in self._unheaped:
                heapq.heappush(heap, (-flow.cap, flow.seq, flow.stamp, flow))
            self._unheaped.clear()
        while True:
            level = self.level
            low = self._top(self._level_caps, "level")
            if low is not None and low[0] <= level:
                flow = low[3]
                self._to_k(flow, self._take(flow))
                continue
            high = self._top(self._capped_caps, "capped")
            over = self._capped_rate > self.capacity if not self._n_level else False
            if high is not None and (-high[0] > level or over):
                flow = high[3]
                self._untime(flow)
                self._to_u(flow, self._take(flow))
                continue
            break
        at = math.inf
        first_k = self._top(self._k_finish, "capped")
        if first_k is not None:
            at = first_k[0]
        first_u = self._top(self._u_finish, "level")
        if first_u is not None:
            at = min(at, self.env.now + (first_u[0] - self._virtual) / self.level)
        self._wake_at(at, exact=True)

    def _wake_at(self, at: float, exact: bool = False) -> None:
        """Make sure a wakeup comes at ``at``: keep an earlier one (it reschedules when it finds
        nothing due) unless ``exact``; inf: nothing moves (no flows, or all stalled)."""
        if not exact and self._wakeup is not None and self._wakeup_at <= at:
            return
        if exact and at == self._wakeup_at and self._wakeup is not None:
            return
        if math.isinf(at):
            self._wakeup, self._wakeup_at = None, math.inf
            return
        wakeup = self.env.due(max(at - self.env.now, 0.0))
        wakeup.callbacks.append(self._on_wakeup)
        self._wakeup, self._wakeup_at = wakeup, at

    def _on_wakeup(self, event: simpy.Event) -> None:
        if event is not self._wakeup:  # superseded by a later start, end or change
            return
        self._wakeup, self._wakeup_at = None, math.inf
        if self._reserved and self._reserved[0][0] <= self.env.now:
            self._start_reserved()
        self._advance()
        now, level = self.env.now, self.level
        while (top := self._top(self._k_finish, "capped")) is not None and top[
            0
        ] <= now + self._EPS_S:
            self._finish(top[3])
        slack = max(level * self._EPS_S, 1e-9) if not math.isinf(level) else 0.0
        while (top := self._top(self._u_finish, "level")) is not None and (
            top[0] - self._virtual <= slack
        ):
            self._finish(top[3])
        self._settle()

    def _timed_done(self, event: simpy.Event) -> None:
        """A timed flow's timeout: it is through (before its waiter resumes)."""
        flow, event.flow = event.flow, None  # (a cycle with ``flow.done``: freed at once)
        if self._reserved and self._reserved[0][0] <= self.env.now:
            self._start_reserved()
        self._advance()
        self._take_capped(flow)  # a timed flow runs at its cap
        self._count -= 1
        if not self._count:
            self._capped_rate = 0.0  # no drift from float sums
        elif self._n_level:  # the freed capacity raises the level of the shared flows
            self._settle()
        if len(self._capped_caps) > 2 * self._count + 64:
            self._compact()

    def _time(self, flow: _Flow, seconds: float) -> None:
        """``flow`` finishes by a timeout ``seconds`` from now (``_timed_done``)."""
        flow.done = done = self.env.due(seconds, _TimedDone)
        done.flow = flow
        done.callbacks.append(self._timed_done_cb)

    def _compact(self) -> None:
        """Drop the stale entries of every heap. Lazy deletion only pops them when they come to
        the top, and timed flows never pass ``_settle``: without this, a heap would grow with
        every transfer ever made. Amortised O(1): it runs when a heap is twice the live flows."""
        for heap, where in (
            (self._capped_caps, "capped"),
            (self._k_finish, "capped"),
            (self._level_caps, "level"),
            (self._u_finish, "level"),
        ):
            heap[:] = [e for e in heap if e[3].where == where and e[3].stamp == e[2]]
            heapq.heapify(heap)

    def _untime(self, flow: _Flow) -> None:
        """From now on ``flow`` finishes like any other: its waiters move to a plain event and
        its timeout, when it comes, does nothing."""
        if not flow.timed:
            return
        flow.timed = False
        timeout, flow.done = flow.done, self.env.event()
        flow.done.callbacks = [cb for cb in timeout.callbacks if cb is not self._timed_done_cb]
        timeout.callbacks = []

    def _finish(self, flow: _Flow) -> None:
        self._take(flow)
        self._count -= 1
        if len(self._capped_caps) + len(self._level_caps) > 4 * self._count + 128:
            self._compact()
        flow.done.succeed()


class Links:
    """What every network has: each worker's uplink and downlink (bandwidth in bytes/s,
    latency in s, up or down), the watchers told when one changes (``changed``), and a
    transfer as a process makes it (``move``, on the network's ``fixed_time``, ``begin`` and
    ``flow``)."""

    def __init__(self, env, up_bandwidth, up_latency, down_bandwidth, down_latency):
        self.env = env
        self.up_bandwidth = [float(b) for b in up_bandwidth]
        self.up_latency = [float(x) for x in up_latency]
        self.down_bandwidth = [float(b) for b in down_bandwidth]
        self.down_latency = [float(x) for x in down_latency]
        self.link_up = [True] * len(self.up_bandwidth)
        self.changes = 0  # link bandwidth changes so far (what a priced all-reduce depends on)
        self.watchers: list = []  # called after a link changes (``fabric.PeerLinks``)

    def changed(self, bandwidth: bool) -> None:
        """A link changed (``bandwidth``: its bandwidth; else whether it is up): tell the
        watchers."""
        self.changes += bandwidth
        for watch in self.watchers:
            watch()

    def move(self, worker: int, nbytes: float, direction: str):
        """One transfer as a process makes it (``yield from``): one timeout when nothing can
        slow it (``fixed_time``), else ``begin`` (the latency, or latency and flow reserved as
        one) and, unless reserved whole, a ``flow``. The worker loop (``Iterations``) takes
        the same steps without a generator; the tests use this."""
        fixed = self.fixed_time(worker, nbytes, direction)
        if fixed is not None:
            yield self.env.timeout(fixed)
            return
        event, whole = self.begin(worker, nbytes, direction)
        yield event
        if not whole:
            yield self.flow(worker, nbytes, direction)


class Network(Links):
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
        faulty: bool = False,
        varying: bool = False,
    ):
        super().__init__(env, up_bandwidth, up_latency, down_bandwidth, down_latency)
        # If every link at full speed together cannot exceed the PS card, max-min sharing always
        # gives each transfer its link's rate: the card is uncontended, exactly (unless the
        # bandwidths change over the run: ``varying``).
        if sum(self.up_bandwidth) <= ingress and not varying:
            ingress = math.inf
        if sum(self.down_bandwidth) <= egress and not varying:
            egress = math.inf
        self.ingress = SharedCapacity(env, ingress)
        self.egress = SharedCapacity(env, egress)
        n = len(self.up_bandwidth)
        # a transfer with the shortest latency joins the card before any asked later
        self._min_latency = {"push": min(self.up_latency), "pull": min(self.down_latency)}
        self._active: list = [None] * n  # (shared, flow, bandwidth): a worker's last transfer
        # With faults, or bandwidths that change, every transfer is a fluid flow, so that it can
        # stall, change its rate or be cancelled.
        self.faulty = faulty or varying

    def peer_route(self, src: int, dst: int) -> tuple[int, int]:
        """What a message from worker ``src`` to worker ``dst`` crosses (``collectives``):
        ``src``'s uplink and ``dst``'s downlink, indices into ``peer_capacity``."""
        return (src, len(self.up_bandwidth) + dst)

    def peer_capacity(self) -> list[float]:
        """The links' bandwidths: the uplinks, then the downlinks."""
        return self.up_bandwidth + self.down_bandwidth

    def fixed_time(self, worker: int, nbytes: float, direction: str) -> float | None:
        """Seconds a transfer takes when nothing can slow it (an uncontended PS card, no
        faults): then a worker waits one timeout instead of a shared flow."""
        shared = self.ingress if direction == "push" else self.egress
        if not math.isinf(shared.capacity) or self.faulty:
            return None
        return self.uncontended_time(worker, nbytes, direction)

    def begin(self, worker: int, nbytes: float, direction: str) -> tuple[simpy.Event, bool]:
        """Start a transfer through the PS card: ``(event, whole)``. ``whole``: the event
        succeeds when the bytes are through (the latency and the flow were reserved as one);
        else it is the link latency, after which the caller joins the card with ``flow``."""
        if direction == "push":
            shared, latency = self.ingress, self.up_latency[worker]
            bandwidth = self.up_bandwidth[worker]
        else:
            shared, latency = self.egress, self.down_latency[worker]
            bandwidth = self.down_bandwidth[worker]
        if latency <= 0:
            return self.flow(worker, nbytes, direction), True
        if not self.faulty:  # (a reservation cannot be cancelled: no faults)
            if latency <= self._min_latency[direction]:
                flow = shared.reserve(nbytes, bandwidth, latency)
                if flow is not None:  # (nothing to remember: only faults would need it)
                    self._active[worker] = None
                    return flow.done, True
            shared.expect(bandwidth)
            self._active[worker] = (shared, None, bandwidth)  # joining after the latency
        return self.env.due(latency), False

    def flow(self, worker: int, nbytes: float, direction: str) -> simpy.Event:
        """Start moving ``nbytes`` through the PS card now (the link latency already waited);
        the event succeeds when they are through. A worker has one transfer at a time."""
        if direction == "push":
            shared, bandwidth = self.ingress, self.up_bandwidth[worker]
        else:
            shared, bandwidth = self.egress, self.down_bandwidth[worker]
        entry = self._active[worker]
        if entry is not None and entry[1] is None:  # announced by ``begin``: joining now
            shared.expect(-bandwidth)
        # without faults nobody interrupts a waiting worker: a flow may finish by a timeout
        flow = shared.start(nbytes, bandwidth if self.link_up[worker] else 0.0, not self.faulty)
        self._active[worker] = (shared, flow, bandwidth)
        return flow.done

    def drop(self, worker: int) -> None:
        """``worker`` crashed: its transfer in flight, if any, is cancelled (frees its share)."""
        entry, self._active[worker] = self._active[worker], None
        if entry is not None:
            if entry[1] is None:  # it was to join after its latency: it never will
                entry[0].expect(-entry[2])
            else:
                entry[0].cancel(entry[1])

    def set_link(self, worker: int, up: bool) -> None:
        """Take ``worker``'s link down (its transfers stall) or bring it back up (they resume)."""
        self.link_up[worker] = up
        entry = self._active[worker]
        if entry is not None and entry[1] is not None:  # (a flow yet to join: joins capped)
            shared, flow, bandwidth = entry
            shared.set_cap(flow, bandwidth if up else 0.0)  # no-op for a finished flow
        self.changed(bandwidth=False)

    def set_bandwidth(self, worker: int, direction: str, bandwidth: float) -> None:
        """``worker``'s link in ``direction`` (push: up, pull: down) changes its bandwidth now:
        its transfer in flight, if any, goes on at the new rate."""
        shared = self.ingress if direction == "push" else self.egress
        if direction == "push":
            self.up_bandwidth[worker] = float(bandwidth)
        else:
            self.down_bandwidth[worker] = float(bandwidth)
        entry = self._active[worker]
        if entry is not None and entry[0] is shared and entry[1] is not None:
            self._active[worker] = (shared, entry[1], float(bandwidth))
            shared.set_cap(entry[1], float(bandwidth) if self.link_up[worker] else 0.0)
        self.changed(bandwidth=True)

    def set_card(self, direction: str, capacity: float) -> None:
        """The PS card's capacity in ``direction`` (push: ingress, pull: egress) changes now."""
        (self.ingress if direction == "push" else self.egress).set_capacity(capacity)

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
