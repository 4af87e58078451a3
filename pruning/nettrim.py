"""Net-Trim (Aghasi, Abdi, Nguyen, Romberg, NeurIPS 2017): convex layer-wise pruning.

Per layer, with augmented inputs ``X~ = [X 1]`` (N, d+1), ``U = [W b]`` and the
original outputs ``Y = relu(Z)``, ``Omega = {(n, i): Y_ni > 0}``:

    min ||W||_1  s.t.  ||(X~ U^T)_Omega - Y_Omega||_F <= eps,  (X~ U^T)_{Omega^c} <= 0

(the bias is not penalised). For a layer without relu (the last one) the constraint is
``||X~ U^T - Y||_F <= eps`` (a sparse least squares). ``eps`` is given relative to
``||Y||_F``. Solved by ADMM on the splitting ``A = X~ U^T``, ``B = U``:

    U <- (X~^T X~ + c I)^{-1} (X~^T (A - P) + c (B - Q))   (Cholesky factor computed once)
    A <- projection of X~ U^T + P onto the constraint set (eps-ball on Omega, clip on Omega^c)
    B <- soft-threshold(U + Q, 1/rho) on the weights (bias copied)
    P <- P + X~ U^T - A,   Q <- Q + U - B

with ``c = rho_B / rho_A``. The returned weights are ``B`` (exact zeros).
Parallel mode is this call on the original inputs; cascade mode passes the inputs of
the already pruned network (``capture.capture_cascade``).

Target sparsity (``NetTrim.prune``): a bracketing search on log eps (bisection, then the
secant of log non-zeros; warm-started ADMM) for the smallest eps whose solution has at most
the target number of non-zeros (within ``slack``), then exact
top-k on that solution and a re-fit: ADMM on the same constraint with the support fixed
and no l1 term (a feasibility problem), so the kept weights are not shrunk. With a fixed
support (``prune(..., mask=M)``) both ADMM solves are restricted to ``M`` and, instead of
the bisection, eps is twice the relative error (on Omega) of the relu-aware refit on ``M``
(``refit``): near that error the feasible set on ``M`` is empty or a point, where ADMM
crawls.

ADMM is over-relaxed (``relaxation`` 1.6; Boyd et al. 2011, section 3.4.3): on small layers
it cuts the iterations by about a third at the same objective. (Residual balancing, section
3.4.1, was tried: it stopped solves early at a different support.)

Convergence: every ADMM solve stops when its relative primal and dual residuals fall below
``tol`` (for ADMM the objective of an infeasible iterate says nothing, so the residuals are
the stopping rule; Boyd et al. 2011, section 3.3); ``max_iterations`` is a safety cap only,
and ``info['converged']`` is False when any solve reached it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import LayerPruner, Solution, count_to_prune, register
from .layerdata import PATCH_ROWS, LayerProblem, keep_largest, soft_threshold
from .refit import refit_problem

_CHECK_EVERY = 10


@dataclass
class NetTrimResult:
    weight: torch.Tensor
    bias: torch.Tensor
    iterations: int
    objective: float
    violation: float  # relative constraint violation of the returned (weight, bias)
    state: tuple
    converged: bool


def _project(values: torch.Tensor, target: torch.Tensor, active: torch.Tensor | None,
             radius: float) -> torch.Tensor:
    """Projection onto {A: ||A_active - Y_active|| <= radius, A_inactive <= 0}."""
    if active is None:
        diff = values - target
        norm = float(diff.norm())
        return values if norm <= radius else target + diff * (radius / norm)
    diff = (values - target) * active
    norm = float(diff.norm())
    inside = target + (diff if norm <= radius else diff * (radius / norm))
    return torch.where(active, inside, values.clamp_max(0))


def constraint_violation(inputs, target, weight, bias, eps: float, relu: bool) -> float:
    """Largest violation of the Net-Trim constraints at ``(weight, bias)``, relative to ``||Y||_F``."""
    z = torch.addmm(bias, inputs, weight.T)
    scale = float(target.norm()) or 1.0
    if not relu:
        return max(float((z - target).norm()) / scale - eps, 0.0)
    active = target > 0
    ball = float(((z - target) * active).norm()) / scale - eps
    sign = float(z.masked_fill(active, 0).clamp_min(0).norm()) / scale
    return max(ball, 0.0) + sign


def nettrim_admm(inputs: torch.Tensor, target: torch.Tensor, eps: float, relu: bool = True,
                 rho: float = 1.0, c: float = 1.0, max_iterations: int = 5000, tol: float = 1e-6,
                 start: tuple | None = None, support: torch.Tensor | None = None,
                 penalise: bool = True, factor: torch.Tensor | None = None,
                 relaxation: float = 1.6) -> NetTrimResult:
    """ADMM for Net-Trim at a fixed relative ``eps`` (see the module docstring).

    ``inputs`` (N, d), ``target`` (N, d_out) with ``target >= 0`` when ``relu``.
    ``rho`` is the penalty of ``A = X~ U^T`` (scaled by 1/N internally), ``c`` the ratio of
    the penalty of ``B = U`` to it. ``support`` (d_out, d) fixes the zero pattern,
    ``penalise=False`` drops the l1 term, ``start`` is a previous result's ``state`` or a
    ``(weight, bias)`` pair to start from (default: zeros).
    Stops when the primal and dual residuals fall below ``tol`` (relative).
    """
    n = inputs.shape[0]
    x = torch.cat([inputs, torch.ones_like(inputs[:, :1])], 1)
    if factor is None:
        gram = x.T @ x / n
        gram.diagonal().add_(c)
        factor = torch.linalg.cholesky(gram.double()).to(x.dtype)
    radius = eps * float(target.norm())
    active = (target > 0) if relu else None
    d_out = target.shape[1]
    if start is None:
        u = torch.zeros(d_out, x.shape[1], dtype=x.dtype, device=x.device)
        a, p, b, q = x @ u.T, torch.zeros_like(target), u.clone(), torch.zeros_like(u)
    elif len(start) == 2:  # initial weights and bias
        u = torch.cat([start[0], start[1][:, None]], 1).to(x)
        a, p, b, q = _project(x @ u.T, target, active, radius), torch.zeros_like(target), u.clone(), torch.zeros_like(u)
    else:
        u, a, p, b, q = (s.clone() for s in start[:5])
        rho = start[5]
    keep = torch.ones_like(u, dtype=torch.bool)
    if support is not None:
        keep[:, :-1] = support
    iteration, converged = 0, False
    for iteration in range(1, max_iterations + 1):
        rhs = (x.T @ (a - p)) / n + c * (b - q).T
        u = torch.cholesky_solve(rhs, factor).T
        xu = x @ u.T
        xu_hat = relaxation * xu + (1 - relaxation) * a  # over-relaxation (Boyd et al. 2011, 3.4.3)
        u_hat = relaxation * u + (1 - relaxation) * b
        a = _project(xu_hat + p, target, active, radius)
        b_old = b
        b = u_hat + q
        if penalise:
            b[:, :-1] = soft_threshold(b[:, :-1], 1.0 / (rho * c))  # 1 / rho_B with rho_B = c rho
        b = b * keep
        p = p + xu_hat - a
        q = q + u_hat - b
        if iteration % _CHECK_EVERY and iteration != max_iterations:
            continue  # residual norms force a device sync: check them only now and then
        primal = math.sqrt(float((xu - a).pow(2).sum()) / n + float((u - b).pow(2).sum()))
        dual = float((b - b_old).norm()) * c
        scale = max(float(b.norm()), float(target.norm()) / math.sqrt(n), 1e-12)
        if primal <= tol * scale and dual <= tol * scale:
            converged = True
            break
    weight, bias = b[:, :-1], b[:, -1]
    return NetTrimResult(weight, bias, iteration, float(weight.abs().sum()),
                         constraint_violation(inputs, target, weight, bias, eps, relu),
                         (u, a, p, b, q, rho), converged)


@register("nettrim")
class NetTrim(LayerPruner):
    """Net-Trim with a target sparsity: eps bisection, exact top-k, support re-fit.

    Options: ``eps`` fixes the relative eps (no search); ``eps_range`` the search bracket;
    ``search_steps`` the most eps trials (a search over problems, not a solver budget), ending
    early once the non-zeros are within ``slack`` below the target; ``rho``,
    ``c`` ADMM penalties (``rho=None``: set so that the soft-threshold ``1/(rho c)`` is twice
    the mean weight magnitude); ``tol`` the residual tolerance of every ADMM solve;
    ``max_iterations`` its safety cap.
    """

    def __init__(self, eps: float | None = None, eps_range: tuple[float, float] = (1e-3, 1.0),
                 search_steps: int = 8, slack: float = 0.02, rho: float | None = None, c: float = 1.0,
                 max_iterations: int = 20000, tol: float = 1e-4, patch_rows: int | None = PATCH_ROWS,
                 seed: int = 0) -> None:
        super().__init__(patch_rows, seed)
        self.eps, self.eps_range, self.search_steps, self.slack = eps, eps_range, search_steps, slack
        self.rho, self.c, self.max_iterations, self.tol = rho, c, max_iterations, tol

    def _solve(self, problem: LayerProblem, sparsity: float, fixed: torch.Tensor | None) -> Solution:
        x, y, relu = problem.inputs, problem.target, problem.relu
        numel = problem.weight.numel()
        keep = numel - count_to_prune(numel, sparsity) if fixed is None else int(fixed.sum())
        rho = self.rho or 0.5 / (self.c * max(float(problem.weight.abs().mean()), 1e-12))
        options = dict(relu=relu, rho=rho, c=self.c, max_iterations=self.max_iterations, tol=self.tol,
                       support=fixed, factor=self._factor(x))
        solves: list[NetTrimResult] = []
        start = (problem.weight * (1 if fixed is None else fixed), problem.bias)
        eps = self.eps if fixed is None else 2 * self._refit_error(problem, fixed)
        chosen, eps = self._search(x, y, start, keep, eps, options, solves)
        allowed = fixed if fixed is not None else torch.ones_like(chosen.weight, dtype=torch.bool)
        mask = keep_largest(chosen.weight, keep, allowed)
        refit = nettrim_admm(x, y, eps, start=chosen.state, penalise=False, **dict(options, support=mask))
        solves.append(refit)
        weight = refit.weight * mask
        info = {"iterations": sum(s.iterations for s in solves), "objective": float(weight.abs().sum()),
                "converged": all(s.converged for s in solves), "eps": eps, "rho": rho,
                "violation": constraint_violation(x, y, weight, refit.bias, eps, relu)}
        return Solution(weight, refit.bias, mask, info)

    def _factor(self, x: torch.Tensor) -> torch.Tensor:
        gram = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        gram = (gram.T @ gram).double() / x.shape[0]
        gram.diagonal().add_(self.c)
        return torch.linalg.cholesky(gram).to(x.dtype)

    @staticmethod
    def _refit_error(problem: LayerProblem, mask: torch.Tensor) -> float:
        fit = refit_problem(problem, mask)
        z = torch.addmm(fit.bias, problem.inputs, fit.weight.T)
        y = problem.target
        error = (z - y) * (y > 0) if problem.relu else z - y
        return max(float(error.norm()) / max(float(y.norm()), 1e-30), 1e-6)

    def _search(self, x, y, start, keep: int, eps: float | None, options: dict, solves: list):
        """The smallest eps with at most ``keep`` non-zeros, to within ``slack``: bracketing on
        log eps, by bisection until both sides are measured, then by the secant of log non-zeros
        (kept inside the middle 80% of the bracket); each ADMM solve warm-started."""
        if eps is not None:
            solves.append(nettrim_admm(x, y, eps, start=start, **options))
            return solves[-1], eps
        low, high = ((math.log(e), None) for e in self.eps_range)  # (log eps, log non-zeros)
        state, chosen, eps = start, None, self.eps_range[1]
        for _ in range(self.search_steps):
            trial = (low[0] + high[0]) / 2
            if low[1] is not None and high[1] is not None and low[1] != high[1]:
                slope = (high[1] - low[1]) / (high[0] - low[0])
                width = high[0] - low[0]
                trial = min(max(low[0] + (math.log(keep + 1) - low[1]) / slope, low[0] + 0.1 * width),
                            high[0] - 0.1 * width)
            result = nettrim_admm(x, y, math.exp(trial), start=state, **options)
            solves.append(result)
            state = result.state
            nonzero = int(torch.count_nonzero(result.weight))
            if nonzero <= keep:
                high, chosen, eps = (trial, math.log(nonzero + 1)), result, math.exp(trial)
                if nonzero >= (1 - self.slack) * keep:
                    break
            else:
                low = (trial, math.log(nonzero + 1))
        if chosen is None:
            chosen = nettrim_admm(x, y, eps, start=state, **options)
            solves.append(chosen)
        return chosen, eps
