"""MLE and TwoNN computed from neighbour distances (the fast paths behind 'mle' and 'twonn').

Both split into a per-point statistic and a combination, so that a bootstrap can resample
points without recomputing neighbours (and without creating duplicate points).
"""
from __future__ import annotations

import numpy as np

from .errors import DimensionError

MLE_COMBINATIONS = ("mle", "mean", "median")


def mle_local(distances: np.ndarray, n_neighbors: int, unbiased: bool = False) -> np.ndarray:
    """Levina-Bickel local dimension of every point from its sorted neighbour distances.

    ``m_k(x) = (k - 1) / sum_{j=1}^{k-1} log(T_k(x) / T_j(x))`` with ``T_j`` the distance to
    the j-th neighbour (Levina and Bickel, "Maximum likelihood estimation of intrinsic
    dimension", NeurIPS 2004). ``unbiased=True`` uses ``k - 2`` in the numerator, the
    normalisation Levina and Bickel give for an unbiased estimate (skdim's
    ``MLE(unbiased=True)``).
    """
    k = int(n_neighbors)
    if k < (3 if unbiased else 2) or k > distances.shape[1]:
        raise DimensionError(f"n_neighbors={k} out of range for MLE: must lie in "
                             f"[{3 if unbiased else 2}, {distances.shape[1]}]")
    nearest = distances[:, :k]
    log_ratio_sum = np.log(nearest[:, -1:] / nearest).sum(axis=1)
    with np.errstate(divide="ignore"):
        return (k - 2 if unbiased else k - 1) / log_ratio_sum


def combine_mle(local: np.ndarray, comb: str = "mle") -> float:
    """Combine local MLE values over points.

    ``'mle'``: inverse of the mean inverse, ``m = [ (1/N) sum_x 1/m_k(x) ]^-1``
    (MacKay and Ghahramani 2005, "Comments on Levina and Bickel"); ``'mean'`` is Levina
    and Bickel's average; ``'median'`` the median. Same choices as skdim's ``MLE.fit(comb=)``.
    """
    if comb == "mle":
        return float(1.0 / np.mean(1.0 / local))
    if comb == "mean":
        return float(np.mean(local))
    if comb == "median":
        return float(np.median(local))
    raise DimensionError(f"comb={comb!r} unknown: choose one of {MLE_COMBINATIONS}")


def twonn_ratios(distances: np.ndarray) -> np.ndarray:
    """Per-point ratio ``mu = r2 / r1`` of second to first neighbour distance (Facco et al. 2017)."""
    if distances.shape[1] < 2:
        raise DimensionError("TwoNN needs the 2 nearest neighbours of every point, got "
                             f"{distances.shape[1]} column(s) of distances")
    return distances[:, 1] / distances[:, 0]


def combine_twonn(ratios: np.ndarray, discard_fraction: float = 0.1, fit: str = "linear") -> float:
    """TwoNN dimension from the ratios ``mu`` (Facco, d'Errico, Rodriguez, Laio, Sci. Rep. 2017).

    ``mu`` follows the Pareto law ``F(mu) = 1 - mu^-d``, so ``-log(1 - F(mu)) = d log(mu)``.
    ``'linear'`` (the paper's eq. 5-6): sort ``mu``, drop the largest ``discard_fraction``,
    regress ``y_i = -log(1 - i/N)`` on ``x_i = log mu_(i)`` through the origin,
    ``d = sum x_i y_i / sum x_i^2`` (with ``discard_fraction=0`` the point i = N, whose y is
    infinite, is left out; skdim fails there). ``'mle'``: ``d = (n - 1) / (sum_{i<=n} log mu_(i) +
    (N - n) log mu_(n))`` with the discarded ratios treated as censored (Denti et al. 2022).
    Both match ``skdim.id.TwoNN(discard_fraction, method=fit)``.
    """
    if not 0.0 <= discard_fraction < 1.0:
        raise DimensionError(f"discard_fraction={discard_fraction!r} out of range: must lie in [0, 1)")
    n_total = len(ratios)
    n_keep = int(n_total * (1 - discard_fraction))
    if n_keep < 2:
        raise DimensionError(f"TwoNN keeps {n_keep} of {n_total} points; needs at least 2")
    log_mu = np.log(np.sort(ratios)[:n_keep])
    if fit == "mle":
        return float((n_keep - 1) / (log_mu.sum() + (n_total - n_keep) * log_mu[-1]))
    if fit == "linear":
        n_fit = min(n_keep, n_total - 1)
        y = -np.log(1 - np.arange(1, n_fit + 1) / n_total)
        x = log_mu[:n_fit]
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.dot(x, y) / np.dot(x, x))
    raise DimensionError(f"fit={fit!r} unknown for TwoNN: choose 'linear' or 'mle'")
