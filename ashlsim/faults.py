"""Faults and straggler episodes, injected into a running simulation as SimPy processes."""

from __future__ import annotations

import math


def straggler(sim, worker, spec):
    """Straggler episodes of ``worker``: at sampled intervals it computes ``factor`` times
    slower for a sampled duration (``cluster.stragglers``)."""
    rng = sim.streams.get("stragglers", worker.index)
    while True:
        yield sim.env.timeout(float(spec.interval_s.sample(rng)))
        factor = float(spec.factor.sample(rng))
        worker.slowdown *= factor
        start = sim.env.now
        yield sim.env.timeout(float(spec.duration_s.sample(rng)))
        worker.slowdown /= factor
        if sim.records.log:
            sim.records.log(worker.index, "straggle", start, sim.env.now)


def inject_fault(sim, spec):
    """Inject one fault (docs/DESIGN.md section 2: crash, slowdown, link_down) at its time and
    record it in ``sim.records.faults``: a crash loses the iteration in flight and, with
    ``recover_after_s``, restarts the worker; a slowdown multiplies its compute time; a link
    outage stalls its transfers."""
    env, worker = sim.env, sim.workers[spec.worker]
    yield env.timeout(spec.at_s)
    row = {"worker": spec.worker, "kind": spec.kind, "start_s": env.now, "end_s": math.inf}
    sim.records.faults.append(row)
    if spec.kind == "crash":
        recovered = env.event()
        if not worker.crash(recovered):  # already down: this crash changes nothing
            row.update(kind="crash (already down)", end_s=env.now, lost_push=False)
            return
        row["lost_push"] = worker.phase in ("compute", "push")
        worker.will_recover = spec.recover_after_s is not None
        if all(w.down and not w.will_recover for w in sim.workers):
            sim.stop("all_workers_down")  # nobody is left, nobody will come back
        if spec.recover_after_s is None:
            return
        yield env.timeout(spec.recover_after_s)
        recovered.succeed()
    elif spec.kind == "slowdown":
        worker.slowdown *= spec.factor
        yield env.timeout(spec.duration_s)
        worker.slowdown /= spec.factor
    else:  # link_down
        sim.network.set_link(spec.worker, False)
        yield env.timeout(spec.duration_s)
        sim.network.set_link(spec.worker, True)
    row["end_s"] = env.now
    if sim.records.log:
        sim.records.log(spec.worker, spec.kind, row["start_s"], env.now)
