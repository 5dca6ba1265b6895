"""ASHL's planning arithmetic (docs/DESIGN.md section 4, items 1 and 4), as pure functions of measured times.

Kept apart from the strategy so each formula is testable against the paper's algorithms on its
own: ``local_steps_plan`` is Algorithm 1's per-worker H, ``compression_plan`` Algorithm 2's
per-worker ratio, ``robust_mean`` the authors' "drop the extreme samples" estimate.
"""

from __future__ import annotations

import numpy as np


def robust_mean(samples) -> float:
    """Mean after dropping the smallest and the largest sample (when there are at least 3)."""
    values = np.sort(np.asarray(samples, dtype=float))
    if values.size == 0:
        raise ValueError("no samples to average")
    if values.size >= 3:
        values = values[1:-1]
    return float(values.mean())


def local_steps_plan(
    t_iter, t_pull, t_push, h_preset: int, push_factor: float = 1.0, t_compress: float = 0.0
) -> np.ndarray:
    """Algorithm 1: ``H[i] = max(1, round((T_max - T_comm[i]) / T_iter[i]))`` where
    ``T_max = max_i (T_iter[i] * h_preset + T_comm[i])`` and
    ``T_comm = T_push * push_factor + T_pull + T_compress``.

    The worker with the longest update gets ``h_preset``; faster ones take more local steps so
    that every worker's compute + pull + push lasts about as long. The AHL stage pushes dense
    (``push_factor = 1``, no ``t_compress``); the authors plan the SHL stage with its pushes
    compressed at ``r_preset`` (``push_factor = r_preset``, their ``get_h``).
    """
    t_iter, t_pull, t_push = (np.asarray(a, dtype=float) for a in (t_iter, t_pull, t_push))
    t_comm = t_push * push_factor + t_pull + t_compress
    t_max = np.max(t_iter * h_preset + t_comm)
    # round half up, as the authors' int(x + 0.5); np.round would round half to even
    return np.maximum(1, np.floor((t_max - t_comm) / t_iter + 0.5)).astype(int)


def data_shares(h_shl) -> np.ndarray:
    """``D[i] = H_SHL[i] / sum H_SHL``: the share of the training data, and the PS weight."""
    h = np.asarray(h_shl, dtype=float)
    return h / h.sum()


def compression_plan(
    t_iter, t_pull, t_push, h, r_preset: float, min_ratio: float = 0.0, t_compress: float = 0.0
) -> np.ndarray:
    """Algorithm 2: ``R[i] = min(1, (max_j T_update[j] - T_comm[i]) / T_push[i])`` with
    ``T_update[i] = T_iter[i] H[i] + T_compress + T_push[i] r_preset + T_pull[i]`` and
    ``T_comm[i] = T_iter[i] H[i] + T_compress + T_pull[i]``; clipped below at ``min_ratio``.

    Workers that have time to spare compress less. (``T_compress`` is the same for every worker,
    so it cancels; it is kept to mirror the paper.)
    """
    t_iter, t_pull, t_push, h = (np.asarray(a, dtype=float) for a in (t_iter, t_pull, t_push, h))
    t_comm = t_iter * h + t_compress + t_pull
    t_update = t_comm + t_push * r_preset
    spare = np.max(t_update) - t_comm
    # a push that takes no time needs no compression
    ratio = np.divide(spare, t_push, out=np.ones_like(spare), where=t_push > 0)
    return np.clip(ratio, min_ratio, 1.0)
