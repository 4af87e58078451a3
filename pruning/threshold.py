"""Hard thresholding (magnitude pruning), layer-wise and global.

``H_s(W)`` zeroes the ``round(s * numel)`` entries of smallest magnitude. Ties are
broken by position (a stable sort), so the sparsity never misses its target.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import LayerPruner, Solution, check_sparsity, count_to_prune, register
from .layerdata import LayerProblem


def _mask_from_order(magnitudes: torch.Tensor, n_prune: int) -> torch.Tensor:
    flat = magnitudes.reshape(-1)
    mask = torch.ones_like(flat, dtype=torch.bool)
    if n_prune > 0:
        order = torch.sort(flat, stable=True).indices
        mask[order[:n_prune]] = False
    return mask.reshape(magnitudes.shape)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask (True = kept) of the hard-thresholding operator ``H_s`` on one tensor."""
    return _mask_from_order(weight.detach().abs(), count_to_prune(weight.numel(), sparsity))


def global_magnitude_masks(weights: Sequence[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Masks for one threshold shared by all ``weights``: the smallest ``s`` fraction overall."""
    check_sparsity(sparsity)
    flat = torch.cat([w.detach().abs().reshape(-1).to(weights[0].device) for w in weights])
    mask = _mask_from_order(flat, count_to_prune(flat.numel(), sparsity))
    sizes = [w.numel() for w in weights]
    return [m.reshape(w.shape).to(w.device) for m, w in zip(torch.split(mask, sizes), weights)]


def hard_threshold(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """``H_s(W)``: a copy of ``weight`` with its smallest-magnitude entries set to zero."""
    return weight * magnitude_mask(weight, sparsity)


def threshold_residual(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The pruning residual ``R = W - H_s(W)``."""
    return weight * ~magnitude_mask(weight, sparsity)


@register("threshold")
class HardThreshold(LayerPruner):
    """Layer-wise hard thresholding through the common interface (needs no data)."""

    needs_data = False

    def _solve(self, problem: LayerProblem, sparsity: float, mask: torch.Tensor | None) -> Solution:
        mask = magnitude_mask(problem.weight, sparsity) if mask is None else mask
        return Solution(problem.weight * mask, problem.bias, mask, {"iterations": 0})
