"""Percentile bootstrap confidence intervals for intrinsic-dimension estimates.

Points are resampled with replacement (Efron and Tibshirani 1993, ch. 13: the interval is
the (alpha/2, 1 - alpha/2) quantiles of the resampled estimates). For the kNN fast paths
the per-point statistics (local MLE, TwoNN ratio) are resampled, with neighbours taken from
the full data: that is the bootstrap over points of a mean-type estimator and needs one kNN.
Other estimators are refitted on each resample with repeated draws dropped, because a
duplicated point has a zero neighbour distance and drives kNN estimates to 0; such a
resample holds about 63% of the distinct points, so its interval is somewhat wide. The draws
are made before any work, and if one of them holds fewer distinct points than such an
estimator needs (points files of 21-33 rows, with k = 20), the request is refused with a
clear error rather than run with a shrunken k that would change what is estimated.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DimensionError
from .registry import Estimator, Params


def check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0 or math.isnan(confidence):
        raise DimensionError(f"confidence={confidence!r} out of range: must lie in (0, 1)")
    return float(confidence)


def check_n_bootstrap(n_bootstrap: int) -> int:
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise DimensionError(f"n_bootstrap={n_bootstrap!r} out of range: must be an integer >= 0")
    return int(n_bootstrap)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DimensionError(f"seed={seed!r} out of range: must be an integer >= 0")
    return int(seed)


def draw_resamples(n_points: int, n_bootstrap: int, seed: int = 0) -> list[np.ndarray]:
    """``n_bootstrap`` draws of ``n_points`` indices with replacement (fixed ``seed``)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_points, size=n_points) for _ in range(n_bootstrap)]


def check_resample_sizes(estimator: Estimator, draws: list[np.ndarray], params: Params,
                         data_name: str = "points") -> None:
    """An estimator refitted on each resample (no per-point statistics) must find enough
    distinct points in every one; refuse before any work rather than lose the estimate to a
    resample that is too small (a resample holds about 63% of the distinct points)."""
    if estimator.has_local or not draws:
        return
    needed = estimator.min_points(params)
    distinct = np.array([len(np.unique(draw)) for draw in draws])
    short = int((distinct < needed).sum())
    if short:
        raise DimensionError(
            f"n_bootstrap={len(draws)} too many for {estimator.name!r} on {len(draws[0])} distinct "
            f"{data_name}: it is refitted on each resample and needs {needed} distinct points, but "
            f"{short} resamples hold fewer (as few as {distinct.min()}); use n_bootstrap=0 or more points")


def bootstrap_values(estimator: Estimator, points: np.ndarray, params: Params, draws: list[np.ndarray],
                     local_stats: np.ndarray | None = None) -> np.ndarray:
    """Estimates on the resamples ``draws`` of ``points``; NaN where one fails.

    ``local_stats``: the estimator's per-point statistics on ``points`` if already computed.
    """
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
