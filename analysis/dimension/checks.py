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
    """
    _, first = np.unique(points, axis=0, return_index=True)
    first.sort()
    unique = points[first]
    return unique, len(points) - len(unique)


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
