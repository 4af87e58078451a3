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
``p = U x~``). Without relu: least squares ``min (1/N) sum_n (p_ni - z_ni)^2`` on ``S_i``,
ridge-damped by ``damping * mean(diag G)`` on the weights (``G = X~^T X~ / N``; the damping
grows by 100x while the Cholesky factor fails). With a relu (relu-aware, convex, the
Net-Trim constraint as a penalty; Aghasi et al. 2017):

    min (1/N) [ sum_{z_ni > 0} (p_ni - z_ni)^2  +  sum_{z_ni <= 0} max(p_ni, 0)^2 ]

i.e. fit where the unit was active and only push the pre-activation below 0 where it was
not. Started from the least-squares fit, solved by accelerated majorise-minimise steps
in the metric ``G_SS`` (its Hessian is at most ``2 G_SS``, so a unit step in that metric is
a majoriser; Nesterov momentum with adaptive restart, O'Donoghue and Candes 2015), until
the relative objective change falls below ``tol``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import LayerPruner, PruneResult, Solution, register
from .layerdata import PATCH_ROWS, LayerProblem
from .threshold import magnitude_mask

_FACTOR_ENTRIES = 2 ** 24  # float64 entries of per-row systems built at once


def _augmented(inputs: torch.Tensor) -> torch.Tensor:
    return torch.cat([inputs, torch.ones_like(inputs[:, :1])], 1)


class SupportSystem:
    """Per-row Cholesky factors of ``G_SS + ridge`` for the kept sets ``S_i`` (bias included)."""

    def __init__(self, gram: torch.Tensor, mask: torch.Tensor, damping: float) -> None:
        d_out, d_in = mask.shape
        kept = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)  # the bias is always free
        counts = kept.sum(1)
        width = int(counts.max())
        order = torch.sort((~kept).to(torch.int8), dim=1, stable=True).indices[:, :width]
        self.index, self.valid = order, torch.arange(width, device=mask.device)[None, :] < counts[:, None]
        ridge = damping * float(gram.diagonal().mean())
        is_weight = (self.index < d_in) & self.valid
        chunk = max(1, _FACTOR_ENTRIES // (width * width))
        self.factors = [self._factor(gram, part, ridge, is_weight[part])
                        for part in torch.arange(d_out, device=mask.device).split(chunk)]
        self.chunk = chunk

    def _factor(self, gram, rows, ridge, is_weight):
        index, valid = self.index[rows], self.valid[rows]
        pair = valid[:, :, None] & valid[:, None, :]
        system = gram[index[:, :, None], index[:, None, :]] * pair
        diagonal = torch.where(valid, ridge * is_weight, torch.ones_like(valid, dtype=gram.dtype))
        for _ in range(4):
            factor, info = torch.linalg.cholesky_ex(system + torch.diag_embed(diagonal))
            if not bool(info.any()):
                return factor
            diagonal = torch.where(valid & is_weight, diagonal * 100 + 1e-12, diagonal)
        raise torch.linalg.LinAlgError("the least-squares system on the support stays singular")

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """Solve every row's system for ``rhs`` ``(d_out, d_in + 1)``; zero off the support."""
        gathered = rhs.gather(1, self.index) * self.valid
        pieces = [torch.cholesky_solve(gathered[part, :, None], factor)[:, :, 0]
                  for part, factor in zip(torch.arange(rhs.shape[0]).split(self.chunk), self.factors)]
        out = torch.zeros_like(rhs)
        return out.scatter_(1, self.index, torch.cat(pieces) * self.valid)


def _relu_loss(x: torch.Tensor, z: torch.Tensor, active: torch.Tensor, u: torch.Tensor):
    """The relu-aware loss of the module docstring and its residual ``dL/dp * N / 2``."""
    p = x @ u.T.to(x.dtype)
    residual = torch.where(active, p - z, p.clamp_min(0))
    return float(residual.pow(2).sum()) / x.shape[0], residual


def refit_problem(problem: LayerProblem, mask: torch.Tensor, damping: float = 1e-6, tol: float = 1e-6,
                  max_iterations: int = 500) -> Solution:
    """Refit ``problem``'s kept weights and bias on ``mask`` (module docstring); matrix shapes."""
    x, z = _augmented(problem.inputs), problem.outputs
    n = x.shape[0]
    gram = (x.T @ x).double() / n
    system = SupportSystem(gram, mask, damping)
    u = system.solve(((z.T @ x).double() / n))
    info = {"iterations": 0, "converged": True, "damping": damping}
    if problem.relu:
        u, info["iterations"], info["converged"], objective = _relu_refit(x, z, system, u, tol, max_iterations)
    else:
        objective = float((x @ u.T.float() - z).double().pow(2).sum()) / n
    info["objective"] = objective
    u = u.to(problem.weight.dtype)
    return Solution(u[:, :-1] * mask, u[:, -1], mask, info)


def _relu_refit(x, z, system: SupportSystem, u, tol: float, max_iterations: int):
    """Accelerated MM on the relu-aware loss from ``u``; returns (u, iterations, converged, loss)."""
    active = z > 0
    n = x.shape[0]

    def mm_step(at, residual):
        return at - system.solve((residual.T @ x).double() / n)

    loss, residual = _relu_loss(x, z, active, u)
    floor = 1e-6 * float(z.double().pow(2).sum()) / n  # float32 noise floor of the loss
    point, point_residual, momentum = u, residual, 1.0
    for iteration in range(1, max_iterations + 1):
        candidate = mm_step(point, point_residual)
        new_loss, new_residual = _relu_loss(x, z, active, candidate)
        if new_loss > loss:  # adaptive restart: a plain MM step from u never raises the loss
            candidate = mm_step(u, residual)
            new_loss, new_residual = _relu_loss(x, z, active, candidate)
            momentum = 1.0
        change = abs(loss - new_loss) / max(loss, floor, 1e-30)
        next_momentum = (1 + math.sqrt(1 + 4 * momentum ** 2)) / 2
        beta = (momentum - 1) / next_momentum
        point = candidate + beta * (candidate - u)
        u, residual, loss, momentum = candidate, new_residual, new_loss, next_momentum
        point_residual = _relu_loss(x, z, active, point)[1] if beta else residual
        if change < tol:
            return u, iteration, True, loss
    return u, max_iterations, False, loss


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

    def __init__(self, damping: float = 1e-6, tol: float = 1e-6, max_iterations: int = 500,
                 patch_rows: int | None = PATCH_ROWS, seed: int = 0) -> None:
        super().__init__(patch_rows, seed)
        self.damping, self.tol, self.max_iterations = damping, tol, max_iterations

    def _solve(self, problem: LayerProblem, sparsity: float, mask: torch.Tensor | None) -> Solution:
        mask = magnitude_mask(problem.weight, sparsity) if mask is None else mask
        return refit_problem(problem, mask, self.damping, self.tol, self.max_iterations)
