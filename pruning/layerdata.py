"""Shared plumbing of the data-driven pruners: a layer as a linear map on rows.

* ``LayerProblem``: the layer's weights as a matrix ``(d_out, d_in)``, its bias, its input
  rows ``X`` ``(rows, d_in)`` and target rows ``(rows, d_out)``, float32 on the inputs' device.
  A Linear layer gives one row per sample. A Conv2d layer (groups=1, zero padding) is the
  same linear map on its unfolded input patches (``torch.nn.functional.unfold`` at the
  layer's stride, padding and dilation): weights ``(C_out, C_in kh kw)``, one row per output
  position, ``N H' W'`` rows of ``C_in kh kw`` entries.
* Cost of patch sampling: every solver is linear (or worse) in the number of rows, and the
  rows take ``4 N H' W' C_in kh kw`` bytes. So at most ``patch_rows`` rows (default
  ``PATCH_ROWS = 50_000``) are drawn uniformly without replacement with ``seed``; ``None``
  keeps all of them. A Linear layer is never subsampled.
* ``Standardiser``: the exact change of variables ``v = u * sd``, ``c = b + u . mean`` that
  makes a layer act on standardised inputs. It leaves every loss unchanged and, because
  biases are not penalised, turns ``lam ||u||_1`` into the weighted ``lam sum_q |v_q| / sd_q``
  (a diagonal preconditioner for first-order solvers).
* ``soft_threshold`` and ``keep_largest`` (the final exact-sparsity projection).
* ``RowGrams``: per-output-row weighted Grams ``H_i = (1/n) sum_r c_ri x~_r[T_i] x~_r[T_i]^T`` on
  small coordinate sets ``T_i`` (the support of row ``i``), the second-order sufficient
  statistics of the Newton solvers (FeTa, the relu-aware refit). When the weights ``c`` change
  they are kept in step by rank-one terms of the rows whose weight moved, so an iteration near
  convergence costs O(changed rows k_i^2) instead of O(rows k_i^2). The inputs are held in both
  layouts (a few coordinates of many rows copy fastest from the columns, all coordinates of a
  few rows from the rows), and where one weight sits on most rows (the refit's 0-or-2
  curvatures) ``H_i = w (G - sum over the zero-weight rows)`` with the full Gram ``G`` built once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Input columns whose standard deviation is below this (relative to the largest) are constant.
_CONSTANT_COLUMN = 1e-6
PATCH_ROWS = 50_000
_UNFOLD_CHUNK = 2 ** 24  # patch entries unfolded at once


@dataclass
class LayerProblem:
    """Weights ``(d_out, d_in)``, bias ``(d_out,)``, inputs ``(rows, d_in)``, target ``(rows, d_out)``.

    ``target`` is ``relu(Z)`` when a relu follows, else ``Z``; ``outputs`` is always ``Z``.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    inputs: torch.Tensor | None
    outputs: torch.Tensor | None
    relu: bool

    @property
    def target(self) -> torch.Tensor:
        return self.outputs.clamp_min(0) if self.relu else self.outputs


def conv_output_size(layer: nn.Conv2d, height: int, width: int) -> tuple[int, int]:
    """``H' = floor((H + 2 p - d (k - 1) - 1) / s) + 1`` per spatial axis (torch's Conv2d docs)."""
    sizes = []
    for size, axis in ((height, 0), (width, 1)):
        span = layer.dilation[axis] * (layer.kernel_size[axis] - 1) + 1
        sizes.append((size + 2 * layer.padding[axis] - span) // layer.stride[axis] + 1)
    return sizes[0], sizes[1]


def _unfold(inputs: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    """``F.unfold`` on one CPU thread: it is memory-bound, and its multi-threaded loop was seen
    to take 5000x longer (14 s for 1797 8x8 images) on a CPU shared with other processes."""
    if inputs.device.type != "cpu":
        return F.unfold(inputs, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return F.unfold(inputs, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    finally:
        torch.set_num_threads(threads)


def _patch_rows(layer: nn.Conv2d, inputs: torch.Tensor, outputs: torch.Tensor, max_rows: int | None,
                seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unfolded patches ``(rows, C k k)`` and the matching outputs ``(rows, C')``, rows (n, h', w')."""
    n, positions = inputs.shape[0], outputs.shape[2] * outputs.shape[3]
    total = n * positions
    chosen = None
    if max_rows is not None and total > max_rows:
        gen = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(total, generator=gen)[:max_rows].sort().values.to(inputs.device)
    out_rows = outputs.permute(0, 2, 3, 1).reshape(total, -1)
    patch_size = inputs.shape[1] * layer.kernel_size[0] * layer.kernel_size[1]
    chunk = max(1, _UNFOLD_CHUNK // max(positions * patch_size, 1))
    pieces = []
    for start in range(0, n, chunk):
        patches = _unfold(inputs[start:start + chunk], layer).transpose(1, 2).reshape(-1, patch_size)
        if chosen is not None:
            low, high = start * positions, (start + chunk) * positions
            local = chosen[(chosen >= low) & (chosen < high)] - low
            patches = patches[local]
        pieces.append(patches)
    rows = torch.cat(pieces).contiguous()
    return rows, (out_rows if chosen is None else out_rows[chosen]).contiguous()


def layer_problem(layer: nn.Module, inputs: torch.Tensor | None, outputs: torch.Tensor | None,
                  relu: bool, patch_rows: int | None = PATCH_ROWS, seed: int = 0,
                  dtype: torch.dtype = torch.float32) -> LayerProblem:
    """A Linear or Conv2d layer's data as a matrix problem (see the module docstring)."""
    device = inputs.device if inputs is not None else layer.weight.device
    weight = layer.weight.detach().reshape(layer.weight.shape[0], -1).to(device=device, dtype=dtype)
    bias = (torch.zeros(weight.shape[0], device=device, dtype=dtype) if layer.bias is None
            else layer.bias.detach().to(device=device, dtype=dtype))
    if inputs is None:
        return LayerProblem(weight.clone(), bias.clone(), None, None, relu)
    inputs, outputs = inputs.detach().to(dtype), outputs.detach().to(device=device, dtype=dtype)
    if isinstance(layer, nn.Conv2d):
        inputs, outputs = _patch_rows(layer, inputs, outputs, patch_rows, seed)
    return LayerProblem(weight.clone(), bias.clone(), inputs.contiguous(), outputs.contiguous(), relu)


class Standardiser:
    """Exact reparametrisation of ``z = x W^T + b`` on standardised inputs ``(x - mean) / sd``."""

    def __init__(self, inputs: torch.Tensor) -> None:
        var, mean = torch.var_mean(inputs, dim=0, correction=0)
        sd = var.sqrt()
        self.constant = sd <= _CONSTANT_COLUMN * sd.max().clamp_min(1e-30)
        self.mean = mean.to(inputs.dtype)
        self.sd = torch.where(self.constant, torch.ones_like(sd), sd).to(inputs.dtype)

    def to_standard(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bias = bias + weight @ self.mean
        return weight * ~self.constant * self.sd, bias  # a constant input is carried by the bias

    def from_standard(self, v: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = v / self.sd
        return weight, c - weight @ self.mean

    def forward(self, inputs: torch.Tensor, v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``((x - mean) / sd) v^T + c`` without forming the standardised inputs."""
        weight = v / self.sd
        return torch.addmm(c - weight @ self.mean, inputs, weight.T)

    def backward(self, inputs: torch.Tensor, grad_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients w.r.t. ``(v, c)`` of a loss whose gradient w.r.t. ``z`` is ``grad_z``."""
        grad_c = grad_z.sum(0)
        grad_v = (grad_z.T @ inputs - torch.outer(grad_c, self.mean)) / self.sd
        return grad_v, grad_c


def soft_threshold(values: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """Proximal operator of ``threshold * |.|``: ``sign(v) max(|v| - threshold, 0)``."""
    return values.sign() * (values.abs() - threshold).clamp_min(0)


def keep_largest(scores: torch.Tensor, keep: int, allowed: torch.Tensor | None = None,
                 tiebreak: torch.Tensor | None = None) -> torch.Tensor:
    """Mask of the ``keep`` largest ``|scores|`` among the ``allowed`` entries.

    Ties (e.g. the exact zeros of a sparse solution with fewer non-zeros than ``keep``) go to
    the larger ``|tiebreak|``, then to the earlier position.
    """
    scores = scores.abs() if allowed is None else scores.abs().masked_fill(~allowed, -1.0)
    flat = scores.reshape(-1)
    order = torch.arange(flat.numel(), device=flat.device)
    if tiebreak is not None:
        order = torch.sort(tiebreak.abs().reshape(-1), descending=True, stable=True).indices
    order = order[torch.sort(flat[order], descending=True, stable=True).indices]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[order[:max(keep, 0)]] = True
    return mask.reshape(scores.shape)


def _ridge_scale(diagonal: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per row the mean of the valid diagonal entries (at least 1e-12) on valid slots, 0 elsewhere."""
    scale = (diagonal * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1)
    return scale.clamp_min(1e-12) * valid


def _pad(tensor: torch.Tensor, size: int, dims: tuple[int, ...]) -> torch.Tensor:
    pads: list[int] = []
    for dim in reversed(range(tensor.ndim)):
        pads += [0, size - tensor.shape[dim] if dim in dims else 0]
    return F.pad(tensor, pads)


class RowGrams:
    """Per-row Grams ``H_i = (1/n) sum_r c_used[i, r] x~_r[T_i] x~_r[T_i]^T`` (float64), ``x~ = [x; 1]``.

    ``T_i`` (``index[i, valid[i]]``) are coordinates of ``x~`` (``d_in`` = the bias), in slots of
    a common width; an invalid slot (padding, or a hole left by a dropped coordinate) has a zero
    Gram line. ``c_used`` is the weight each row carries in the Grams: rows whose current weight
    ``c`` differs from it by more than ``delta`` are updated by rank-one terms (``update``), so
    ``H_i`` is always the exact Gram of ``c_used``, within ``delta`` of ``c`` per row; rows with
    ``c <= floor`` start at weight 0. ``track`` changes the coordinate sets: dropping zeroes a
    slot's line, adding computes the new cross terms from the rows with non-zero weight.
    """

    def __init__(self, inputs: torch.Tensor, d_out: int, delta: float = 0.05, floor: float = 1e-4) -> None:
        # Both layouts of x~: a few coordinates of many samples are cheapest to copy from the
        # columns, many coordinates of a few samples (a rank-one update) from the rows.
        self.samples = torch.cat([inputs, torch.ones_like(inputs[:, :1])], 1).contiguous()
        self.columns = self.samples.T.contiguous()
        self.rows, self.delta, self.floor = inputs.shape[0], delta, floor
        device = inputs.device
        self.index = torch.zeros(d_out, 0, dtype=torch.long, device=device)
        self.valid = torch.zeros(d_out, 0, dtype=torch.bool, device=device)
        self.gram = torch.zeros(d_out, 0, 0, dtype=torch.float64, device=device)
        self.c_used: torch.Tensor | None = None
        self._full_gram: torch.Tensor | None = None

    def tracked(self) -> torch.Tensor:
        """Boolean ``(d_out, d_in + 1)``: the coordinates currently tracked per row."""
        return self.scatter(self.valid.double()) > 0

    def scatter(self, values: torch.Tensor) -> torch.Tensor:
        """Padded per-row ``values`` (``(d_out, K)``) placed at their coordinates, 0 elsewhere."""
        width = self.columns.shape[0]
        index = torch.where(self.valid, self.index, torch.full_like(self.index, width))  # padding: a spare column
        out = torch.zeros(values.shape[0], width + 1, dtype=values.dtype, device=values.device)
        return out.scatter_(1, index, values)[:, :width]

    def _gather(self, coordinates: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``x~[rows][:, coordinates]``, ``(len(rows), len(coordinates))``, from the layout that copies less."""
        if rows.numel() == self.rows:
            return self.columns.index_select(0, coordinates).T
        if rows.numel() * self.samples.shape[1] < coordinates.numel() * self.rows:
            return self.samples.index_select(0, rows).index_select(1, coordinates)
        return self.columns.index_select(0, coordinates).index_select(1, rows).T

    def _cross(self, coordinates: torch.Tensor, first: int, rows: torch.Tensor,
               weights: torch.Tensor) -> torch.Tensor:
        """``(1/n) sum_r w_r x~_r[C[first:]] x~_r[C]^T`` for ``C = coordinates``: one gather."""
        block = self._gather(coordinates, rows)
        return ((block[:, first:].T * weights) @ block).double() / self.rows

    def _live_cross(self, row: int, coordinates: torch.Tensor, first: int, complement: bool) -> torch.Tensor:
        """``_cross`` over the samples with non-zero weight in ``row``; with ``complement`` (that
        weight is one value ``w``) as ``w (G - sum over the other samples)``, the full Gram ``G``."""
        weights = self.c_used[row]
        live = weights > 0
        if complement:
            dead = (~live).nonzero()[:, 0]
            full = self.full_gram()[coordinates[first:]][:, coordinates]
            others = self._cross(coordinates, first, dead, torch.ones_like(weights[dead]))
            return float(weights.max()) * (full - others)
        rows = live.nonzero()[:, 0]
        return self._cross(coordinates, first, rows, weights[rows])

    def _complement_rows(self, added: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Rows to build by complement: one weight on more than half of the samples, the rest 0,
        and the products saved worth building ``G`` (``n (d_in + 1)^2`` products) if it is not there."""
        if not bool(added.any()):  # FeTa tracks at every step; most steps add nothing
            return torch.zeros_like(added, dtype=torch.bool)
        live = self.c_used > 0
        top = self.c_used.max(1, keepdim=True).values
        live_count = live.sum(1)
        chosen = ((self.c_used == top) | ~live).all(1) & (2 * live_count > self.rows) & (added > 0)
        saved = ((2 * live_count - self.rows) * added * (counts + added))[chosen].sum()
        if self._full_gram is None and int(saved) < self.rows * self.samples.shape[1] ** 2:
            return torch.zeros_like(chosen)
        return chosen

    def full_gram(self) -> torch.Tensor:
        """``G = (1/n) X~^T X~`` over all samples, float64."""
        if self._full_gram is None:
            columns = self.columns.double()
            self._full_gram = columns @ columns.T / self.rows
        return self._full_gram

    def track(self, wanted: torch.Tensor, c: torch.Tensor) -> None:
        """Track exactly the coordinates ``wanted`` (bool ``(d_out, d_in + 1)``). A dropped
        coordinate leaves a hole (its slot invalid, its Gram line 0) that a new one fills first,
        so the Grams are never reordered."""
        if self.c_used is None:  # stored per output row: (d_out, rows), contiguous
            self.c_used = torch.where(c > self.floor, c, torch.zeros_like(c)).T.contiguous()
        new = wanted & ~self.tracked()
        dropped = self.valid & ~wanted.gather(1, self.index)
        for row in dropped.any(1).nonzero()[:, 0].tolist():
            slots = dropped[row].nonzero()[:, 0]
            self.gram[row, slots] = 0.0
            self.gram[row, :, slots] = 0.0
        self.valid &= ~dropped
        counts, added = self.valid.sum(1), new.sum(1)
        self._resize(int((counts + added).max()) if counts.numel() else 0)
        complement = self._complement_rows(added, counts).tolist()
        for row in added.nonzero()[:, 0].tolist():
            held = self.valid[row].nonzero()[:, 0]
            free = (~self.valid[row]).nonzero()[:, 0][:int(added[row])]
            fresh, k = new[row].nonzero()[:, 0], held.numel()
            cross = self._live_cross(row, torch.cat([self.index[row, held], fresh]), k, complement[row])
            self.gram[row, free[:, None], torch.cat([held, free])[None, :]] = cross
            self.gram[row, held[:, None], free[None, :]] = cross[:, :k].T
            self.index[row, free], self.valid[row, free] = fresh, True

    def _resize(self, needed: int) -> None:
        """At least ``needed`` slots per row, 1/16 to spare so that a growing working set is not
        copied at every step; once more than an eighth of the slots would be spare, the rows are
        compacted (valid slots first) and cut first."""
        if 8 * (self.index.shape[1] - needed) > self.index.shape[1]:
            self._compact()
        if needed > self.index.shape[1]:
            size = needed + needed // 16
            self.index, self.valid = _pad(self.index, size, (1,)), _pad(self.valid, size, (1,))
            self.gram = _pad(self.gram, size, (1, 2))

    def _compact(self) -> None:
        """Valid slots first in every row, then cut the width to the largest count."""
        rows = (self.valid[:, 1:] & ~self.valid[:, :-1]).any(1).nonzero()[:, 0]  # a hole before a valid slot
        if rows.numel():
            order = torch.sort((~self.valid[rows]).to(torch.int8), dim=1, stable=True).indices
            width = order.shape[1]
            gram = self.gram[rows].gather(1, order[:, :, None].expand(-1, -1, width))
            self.gram[rows] = gram.gather(2, order[:, None, :].expand(-1, width, -1))
            self.index[rows] = self.index[rows].gather(1, order)
            self.valid[rows] = self.valid[rows].gather(1, order)
        size = int(self.valid.sum(1).max()) if self.valid.numel() else 0
        self.index, self.valid = self.index[:, :size].contiguous(), self.valid[:, :size].contiguous()
        self.gram = self.gram[:, :size, :size].contiguous()

    def update(self, c: torch.Tensor) -> torch.Tensor:
        """Move ``c_used`` to ``c`` on the rows where they differ by more than ``delta``; those rows."""
        diff = c.T - self.c_used
        changed = diff.abs() > self.delta
        rows = changed.any(1).nonzero()[:, 0]
        for row in rows.tolist():
            moved = changed[row].nonzero()[:, 0]
            slots = self.valid[row].nonzero()[:, 0]
            block = self._cross(self.index[row, slots], 0, moved, diff[row, moved])
            k = slots.numel()
            if k and int(slots[-1]) == k - 1:  # no hole: a slice
                self.gram[row, :k, :k] += block
            else:
                self.gram[row].index_put_((slots[:, None], slots[None, :]), block, accumulate=True)
            self.c_used[row, moved] = c[moved, row]
        return rows

    def diagonals(self, ridge: float = 1e-9) -> torch.Tensor:
        """The Grams' diagonals ``(d_out, K)`` with 1 on padding and ``ridge`` times each row's mean
        diagonal added (``factors`` factorises the Grams with these diagonals)."""
        diagonal = self.gram.diagonal(dim1=1, dim2=2) + (~self.valid).double()
        return diagonal + ridge * _ridge_scale(diagonal, self.valid)

    def _data_scale(self) -> float:
        """The largest diagonal of the unweighted Gram, ``max_j (1/n) sum_r x~_rj^2`` (at least 1, the bias)."""
        return float(self.columns.double().pow(2).mean(1).max())

    def factors(self, ridge: float = 1e-9, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Cholesky factors of the Grams with ``diagonals(ridge)`` (of ``rows`` only, an index
        tensor, in that order); a row whose factorisation fails gets a 100x larger ridge, five
        times, then a ridge relative to ``_data_scale`` growing the same way. The ridge goes onto
        the stored Grams' diagonals in place and is taken off exactly after."""
        gram, valid = (self.gram, self.valid) if rows is None else (self.gram[rows], self.valid[rows])
        diagonal = gram.diagonal(dim1=1, dim2=2)
        bare = diagonal.clone()
        padded = bare + (~valid).double()
        scale = _ridge_scale(padded, valid)
        try:
            for attempt in range(12):
                diagonal.copy_(padded + ridge * scale)
                lower, info = torch.linalg.cholesky_ex(gram)
                if not bool(info.any()):
                    return lower
                failed = (info > 0)[:, None]
                if attempt == 5:
                    # The Grams add and subtract float32 products, so a row with no sample left on its
                    # quadratic piece holds rounding only, its diagonal possibly below 0, and a ridge
                    # relative to that diagonal never helps: such a row starts again from the data's scale.
                    scale = torch.where(failed, self._data_scale() * valid, scale)
                else:
                    scale = torch.where(failed, scale * 100, scale)
        finally:
            diagonal.copy_(bare)
        raise torch.linalg.LinAlgError("a row's Gram on its support stays singular")
