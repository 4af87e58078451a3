"""Covering numbers of a point set and the covering constant ``C_M`` of the Sokolic et al. bound.

Sokolic, Giryes, Sapiro, Rodrigues (arXiv 1605.08254) assume the data lie on a manifold M
with ``N(rho) <= (C_M / rho)^k`` for its rho-covering numbers. From a SAMPLE of M we can only
measure covering numbers of the sample, at scales the sample resolves:

* ``covering_numbers`` runs the farthest-point traversal (Gonzalez 1985): its first m centres
  cover every point within the current covering radius ``r_m`` and are pairwise at least
  ``r_m`` apart, so the count ``N_g(rho)`` (centres needed for radius <= rho) is a rho-net of
  the sample: ``N_sample(rho) <= N_g(rho) <= N_sample(rho / 2)``. The sample's covering
  numbers are at most those of M at half the scale (a subset needs no more than ``N_M(rho/2)``
  balls centred on itself), and at scales finer than the sampling density they saturate at
  the number of points, far below ``N_M(rho)``.
* ``covering_constant`` is the upper envelope ``max_rho rho N_g(rho)^(1/k)`` over the given
  scales (those with ``N_g < n``): the smallest ``C_M`` for which ``N_g(rho) <= (C_M / rho)^k``
  holds at every measured scale. It is a DESCRIPTIVE fit, not a bound on M's constant: it says
  nothing about unmeasured scales (the bound needs ``N(gamma / 2)`` at the margin's scale,
  usually far below any resolved scale), the sample can miss parts of M, and the value
  depends on k (for k below the local dimension it grows as the smallest scale shrinks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .errors import TheoryError


@dataclass(frozen=True)
class CoveringNumbers:
    """``counts[i]`` = greedy covering number of ``num_points`` points at scale ``radii[i]`` (ascending)."""

    radii: np.ndarray
    counts: np.ndarray
    num_points: int


def _points(points: torch.Tensor | np.ndarray) -> torch.Tensor:
    data = torch.as_tensor(points).detach().to(torch.float64, copy=False)
    if data.ndim != 2 or data.shape[0] == 0:
        raise TheoryError(f"points must be a non-empty (N, d) array, got shape {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        raise TheoryError("points contain NaN or infinite values")
    return data


def _radii(radii: Sequence[float]) -> np.ndarray:
    values = np.sort(np.asarray(radii, dtype=np.float64).ravel())
    if values.size == 0 or not (np.isfinite(values).all() and values[0] > 0):
        raise TheoryError(f"radii must be a non-empty sequence of finite numbers > 0, got {list(radii)!r}")
    return values


def covering_numbers(points: torch.Tensor | np.ndarray, radii: Sequence[float], start: int = 0) -> CoveringNumbers:
    """Greedy (farthest-point) covering numbers of ``points`` (N, d) at every scale in ``radii``.

    ``N_g(rho)`` = the number of farthest-point centres (from ``points[start]``) after which every
    point lies within rho of a centre; l2 distances in float64 from ``|x|^2 + |c|^2 - 2 x.c`` on
    centred data (absolute error ~1e-16 times the squared data radius, negligible at the scales
    a sample resolves). Cost O(N m d) for the m centres needed at the smallest radius.
    """
    data, scales = _points(points), _radii(radii)
    if not 0 <= start < data.shape[0]:
        raise TheoryError(f"start must be an index in [0, {data.shape[0] - 1}], got {start!r}")
    data = data - data.mean(dim=0)  # distances are unchanged; smaller norms mean less cancellation below
    squared = (data * data).sum(dim=1)

    def distances(centre: int) -> torch.Tensor:
        return (squared + squared[centre] - 2.0 * (data @ data[centre])).clamp_min(0).sqrt()

    nearest = distances(start)
    cover_radius = [float(nearest.max())]  # cover_radius[m - 1]: covering radius of the first m centres
    while cover_radius[-1] > scales[0] and len(cover_radius) < data.shape[0]:
        nearest = torch.minimum(nearest, distances(int(nearest.argmax())))
        cover_radius.append(float(nearest.max()))
    descending = np.asarray(cover_radius)  # ends at or below scales[0], or at 0 when every point is a centre
    counts = np.array([int(np.argmax(descending <= rho)) + 1 for rho in scales])
    return CoveringNumbers(scales, counts, data.shape[0])


def covering_constant(covering: CoveringNumbers, k: float) -> float:
    """Upper envelope ``C_M = max_rho rho N_g(rho)^(1/k)`` over the unsaturated scales (module docstring).

    The smallest ``C_M`` with ``log N_g(rho) <= k log(C_M / rho)`` at every measured scale where
    ``N_g(rho) < num_points``; a descriptive fit of the sample, not a certified constant of M.
    """
    k = float(k)
    if not (math.isfinite(k) and k > 0):
        raise TheoryError(f"k must be a finite number > 0, got {k!r}")
    informative = covering.counts < covering.num_points
    if not informative.any():
        raise TheoryError("every scale is saturated (N(rho) = number of points); give larger radii")
    radii, counts = covering.radii[informative], covering.counts[informative]
    return float(np.exp(np.max(np.log(radii) + np.log(counts) / k)))
