"""Input checks shared by the intrinsic-dimension code: one error type, one-line messages."""
from __future__ import annotations

import numpy as np
import torch


class DimensionError(ValueError):
    """Bad input to an intrinsic-dimension routine; the message names the problem and the range."""


def as_points(points: np.ndarray | torch.Tensor, name: str = "points") -> np.ndarray:
    """Return ``points`` as a float64 ``(N, D)`` array, flattening trailing axes (images).

    Raises DimensionError for empty, non-finite or constant data.
    """
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    array = np.asarray(points, dtype=np.float64)
    if array.ndim == 1 or array.ndim == 0:
        raise DimensionError(f"{name} must be 2-D (N, D) or more, got shape {array.shape}")
    array = array.reshape(array.shape[0], -1)
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DimensionError(f"{name} is empty: shape {array.shape}, need N >= 1 and D >= 1")
    bad = ~np.isfinite(array)
    if bad.any():
        rows = int(bad.any(axis=1).sum())
        raise DimensionError(f"{name} contains NaN or inf values in {rows} of {len(array)} rows")
    return array


def remove_duplicates(points: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop exact duplicate rows (first occurrence kept, order kept); return (unique, n_removed).

    Duplicates give zero neighbour distances, which drive kNN estimators of dimension to 0.
    Rows are compared by their float64 bits after ``+ 0.0`` (so -0.0 equals 0.0). Each row is
    hashed exactly (a random odd multiplier per column, integer sums modulo 2^64); only rows
    that share a hash are compared in full, so the cost is one pass over the data.
    """
    rows = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=rows.shape[1], dtype=np.uint64) | 1
    hashes = np.concatenate([_canonical(rows[start:start + 4096]).view(np.uint64) @ multipliers
                             for start in range(0, len(rows), 4096)])
    _, group, size = np.unique(hashes, return_inverse=True, return_counts=True)
    duplicate = np.zeros(len(points), dtype=bool)
    first_seen: dict[bytes, int] = {}
    for i in np.flatnonzero(size[group] > 1):  # increasing, so the first occurrence stays
        duplicate[i] = first_seen.setdefault(_canonical(rows[i]).tobytes(), i) != i
    if not duplicate.any():
        return points, 0
    return points[~duplicate], int(duplicate.sum())


def _canonical(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows + 0.0)  # -0.0 + 0.0 == +0.0


def check_enough_points(n_points: int, n_neighbors: int, name: str = "n_neighbors") -> int:
    """Require 1 <= n_neighbors <= n_points - 1 and return it as int."""
    if int(n_neighbors) != n_neighbors:
        raise DimensionError(f"{name} must be an integer, got {n_neighbors!r}")
    k = int(n_neighbors)
    if n_points < 2:
        raise DimensionError(f"need at least 2 distinct points, got {n_points} "
                             f"(constant data has a single distinct point)")
    if not 1 <= k <= n_points - 1:
        raise DimensionError(f"{name}={k} out of range: must lie in [1, {n_points - 1}] "
                             f"for {n_points} distinct points")
    return k
