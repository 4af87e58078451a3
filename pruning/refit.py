"""Refit on a fixed support, and threshold-and-refit ("threshold-refit").

API for the support/refit ablation (GUIDE section 2, issue 14 part 4):

* ``refit(layer, mask, inputs, outputs, relu)``: keep the support ``mask`` (True = kept) and
  refit the kept weights and the bias to the layer's unpruned pre-activations ``Z``.
  Use it on any method's result (``result.mask``) for "its support with a refit".
* ``get_method(name).prune(layer, X, Z, s, mask=magnitude_mask(layer.weight, s))`` runs a
  method's own solver on thresholding's support ("thresholding's support with the
  method's solver"); every registered method accepts ``mask``.
* ``"threshold-refit"`` = hard thresholding's support, then ``refit``.

The fit, per output row ``i`` with kept set ``S_i`` (plus the bias; ``x~ = [x; 1]``,
``p = U x~``). Without relu: least squares ``min (1/N) sum_n (p_ni - z_ni)^2`` on ``S_i``. With a
relu (relu-aware, convex, the Net-Trim constraint as a penalty; Aghasi et al. 2017):

    min (1/N) [ sum_{z_ni > 0} (p_ni - z_ni)^2  +  sum_{z_ni <= 0} max(p_ni, 0)^2 ]

i.e. fit where the unit was active and only push the pre-activation below 0 where it was
not. Both are solved by the generalised Newton method for piecewise quadratics (the
squared-hinge "finite Newton" method, Mangasarian 2002; Keerthi and DeCoste 2005): the
Hessian of row ``i`` is ``(2/N) X~_S^T D_i X~_S`` with ``D_i`` the samples on a quadratic piece
(active, or inactive with ``p > 0``), a ridge of ``damping`` times its mean diagonal on top
(growing 100x while a Cholesky factor fails). The ``D_i`` Grams are sufficient statistics
kept exact by rank-one updates of the samples that change piece (``layerdata.RowGrams``), and
only the rows whose Gram changed are refactored, so a step costs two passes over the data
plus the changed samples; an exact per-row line search (``_line_minimum``) takes the best
point along each step (a halving search stalled on rows whose samples sit at the kink: 100
steps were not enough at 50% sparsity, 125 exact ones are). Once no sample changes piece the
step is exact, so the method stops after finitely many steps; it stops when the relative
change of the loss falls below ``tol``. Started from the thresholded weights.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import LayerPruner, PruneResult, Solution, register
from .layerdata import PATCH_ROWS, LayerProblem, RowGrams
from .threshold import magnitude_mask

def refit_problem(problem: LayerProblem, mask: torch.Tensor, damping: float = 1e-6, tol: float = 1e-6,
                  max_iterations: int = 1000, sign_weight: float = 1.0) -> Solution:
    """Refit ``problem``'s kept weights and bias on ``mask`` (module docstring); matrix shapes.

    ``sign_weight`` multiplies the inactive term ``max(p, 0)^2``: as it grows the fit tends to the least
    squares on the active samples subject to ``p <= 0`` on the inactive ones (a quadratic penalty), whose
    active error it never exceeds."""
    x, z = problem.inputs, problem.outputs
    n = x.shape[0]
    support = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    u = torch.cat([problem.weight * mask, problem.bias[:, None]], 1)
    active = (z > 0) if problem.relu else None
    grams = RowGrams(x, z.shape[1], delta=0.5, floor=0.5)  # curvatures are 0 or 2: every change is exact

    def evaluate(p):
        slope, weight = _pieces(p, z, active, sign_weight)
        error = p - z if active is None else torch.where(active, p - z, p.clamp_min(0))
        return (slope * error).sum(0) / n, slope, 2.0 * weight

    p = torch.addmm(u[:, -1], x, u[:, :-1].T)
    loss, slope, curvature = evaluate(p)
    grams.track(support, curvature)  # the support is fixed: only the curvatures change below
    factor = grams.factors(damping)
    converged, iteration = False, 0
    for iteration in range(1, max_iterations + 1):
        gradient = torch.cat([slope.T @ x, slope.sum(0)[:, None]], 1) * (2.0 / n)
        changed = grams.update(curvature)
        if changed.numel():  # refactor only the rows whose Gram changed
            factor[changed] = grams.factors(damping, rows=changed)
        g = gradient.gather(1, grams.index).double() * grams.valid
        step = grams.scatter(-torch.cholesky_solve(g[:, :, None], factor)[:, :, 0]).to(u.dtype)
        dp = torch.addmm(step[:, -1], x, step[:, :-1].T)
        scale = _line_minimum(p, dp, z, active, sign_weight)
        u, p = u + scale[:, None] * step, p + scale * dp
        new_loss, slope, curvature = evaluate(p)
        change = float(loss.sum() - new_loss.sum()) / max(float(loss.sum()), 1e-30)
        loss = new_loss
        if change < tol:
            converged = True
            break
    objective = float(loss.sum())
    info = {"iterations": iteration, "converged": converged, "damping": damping, "objective": objective}
    u = u.to(problem.weight.dtype)
    return Solution(u[:, :-1] * mask, u[:, -1], mask, info)


def _pieces(q: torch.Tensor, z: torch.Tensor, active: torch.Tensor | None,
            sign_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, half the loss term's derivative in ``q`` and half its curvature (module docstring):
    ``q - z`` and 1 where the unit was active (or without a relu), ``w max(q, 0)`` and ``w [q > 0]``
    where it was not (``w = sign_weight``)."""
    if active is None:
        return q - z, torch.ones_like(q)
    return (torch.where(active, q - z, sign_weight * q.clamp_min(0)),
            torch.where(active, 1.0, sign_weight * (q > 0)).to(q.dtype))


def _line_minimum(p: torch.Tensor, dp: torch.Tensor, z: torch.Tensor, active: torch.Tensor | None,
                  sign_weight: float = 1.0, rtol: float = 1e-3, iterations: int = 60) -> torch.Tensor:
    """Per row the ``t >= 0`` that minimises the loss along ``p + t dp``.

    The loss is convex and piecewise quadratic in ``t``, so its derivative
    ``(2/N) sum_n r_n(t) dp_n`` (``r`` half the derivative of a loss term, ``_pieces``) is non-decreasing and
    piecewise linear: Newton's method on it, kept inside a bracket ``[lo, hi]`` of the root (a
    bisection when a Newton point leaves it), finds the root exactly once it is on the root's piece.
    It stops when the derivative has fallen below ``rtol`` times its value at 0 (or the bracket
    below ``rtol`` of its end): the loss decrease along the line is then within about ``rtol`` of
    the best.
    """
    # one output row per tensor row: a subset of rows is then a contiguous copy
    p, dp, z = p.T.contiguous(), dp.T.contiguous(), z.T.contiguous()
    active = None if active is None else active.T.contiguous()

    def slope_and_curvature(t, rows):
        q = p[rows] + t[:, None] * dp[rows]
        slope, weight = _pieces(q, z[rows], None if active is None else active[rows], sign_weight)
        return (slope * dp[rows]).sum(1), (dp[rows].pow(2) * weight).sum(1)

    everything = slice(None)
    slope0, _ = slope_and_curvature(torch.zeros_like(p[:, 0]), everything)
    lo, hi = torch.zeros_like(slope0), torch.full_like(slope0, float("inf"))
    t = torch.where(slope0 < 0, torch.ones_like(slope0), torch.zeros_like(slope0))
    todo = (slope0 < 0).nonzero()[:, 0]  # a row without descent along dp (converged) stays at 0
    for _ in range(iterations):
        if todo.numel() == 0:
            break
        slope, curvature = slope_and_curvature(t[todo], todo)
        lo[todo] = torch.where(slope < 0, t[todo], lo[todo])
        hi[todo] = torch.where(slope > 0, t[todo], hi[todo])
        l, h, now = lo[todo], hi[todo], t[todo]
        done = (slope.abs() <= rtol * slope0[todo].abs()) | (h - l <= rtol * h)
        newton = now - slope / curvature.clamp_min(1e-30)
        fallback = torch.where(torch.isinf(h), 2 * now, (l + h) / 2)
        t[todo] = torch.where(done, now, torch.where((newton > l) & (newton < h), newton, fallback))
        todo = todo[~done]
    return t


def refit(layer: nn.Module, mask: torch.Tensor, inputs: torch.Tensor, outputs: torch.Tensor,
          relu: bool = True, layer_name: str | None = None, **options) -> PruneResult:
    """Keep the support ``mask`` and refit kept weights and bias (module docstring)."""
    return ThresholdRefit(**options).prune(layer, inputs, outputs, 0.0, relu=relu, layer_name=layer_name,
                                           mask=mask)


@register("threshold-refit")
class ThresholdRefit(LayerPruner):
    """Hard thresholding's support, then ``refit`` (module docstring).

    Options: ``damping`` ridge relative to ``mean(diag G)``; ``tol`` relative change of the
    relu-aware loss that stops the refit; ``max_iterations`` a safety cap (``converged`` is
    False when it is reached).
    """

    def __init__(self, damping: float = 1e-6, tol: float = 1e-6, max_iterations: int = 1000,
                 patch_rows: int | None = PATCH_ROWS, seed: int = 0) -> None:
        super().__init__(patch_rows, seed)
        self.damping, self.tol, self.max_iterations = damping, tol, max_iterations

    def _solve(self, problem: LayerProblem, sparsity: float, mask: torch.Tensor | None) -> Solution:
        mask = magnitude_mask(problem.weight, sparsity) if mask is None else mask
        return refit_problem(problem, mask, self.damping, self.tol, self.max_iterations)
