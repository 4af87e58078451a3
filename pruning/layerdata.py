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
        patches = F.unfold(inputs[start:start + chunk], layer.kernel_size, layer.dilation, layer.padding,
                           layer.stride).transpose(1, 2).reshape(-1, patch_size)
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
