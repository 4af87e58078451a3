"""FeTa: layer-wise pruning as a difference-of-convex program (GUIDE section 2).

With the softplus ``s_t(z) = log(1 + exp(t z)) / t`` (t = 10) standing in for relu,
FeTa solves, per layer,

    min_U  F(U) = (1/N) sum_n || s_t(U x~_n) - y_n ||^2 + lam ||W||_1,   U = [W b]

(the bias ``b`` is not penalised). Since ``y >= 0``, ``F = g - h + const`` with
``g(U) = (1/N) sum ||s_t(U x~)||^2 + lam ||W||_1`` and ``h(U) = (2/N) sum y^T s_t(U x~)``
both convex; DCA iterates ``U_{k+1} = argmin g(U) - <grad h(U_k), U>``, which never
increases ``F`` when the subproblem is solved exactly. The subproblem is solved by
FISTA (Beck and Teboulle 2009) with the soft-thresholding prox and the known Lipschitz
constant ``L = 2 c_max lambda_max(Xs~^T Xs~ / N)`` where ``c_max = max_z d/dz[s_t(z) s_t'(z)]``;
inputs are standardised by an exact change of variables (see ``layerdata.Standardiser``).
The authors used a proximal SVRG with 4 DCA steps and a hand-tuned lam.

Target sparsity (``FeTa.prune``): a progressive-sample scheme (dynamic sample sizes,
Byrd et al. 2012). DCA runs on growing random subsamples while a multiplicative
controller moves lam until the number of non-zeros matches the target, then runs on all
N samples with lam frozen. The result is projected onto the exact target by keeping the
largest-magnitude weights (top-k), and the kept weights and bias are re-fitted on all
samples (DCA steps with lam = 0 restricted to the support).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import LayerPruner, PruneResult, count_to_prune, register
from .layerdata import Standardiser, layer_problem, output_bias, soft_threshold, top_k_mask


def softplus_t(z: torch.Tensor, t: float) -> torch.Tensor:
    """``s_t(z) = log(1 + exp(t z)) / t`` (numerically stable)."""
    return F.softplus(z, beta=t, threshold=20.0)


def curvature_bound() -> float:
    """``max_z d/dz [s_t(z) sigmoid(t z)] = max_w sigmoid(w)^2 + softplus(w) sigmoid(w) (1 - sigmoid(w))``.

    Independent of t (substitute w = t z); about 1.05, reached near w = 3.
    """
    w = torch.linspace(-40, 40, 160001, dtype=torch.float64)
    sig = torch.sigmoid(w)
    return float((sig ** 2 + F.softplus(w) * sig * (1 - sig)).max())


_CURVATURE = curvature_bound()


def feta_objective(inputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor, lam: float, t: float = 10.0) -> float:
    """``F(U) = (1/N) sum_n ||s_t(W x_n + b) - y_n||^2 + lam ||W||_1``."""
    z = torch.addmm(bias, inputs, weight.T)
    return float((softplus_t(z, t) - target).pow(2).sum(1).mean() + lam * weight.abs().sum())


class _Sample:
    """Inputs, target, standardiser and FISTA step of one (sub)sample of the layer data."""

    def __init__(self, inputs, target, std: Standardiser, lipschitz: float) -> None:
        self.inputs, self.target, self.std = inputs, target, std
        self.step = 1.0 / lipschitz


def _lipschitz(std: Standardiser, inputs: torch.Tensor, safety: float) -> float:
    return 2.0 * _CURVATURE * std.lambda_max(inputs) * safety


def _dca_round(data: _Sample, v, c, lam: float, inner: int, t: float, allowed: torch.Tensor,
               keep: int | None = None):
    """One DCA step: FISTA on ``g(U) - <grad h(U_k), U>`` from ``U_k = (v, c)``.

    Returns the new ``(v, c)``, ``lam`` (moved toward ``keep`` non-zeros when ``keep`` is
    given) and ``F(U_k)``.
    """
    x, y, std = data.inputs, data.target, data.std
    n = x.shape[0]
    z = std.forward(x, v, c)
    objective = float((softplus_t(z, t) - y).pow(2).sum(1).mean() + lam * (v / std.sd).abs().sum())
    anchor = y * torch.sigmoid(t * z)  # grad h(U_k) = (2/N) Xs~^T (y * s_t'(z_k))
    point_v, point_c, prev_v, momentum = v, c, v, 1.0
    for _ in range(inner):
        z = std.forward(x, point_v, point_c)
        grad_z = (2.0 / n) * (softplus_t(z, t) * torch.sigmoid(t * z) - anchor)
        grad_v, grad_c = std.backward(x, grad_z)
        new_v = soft_threshold(point_v - data.step * grad_v, data.step * lam / std.sd) * allowed
        new_c = point_c - data.step * grad_c
        if keep is not None:
            nonzero = max(int(torch.count_nonzero(new_v)), 1)
            lam *= min(max((nonzero / keep) ** 1.5, 0.6), 1.6)
        next_momentum = (1 + math.sqrt(1 + 4 * momentum ** 2)) / 2
        beta = (momentum - 1) / next_momentum
        point_v = new_v + beta * (new_v - prev_v)
        point_c = new_c + beta * (new_c - c)
        prev_v, c, momentum = new_v, new_c, next_momentum
    return prev_v, c, lam, objective


def feta_solve(inputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               lam: float, outer_iterations: int = 4, inner_iterations: int = 50, t: float = 10.0,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """DCA for FeTa at a fixed ``lam`` on all samples, starting from ``(weight, bias)``.

    ``mask`` (True = free) restricts the support. Returns the new weight, bias and the
    history ``F(U_0), ..., F(U_K)`` of the DC objective.
    """
    std = Standardiser(inputs)
    data = _Sample(inputs, target, std, _lipschitz(std, inputs, safety=1.05))
    allowed = ~std.constant if mask is None else mask & ~std.constant
    v, c = std.to_standard(weight, bias)
    v = v * allowed
    history = []
    for _ in range(outer_iterations):
        v, c, _, objective = _dca_round(data, v, c, lam, inner_iterations, t, allowed)
        history.append(objective)
    new_weight, new_bias = std.from_standard(v, c)
    history.append(feta_objective(inputs, target, new_weight, new_bias, lam, t))
    return new_weight, new_bias, history


@register("feta")
class FeTa(LayerPruner):
    """FeTa with a target sparsity (see the module docstring for the scheme).

    Options: ``t`` softplus sharpness; ``sample_sizes`` the subsample sizes of the lam
    search stages and ``stage_rounds`` their DCA rounds; ``inner_iterations`` FISTA steps
    per DCA round in those stages; ``full_rounds``/``full_inner`` the DCA rounds on all
    samples with lam frozen; ``refit_iterations`` FISTA steps of the support re-fit;
    ``lam`` fixes lam (no search); ``seed`` draws the subsamples.
    """

    def __init__(self, t: float = 10.0, sample_sizes: tuple[int, ...] = (3000, 12000),
                 stage_rounds: tuple[int, ...] = (4, 2), inner_iterations: int = 6,
                 full_rounds: int = 1, full_inner: int = 2, refit_iterations: int = 2,
                 lam: float | None = None, lipschitz_safety: float = 1.2, seed: int = 0) -> None:
        self.t, self.sample_sizes, self.stage_rounds = t, tuple(sample_sizes), tuple(stage_rounds)
        self.inner_iterations, self.full_rounds, self.full_inner = inner_iterations, full_rounds, full_inner
        self.refit_iterations, self.lam, self.lipschitz_safety, self.seed = (
            refit_iterations, lam, lipschitz_safety, seed)

    def _initial_lam(self, v, std, allowed, n_prune: int, step: float) -> float:
        """The lam whose single prox step from the trained weights zeroes ``n_prune`` weights."""
        scores = (v.abs() * std.sd / step)[allowed]
        if n_prune <= 0 or scores.numel() == 0:
            return 0.0
        n_prune = min(n_prune, scores.numel())
        return float(scores.kthvalue(n_prune).values.clamp_min(1e-12))

    def _prune(self, layer: nn.Module, inputs, outputs, sparsity, relu) -> PruneResult:
        problem = layer_problem(layer, inputs, outputs, relu)
        x, y = problem.inputs, problem.target
        n, numel = x.shape[0], problem.weight.numel()
        n_prune = count_to_prune(numel, sparsity)
        keep = max(numel - n_prune, 1)
        std = Standardiser(x)
        allowed = (~std.constant).expand_as(problem.weight)
        v, c = std.to_standard(problem.weight, problem.bias)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).to(x.device)
        sizes = [min(size, n) for size in self.sample_sizes if size < n]
        rounds = list(self.stage_rounds[:len(sizes)])
        first = x[order[:sizes[0]]] if sizes else x
        lipschitz = _lipschitz(std, first, self.lipschitz_safety)
        lam = self.lam if self.lam is not None else self._initial_lam(v, std, allowed, n_prune, 1 / lipschitz)
        search = None if self.lam is not None or n_prune == 0 else keep
        iterations, objective = 0, float("nan")
        for size, count in zip(sizes, rounds):
            data = _Sample(x[order[:size]], y[order[:size]], std, lipschitz)
            for _ in range(count):
                v, c, lam, objective = _dca_round(data, v, c, lam, self.inner_iterations, self.t,
                                                  allowed, search)
                iterations += self.inner_iterations
        full = _Sample(x, y, std, lipschitz)
        for _ in range(self.full_rounds):
            v, c, lam, objective = _dca_round(full, v, c, lam, self.full_inner, self.t, allowed)
            iterations += self.full_inner
        mask = top_k_mask(v / std.sd, sparsity)
        if self.refit_iterations > 0:
            v, c, _, _ = _dca_round(full, v * mask, c, 0.0, self.refit_iterations, self.t, mask & allowed)
            iterations += self.refit_iterations
        weight, bias = std.from_standard(v * mask, c)
        weight = weight * mask
        objective = feta_objective(x, y, weight, bias, lam, self.t)
        info = {"iterations": iterations, "objective": objective, "lam": lam,
                "samples": sizes + [n], "t": self.t}
        return PruneResult(weight.to(layer.weight.dtype), output_bias(layer, bias), mask, info)
