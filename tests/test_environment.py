"""The simulation's clock (``ashlsim.cluster.Environment``): SimPy's environment with ``now``
a plain attribute and ``timeout_at``. Its ``step`` is a copy of SimPy's: every program must run
exactly as under ``simpy.Environment``."""

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from ashlsim.cluster import Environment

# a program: per process, a list of steps (delay, kind); kinds: plain timeout, wait for the
# shared event, trigger it, fail it (the waiters catch), interrupt the next process
STEP = st.tuples(st.sampled_from([0.0, 0.5, 1.0, 0.25, 3.0]), st.sampled_from("twsfi"))
PROGRAM = st.lists(st.lists(STEP, max_size=8), min_size=1, max_size=5)


def play(env_class, program, stops):
    env = env_class()
    log = []
    shared = [env.event()]
    procs = []

    def body(me, steps):
        for delay, kind in steps:
            try:
                if kind == "w" and not shared[0].processed:
                    value = yield shared[0]
                else:
                    value = yield env.timeout(delay, value=me)
                log.append((env.now, me, kind, value))
                if kind in "sf" and not shared[0].triggered:
                    if kind == "s":
                        shared[0].succeed(me)
                    else:
                        shared[0].fail(ValueError(me))
                    shared[0] = env.event()
                if kind == "i" and me + 1 < len(procs) and procs[me + 1].is_alive:
                    procs[me + 1].interrupt(me)
            except (simpy.Interrupt, ValueError) as exc:
                log.append((env.now, me, "caught", repr(exc)))
        return me

    for me, steps in enumerate(program):
        procs.append(env.process(body(me, steps)))
    try:
        for until in stops:  # run, stop (StopSimulation), resume
            if until > env.now:
                env.run(until=until)
                log.append(("stopped", env.now))
        env.run()
    except ValueError as exc:  # a failure nobody waited for stops the run
        log.append(("crashed", env.now, repr(exc)))
    log.append(("end", env.now, [p.value if p.triggered else None for p in procs]))
    return log


@settings(max_examples=300, deadline=None)
@given(program=PROGRAM, stops=st.lists(st.sampled_from([0.5, 1.0, 2.5, 4.0]), max_size=3))
def test_every_program_runs_as_under_simpy(program, stops):
    stops = sorted(stops)
    assert play(Environment, program, stops) == play(simpy.Environment, program, stops)


def test_now_is_simpys_now_and_a_failure_nobody_handles_stops_the_run():
    env = Environment()
    seen = []
    env.timeout(1.5).callbacks.append(lambda _: seen.append((env.now, env._now)))
    env.event().fail(KeyError("boom"))
    with pytest.raises(KeyError):
        env.run()
    env.run()
    assert seen == [(1.5, 1.5)] and env.now == 1.5


@settings(max_examples=200, deadline=None)
@given(
    now=st.floats(0.0, 1e6, allow_subnormal=False),
    delays=st.lists(st.floats(0.0, 1e3, allow_subnormal=False), min_size=1, max_size=3),
)
def test_timeout_at_fires_at_exactly_that_time(now, delays):
    env = Environment()
    env.run(until=now) if now > 0 else None
    at = env.now
    for delay in delays:  # the float two timeouts in a row would end at
        at = at + delay
    fired = []
    env.timeout_at(at).callbacks.append(lambda _: fired.append(env.now))
    env.run()
    assert fired == [at]


def test_timeout_at_when_now_plus_delay_rounds_elsewhere():
    env = Environment()
    env.run(until=0.0023575647193538884)
    at = 82.80384459472073  # found by search: now + (at - now) != at
    assert env.now + (at - env.now) != at
    order = []
    env.timeout_at(at).callbacks.append(lambda _: order.append(("at", env.now)))
    env.timeout(at - env.now).callbacks.append(lambda _: order.append(("timeout", env.now)))
    env.run()
    assert ("at", at) in order  # at its exact time; the plain timeout misses it by a float
    assert ("timeout", at) not in order
    with pytest.raises(ValueError):
        env.timeout_at(env.now - 1.0)
