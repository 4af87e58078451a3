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

Target sparsity (``NetTrim.prune``): a search on log eps (warm-started ADMM) for the smallest
eps whose solution has at most the target number of non-zeros (within ``slack``). It starts at
the relative error of the weights hard-thresholded to the target, steps by a factor 1.5 until
the answer is bracketed, then follows the secant of log non-zeros. Then exact top-k on that
solution and a re-fit: ADMM on the same constraint with the support fixed and no l1 term (a
feasibility problem), so the kept weights are not shrunk. With a fixed support
(``prune(..., mask=M)``) both ADMM solves are restricted to ``M`` and, instead of the search, eps
is twice the relative error (on Omega) of the relu-aware refit on ``M`` (``refit``), and at least
1.1 times the error of a point on ``M`` that meets the sign constraint: near the smallest feasible
error the feasible set on ``M`` is a point, where ADMM crawls, and below it empty. The refit's
error alone can lie below it, since the refit only penalises ``p > 0`` on ``Omega^c``: on the fc
net's first layer at 90% (10,000 samples) it is 0.310 and twice it 0.619, while the smallest
error with ``p <= 0`` there (a QP per row, by cvxpy) is 0.687, and ADMM ran into its cap. The
feasible point is the refit with that penalty weighted by ``_SIGN_WEIGHT`` (1e4; its active
error 0.679 bounds the smallest error from below), each row's bias then lowered by its largest
remaining ``p`` on ``Omega^c`` (0.698 there, an upper bound).

ADMM is over-relaxed (``relaxation`` 1.6; Boyd et al. 2011, section 3.4.3): on small layers
it cuts the iterations by about a third at the same objective. ``rho`` is rebalanced when the
relative residuals are more than 5 apart (Boyd et al. 2011, 3.4.1; Stellato et al. 2020, 5.2).

Convergence: every ADMM solve stops when its relative primal and dual residuals fall below
``tol`` (Boyd et al. 2011, section 3.3.1, with the scales of ``_relative_residuals``; for ADMM the
objective of an infeasible iterate says nothing, so the residuals are the stopping rule).
``tol`` 1e-3 is Boyd's suggested relative tolerance; ``tests/test_pruning_convergence.py`` checks
that twice the iterations move the objective by under 1%. ``max_iterations`` is a safety cap
only, and ``info['converged']`` is False when any solve reached it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import LayerPruner, Solution, count_to_prune, register
from .layerdata import PATCH_ROWS, LayerProblem, keep_largest, soft_threshold
from .refit import refit_problem

_CHECK_EVERY = 10
_BALANCE_EVERY = 50
_BALANCE_RATIO = 5.0
_SEARCH_FACTOR = 1.5
_SIGN_WEIGHT = 1e4  # weight of the penalty on p > 0 where the unit was inactive (module docstring)
_FEASIBLE_MARGIN = 1.1


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


def _relative_residuals(x, u, xu, a, b, p, q, a_old, b_old, penalise: bool, c: float) -> tuple[float, float]:
    """Boyd et al. (2011, section 3.3.1) primal and dual residuals of the splitting
    ``M U^T = Z`` with ``M = [X~ / sqrt(N); sqrt(c) I]``, ``Z = [A / sqrt(N); sqrt(c) B]``, each relative
    to its scale: ``||M U^T - Z|| / max(||M U^T||, ||Z||)`` and
    ``rho ||M^T (Z - Z_old)|| / (rho ||W||)`` with ``W = [P / sqrt(N); sqrt(c) Q]`` the scaled dual. (The
    U-update has no objective of its own, so ``M^T W``, Boyd's dual scale, vanishes at the optimum;
    the dual itself is the scale instead. Without the l1 term the problem is one of feasibility,
    whose dual vanishes too where the feasible set has an interior: there the scale is also at
    least ``||Z||``.) The dual residual costs one data pass."""
    n = x.shape[0]

    def norm(top, bottom):
        return math.sqrt(float(top.pow(2).sum()) / n + c * float(bottom.pow(2).sum()))

    primal = norm(xu - a, u - b) / max(norm(xu, u), norm(a, b), 1e-30)
    scale = norm(p, q) if penalise else max(norm(p, q), norm(a, b))
    dual = float((x.T @ (a - a_old) / n + c * (b - b_old).T).norm()) / max(scale, 1e-30)
    return primal, dual


def nettrim_admm(inputs: torch.Tensor, target: torch.Tensor, eps: float, relu: bool = True,
                 rho: float = 1.0, c: float = 1.0, max_iterations: int = 20000, tol: float = 1e-3,
                 start: tuple | None = None, support: torch.Tensor | None = None,
                 penalise: bool = True, factor: torch.Tensor | None = None,
                 relaxation: float = 1.6) -> NetTrimResult:
    """ADMM for Net-Trim at a fixed relative ``eps`` (see the module docstring).

    ``inputs`` (N, d), ``target`` (N, d_out) with ``target >= 0`` when ``relu``.
    ``rho`` is the initial penalty of ``A = X~ U^T`` (scaled by 1/N internally), ``c`` the ratio of
    the penalty of ``B = U`` to it. ``support`` (d_out, d) fixes the zero pattern,
    ``penalise=False`` drops the l1 term, ``start`` is a previous result's ``state`` or a
    ``(weight, bias)`` pair to start from (default: zeros).
    Stops when the relative primal and dual residuals both fall below ``tol``
    (``_relative_residuals``). ``rho`` is rebalanced every ``_BALANCE_EVERY`` iterations when the two
    residuals are more than ``_BALANCE_RATIO`` apart (Boyd et al. 2011, 3.4.1; the rule of OSQP,
    Stellato et al. 2020, 5.2); the Cholesky factor does not depend on ``rho``, so this is free.
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
        a_old, b_old = a, b
        a = _project(xu_hat + p, target, active, radius)
        b = u_hat + q
        if penalise:
            b[:, :-1] = soft_threshold(b[:, :-1], 1.0 / (rho * c))  # 1 / rho_B with rho_B = c rho
        b = b * keep
        p = p + xu_hat - a
        q = q + u_hat - b
        if iteration % _CHECK_EVERY and iteration != max_iterations:
            continue  # residual norms force a device sync: check them only now and then
        primal, dual = _relative_residuals(x, u, xu, a, b, p, q, a_old, b_old, penalise, c)
        if primal <= tol and dual <= tol:
            converged = True
            break
        imbalance = math.sqrt(primal / max(dual, 1e-30))
        if iteration % _BALANCE_EVERY == 0 and not 1 / _BALANCE_RATIO < imbalance < _BALANCE_RATIO:
            rho *= imbalance  # the scaled duals P, Q carry 1/rho
            p, q = p / imbalance, q / imbalance
    weight, bias = b[:, :-1], b[:, -1]
    return NetTrimResult(weight, bias, iteration, float(weight.abs().sum()),
                         constraint_violation(inputs, target, weight, bias, eps, relu),
                         (u, a, p, b, q, rho), converged)


@register("nettrim")
class NetTrim(LayerPruner):
    """Net-Trim with a target sparsity: eps search, exact top-k, support re-fit.

    Options: ``eps`` fixes the relative eps (no search); ``eps_range`` the search bracket;
    ``search_steps`` the most eps trials (a search over problems, not a solver budget), ending
    early once the non-zeros are within ``slack`` below the target; ``rho``,
    ``c`` ADMM penalties (``rho=None``: start where the soft-threshold ``1/(rho c)`` is a fifth of
    the mean weight magnitude; each solve rebalances it); ``tol`` the relative residual tolerance
    of every ADMM solve; ``max_iterations`` its safety cap.
    """

    def __init__(self, eps: float | None = None, eps_range: tuple[float, float] = (1e-3, 1.0),
                 search_steps: int = 8, slack: float = 0.02, rho: float | None = None, c: float = 1.0,
                 max_iterations: int = 20000, tol: float = 1e-3, patch_rows: int | None = PATCH_ROWS,
                 seed: int = 0) -> None:
        super().__init__(patch_rows, seed)
        self.eps, self.eps_range, self.search_steps, self.slack = eps, eps_range, search_steps, slack
        self.rho, self.c, self.max_iterations, self.tol = rho, c, max_iterations, tol

    def _solve(self, problem: LayerProblem, sparsity: float, fixed: torch.Tensor | None) -> Solution:
        x, y, relu = problem.inputs, problem.target, problem.relu
        numel = problem.weight.numel()
        keep = numel - count_to_prune(numel, sparsity) if fixed is None else int(fixed.sum())
        rho = self.rho or 5.0 / (self.c * max(float(problem.weight.abs().mean()), 1e-12))
        options = dict(relu=relu, rho=rho, c=self.c, max_iterations=self.max_iterations, tol=self.tol,
                       support=fixed, factor=self._factor(x))
        solves: list[NetTrimResult] = []
        allowed = fixed if fixed is not None else torch.ones_like(problem.weight, dtype=torch.bool)
        start = (problem.weight * allowed, problem.bias)
        eps = self.eps if fixed is None else fixed_support_eps(problem, fixed)
        chosen, eps = self._search(problem, start, keep, eps, options, solves)
        mask = keep_largest(chosen.weight, keep, allowed)
        refit = nettrim_admm(x, y, eps, start=chosen.state, penalise=False, **dict(options, support=mask))
        solves.append(refit)
        weight = refit.weight * mask
        # the objective is that of the convex program at the chosen eps; the re-fit is a feasibility
        # problem (any feasible point will do), so its l1 norm is reported apart and is no objective
        info = {"iterations": sum(s.iterations for s in solves), "objective": chosen.objective,
                "refit_l1": float(weight.abs().sum()),
                "converged": all(s.converged for s in solves), "eps": eps, "rho": rho,
                "violation": constraint_violation(x, y, weight, refit.bias, eps, relu)}
        return Solution(weight, refit.bias, mask, info)

    def _factor(self, x: torch.Tensor) -> torch.Tensor:
        gram = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        gram = (gram.T @ gram).double() / x.shape[0]
        gram.diagonal().add_(self.c)
        return torch.linalg.cholesky(gram).to(x.dtype)

    def _search(self, problem: LayerProblem, start, keep: int, eps: float | None, options: dict, solves: list):
        """The smallest eps with at most ``keep`` non-zeros, to within ``slack``, on log eps: the first
        trial is the relative error of the weights thresholded to the target, then steps by
        ``_SEARCH_FACTOR`` until the answer is bracketed, then the secant of log non-zeros (kept
        inside the middle 80% of the bracket); each ADMM solve warm-started from the last. If no
        trial reaches ``keep``, the solve at the top of ``eps_range`` is the answer."""
        x, y = problem.inputs, problem.target
        if eps is not None:
            solves.append(nettrim_admm(x, y, eps, start=start, **options))
            return solves[-1], eps
        everywhere = torch.ones_like(problem.weight, dtype=torch.bool)  # a search runs only without a fixed support
        thresholded = problem.weight * keep_largest(problem.weight, keep, everywhere)
        first = math.log(_relative_error(x, y, thresholded, problem.bias, problem.relu))
        floor, ceiling = (math.log(e) for e in self.eps_range)
        low = high = None  # (log eps, log non-zeros) on either side of the target
        state, chosen, eps = start, None, self.eps_range[1]
        for _ in range(self.search_steps):
            trial = min(max(_next_trial(low, high, math.log(keep + 1), first), floor), ceiling)
            result = nettrim_admm(x, y, math.exp(trial), start=state, **options)
            solves.append(result)
            state = result.state
            nonzero = int(torch.count_nonzero(result.weight))
            if nonzero <= keep:
                high, chosen, eps = (trial, math.log(nonzero + 1)), result, math.exp(trial)
                if nonzero >= (1 - self.slack) * keep or trial <= floor:
                    break
            else:
                low = (trial, math.log(nonzero + 1))
                if trial >= ceiling:
                    break
        if chosen is None:  # every trial kept more than ``keep``: the top of the range is the answer
            if trial < ceiling:
                result = nettrim_admm(x, y, eps, start=state, **options)
                solves.append(result)
            chosen = result
        return chosen, eps


def fixed_support_eps(problem: LayerProblem, mask: torch.Tensor) -> float:
    """Relative eps for Net-Trim on the fixed support ``mask`` (module docstring): twice the refit's error,
    and (with a relu) at least ``_FEASIBLE_MARGIN`` times the error of a point on ``mask`` with ``p <= 0``
    wherever the unit was inactive, so that the constraint set has an interior."""
    x, y = problem.inputs, problem.target
    fit = refit_problem(problem, mask)
    eps = 2 * _relative_error(x, y, fit.weight, fit.bias, problem.relu)
    if not problem.relu:
        return eps
    fit = refit_problem(problem, mask, sign_weight=_SIGN_WEIGHT)
    inactive_top = torch.addmm(fit.bias, x, fit.weight.T).masked_fill(y > 0, -float("inf")).amax(0).clamp_min(0)
    return max(eps, _FEASIBLE_MARGIN * _relative_error(x, y, fit.weight, fit.bias - inactive_top, True))


def _next_trial(low, high, goal: float, first: float) -> float:
    """Next log eps of the search: ``first``, a geometric step away from the one measured side, or
    the secant of log non-zeros inside the middle 80% of the bracket."""
    if low is None and high is None:
        return first
    if high is None:
        return low[0] + math.log(_SEARCH_FACTOR)
    if low is None:
        return high[0] - math.log(_SEARCH_FACTOR)
    width = high[0] - low[0]
    if low[1] == high[1]:
        return low[0] + width / 2
    trial = low[0] + (goal - low[1]) * width / (high[1] - low[1])
    return min(max(trial, low[0] + 0.1 * width), high[0] - 0.1 * width)


def _relative_error(inputs, target, weight, bias, relu: bool) -> float:
    """``||(X W^T + b - Y)_Omega||_F / ||Y||_F`` (Omega: all entries without a relu)."""
    error = torch.addmm(bias, inputs, weight.T) - target
    if relu:
        error = error * (target > 0)
    return max(float(error.norm()) / max(float(target.norm()), 1e-30), 1e-6)
