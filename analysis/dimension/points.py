"""Points for the intrinsic-dimension code: reading a points file, and the checks every
array passes before any work (one error type, one-line messages naming the culprit)."""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .errors import DimensionError

POINTS_SUFFIXES = (".npy", ".npz", ".csv")
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
MAX_FEATURES = 2**21 - 2  # the float32 screening bound of the exact kNN needs (D + 2) u <= 1/8


def read_points(path: str | Path) -> np.ndarray:
    """Points from a .npy, .npz (its first array) or .csv (numbers only, no header) file, as a
    checked float64 array (N, D); trailing axes are flattened (images)."""
    path = Path(path)
    name = f"points file {path}"
    if not path.is_file():
        raise DimensionError(f"{name} not found")
    if path.suffix.lower() not in POINTS_SUFFIXES:
        raise DimensionError(f"{name}: unsupported type {path.suffix!r}; use one of {POINTS_SUFFIXES}")
    if path.stat().st_size == 0:
        raise DimensionError(f"{name} is empty (0 bytes)")
    try:
        array = _load(path, name)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DimensionError(f"cannot read {name}: {reason}") from None
    return as_points(array, name)


def _load(path: Path, name: str) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            return np.loadtxt(path, delimiter=",", ndmin=2)
    loaded = np.load(path, allow_pickle=False)
    if suffix == ".npy" and isinstance(loaded, np.ndarray):
        return loaded
    if suffix == ".npz" and isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded as archive:
            if not archive.files:
                raise DimensionError(f"{name} holds no arrays")
            return archive[archive.files[0]]
    raise DimensionError(f"{name} is not a {suffix} file (numpy read it as {type(loaded).__name__})")


def as_points(points: np.ndarray | torch.Tensor, name: str = "points") -> np.ndarray:
    """``points`` as a float64 ``(N, D)`` array, trailing axes flattened (images).

    Raises DimensionError for anything but real numbers (complex values are refused, not
    cast), fewer than 2 axes, no rows or no features, more than ``MAX_FEATURES`` features, and
    NaN or inf values.
    """
    array = _as_array(points, name)
    if array.dtype.kind == "c":
        raise DimensionError(f"{name} has complex values ({array.dtype}); pass real points, e.g. "
                             f"the real and imaginary parts side by side")
    if array.dtype.kind not in NUMERIC_KINDS:
        raise DimensionError(f"{name} has dtype {array.dtype}; need numbers (bool, integer or float)")
    if array.ndim < 2:
        raise DimensionError(f"{name} must be 2-D (N, D) or more, got shape {array.shape}")
    array = array.reshape(array.shape[0], int(np.prod(array.shape[1:])))
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DimensionError(f"{name} is empty: shape {array.shape}, need N >= 1 and D >= 1")
    if array.shape[1] > MAX_FEATURES:
        raise DimensionError(f"{name} has {array.shape[1]} features per point, more than the "
                             f"{MAX_FEATURES} the exact kNN supports; reduce the dimension first (e.g. PCA)")
    array = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = int((~finite).sum())
        raise DimensionError(f"{name} contains NaN or inf values in {bad} of {len(array)} rows")
    return array


def _as_array(points, name: str) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu()
        if points.is_floating_point() and points.dtype not in (torch.float32, torch.float64):
            points = points.double()  # numpy has no bfloat16
        return points.numpy()
    try:
        return np.asarray(points)
    except (ValueError, TypeError) as error:
        raise DimensionError(f"{name} cannot be read as an array: {error}") from None


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
    try:
        k = int(n_neighbors)
        whole = k == n_neighbors and not isinstance(n_neighbors, bool)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise DimensionError(f"{name} must be an integer, got {n_neighbors!r}")
    if n_points < 2:
        raise DimensionError(f"need at least 2 distinct points, got {n_points} "
                             f"(constant data has a single distinct point)")
    if not 1 <= k <= n_points - 1:
        raise DimensionError(f"{name}={k} out of range: must lie in [1, {n_points - 1}] "
                             f"for {n_points} distinct points")
    return k
