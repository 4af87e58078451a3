"""Percentile bootstrap confidence intervals for intrinsic-dimension estimates.

Points are resampled with replacement (Efron and Tibshirani 1993, ch. 13: the interval is
the (alpha/2, 1 - alpha/2) quantiles of the resampled estimates). For the kNN fast paths
the per-point statistics (local MLE, TwoNN ratio) are resampled, with neighbours taken from
the full data: that is the bootstrap over points of a mean-type estimator and needs one kNN.
Other estimators are refitted on each resample with repeated draws dropped, because a
duplicated point has a zero neighbour distance and drives kNN estimates to 0; such a
resample holds about 63% of the distinct points, so its interval is somewhat wide.
"""
from __future__ import annotations

import math

import numpy as np

from .checks import DimensionError
from .registry import Estimator, Params


def check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0 or math.isnan(confidence):
        raise DimensionError(f"confidence={confidence!r} out of range: must lie in (0, 1)")
    return float(confidence)


def bootstrap_values(estimator: Estimator, points: np.ndarray, params: Params, n_bootstrap: int,
                     seed: int = 0, local_stats: np.ndarray | None = None) -> np.ndarray:
    """Estimates on ``n_bootstrap`` resamples of ``points`` (fixed ``seed``); NaN where one fails.

    ``local_stats``: the estimator's per-point statistics on ``points`` if already computed.
    """
    if n_bootstrap < 1:
        raise DimensionError(f"n_bootstrap={n_bootstrap} out of range: must be >= 1")
    rng = np.random.default_rng(seed)
    n = len(points)
    draws = [rng.integers(0, n, size=n) for _ in range(n_bootstrap)]
    if estimator.has_local:
        stats = estimator.local(points, params) if local_stats is None else local_stats
        return np.array([_safe(estimator.combine, stats[d], params) for d in draws])
    return np.array([_safe(estimator.fit, points[np.unique(d)], params) for d in draws])


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """(alpha/2, 1 - alpha/2) quantiles of the finite ``values``; NaN if there are none."""
    alpha = 1.0 - check_confidence(confidence)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return math.nan, math.nan
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _safe(function, data, params: Params) -> float:
    try:
        value = float(function(data, params))
    except DimensionError:
        raise
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError):
        return math.nan
    return value if math.isfinite(value) else math.nan
