"""FeTa (Aghasi et al., authors' public code): layer-wise pruning as a difference-of-convex program (GUIDE section 2).

With the softplus ``s_t(z) = log(1 + exp(t z)) / t`` (t = 10) standing in for relu,
FeTa solves, per layer (``x~ = [x; 1]``, ``U = [W b]``, the bias not penalised),

    min_U  F(U) = (1/N) sum_n || s_t(U x~_n) - y_n ||^2 + lam ||W||_1 .

Since ``y >= 0``, ``F = g - h + const`` with ``g(U) = (1/N) sum ||s_t(U x~)||^2 + lam ||W||_1``
and ``h(U) = (2/N) sum y^T s_t(U x~)`` convex. ``F`` is a sum of independent terms, one per
output unit (row ``u_i`` of ``U``), coupled only by the shared lam.

Solver (replaces the authors' DCA with proximal SVRG): a proximal Newton method per row on a
working set (newGLMNET, Yuan, Ho and Lin 2012; Lee, Sun and Saunders 2014). At ``u_i`` the
model is ``g_i.d + d^T H_i d / 2 + lam ||w_i + d_w||_1`` with ``H_i = (1/N) X~^T diag(c_i) X~``,
``c = d^2/dz^2 s_t(z)^2 = 2 s_t'(s_t' + s_t s_t'')``: the curvature of the convex part ``g``, the
quadratic model of one DCA subproblem at ``u_i`` (``h`` linearised). The model is minimised on
the working set (non-zeros plus the coordinates that violate the optimality condition
``|grad_q| <= lam``) by cyclic coordinate descent, batched over rows; a per-row backtracking
line search on the exact ``F_i`` (the move of ``z`` along the step is one data pass, trial steps
cost no pass) makes ``F`` non-increasing. ``H_i`` are sufficient statistics kept exact by
rank-one updates of the samples whose curvature moved (``layerdata.RowGrams``), so no pass
over the data is repeated for them. Where no relu follows (an output layer) the softplus is
the identity and ``F`` a plain lasso.

Target sparsity (``FeTa.prune``), three phases, each until the relative change of ``F``
per step is below ``tol`` with no optimality violation left outside the working set
(``info['converged']``):

1. *search* on ``search_samples`` random rows: from the trained weights thresholded to the
   target (a sparse start: the working sets stay small), lam moves by a multiplicative
   controller (``_LamController``: factor ``(nnz / target)^2`` per step within ``[1/r, r]``,
   nnz counting the pending violators) until the non-zeros are within ``slack`` of the target;
   a phase that then converges with its solution's own non-zeros off target moves lam by a
   bracketing secant on ``log nnz`` against ``log lam`` and converges again, so the support is
   FeTa's own choice (``info['nonzeros_at_lam']``);
2. all rows from there at that lam, moved by the secant only where the solution is off target;
3. projection onto the exact target (largest ``|w|``) and *refit*: the same Newton steps with
   lam = 0 on the support. ``info['objective']`` is the final ``F`` there (lam = 0).

With a fixed support (``prune(..., mask=M)``) only the refit on ``M`` runs.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .base import LayerPruner, Solution, count_to_prune, register
from .compiled import compiled
from .layerdata import PATCH_ROWS, LayerProblem, RowGrams, Standardiser, keep_largest

_LINE_SEARCH_HALVINGS = 12
_CURVATURE_FLOOR = 1e-4  # samples below this curvature start outside the Grams
_MAX_REACH = 1.4  # the lam controller's largest factor per step
_RESTARTS = 8  # converged solves off target after which lam stays
_CURVATURE_DELTA = 0.05  # a sample's curvature is refreshed when it moves by more (c <= 2.1)


def softplus_t(z: torch.Tensor, t: float) -> torch.Tensor:
    """``s_t(z) = log(1 + exp(t z)) / t`` (numerically stable)."""
    return F.softplus(z, beta=t, threshold=20.0)


def curvature_bound() -> float:
    """``max_z d/dz [s_t(z) sigmoid(t z)] = max_w sigmoid(w)^2 + softplus(w) sigmoid(w) (1 - sigmoid(w))``.

    Independent of t (substitute w = t z); about 1.05, reached near w = 3. Twice it bounds the
    curvature ``c`` of the model.
    """
    w = torch.linspace(-40, 40, 160001, dtype=torch.float64)
    sig = torch.sigmoid(w)
    return float((sig ** 2 + F.softplus(w) * sig * (1 - sig)).max())


def feta_objective(inputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor, lam: float, t: float = 10.0) -> float:
    """``F(U) = (1/N) sum_n ||s_t(W x_n + b) - y_n||^2 + lam ||W||_1``."""
    z = torch.addmm(bias, inputs, weight.T)
    return float((softplus_t(z, t) - target).pow(2).sum(1).mean() + lam * weight.abs().sum())


class _Data:
    """Rows ``X`` and targets of one phase; ``loss`` gives per-unit losses, slopes and curvatures."""

    def __init__(self, inputs: torch.Tensor, target: torch.Tensor, t: float, relu: bool) -> None:
        self.inputs, self.target, self.t, self.relu = inputs, target, t, relu
        self.n = inputs.shape[0]
        self.passes = 0

    def forward(self, aug: torch.Tensor) -> torch.Tensor:
        self.passes += 1
        return torch.addmm(aug[:, -1], self.inputs, aug[:, :-1].T)

    def gradient(self, slope: torch.Tensor) -> torch.Tensor:
        self.passes += 1
        return torch.cat([slope.T @ self.inputs, slope.sum(0)[:, None]], 1) / self.n

    def loss(self, z: torch.Tensor, columns: torch.Tensor | None = None, derivatives: bool = True):
        """Per-unit ``sum_n (s(z) - y)^2``, and (``derivatives``) the slope and curvature in z."""
        y = self.target if columns is None else self.target[:, columns]
        if not self.relu:
            residual = z - y
            total = residual.pow(2).sum(0)
            return (total, 2 * residual, torch.full_like(z, 2.0)) if derivatives else (total, None, None)
        soft = softplus_t(z, self.t)
        total = (soft - y).pow(2).sum(0)
        if not derivatives:
            return total, None, None
        sig = torch.sigmoid(self.t * z)
        slope = 2 * (soft - y) * sig
        curvature = 2 * sig * (sig + soft * self.t * (1 - sig))
        return total, slope, curvature


def _model_descent(gram, diagonal, gradient, start, penalty, lam: float, valid, sweeps: int, tol: float):
    """Minimise ``g.(v - u) + (v - u)^T H (v - u) / 2 + lam sum_q p_q |v_q|`` per row by cyclic
    coordinate descent (the inner solver of newGLMNET), from ``v = u``, where ``H`` is ``gram`` with
    its diagonal replaced by ``diagonal`` (the ridged one: no copy of the Grams); rows are padded to a
    common width; a slot outside ``valid`` (zero gradient, penalty and Gram line) never moves, and
    a row's sweep ends at its last valid slot. Stops after ``sweeps`` sweeps or when no coordinate
    moved by more than ``tol`` times the largest ``|v_q|`` (both in the metric ``sqrt(H_qq)``).
    Returns ``v``."""
    positions = torch.arange(1, valid.shape[1] + 1, device=valid.device)
    counts = (valid.bool() * positions).amax(1).long() if valid.shape[1] else valid.sum(1).long()
    out = start.detach().to("cpu", torch.float64).numpy().copy()
    _coordinate_descent(gram.detach().to("cpu", torch.float64).contiguous().numpy(),
                        diagonal.detach().to("cpu", torch.float64).contiguous().numpy(),
                        gradient.detach().to("cpu", torch.float64).contiguous().numpy(),
                        penalty.detach().to("cpu", torch.float64).contiguous().numpy(), float(lam),
                        counts.cpu().numpy(), int(sweeps), float(tol), out)
    return torch.from_numpy(out).to(start.device)


@compiled
def _coordinate_descent(gram, diagonal, gradient, penalty, lam, counts, sweeps, tol, v):  # pragma: no cover
    for i in range(gram.shape[0]):
        k = counts[i]
        slope = gradient[i, :k].copy()  # the model's gradient at v
        for _ in range(sweeps):
            largest = 0.0
            size = 0.0
            for q in range(k):
                h = diagonal[i, q]
                old = v[i, q]
                moved = old - slope[q] / h
                cut = lam * penalty[i, q] / h
                new = 0.0
                if moved > cut:
                    new = moved - cut
                elif moved < -cut:
                    new = moved + cut
                step = new - old
                if step != 0.0:
                    v[i, q] = new
                    for j in range(k):
                        slope[j] += step * gram[i, q, j]
                    slope[q] += step * (h - gram[i, q, q])
                    largest = max(largest, abs(step) * np.sqrt(h))
                size = max(size, abs(new) * np.sqrt(h))
            if largest <= tol * max(size, 1e-12):
                break


class _Phase:
    """Proximal Newton steps on one ``_Data`` (module docstring); the Grams persist across calls."""

    def __init__(self, data: _Data, allowed: torch.Tensor, sweeps: int, sweep_tol: float) -> None:
        self.data, self.allowed, self.sweeps, self.sweep_tol = data, allowed, sweeps, sweep_tol
        self.penalty = torch.ones_like(allowed[0], dtype=data.inputs.dtype)
        self.penalty[-1] = 0.0  # the bias
        self.grams = RowGrams(data.inputs, allowed.shape[0], _CURVATURE_DELTA, _CURVATURE_FLOOR)

    def objective(self, loss: torch.Tensor, aug: torch.Tensor, lam: float) -> torch.Tensor:
        return loss / self.data.n + lam * (aug.abs() * self.penalty).sum(1)

    def working_set(self, aug, gradient, lam: float, fixed) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Non-zeros plus violators of ``|grad_q| <= lam`` (at most a quarter more per row), the
        rows that left violators out, and the number of violators."""
        if fixed is not None:
            return fixed, torch.zeros_like(fixed[:, 0]), 0
        violation = (gradient.abs() - lam * self.penalty).clamp_min(0) * (aug == 0) * self.allowed
        limit = (0.25 * (aug[:, :-1] != 0).sum(1)).ceil().clamp_min(5).long()
        left_out = (violation > 0).sum(1) > limit
        ranked = torch.sort(violation, dim=1, descending=True).values
        kth = ranked.gather(1, (limit - 1).clamp_max(ranked.shape[1] - 1)[:, None])
        wanted = ((aug != 0) | ((violation > 0) & (violation >= kth))) & self.allowed
        wanted[:, -1] = True
        return wanted, left_out, int((violation > 0).sum())

    def newton_step(self, aug, gradient, lam: float):
        grams = self.grams
        index, valid = grams.index, grams.valid.double()
        g = gradient.gather(1, index).double() * valid
        u = aug.gather(1, index).double() * valid
        if lam > 0:
            penalty = self.penalty.expand_as(aug).gather(1, index).double() * valid
            target = _model_descent(grams.gram, grams.diagonals(), g, u, penalty, lam, valid, self.sweeps,
                                    self.sweep_tol)
        else:
            target = u - torch.cholesky_solve(g[:, :, None], grams.factors())[:, :, 0]
        return grams.scatter((target - u) * valid).to(aug.dtype)

    def line_search(self, aug, z, step, dz, current, lam: float):
        """Per row the first of 1, 1/2, 1/4, ... that does not raise ``F_i`` (0 if none)."""
        scale = torch.ones_like(current)
        trial = torch.full_like(current, float("inf"))
        todo = torch.arange(current.numel(), device=current.device)
        for _ in range(_LINE_SEARCH_HALVINGS):
            s = scale[todo]
            loss, _, _ = self.data.loss(z[:, todo] + s * dz[:, todo], todo, derivatives=False)
            trial[todo] = loss / self.data.n + lam * ((aug[todo] + s[:, None] * step[todo]).abs()
                                                      * self.penalty).sum(1)
            worse = trial[todo] > current[todo]
            scale[todo] = torch.where(worse, s / 2, s)
            todo = todo[worse]
            if todo.numel() == 0:
                break
        return torch.where(trial <= current, scale, torch.zeros_like(scale))

    def run(self, aug, lam: float, tol: float, max_steps: int, fixed=None, keep: int | None = None,
            slack: float = 0.0, search: bool = True):
        """Steps until the relative change of F is below ``tol``; with ``keep`` lam moves towards
        it (``_LamController``; without ``search`` only where a converged solution is off target).

        Returns (aug, lam, F, steps, converged).
        """
        z = self.data.forward(aug)
        loss, slope, curvature = self.data.loss(z)
        current = self.objective(loss, aug, lam)
        controller = None if keep is None else _LamController(keep, slack, search)
        for step_count in range(1, max_steps + 1):
            gradient = self.data.gradient(slope)
            wanted, left_out, violators = self.working_set(aug, gradient, lam, fixed)
            self.grams.track(wanted, curvature)
            self.grams.update(curvature)
            step = self.newton_step(aug, gradient, lam)
            dz = self.data.forward(step)
            scale = self.line_search(aug, z, step, dz, current, lam)
            aug, z = aug + scale[:, None] * step, z + scale * dz
            complete = not bool((left_out & (scale > 0)).any())  # a row that cannot move is done
            loss, slope, curvature = self.data.loss(z)
            previous, current = float(current.sum()), self.objective(loss, aug, lam)
            change = (previous - float(current.sum())) / max(abs(previous), 1e-30)
            if controller is not None:
                nonzero = int(torch.count_nonzero(aug[:, :-1]))
                moved = controller.adjust(lam, nonzero + violators)  # pending violators count too
                if moved is None and change < tol and complete:
                    moved = controller.retarget(lam, nonzero)
                if moved is not None:  # lam not settled, or converged off target: no convergence yet
                    lam = moved
                    current = self.objective(loss, aug, lam)
                    continue
            if change < tol and complete:
                return aug, lam, float(current.sum()), step_count, True
        return aug, lam, float(current.sum()), max_steps, False


class _LamController:
    """Moves lam towards ``keep`` non-zeros.

    While searching, by factors ``(count / keep)^2`` within ``[1/r, r]`` per step, ``count``
    the non-zeros plus the pending violators; ``r`` starts at ``_MAX_REACH``, is square-rooted
    at each reversal of direction and squared (up to ``_MAX_REACH``) when it repeats, and lam
    settles when the count is within ``slack`` of ``keep`` or ``r`` is spent. The pending
    violators over-predict the solution's non-zeros, so a phase that converges at a settled lam
    whose solution is off target moves lam once more (at most ``_RESTARTS`` times) and converges
    again: by the secant of ``log nnz`` against ``log lam`` between the closest converged
    solutions on either side of the target once there are both (regula falsi, kept within the
    bracket's inner 80%), before that by ``nnz / keep`` (nnz taken as proportional to 1/lam,
    within [1/4, 4]).
    """

    def __init__(self, keep: int, slack: float, search: bool = True) -> None:
        self.keep, self.band = keep, max(slack * keep, 2)
        self.reach, self.direction, self.settled = _MAX_REACH, 0, not search
        self.restarts = 0
        # (log lam, log nnz) of converged solutions with too many and too few non-zeros
        self.above: list[tuple[float, float]] = []
        self.below: list[tuple[float, float]] = []

    def adjust(self, lam: float, count: int) -> float | None:
        """The next lam, or None once lam has settled."""
        if self.settled:
            return None
        if abs(count - self.keep) <= self.band or self.reach <= 1.001:
            self.settled = True
            return None
        sign = 1 if count > self.keep else -1
        if sign == -self.direction:
            self.reach = math.sqrt(self.reach)
        elif sign == self.direction:
            self.reach = min(self.reach ** 2, _MAX_REACH)
        self.direction = sign
        return lam * min(max((count / self.keep) ** 2, 1 / self.reach), self.reach)

    def retarget(self, lam: float, nonzero: int) -> float | None:
        """At convergence: the next lam when the solution's non-zeros are off target, else None."""
        if abs(nonzero - self.keep) <= self.band or self.restarts >= _RESTARTS or nonzero == 0:
            return None
        self.restarts += 1
        x, y, goal = math.log(lam), math.log(nonzero), math.log(self.keep)
        side = self.above if nonzero > self.keep else self.below
        side.append((x, y))
        if self.above and self.below:  # a bracket: the secant between its ends, kept inside it
            (xa, ya), (xb, yb) = max(self.above), min(self.below)
            t = min(max((goal - ya) / (yb - ya), 0.1), 0.9) if yb != ya else 0.5
            return math.exp(xa + t * (xb - xa))
        return lam * min(max(nonzero / self.keep, 0.25), 4.0)  # nnz taken as proportional to 1/lam


def _fold_constant_inputs(weight, bias, std: Standardiser):
    """Move the weights of constant inputs into the bias (the function is unchanged)."""
    bias = bias + (weight * std.constant) @ std.mean
    return weight * ~std.constant, bias


def feta_solve(inputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               lam: float, iterations: int = 20, t: float = 10.0, mask: torch.Tensor | None = None,
               relu: bool = True, sweeps: int = 100) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """FeTa at a fixed ``lam`` on all samples from ``(weight, bias)``: ``iterations`` Newton steps.

    ``mask`` (True = free) restricts the support. Returns the new weight, bias and ``F`` before
    the first and after every step (non-increasing).
    """
    std = Standardiser(inputs)
    weight, bias = _fold_constant_inputs(weight, bias, std)
    allowed = torch.cat([~std.constant, torch.ones(1, dtype=torch.bool, device=inputs.device)])
    allowed = allowed.expand(weight.shape[0], -1).clone()
    if mask is not None:
        allowed[:, :-1] &= mask
    phase = _Phase(_Data(inputs, target, t, relu), allowed, sweeps, 1e-6)
    aug = torch.cat([weight * allowed[:, :-1], bias[:, None]], 1)
    history = [feta_objective(inputs, target, aug[:, :-1], aug[:, -1], lam, t)]
    for _ in range(iterations):
        aug, lam, _, _, _ = phase.run(aug, lam, 0.0, 1)
        history.append(feta_objective(inputs, target, aug[:, :-1], aug[:, -1], lam, t))
    return aug[:, :-1], aug[:, -1], history


@register("feta")
class FeTa(LayerPruner):
    """FeTa with a target sparsity (see the module docstring for the scheme).

    Options: ``t`` softplus sharpness; ``tol`` the relative change of ``F`` per Newton step below
    which a phase has converged; ``max_rounds`` a safety cap on steps per phase
    (``info['converged']`` is False when reached); ``lasso_iterations``/``lasso_tol`` the cap
    and stopping rule of the coordinate-descent sweeps on each step's model (no data pass);
    ``search_samples`` the rows of the search phase; ``slack`` the relative distance of the
    non-zeros from the target at which lam freezes; ``lam`` fixes lam (no search); ``seed``
    draws the subsample. ``tol=0, max_rounds=R`` runs exactly ``R`` steps per phase.
    """

    def __init__(self, t: float = 10.0, tol: float = 1e-3, max_rounds: int = 200,
                 lasso_iterations: int = 100, lasso_tol: float = 1e-4, search_samples: int = 10000,
                 slack: float = 0.02, lam: float | None = None, seed: int = 0,
                 patch_rows: int | None = PATCH_ROWS) -> None:
        super().__init__(patch_rows, seed)
        self.t, self.tol, self.max_rounds = t, tol, max_rounds
        self.lasso_iterations, self.lasso_tol = lasso_iterations, lasso_tol
        self.search_samples, self.slack, self.lam = search_samples, slack, lam

    def _phase(self, x, y, relu: bool, allowed) -> _Phase:
        return _Phase(_Data(x, y, self.t, relu), allowed, self.lasso_iterations, self.lasso_tol)

    def _solve(self, problem: LayerProblem, sparsity: float, fixed: torch.Tensor | None) -> Solution:
        x, y, relu = problem.inputs, problem.target, problem.relu
        numel = problem.weight.numel()
        keep = numel - count_to_prune(numel, sparsity) if fixed is None else int(fixed.sum())
        std = Standardiser(x)
        weight, bias = _fold_constant_inputs(problem.weight, problem.bias, std)
        allowed = torch.cat([~std.constant, torch.ones(1, dtype=torch.bool, device=x.device)])
        allowed = allowed.expand(weight.shape[0], -1).clone()
        full = self._phase(x, y, relu, allowed)
        info = {"t": self.t, "lam": self.lam, "rounds": 0, "converged": True}
        aug = torch.cat([weight, bias[:, None]], 1)
        if fixed is None and keep > 0:
            aug, info = self._select(x, y, relu, allowed, full, aug, keep, info)
        mask = fixed if fixed is not None else keep_largest(aug[:, :-1], keep, allowed[:, :-1], problem.weight)
        support = torch.cat([mask & allowed[:, :-1], torch.ones_like(mask[:, :1])], 1)
        aug, _, objective, rounds, converged = full.run(aug * support, 0.0, self.tol, self.max_rounds,
                                                        fixed=support)
        info.update(objective=objective, refit_rounds=rounds, iterations=info["rounds"] + rounds,
                    converged=info["converged"] and converged, data_passes=full.data.passes)
        return Solution(aug[:, :-1] * mask, aug[:, -1], mask, info)

    def _select(self, x, y, relu, allowed, full: _Phase, aug, keep: int, info: dict):
        """Phases 1 and 2: the FeTa solution at a lam with about ``keep`` non-zeros."""
        n = x.shape[0]
        keep = min(keep, int(allowed[:, :-1].sum()))  # weights of constant inputs stay zero
        rows = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[:self.search_samples]
        search = self._phase(x[rows.to(x.device)], y[rows.to(x.device)], relu, allowed)
        lam, start = self._start(search, aug, keep, allowed)
        slack = self.slack if self.lam is None else 0.0
        target = keep if self.lam is None else None
        rounds, converged = 0, True
        if rows.numel() < n:
            start, lam, _, rounds, converged = search.run(start, lam, self.tol, self.max_rounds, keep=target,
                                                          slack=slack)
        aug, lam, objective, more, converged_full = full.run(start, lam, self.tol, self.max_rounds, keep=target,
                                                              slack=slack, search=rows.numel() >= n)
        info.update(lam=lam, objective_at_lam=objective, nonzeros_at_lam=int(torch.count_nonzero(aug[:, :-1])),
                    search_rounds=rounds, rounds=rounds + more,
                    converged=converged and converged_full, search_passes=search.data.passes)
        return aug, info

    def _start(self, search: _Phase, aug, keep: int, allowed):
        """lam at which a diagonal-Newton prox step from the trained weights keeps ``keep`` weights,
        and those weights (the sparse start)."""
        data = search.data
        _, _, curvature = data.loss(data.forward(aug))
        diagonal = (curvature.T @ data.inputs.pow(2)) / data.n
        scores = aug[:, :-1].abs() * diagonal * allowed[:, :-1]
        kept = keep_largest(scores, keep)
        lam = self.lam
        if lam is None:
            flat = scores.reshape(-1)
            lam = float(flat.kthvalue(max(flat.numel() - keep, 1)).values.clamp_min(1e-12))
        start = aug.clone()
        start[:, :-1] *= kept
        return lam, start
