"""Validation of the estimators on manifolds of known dimension (skdim's BenchmarkManifolds:
Hein and Audibert 2005; Campadelli et al. 2015)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

import pandas as pd
import skdim

from .errors import DimensionError
from .estimators import estimate_dimension

DEFAULT_METHODS = ("mle", "twonn", "lpca", "corrint", "danco", "ess", "fishers")


def benchmark_manifolds(n_points: int = 1000, seed: int = 0) -> dict[str, tuple[int, int, np.ndarray]]:
    """All benchmark manifolds: name -> (true dimension, ambient dimension, points)."""
    if n_points < 30:
        raise DimensionError(f"n_points={n_points} out of range: must be >= 30")
    bench = skdim.datasets.BenchmarkManifolds(random_state=seed)
    data = bench.generate("all", n=n_points)
    truth = bench.truth
    return {name: (int(truth.loc[name, "Intrinsic Dimension"]),
                   int(truth.loc[name, "Number of variables"]), points)
            for name, points in data.items()}


def validation_table(methods: Sequence[str] = DEFAULT_METHODS, n_points: int = 1000, seed: int = 0,
                     manifolds: Sequence[str] | None = None, device: str = "auto") -> pd.DataFrame:
    """Tidy table, one row per (manifold, estimator).

    Columns: manifold, true_dimension, ambient_dimension, estimator, estimate,
    relative_error = (estimate - true) / true, seconds, note. Fixed ``seed`` for the data and
    the estimators; ``manifolds`` restricts to some names (default: all 24).
    """
    rows = []
    for name, (true_dim, ambient, points) in benchmark_manifolds(n_points, seed).items():
        if manifolds is not None and name not in manifolds:
            continue
        for method in methods:
            est = estimate_dimension(points, method, seed=seed, device=device)
            rows.append({"manifold": name, "true_dimension": true_dim, "ambient_dimension": ambient,
                         "estimator": method, "estimate": est.value,
                         "relative_error": (est.value - true_dim) / true_dim,
                         "seconds": est.seconds, "note": est.note})
    return pd.DataFrame(rows)
