"""A network of many shared resources: links, rack uplinks and the cards of a sharded PS.

The star (``network.Network``) has one shared card per direction. Beyond it a transfer crosses
several resources in series (its worker's link, its rack's uplink, one PS shard's card), and
each is shared by whatever crosses it. The fluid model is the same, generalised: the rates are
the max-min fair allocation over all resources (``max_min_rates``, progressive filling), and
they are recomputed whenever a flow starts or ends or a capacity changes (docs/DESIGN.md
section 2). ``Fabric`` runs it in simulated time; ``FabricNetwork`` gives the workers the
``Network`` interface over it.
"""

from __future__ import annotations

import heapq
import math

import simpy

from .network import Links


def max_min_rates(routes: list[tuple[int, ...]], capacity: list[float]) -> list[float]:
    """The max-min fair rate of each flow, given the resources it crosses (``routes``, indices
    into ``capacity``, bytes/s). Progressive filling: raise every unfrozen flow's rate together
    until a resource is full; freeze the flows crossing it; repeat. A resource's fair share
    (capacity left over its unfrozen flows) only grows as flows elsewhere freeze at the
    smallest share, so a heap with lazily refreshed entries finds each bottleneck: O((resources
    + route lengths) log resources), and a ring of 1,024 messages costs no more than its size.
    A flow that crosses no resource is unbounded (inf)."""
    count = [0] * len(capacity)
    crossing: dict[int, list[int]] = {}
    for f, route in enumerate(routes):
        for r in route:
            count[r] += 1
            crossing.setdefault(r, []).append(f)
    left = [float(c) for c in capacity]
    rates = [math.inf] * len(routes)
    frozen = [False] * len(routes)
    heap = [(left[r] / count[r], r) for r in crossing]
    heapq.heapify(heap)
    while heap:
        share, r = heapq.heappop(heap)
        if not count[r]:
            continue
        now = left[r] / count[r]
        if now > share:  # stale: flows elsewhere froze since
            heapq.heappush(heap, (now, r))
            continue
        share = max(now, 0.0)
        for f in crossing[r]:
            if frozen[f]:
                continue
            frozen[f], rates[f] = True, share
            for other in routes[f]:
                left[other] -= share
                count[other] -= 1
    return rates


class _FabricFlow:
    __slots__ = ("route", "left", "rate", "done")

    def __init__(self, route, nbytes, done):
        self.route, self.left, self.rate, self.done = route, float(nbytes), 0.0, done


class Fabric:
    """Flows through resources of given capacities, max-min fair (``max_min_rates``), in
    simulated time. Each start, end, cancel or capacity change recomputes every rate: O(flows
    x resources) per event, which is what a cluster of racks or shards needs (the star's one
    card has its own O(log n) model, ``network.SharedCapacity``)."""

    # A flow this close to done (in seconds at its rate) is done: float rounding, not bytes.
    _EPS_S = 1e-12

    def __init__(self, env: simpy.Environment, capacity: list[float]):
        self.env = env
        self.capacity = [float(c) for c in capacity]
        self.flows: list[_FabricFlow] = []
        self._last = 0.0
        self._wakeup = None

    def start(self, route: tuple[int, ...], nbytes: float) -> _FabricFlow:
        """A flow of ``nbytes`` through the resources ``route``; ``.done`` succeeds when they
        are through."""
        flow = _FabricFlow(tuple(route), nbytes, self.env.event())
        if nbytes <= 0:
            flow.done.succeed()
            return flow
        self._advance()
        self.flows.append(flow)
        self._settle()
        return flow

    def cancel(self, flow: _FabricFlow) -> None:
        """Drop ``flow`` (its worker crashed): it never finishes; its share is freed."""
        if flow in self.flows:
            self._advance()
            self.flows.remove(flow)
            self._settle()

    def set_capacity(self, resource: int, capacity: float) -> None:
        """Resource ``resource`` changes its capacity now (0: stalled, a link down)."""
        self._advance()
        self.capacity[resource] = float(capacity)
        self._settle()

    def set_capacities(self, capacity: list[float]) -> None:
        """Every resource's capacity changes now, to ``capacity``."""
        self._advance()
        self.capacity = [float(c) for c in capacity]
        self._settle()

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._last
        if dt > 0:
            for flow in self.flows:
                flow.left -= flow.rate * dt
        self._last = now

    def _settle(self) -> None:
        """New rates; finish the flows that are through; wake up at the next finish."""
        while True:
            rates = max_min_rates([f.route for f in self.flows], self.capacity)
            through = [
                f for f, r in zip(self.flows, rates, strict=True) if f.left <= r * self._EPS_S
            ]
            if not through:
                break
            for flow in through:
                self.flows.remove(flow)
                flow.done.succeed()
        at = math.inf
        for flow, rate in zip(self.flows, rates, strict=True):
            flow.rate = rate
            if rate > 0:
                at = min(at, flow.left / rate)
        self._wakeup = None
        if not math.isinf(at):
            wakeup = self._wakeup = self.env.timeout(at)
            wakeup.callbacks.append(self._on_wakeup)

    def _on_wakeup(self, event) -> None:
        if event is not self._wakeup:  # superseded by a later start, end or change
            return
        self._advance()
        self._settle()


class FabricNetwork(Links):
    """The ``Network`` interface (``begin``, ``flow``, ``drop``, ``set_link``, ...) over a
    ``Fabric``: each worker's uplink and downlink, each rack's uplink and downlink to the core
    (``racks``: ``(size, up bytes/s, down bytes/s)`` or None), and each of the PS's ``shards``
    cards in each direction. A push or pull is one flow of S/k bytes to each of the k shards,
    through the worker's link, its rack's uplink (the PS sits at the core) and that shard's
    card; it is through when the last of them is."""

    faulty = True  # every transfer is a flow: nothing is known ahead (no reservations)

    def __init__(self, env, up_bandwidth, up_latency, down_bandwidth, down_latency,
                 ingress: float, egress: float, shards: int = 1, racks=None):  # fmt: skip
        super().__init__(env, up_bandwidth, up_latency, down_bandwidth, down_latency)
        n = len(up_bandwidth)
        self.shards = int(shards)
        # resources: [up 0..n) [down n..2n) [ingress shards] [egress shards] [rack up] [rack down]
        capacity = self.up_bandwidth + self.down_bandwidth
        capacity += [float(ingress)] * shards + [float(egress)] * shards
        self._ingress, self._egress = 2 * n, 2 * n + shards
        self.rack_of = [None] * n
        if racks is not None:
            size, rack_up, rack_down = racks
            n_racks = -(-n // size)
            self.rack_of = [i // size for i in range(n)]
            self._rack_up = len(capacity)
            capacity += [float(rack_up)] * n_racks
            self._rack_down = len(capacity)
            capacity += [float(rack_down)] * n_racks
        self.fabric = Fabric(env, capacity)
        self._active: list = [[] for _ in range(n)]  # a worker's flows in flight

    def route(self, worker: int, shard: int, direction: str) -> tuple[int, ...]:
        """The resources a worker's transfer to (push) or from (pull) ``shard`` crosses."""
        n, rack = len(self.up_bandwidth), self.rack_of[worker]
        if direction == "push":
            route = [worker, self._ingress + shard]
            if rack is not None:
                route.append(self._rack_up + rack)
        else:
            route = [n + worker, self._egress + shard]
            if rack is not None:
                route.append(self._rack_down + rack)
        return tuple(route)

    def peer_route(self, src: int, dst: int) -> tuple[int, ...]:
        """The resources a message from worker ``src`` to worker ``dst`` crosses: ``src``'s
        uplink, ``dst``'s downlink and, between racks, both racks' links to the core."""
        route = (src, len(self.up_bandwidth) + dst)
        a, b = self.rack_of[src], self.rack_of[dst]
        if a is not None and a != b:
            route += (self._rack_up + a, self._rack_down + b)
        return route

    def peer_capacity(self) -> list[float]:
        """Bandwidths by ``peer_route``'s indices: the links' (whether up or not) and the
        racks'."""
        n = len(self.up_bandwidth)
        return self.up_bandwidth + self.down_bandwidth + self.fabric.capacity[2 * n :]

    def fixed_time(self, worker: int, nbytes: float, direction: str) -> None:
        """Never known ahead: every transfer shares something."""
        return None

    def begin(self, worker: int, nbytes: float, direction: str) -> tuple[simpy.Event, bool]:
        """The link latency (``flow`` follows it), or the whole transfer when there is none."""
        latency = self.up_latency[worker] if direction == "push" else self.down_latency[worker]
        if latency <= 0:
            return self.flow(worker, nbytes, direction), True
        return self.env.timeout(latency), False

    def flow(self, worker: int, nbytes: float, direction: str) -> simpy.Event:
        """Move ``nbytes`` now, split evenly over the shards; the event succeeds when all are
        through."""
        k = self.shards
        flows = [self.fabric.start(self.route(worker, s, direction), nbytes / k) for s in range(k)]
        self._active[worker] = flows
        if k == 1:
            return flows[0].done
        return simpy.AllOf(self.env, [f.done for f in flows])

    def drop(self, worker: int) -> None:
        """``worker`` crashed: its flows in flight are cancelled."""
        flows, self._active[worker] = self._active[worker], []
        for flow in flows:
            self.fabric.cancel(flow)

    def set_link(self, worker: int, up: bool) -> None:
        """Take ``worker``'s link down (its flows stall) or bring it back up."""
        self.link_up[worker] = up
        n = len(self.up_bandwidth)
        self.fabric.set_capacity(worker, self.up_bandwidth[worker] if up else 0.0)
        self.fabric.set_capacity(n + worker, self.down_bandwidth[worker] if up else 0.0)
        self.changed(bandwidth=False)

    def set_bandwidth(self, worker: int, direction: str, bandwidth: float) -> None:
        """``worker``'s link in ``direction`` changes its bandwidth now."""
        n = len(self.up_bandwidth)
        if direction == "push":
            self.up_bandwidth[worker], resource = float(bandwidth), worker
        else:
            self.down_bandwidth[worker], resource = float(bandwidth), n + worker
        if self.link_up[worker]:
            self.fabric.set_capacity(resource, float(bandwidth))
        self.changed(bandwidth=True)

    def set_card(self, direction: str, capacity: float) -> None:
        """Every shard's card in ``direction`` changes its capacity now."""
        first = self._ingress if direction == "push" else self._egress
        for shard in range(self.shards):
            self.fabric.set_capacity(first + shard, capacity)

    def uncontended_time(self, worker: int, nbytes: float, direction: str) -> float:
        """Seconds a transfer would take alone: latency + bytes at the route's slowest rate."""
        latency = self.up_latency[worker] if direction == "push" else self.down_latency[worker]
        rates = max_min_rates(
            [self.route(worker, s, direction) for s in range(self.shards)], self.fabric.capacity
        )
        return latency + nbytes / self.shards / min(rates)


class PeerLinks:
    """Messages between workers over their own links (and racks), each a flow of a ``Fabric``
    over the network's ``peer_route`` resources: concurrent exchanges share the links they
    cross max-min fairly, at the links' bandwidths of the moment: an outage stalls the
    exchanges through the link, a change of bandwidth re-rates them (``Port.exchange``)."""

    def __init__(self, env, network):
        self.env, self.network = env, network
        self.fabric = Fabric(env, self._capacity())
        network.watchers.append(self.refresh)

    def _capacity(self) -> list[float]:
        """The network's peer capacities, with a link that is down at 0."""
        capacity = self.network.peer_capacity()
        n = len(self.network.link_up)
        for worker, up in enumerate(self.network.link_up):
            if not up:
                capacity[worker] = capacity[n + worker] = 0.0
        return capacity

    def refresh(self) -> None:
        """A link changed: the exchanges in flight go on at the new rates."""
        self.fabric.set_capacities(self._capacity())

    def exchange(self, a: int, b: int, nbytes: float) -> simpy.Event:
        """``a`` and ``b`` send each other ``nbytes``: the later of the two latencies, then
        both flows; the event succeeds when both are through."""
        return self.env.process(self._exchange(a, b, nbytes))

    def _exchange(self, a: int, b: int, nbytes: float):
        up, down, route = (
            self.network.up_latency,
            self.network.down_latency,
            self.network.peer_route,
        )
        yield self.env.timeout(max(up[a] + down[b], up[b] + down[a]) / 2)
        one = self.fabric.start(route(a, b), nbytes)
        two = self.fabric.start(route(b, a), nbytes)
        yield simpy.AllOf(self.env, [one.done, two.done])
