"""The PS: exactly-once application, and deferred maths computed in levels ."""

import numpy as np
import pytest
from conftest import make

from ashlsim import Simulation
from ashlsim.cluster import ParameterServer, Update
from ashlsim.cluster.server import Pending, StalenessLog
from ashlsim.compression import identity


def push(worker, seq, pulled_version, value=1.0):
    update = Update(worker=worker, seq=seq, message=None, work=None, pulled_version=pulled_version,
                    steps=1, samples=1, pull_s=0.0, compute_s=0.0, push_s=0.0)  # fmt: skip
    update.work = value
    return update


class Recorder:
    """A ``materialize`` that records which pushes were computed together."""

    def __init__(self):
        self.levels = []

    def __call__(self, updates):
        self.levels.append([u.key for u in updates])
        for u in updates:
            u.message = identity().compress(np.full(2, u.work), None)[0]


def test_a_level_is_every_queued_push_computed_on_known_parameters():
    recorder = Recorder()
    ps = ParameterServer(np.zeros(2), recorder, defer=True)
    # ASP-like: three workers pulled version 0; the first to push pulls again (version 1) ...
    ps.apply([push(0, 0, 0)])
    handle, version = ps.snapshot()
    assert isinstance(handle, Pending) and version == 1 and handle.array is None
    ps.apply([push(1, 0, 0)])
    ps.apply([push(2, 0, 0)])
    ps.apply([push(0, 1, 1)])  # ... needs version 1: not known before the first level
    ps.apply([push(1, 1, 4), push(2, 1, 4)])  # a round of two on version 4
    assert recorder.levels == []  # nothing computed yet
    assert ps.version == 5 and ps.applied_pushes == 6  # but all book-kept at once
    np.testing.assert_array_equal(ps.params, [6.0, 6.0])
    assert recorder.levels == [[(0, 0), (1, 0), (2, 0)], [(0, 1)], [(1, 1), (2, 1)]]
    np.testing.assert_array_equal(handle.array, [1.0, 1.0])  # version 1, as pulled
    assert ps.snapshot()[0] is ps.params  # nothing pending: the array itself


def test_a_push_is_refused_the_second_time_at_once_even_when_deferred():
    ps = ParameterServer(np.zeros(2), Recorder(), defer=True)
    update = push(0, 0, 0)
    ps.apply([update])
    with pytest.raises(RuntimeError, match="applied twice"):
        ps.apply([update])


def test_the_queue_is_bounded_in_pushes():
    recorder = Recorder()
    ps = ParameterServer(np.zeros(2), recorder, defer=True, max_pending=4)
    for i in range(10):
        ps.apply([push(0, i, i)])
    assert sum(map(len, recorder.levels)) == 8 and len(ps._queue) == 2
    ps.apply([push(w, 0, 10) for w in range(1, 6)])  # a round bigger than the bound: at once
    assert sum(map(len, recorder.levels)) == 15 and not ps._queue


SCENARIOS = {
    "asp": {"strategy": {"name": "asp"}},
    "ssp": {"strategy": {"name": "ssp", "staleness": 2, "local_steps": 2}},
    "local_sgd": {"strategy": {"name": "local_sgd", "local_steps": 3}},
    "bsp_backup": {"strategy": {"name": "bsp", "backup_workers": 1}},
    "ashl_topk_ef": {
        "strategy": {"name": "ashl", "profile_iters": 2, "switch": "epochs",
                     "switch_epochs": 1.0, "error_feedback": True},
    },
    "adsp": {"strategy": {"name": "adsp"}},
    "asp_momentum": {"strategy": {"name": "asp"}, "training": {"momentum": 0.9}},
    "ssp_momentum_cosine": {
        "strategy": {"name": "ssp", "staleness": 1, "local_steps": 2},
        "training": {"momentum": 0.5, "lr_schedule": "cosine", "schedule_epochs": 3.0},
    },
    "ashl_momentum": {
        "strategy": {"name": "ashl", "profile_iters": 2, "switch": "epochs", "switch_epochs": 1.0},
        "training": {"momentum": 0.9},
    },
    "bsp_backup_momentum": {"strategy": {"name": "bsp", "backup_workers": 1},
                            "training": {"momentum": 0.9}},
    "adacomm": {"strategy": {"name": "adacomm"}},
    "asp_crash": {
        "strategy": {"name": "asp", "compression": {"name": "topk", "ratio": 0.1,
                                                     "error_feedback": True}},
        "faults": [{"worker": 2, "at_s": 0.7, "kind": "crash", "recover_after_s": 0.4}],
        "training": {"momentum": 0.9},
    },
}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_deferred_maths_is_the_eager_run_bit_for_bit(name, dtype):
    """Computing applications later, in stacked levels, changes no value: the same parameters
    and the same history as applying (and computing) every push the moment it arrives."""
    runs = []
    for defer in (True, False):
        scenario = make(
            **SCENARIOS[name],
            model={"name": "softmax", "dtype": dtype},
            cluster={"jitter": {"dist": "exponential", "mean": 1.0}},
            eval={"every_s": 0.7},
        )
        sim = Simulation(scenario)
        sim.server.defer = defer
        result = sim.run()
        runs.append((sim, result))
    (deferred, a), (eager, b) = runs
    assert deferred.server.version == eager.server.version > 5
    np.testing.assert_array_equal(deferred.server.params, eager.server.params)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])


def test_asp_pushes_are_computed_in_stacked_levels():
    """In ASP every push has parameters of its own, yet the pushes of a level are independent
    and go through the stacked path together; every applied push is computed exactly once."""
    sim = Simulation(make(strategy={"name": "asp"}, eval={"every_s": 1.0}))
    sizes, stacked = [], []
    materialize, run_stacked = sim.server.materialize, sim.workers[0].trainer._stacked
    sim.server.materialize = lambda updates: (sizes.append(len(updates)), materialize(updates))
    sim.workers[0].trainer._stacked = lambda works: (stacked.append(len(works)),
                                                     run_stacked(works))[1]  # fmt: skip
    sim.run()
    assert sum(sizes) == sim.server.applied_pushes
    assert np.mean(sizes) > 2 and max(stacked) > 2


@pytest.mark.parametrize("defer", [True, False])
def test_momentum_starts_from_the_buffer_the_previous_work_leaves(defer):
    """With deferred maths a worker's next work starts before its previous one is computed:
    it then takes its momentum buffer from that work when it runs (the eager run never needs
    to), and the runs are the same (``test_deferred_maths_is_the_eager_run_bit_for_bit``)."""
    sim = Simulation(make(strategy={"name": "asp"}, training={"momentum": 0.9}))
    sim.server.defer = defer
    trainer, chained = sim.workers[0].trainer, []
    prepare = trainer.prepare
    trainer.prepare = lambda *a: (w := prepare(*a), chained.append(w.prev is not None))[0]
    sim.run()
    assert len(chained) > 100
    assert (sum(chained) > len(chained) / 2) if defer else not any(chained)


def test_a_local_model_is_made_only_for_the_cached_read_that_continues_from_it():
    """SSP's workers keep their local models for a cached read, but most never have one: the
    sum ``params + delta`` is made when a cached read asks for it, and then it is exactly
    that sum (the run is the same as when every work made it: test_deferred_maths above and
    the fingerprints of tests/test_worker.py)."""
    sim = Simulation(make(strategy={"name": "ssp", "staleness": 3}, eval={"every_s": 1.0}))
    trainer = sim.workers[0].trainer
    prepare, works, chained = trainer.prepare, [], []

    def recording(params, steps, sampler, progress, owner, accumulate, chain, keep_local):
        works.append(prepare(params, steps, sampler, progress, owner, accumulate, chain,
                             keep_local))  # fmt: skip
        if chain is not None:
            chained.append(chain)
        return works[-1]

    trainer.prepare = recording
    sim.run()
    sim.server.flush()
    computed = [w for w in works if w.computed_local]
    made = {id(w) for w in computed if w.local_out is not None}
    # made only for a cached read (one still in flight at the stop has not asked yet)
    assert len(chained) > 20 and len(computed) > 2 * len(chained)
    assert made <= {id(w) for w in chained} and len(made) >= len(chained) - len(sim.workers)
    for work in computed[:50]:
        if work.local_out is None:
            expected = work.params + work.local_delta
            np.testing.assert_array_equal(work.local_model(), expected)
            assert work.local_model() is work.local_out  # made once


def test_the_staleness_log_reads_as_its_rows():
    """Flat in an int64 array, it has the length, rows, equality and array of a list of rows."""
    rows = [(0, 0, 0), (3, 2, 96), (1, 5, 2**40)]
    log = StalenessLog()
    for row in rows:
        log.extend(row)
    assert len(log) == 3 and list(log) == rows and log == rows and log != rows[:2]
    table = np.asarray(log)
    assert table.dtype == np.int64 and table.tolist() == [list(r) for r in rows]
    table[0, 0] = 7  # a copy: the log is unchanged
    assert list(log) == rows
    assert np.asarray(log, dtype=float).dtype == float
    assert len(StalenessLog()) == 0 and np.asarray(StalenessLog()).shape == (0, 3)
