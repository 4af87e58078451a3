"""Margin-based generalization bound of Sokolic, Giryes, Sapiro, Rodrigues (arXiv 1605.08254).

Theorem 3 there (data on a k-dimensional manifold with covering numbers
``N(rho) <= (C_M / rho)^k``, classification (input) margin gamma, m samples, N_y classes):
with probability at least 1 - delta,

    GE <= sqrt( log(2) N_y 2^(k+1) C_M^k / (gamma^k m) ) + sqrt( 2 log(1/delta) / m ).

It is the robustness bound of Xu and Mannor, ``sqrt(2 log(2) K / m) + sqrt(2 log(1/delta) / m)``,
with ``K = N_y N(gamma / 2) <= N_y (2 C_M / gamma)^k`` regions. Everything is computed in
log space so that large k does not overflow; an infinite result means the bound is vacuous.
``pruned_generalization_bounds`` evaluates it before and after pruning over an interval of k,
with ``C_M`` given or fitted to measured covering numbers (``theory.covering``).
"""
from __future__ import annotations

import math

from .covering import CoveringNumbers
from .covering import covering_constant as fitted_covering_constant
from .errors import TheoryError


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0 or math.isinf(value):
        raise TheoryError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def log_sokolic_complexity_term(k: float, covering_constant: float, margin: float, num_samples: int,
                                num_classes: int) -> float:
    """log of ``sqrt(log(2) N_y 2^(k+1) C_M^k / (gamma^k m))``."""
    k = float(k)
    if not k >= 0:
        raise TheoryError(f"intrinsic dimension k must be >= 0, got {k!r}")
    c_m, gamma = _positive("covering_constant", covering_constant), _positive("margin", margin)
    m, classes = _positive("num_samples", num_samples), _positive("num_classes", num_classes)
    log_inside = (math.log(math.log(2)) + math.log(classes) + (k + 1) * math.log(2)
                  + k * (math.log(c_m) - math.log(gamma)) - math.log(m))
    return 0.5 * log_inside


def sokolic_generalization_bound(k: float, covering_constant: float, margin: float, num_samples: int,
                                 num_classes: int, delta: float = 0.05) -> float:
    """Sokolic et al. Theorem 3 bound on the generalization error (inf when it overflows)."""
    if not 0 < delta < 1:
        raise TheoryError(f"delta must lie in (0, 1), got {delta!r}")
    log_term = log_sokolic_complexity_term(k, covering_constant, margin, num_samples, num_classes)
    confidence = math.sqrt(2 * math.log(1 / delta) / num_samples)
    return (math.exp(log_term) if log_term < 700 else math.inf) + confidence


def log_complexity_ratio_after_shrink(k: float, margin: float, shrunk_margin: float) -> float:
    """log of (complexity term at ``shrunk_margin``) / (at ``margin``) = ``(k/2) log(gamma / gamma')``.

    The term grows like ``gamma^(-k/2)``: a margin shrunk by pruning costs more when k is larger.
    """
    gamma, shrunk = _positive("margin", margin), _positive("shrunk_margin", shrunk_margin)
    return 0.5 * float(k) * (math.log(gamma) - math.log(shrunk))


def pruned_output_margin(margin: float, perturbation_bound: float) -> float:
    """Output margin guaranteed after pruning: ``gamma - sqrt(2) * bound`` (see ``theory.margin``)."""
    return float(margin) - math.sqrt(2) * float(perturbation_bound)


def input_margin_lower_bound(output_margin: float, jacobian_norm: float) -> float:
    """Input margin ``>= output_margin / (sqrt(2) sup ||J(x)||_2)`` (sup over a neighbourhood of x).

    Proof: ``|(e_y - e_j) . (f(x + v) - f(x))| <= sqrt(2) sup ||J||_2 ||v||``, so no logit
    difference can close a gap of ``output_margin`` while ``||v||`` is below this value
    (the relation Sokolic et al. use between output and input margins).
    """
    return float(output_margin) / (math.sqrt(2) * _positive("jacobian_norm", jacobian_norm))


def _bound_or_inf(k: float, covering: float | CoveringNumbers, margin: float, num_samples: int,
                  num_classes: int, delta: float) -> float:
    if not margin > 0:
        return math.inf  # no positive margin: the theorem says nothing
    c_m = fitted_covering_constant(covering, k) if isinstance(covering, CoveringNumbers) else covering
    return sokolic_generalization_bound(k, c_m, margin, num_samples, num_classes, delta)


def pruned_generalization_bounds(k: float, k_interval: tuple[float, float], margin_before: float,
                                 margin_after: float, covering: float | CoveringNumbers, num_classes: int,
                                 num_samples: int, delta: float = 0.05, grid: int = 17) -> dict[str, float]:
    """Sokolic et al. Theorem 3 bound before and after pruning, at k and over an interval of k.

    ``margin_*`` are INPUT margins (see ``input_margin_lower_bound``); the theorem needs every one
    of the m training samples to have at least this margin, so a margin taken as a quantile of
    the margin distribution, or one that is not positive (returned bound: inf), is outside the
    theorem. ``covering`` is ``C_M`` (known for a synthetic manifold) or the measured
    ``CoveringNumbers``, in which case ``C_M = covering_constant(covering, k)`` is refitted for
    every k (it depends on k; see ``theory.covering`` for what it does and does not estimate).
    ``k_interval`` (e.g. a bootstrap interval of the intrinsic dimension) gives
    ``bound_*_low`` / ``bound_*_high``: min and max over ``grid`` evenly spaced k in the interval
    and k itself. With C_M fixed the log bound is linear in k, with the envelope fit convex, so
    the maximum is at an end and exact; the minimum is over the grid.
    """
    if not 0 < delta < 1:
        raise TheoryError(f"delta must lie in (0, 1), got {delta!r}")
    if not (isinstance(grid, int) and grid >= 2):
        raise TheoryError(f"grid must be an int >= 2, got {grid!r}")
    _positive("num_samples", num_samples), _positive("num_classes", num_classes)
    low, high = (float(v) for v in k_interval)
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= float(k) <= high):
        raise TheoryError(f"k_interval must satisfy 0 < low <= k <= high, got {k_interval!r} for k={k!r}")
    if isinstance(covering, (int, float)):
        _positive("covering", covering)
    elif not isinstance(covering, CoveringNumbers):
        raise TheoryError(f"covering must be a number C_M > 0 or CoveringNumbers, got {type(covering).__name__}")
    ks = [float(k), *(low + (high - low) * i / (grid - 1) for i in range(grid))]
    result = {"covering_constant": (fitted_covering_constant(covering, k) if isinstance(covering, CoveringNumbers)
                                    else float(covering))}
    for name, margin in (("before", margin_before), ("after", margin_after)):
        if not math.isfinite(float(margin)):
            raise TheoryError(f"margin_{name} must be finite, got {margin!r}")
        values = [_bound_or_inf(v, covering, float(margin), num_samples, num_classes, delta) for v in ks]
        result.update({f"bound_{name}": values[0], f"bound_{name}_low": min(values),
                       f"bound_{name}_high": max(values)})
    return result
