"""The FeTa solver before issue 14 (benchmark reference only, not registered).

FeTa: layer-wise pruning as a difference-of-convex program (GUIDE section 2).

With the softplus ``s_t(z) = log(1 + exp(t z)) / t`` (t = 10) standing in for relu,
FeTa solves, per layer (``x~ = [x; 1]``, ``U = [W b]``, the bias not penalised),

    min_U  F(U) = (1/N) sum_n || s_t(U x~_n) - y_n ||^2 + lam ||W||_1 .

Since ``y >= 0``, ``F = g - h + const`` with ``g(U) = (1/N) sum ||s_t(U x~)||^2 + lam ||W||_1``
and ``h(U) = (2/N) sum y^T s_t(U x~)`` convex; DCA iterates
``U_{k+1} = argmin g(U) - <grad h(U_k), U>`` and never increases ``F``.

Convex subproblem solver (replaces the authors' proximal SVRG): majorise-minimise with
the fixed quadratic metric ``M = 2 c_max G``, ``G = Xs~^T Xs~ / N`` the Gram of the
standardised inputs (an exact change of variables, ``layerdata.Standardiser``) and
``c_max = max_z d/dz[s_t(z) s_t'(z)]``. Since every row's Hessian of the smooth part is
``(2/N) Xs~^T diag(phi) Xs~ <= M``, each step ``min <grad, D> + D^T M D / 2 + lam ||.||_1``
decreases the subproblem (a variable-metric proximal gradient step, Tseng and Yun
2009); it is solved by FISTA on the Gram, which costs no pass over the data. One data
pass (forward and backward) per step, whatever the ill-conditioning of the pixels.

Target sparsity (``FeTa.prune``): a progressive-sample scheme (dynamic sample sizes,
Byrd et al. 2012): DCA steps on a random subsample while a multiplicative controller
moves lam until the non-zeros match the target, then steps on all N samples with lam
frozen (the Gram there comes from ``gram_samples`` rows; a step that raises F is undone
and the metric doubled). The result is projected onto the exact target by keeping the
largest weights (top-k), and the kept weights and bias are re-fitted on all samples
(the same steps with lam = 0 on the support). Each phase at fixed lam runs until the
relative change of ``F`` falls below ``tol`` (``info['converged']``); ``info['objective']`` is
the final ``F`` on the support (lam = 0). With a fixed support (``prune(..., mask=M)``) only
the refit on ``M`` runs. Where no relu follows (an output layer) the softplus is replaced
by the identity, so ``F`` is a plain lasso.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pruning.base import LayerPruner, Solution, count_to_prune
from pruning.layerdata import PATCH_ROWS, LayerProblem, Standardiser, keep_largest, soft_threshold


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


def _top_eigenvalue(gram: torch.Tensor, iterations: int = 60, safety: float = 1.02) -> float:
    """Largest eigenvalue of a PSD matrix by power iteration, times a small safety factor."""
    vec = torch.ones(gram.shape[0], dtype=gram.dtype, device=gram.device)
    value = 0.0
    for _ in range(iterations):
        vec = gram @ vec
        value = float(vec.norm())
        if value == 0.0:
            return 1.0
        vec = vec / value
    return value * safety


class _Metric:
    """``M = 2 c_max scale G~`` with ``G~`` the augmented standardised Gram of ``inputs``."""

    def __init__(self, std: Standardiser, inputs: torch.Tensor, scale: float = 1.0) -> None:
        xs = torch.cat([(inputs - std.mean) / std.sd, torch.ones_like(inputs[:, :1])], 1)
        self.gram = xs.T @ xs / inputs.shape[0]
        self.top = _top_eigenvalue(self.gram)
        self.scale = scale

    @property
    def factor(self) -> float:
        return 2.0 * _CURVATURE * self.scale


def _lasso_step(grad, start, metric: _Metric, thresholds, free, iterations: int, lam: float,
                keep: int | None, tol: float = 0.0):
    """FISTA on ``<grad, D> + D^T M D / 2 + lam sum_q thresholds_q |u_q|``, ``D = u - start``.

    Rows of ``start`` (augmented ``[v c]``) are independent; ``free`` masks the allowed
    entries. With ``keep``, lam follows a multiplicative controller toward ``keep`` non-zeros.
    Stops after ``iterations`` or when an iterate moves by less than ``tol`` times the step
    ``||D||`` (Frobenius).
    """
    lipschitz = metric.factor * metric.top
    gram = metric.gram * metric.factor
    point, previous, momentum = start, start, 1.0
    for _ in range(iterations):
        gradient = grad + (point - start) @ gram
        current = soft_threshold(point - gradient / lipschitz, thresholds * (lam / lipschitz)) * free
        if keep is not None:
            nonzero = max(int(torch.count_nonzero(current[:, :-1])), 1)
            lam *= min(max((nonzero / keep) ** 2, 0.7), 1.4)
        elif tol and float((current - previous).norm()) <= tol * float((current - start).norm()):
            return current, lam
        next_momentum = (1 + math.sqrt(1 + 4 * momentum ** 2)) / 2
        point = current + ((momentum - 1) / next_momentum) * (current - previous)
        previous, momentum = current, next_momentum
    return previous, lam


class _Layer:
    """The standardised problem: data, thresholds and free entries of ``[v c]``."""

    def __init__(self, inputs, target, std: Standardiser, t: float, free: torch.Tensor,
                 relu: bool = True) -> None:
        self.inputs, self.target, self.std, self.t, self.relu = inputs, target, std, t, relu
        self.thresholds = torch.cat([1.0 / std.sd, torch.zeros(1, dtype=std.sd.dtype, device=std.sd.device)])
        self.free = free

    def evaluate(self, aug: torch.Tensor, anchor_z: torch.Tensor | None = None):
        """Return F at ``aug``, the gradient of the DCA subproblem there, and ``z``."""
        x, y, t = self.inputs, self.target, self.t
        z = self.std.forward(x, aug[:, :-1], aug[:, -1])
        if self.relu:
            sig = torch.sigmoid(t * z)
            soft = softplus_t(z, t)
            anchor = sig if anchor_z is None else torch.sigmoid(t * anchor_z)
        else:  # no relu follows: the identity link, a plain lasso (h = 0)
            sig = anchor = 1.0
            soft = z
        loss = float(F.mse_loss(soft, y, reduction="sum")) / x.shape[0]
        grad_v, grad_c = self.std.backward(x, (2.0 / x.shape[0]) * (soft * sig - y * anchor))
        return loss, torch.cat([grad_v, grad_c[:, None]], 1), z

    def l1(self, aug: torch.Tensor) -> float:
        return float((aug[:, :-1].abs() / self.std.sd).sum())


def _augmented(std: Standardiser, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    v, c = std.to_standard(weight, bias)
    return torch.cat([v, c[:, None]], 1)


def _free_entries(std: Standardiser, mask: torch.Tensor) -> torch.Tensor:
    """Free entries of ``[v c]``: ``mask`` minus constant inputs, plus the bias column."""
    free = mask & ~std.constant
    return torch.cat([free, torch.ones_like(free[:, :1])], 1)


def feta_solve(inputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               lam: float, outer_iterations: int = 4, inner_iterations: int = 10,
               lasso_iterations: int = 200, t: float = 10.0, mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """DCA for FeTa at a fixed ``lam`` on all samples, starting from ``(weight, bias)``.

    Each DCA step runs ``inner_iterations`` majorise-minimise steps on the convex
    subproblem. ``mask`` (True = free) restricts the support. Returns the new weight, bias
    and the DC objective ``F`` at every DCA iterate.
    """
    std = Standardiser(inputs)
    free = _free_entries(std, torch.ones_like(weight, dtype=torch.bool) if mask is None else mask)
    layer = _Layer(inputs, target, std, t, free)
    metric = _Metric(std, inputs)
    aug = _augmented(std, weight, bias) * free
    history = []
    for _ in range(outer_iterations):
        loss, grad, anchor_z = layer.evaluate(aug)
        history.append(loss + lam * layer.l1(aug))
        for step in range(inner_iterations):
            if step:
                _, grad, _ = layer.evaluate(aug, anchor_z)
            aug, _ = _lasso_step(grad, aug, metric, layer.thresholds, free, lasso_iterations, lam, None)
    new_weight, new_bias = std.from_standard(aug[:, :-1], aug[:, -1])
    history.append(feta_objective(inputs, target, new_weight, new_bias, lam, t))
    return new_weight, new_bias, history


class FeTaBefore(LayerPruner):
    """FeTa with a target sparsity, pre-issue-14 defaults (see the module docstring).

    Options: ``t`` softplus sharpness; ``tol`` the relative change of the DC objective below
    which a phase (solve at lam, refit on the support) has converged; ``max_rounds`` a
    safety cap on DCA steps per phase (``info['converged']`` is False when reached);
    ``lasso_iterations``/``lasso_tol`` the FISTA cap and stopping rule of each subproblem
    step on the Gram; ``search_samples``/``search_rounds`` the subsample and DCA steps of the
    lam search; ``gram_samples`` rows used for the Gram on all samples; ``lam`` fixes lam (no
    search); ``seed`` draws the subsamples. ``tol=0, max_rounds=R`` runs exactly ``R`` steps.
    """

    name = "feta-before"

    def __init__(self, t: float = 10.0, tol: float = 1e-4, max_rounds: int = 1000,
                 lasso_iterations: int = 200, lasso_tol: float = 1e-3, search_samples: int = 4000,
                 search_rounds: int = 6, gram_samples: int = 10000, lam: float | None = None,
                 seed: int = 0, patch_rows: int | None = PATCH_ROWS) -> None:
        super().__init__(patch_rows, seed)
        self.t, self.tol, self.max_rounds = t, tol, max_rounds
        self.lasso_iterations, self.lasso_tol = lasso_iterations, lasso_tol
        self.search_samples, self.search_rounds = search_samples, search_rounds
        self.gram_samples, self.lam = gram_samples, lam

    def _step(self, layer: _Layer, metric: _Metric, aug, grad, free, lam: float, keep: int | None):
        return _lasso_step(grad, aug, metric, layer.thresholds, free, self.lasso_iterations, lam, keep,
                           self.lasso_tol)

    def _search(self, layer: _Layer, metric: _Metric, aug, free, lam: float, keep: int):
        """``search_rounds`` DCA steps while the controller moves lam toward ``keep`` non-zeros."""
        for _ in range(self.search_rounds):
            _, grad, _ = layer.evaluate(aug)
            aug, lam = self._step(layer, metric, aug, grad, free, lam, keep)
        return aug, lam

    def _converge(self, layer: _Layer, metric: _Metric, aug, free, lam: float):
        """DCA steps (one majorise-minimise step each) at fixed lam until F settles.

        A step that raises F is undone and the metric doubled (the Gram may come from a
        subsample), so F never increases. Returns (aug, F, steps, converged).
        """
        metric.scale = 1.0  # a scale doubled by float noise near an optimum must not slow later phases
        loss, grad, _ = layer.evaluate(aug)
        objective = loss + lam * layer.l1(aug)
        floor = 1e-6 * float(layer.target.pow(2).sum()) / layer.target.shape[0]
        for step in range(1, self.max_rounds + 1):
            candidate, _ = self._step(layer, metric, aug, grad, free, lam, None)
            loss, candidate_grad, _ = layer.evaluate(candidate)
            new_objective = loss + lam * layer.l1(candidate)
            if new_objective > objective:
                metric.scale *= 2.0
                continue
            change = (objective - new_objective) / max(abs(objective), floor, 1e-30)
            aug, grad, objective = candidate, candidate_grad, new_objective
            metric.scale = max(1.0, metric.scale / 2)
            if change < self.tol:
                return aug, objective, step, True
        return aug, objective, self.max_rounds, False

    def _solve(self, problem: LayerProblem, sparsity: float, fixed: torch.Tensor | None) -> Solution:
        x, y = problem.inputs, problem.target
        n, numel = x.shape[0], problem.weight.numel()
        keep = numel - count_to_prune(numel, sparsity) if fixed is None else int(fixed.sum())
        std = Standardiser(x)
        free = _free_entries(std, torch.ones_like(problem.weight, dtype=torch.bool))
        aug = _augmented(std, problem.weight, problem.bias) * free
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed)).to(x.device)
        gram_rows = x[order[:self.gram_samples]] if self.gram_samples < n else x
        metric = _Metric(std, gram_rows)
        full = _Layer(x, y, std, self.t, free, problem.relu)
        info = {"t": self.t, "lam": self.lam, "rounds": 0, "converged": True}
        if fixed is None and keep > 0:
            lam = self.lam
            if lam is None:
                lam = self._initial_lam(aug, full, metric, numel - keep)
                rows = order[:min(self.search_samples, n)]
                search = _Layer(x[rows], y[rows], std, self.t, free, problem.relu)
                search_metric = _Metric(std, x[rows]) if rows.numel() < gram_rows.shape[0] else metric
                aug, lam = self._search(search, search_metric, aug, free, lam, keep)
            aug, objective, rounds, converged = self._converge(full, metric, aug, free, lam)
            info.update(lam=lam, objective_at_lam=objective, rounds=rounds, converged=converged)
        mask = fixed if fixed is not None else keep_largest(aug[:, :-1] / std.sd, keep, tiebreak=problem.weight)
        support = _free_entries(std, mask)
        aug, objective, rounds, converged = self._converge(full, metric, aug * support, support, 0.0)
        weight, bias = std.from_standard(aug[:, :-1], aug[:, -1])
        info.update(objective=objective, refit_rounds=rounds, iterations=info["rounds"] + rounds,
                    converged=info["converged"] and converged)
        return Solution(weight * mask, bias, mask, info)

    @staticmethod
    def _initial_lam(aug, layer: _Layer, metric: _Metric, n_prune: int) -> float:
        """The lam at which one prox step at the trained weights zeroes about ``n_prune`` weights."""
        scores = (aug[:, :-1].abs() * metric.factor / layer.thresholds[:-1])[layer.free[:, :-1]]
        if n_prune <= 0 or scores.numel() == 0:
            return 0.0
        return float(scores.kthvalue(min(n_prune, scores.numel())).values.clamp_min(1e-12))
