"""Schemes and models registered in this process (``register_strategy``, ``register_model``)
handed on to the processes ``compare`` and ``sweep`` spawn, which start with the built-ins only.

A class goes by reference (its module and name), so it must be importable: defined at a
module's top level, not in ``__main__`` of the interactive interpreter.
"""

from __future__ import annotations


def registered() -> tuple[dict, dict]:
    """The schemes and models registered beyond the built-ins: ``(strategies, models)``."""
    from . import models, strategies

    return strategies.REGISTRY.added(), models.REGISTRY.added()


def register(added: tuple[dict, dict]) -> None:
    """Register in this process what ``registered()`` gave in another (a pool's initializer)."""
    from . import models, strategies

    schemes, learning = added
    for cls in schemes.values():
        strategies.register_strategy(cls, replace=True)
    for cls in learning.values():
        models.register_model(cls, replace=True)


def pool(workers: int):
    """A process pool (``spawn``: no forked BLAS threads or SimPy state) whose processes know
    the schemes and models registered here."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                               initializer=register, initargs=(registered(),))  # fmt: skip
