"""All-reduce among workers over their own links, without the PS: its time and its bytes.

An all-reduce runs in steps (Thakur, Rabenseifner & Gropp 2005). In a step every message is
sent at once; the messages share the links they cross max-min fairly (``fabric.max_min_rates``:
a worker's uplink, the receiver's downlink and, between racks, both racks' links to the core);
the step ends when its slowest message is through. A message from worker i to worker j takes
``(latency_up[i] + latency_down[j]) / 2 + bytes / rate``: a link's latency is its one-way time
to the PS through the switch, half of it on each side (docs/DESIGN.md section 2). A step's
time is fixed when it starts: link outages and bandwidth changes reach PS transfers, not the
collectives. Every member sends as many bytes as it receives.
"""

from __future__ import annotations

import math

from .fabric import max_min_rates


def step_s(network, messages: list[tuple[int, int, float]]) -> float:
    """Seconds for the messages ``(src, dst, bytes)`` sent at once to be through."""
    if not messages:
        return 0.0
    routes = [network.peer_route(src, dst) for src, dst, _ in messages]
    rates = max_min_rates(routes, network.peer_capacity())
    up, down = network.up_latency, network.down_latency
    return max(
        (up[src] + down[dst]) / 2 + nbytes / rate
        for (src, dst, nbytes), rate in zip(messages, rates, strict=True)
    )


def ring(network, members: list[int], nbytes: float) -> tuple[float, dict[int, float]]:
    """Ring all-reduce of ``nbytes`` among ``members`` (in their order): a reduce-scatter and
    an all-gather, 2(p-1) steps in which every member sends n/p bytes to the next. The steps
    are alike, so one is priced: O(p). Returns (seconds, bytes each member sends)."""
    p = len(members)
    if p <= 1:
        return 0.0, dict.fromkeys(members, 0.0)
    chunk = nbytes / p
    messages = [(members[i], members[(i + 1) % p], chunk) for i in range(p)]
    steps = 2 * (p - 1)
    return steps * step_s(network, messages), dict.fromkeys(members, steps * chunk)


def halving_doubling(network, members, nbytes) -> tuple[float, dict[int, float]]:
    """Rabenseifner's all-reduce: a reduce-scatter by recursive halving (log2 p steps, partners
    p/2, p/4, ... apart exchange n/2, n/4, ... bytes) and an all-gather by recursive doubling
    (the same steps in reverse). With p not a power of two, the r = p - 2^k members beyond the
    first 2^k first send their vector to a partner among them and get the result back at the
    end (two steps of n bytes). Returns (seconds, bytes each member sends)."""
    p = len(members)
    if p <= 1:
        return 0.0, dict.fromkeys(members, 0.0)
    core = 1 << (p.bit_length() - 1)
    extra = [(members[core + i], members[i]) for i in range(p - core)]
    sent = dict.fromkeys(members, 0.0)
    seconds = 0.0
    if extra:
        seconds += 2 * step_s(network, [(e, c, nbytes) for e, c in extra])
        for e, c in extra:  # (to the partner, then back)
            sent[e] += nbytes
            sent[c] += nbytes
    distance, size = core // 2, nbytes / 2
    while distance >= 1:
        messages = [(members[i], members[i ^ distance], size) for i in range(core)]
        seconds += 2 * step_s(network, messages)  # once halving, once doubling
        for i in range(core):
            sent[members[i]] += 2 * size
        distance, size = distance // 2, size / 2
    return seconds, sent


def all_reduce(network, members: list[int], nbytes: float, algorithm: str):
    """(seconds, bytes each member sends) of an all-reduce of ``nbytes`` by ``algorithm``."""
    seconds, sent = ALGORITHMS[algorithm](network, members, nbytes)
    if math.isinf(seconds):
        raise ValueError("an all-reduce through a link of no bandwidth never ends")
    return seconds, sent


ALGORITHMS = {"ring": ring, "halving_doubling": halving_doubling}


class Running:
    """An all-reduce under way among ``members``: a fraction done, advancing at 1 / its price
    (``price()``: seconds for the whole at the links as they are now), re-priced whenever a
    link changes (``network.watchers``) and stalled while a member's link is down. ``done``
    succeeds when the fraction reaches 1."""

    def __init__(self, env, network, members, price, seconds: float):
        """``seconds``: its price now (``price()`` would say the same)."""
        self.env, self.network, self.members, self.price = env, network, list(members), price
        self.done = env.event()
        self.fraction, self.since, self.seconds = 0.0, env.now, math.inf
        self._wakeup = None
        network.watchers.append(self._changed)
        self._reprice(seconds)

    def _reprice(self, seconds: float | None = None) -> None:
        if any(not self.network.link_up[m] for m in self.members):
            seconds = math.inf  # stalled
        elif seconds is None:
            seconds = self.price()
        self.seconds, self._wakeup = seconds, None
        if math.isinf(seconds):
            return
        wakeup = self._wakeup = self.env.timeout(max(1.0 - self.fraction, 0.0) * seconds)
        wakeup.callbacks.append(self._finish)

    def _changed(self) -> None:
        now = self.env.now
        if self.seconds > 0 and not math.isinf(self.seconds):
            self.fraction += (now - self.since) / self.seconds
        self.since = now
        self._reprice()

    def _finish(self, event) -> None:
        if event is not self._wakeup:  # re-priced since
            return
        self.network.watchers.remove(self._changed)
        self.done.succeed()
