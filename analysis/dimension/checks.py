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
    Rows are compared by their bytes after ``+ 0.0`` (so -0.0 equals 0.0); a hash table
    is ~10x faster than ``np.unique(axis=0)``, which sorts rows.
    """
    canonical = np.ascontiguousarray(points + 0.0)
    first_seen: dict[bytes, int] = {}
    for i, row in enumerate(canonical):
        first_seen.setdefault(row.tobytes(), i)
    if len(first_seen) == len(points):
        return points, 0
    keep = np.fromiter(first_seen.values(), dtype=np.int64, count=len(first_seen))
    return points[keep], len(points) - len(keep)


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
