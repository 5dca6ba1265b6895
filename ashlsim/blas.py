"""How many threads BLAS may use while a simulation runs.

A simulation's matrices are small (a mini-batch through a small model), so BLAS threads buy
nothing inside one run and cost a lot when several runs share the cores: a process pool of 2 on
2 cores with 2 BLAS threads each runs 4 busy threads. Every run therefore limits BLAS to one
thread unless told otherwise: ``ASHLSIM_BLAS_THREADS=N`` in the environment, or
``run(..., blas_threads=N)``; ``0`` leaves BLAS alone.
"""

from __future__ import annotations

import contextlib
import os

ENV = "ASHLSIM_BLAS_THREADS"


def configured(threads: int | None = None) -> int:
    """The number of BLAS threads a run uses: ``threads``, else ``$ASHLSIM_BLAS_THREADS``, else 1
    (0: no limit)."""
    if threads is None:
        raw = os.environ.get(ENV, "1").strip()
        try:
            threads = int(raw)
        except ValueError:
            from .errors import ScenarioError

            raise ScenarioError(ENV, raw, "an integer >= 0 (0: no limit)") from None
    if threads < 0:
        from .errors import ScenarioError

        raise ScenarioError("blas_threads", threads, "an integer >= 0 (0: no limit)")
    return threads


@contextlib.contextmanager
def blas_threads(threads: int | None = None):
    """Limit BLAS to ``configured(threads)`` threads inside the block (threadpoolctl)."""
    n = configured(threads)
    if n == 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield
