"""L-OBS: layer-wise Optimal Brain Surgeon (Dong, Chen, Pan, NeurIPS 2017).

The layer error ``(1/2N) sum_n ||dU x~_n||^2`` (``x~ = [x; 1]``, ``U = [W b]``) is the
quadratic ``(1/2) sum_rows du^T H du`` with ``H = (1/N) X~^T X~``, shared by every row;
damping adds ``damping * mean(diag H)`` to the diagonal. Removing weight ``q`` of a row
``w`` at least cost (OBS, Hassibi and Stork 1993, eq. 5) changes the row by

    dw = -(w_q / [H^-1]_qq) H^-1 e_q,   at cost (saliency)  w_q^2 / (2 [H^-1]_qq).

* ``"lobs"`` (as the authors' code): saliencies ranked once over the layer, the
  ``round(s numel)`` smallest removed with the update above applied row by row in
  saliency order, ``H^-1`` never updated (a removed weight revived by a later update is
  zeroed by the final mask).
* ``"lobs-exact"``: the same number of removals per row as ``"lobs"``, but each row
  removes its weights one at a time, greedily, with the inverse of the reduced Hessian
  downdated after every removal (Schur complement, as in Frantar and Alistarh's exact
  OBS): ``H^-1 <- H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq``. Batched across rows.

The bias (last coordinate of ``x~``) is never removed, but the updates do move it.
L-OBS is a direct method (no iterative solver): ``info['converged']`` is always True and
``info['iterations']`` is the largest number of removals in a row. With a fixed support
(``prune(..., mask=M)``) exactly the weights outside ``M`` are removed, in saliency order.
A Hessian that stays singular (``damping=0`` on rank-deficient inputs) raises PruningError.
"""
from __future__ import annotations

import torch

from .base import LayerPruner, PruningError, Solution, count_to_prune, register
from .layerdata import PATCH_ROWS, LayerProblem

# Memory for the per-row inverse Hessians of "lobs-exact" (bytes per chunk of rows).
_CHUNK_BYTES = 16 * 2 ** 20  # a few rows, so their inverses stay in cache


def layer_hessian(inputs: torch.Tensor, damping: float = 1e-4) -> torch.Tensor:
    """``H = (1/N) X~^T X~ + damping * mean(diag) I`` in float64, ``X~ = [X 1]``."""
    x = torch.cat([inputs, torch.ones_like(inputs[:, :1])], 1)
    hessian = (x.T @ x).double() / x.shape[0]
    hessian.diagonal().add_(damping * float(hessian.diagonal().mean()))
    return hessian


def obs_update(row: torch.Tensor, hessian_inverse: torch.Tensor, index: int) -> torch.Tensor:
    """The OBS change of ``row`` that zeroes entry ``index``: ``-(w_q / Hinv_qq) Hinv e_q``."""
    return -(row[index] / hessian_inverse[index, index]) * hessian_inverse[:, index]


def downdate_inverse(hessian_inverse: torch.Tensor, index: torch.Tensor | int) -> torch.Tensor:
    """Inverse of the Hessian without coordinate ``index`` (that row and column become 0).

    ``Hinv - Hinv e_q e_q^T Hinv / Hinv_qq``; batched over leading dimensions when
    ``index`` holds one coordinate per matrix.
    """
    if hessian_inverse.ndim == 2:
        column = hessian_inverse[:, index]
        return hessian_inverse - torch.outer(column, column) / column[index]
    rows = torch.arange(hessian_inverse.shape[0], device=hessian_inverse.device)
    columns = hessian_inverse[rows, :, index]  # (batch, d); symmetric, so also the rows
    pivots = columns[rows, index]
    return hessian_inverse - columns[:, :, None] * columns[:, None, :] / pivots[:, None, None]


def _saliency(weight: torch.Tensor, diagonal: torch.Tensor) -> torch.Tensor:
    return weight.pow(2) / (2 * diagonal)


def _inverse(hessian: torch.Tensor) -> torch.Tensor:
    factor, info = torch.linalg.cholesky_ex(hessian)
    if int(info) != 0:
        raise torch.linalg.LinAlgError("the layer Hessian is singular; use damping > 0")
    return torch.cholesky_inverse(factor)


@register("lobs")
class LOBS(LayerPruner):
    """Layer-wise OBS; ``damping`` is relative to the mean of diag(H)."""

    def __init__(self, damping: float = 1e-4, patch_rows: int | None = PATCH_ROWS, seed: int = 0) -> None:
        if not damping >= 0:
            raise PruningError(f"damping must be >= 0, got {damping!r}")
        super().__init__(patch_rows, seed)
        self.damping = damping

    def _solve(self, problem: LayerProblem, sparsity: float, fixed: torch.Tensor | None) -> Solution:
        hessian = layer_hessian(problem.inputs, 0.0)  # one pass over the data, shared below
        damped = hessian.clone()
        damped.diagonal().add_(self.damping * float(hessian.diagonal().mean()))
        inverse = _inverse(damped)
        rows = torch.cat([problem.weight, problem.bias[:, None]], 1).double()
        d_out, d_in = problem.weight.shape
        scores = _saliency(rows[:, :-1], inverse.diagonal()[:-1]).reshape(-1)
        if fixed is None:
            ranked = torch.sort(scores, stable=True).indices[:count_to_prune(d_out * d_in, sparsity)]
        else:
            removable = (~fixed).reshape(-1).nonzero()[:, 0]
            ranked = removable[torch.sort(scores[removable], stable=True).indices]
        mask = torch.ones(d_out * d_in, dtype=torch.bool, device=rows.device)
        mask[ranked] = False
        mask = mask.reshape(d_out, d_in)
        new_rows, mask = self._remove(rows, inverse, ranked, mask, fixed is not None)
        new_rows[:, :-1] *= mask
        delta = new_rows - rows
        objective = float(torch.einsum("ij,jk,ik->", delta, hessian, delta))
        info = {"iterations": int((~mask).sum(1).max()) if ranked.numel() else 0, "objective": objective,
                "converged": True, "damping": self.damping}
        return Solution(new_rows[:, :-1].float(), new_rows[:, -1].float(), mask, info)

    def _remove(self, rows, inverse, ranked, mask, fixed):
        """Variant 1: per row, apply the OBS updates in saliency order with the fixed inverse.

        Returns the new rows and the kept-weights mask.
        """
        d_in = mask.shape[1]
        row_of, column_of = ranked // d_in, ranked % d_in
        order = torch.argsort(row_of, stable=True)  # within a row, keeps the saliency order
        row_of, column_of = row_of[order], column_of[order]
        counts = torch.bincount(row_of, minlength=rows.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        rows = rows.clone()
        all_rows = torch.arange(rows.shape[0], device=rows.device)
        for step in range(int(counts.max()) if counts.numel() else 0):
            live = all_rows[counts > step]
            q = column_of[starts[live] + step]
            coefficient = rows[live, q] / inverse[q, q]
            rows[live] -= coefficient[:, None] * inverse[q]
        return rows, mask


@register("lobs-exact")
class LOBSExact(LOBS):
    """L-OBS with the inverse Hessian downdated after every removal (greedy per row)."""

    def _remove(self, rows, inverse, ranked, mask, fixed):
        """Greedy per row; with ``fixed`` only among the entries outside ``mask``."""
        counts = (~mask).sum(1)
        rows, removed = rows.clone(), torch.zeros_like(rows, dtype=torch.bool)
        blocked = torch.ones_like(rows, dtype=torch.bool)  # the bias is never removed
        blocked[:, :-1] = mask if fixed else False
        chunk = max(1, _CHUNK_BYTES // (inverse.numel() * inverse.element_size()))
        for start in range(0, rows.shape[0], chunk):
            part = slice(start, start + chunk)
            rows[part], removed[part] = self._greedy(rows[part], inverse, counts[part], blocked[part])
        return rows, ~removed[:, :-1]

    @staticmethod
    def _greedy(rows, inverse, counts, blocked):
        batch, size = rows.shape
        inverses = inverse.expand(batch, size, size).clone()
        removed = torch.zeros_like(rows, dtype=torch.bool)
        index = torch.arange(batch, device=rows.device)
        for step in range(int(counts.max()) if counts.numel() else 0):
            live = counts > step
            diagonal = inverses.diagonal(dim1=1, dim2=2)
            scores = _saliency(rows, diagonal).masked_fill(removed | blocked, float("inf"))
            q = scores.argmin(1)
            pivot = torch.where(live, inverses[index, q, q], torch.ones_like(counts, dtype=rows.dtype))
            coefficient = torch.where(live, rows[index, q] / pivot, torch.zeros_like(pivot))
            rows = rows - coefficient[:, None] * inverses[index, :, q]
            rows[index[live], q[live]] = 0.0
            columns = inverses[index, :, q] * live[:, None]
            inverses.baddbmm_(columns[:, :, None], (columns / pivot[:, None])[:, None, :], alpha=-1)
            removed[index[live], q[live]] = True
        return rows, removed
