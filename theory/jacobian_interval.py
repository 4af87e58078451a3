"""Sound local Lipschitz bound from elementwise interval bounds on the Jacobian (Fast-Lip style).

Over a convex set in which every relu input lies in [l, u] and every pooling input in its
box, the Jacobian of the rest of the network at any point is ``W_L P_{L-1} ... P_m`` where a
relu contributes a diagonal with entries in {1} (l >= 0), {0} (u <= 0) or [0, 1] (unstable)
and a max-pool window a selection of one input ``i`` with ``u_i >= max_j l_j``. Interval
arithmetic on these products (Weng et al., ICML 2018, "Towards Fast Computation of Certified
Robustness", Fast-Lip) gives a centre ``J_c`` and radius ``J_r >= 0`` with ``|J - J_c| <= J_r``
elementwise for all of them, so ``||J||_2 <= ||J_c||_2 + ||J_r||_2`` (for ``|E| <= J_r``,
``||E||_2 <= || |E| ||_2 <= ||J_r||_2``). By the mean value theorem along the segment from the
actual value c to a perturbed one (the mean Jacobian lies in the same convex interval set),
``||g(c + d) - g(c)||_2 <= (||J_c||_2 + ||J_r||_2) ||d||_2``. Exact (the local Lipschitz
constant) when no relu is unstable and no pooling window is undecided.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .network import PRUNABLE
from .propagation import BallBox, backward_affine, weight_in_use


def _relu_interval(state: BallBox, center: torch.Tensor, spread: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    low = (state.lower >= 0).to(center.dtype).unsqueeze(1)
    high = (state.upper > 0).to(center.dtype).unsqueeze(1)
    mid, half = (low + high) / 2, (high - low) / 2
    return center * mid, center.abs() * half + spread * high


def _maxpool_interval(module: nn.MaxPool2d, state: BallBox, center: torch.Tensor,
                      spread: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch, channels, height, width = state.lower.shape
    padding = module.padding if isinstance(module.padding, int) else module.padding[0]
    pad_w = module.padding if isinstance(module.padding, int) else module.padding[1]
    pad = (pad_w, pad_w, padding, padding)
    windows = center.shape[-2] * center.shape[-1]

    def patches(x: torch.Tensor, fill: float) -> torch.Tensor:
        x = F.pad(x, pad, value=fill)
        unfolded = F.unfold(x, module.kernel_size, dilation=module.dilation, stride=module.stride)
        return unfolded.reshape(x.shape[0], x.shape[1], -1, windows)

    low_p, high_p = patches(state.lower, -math.inf), patches(state.upper, -math.inf)
    positions = torch.arange(height * width, dtype=center.dtype).reshape(1, 1, height, width)
    position_p = patches(positions, -1.0)[0, 0].round().long()          # (taps, windows)
    candidate = high_p >= low_p.amax(dim=2, keepdim=True)               # (B, C, taps, windows)
    only_one = candidate.sum(dim=2, keepdim=True) == 1
    weight_mid = torch.where(candidate, torch.where(only_one, 1.0, 0.5), 0.0).to(center.dtype)
    weight_half = torch.where(candidate & ~only_one, 0.5, 0.0).to(center.dtype)
    center, spread = center.flatten(3), spread.flatten(3)               # (B, S, C, windows)
    new_center = torch.zeros(*center.shape[:3], height * width, dtype=center.dtype)
    new_spread = torch.zeros_like(new_center)
    for tap in range(position_p.shape[0]):
        valid = position_p[tap] >= 0
        index = position_p[tap].clamp_min(0).expand_as(center)
        mid = weight_mid[:, :, tap].unsqueeze(1) * valid
        half = weight_half[:, :, tap].unsqueeze(1) * valid
        new_center.scatter_add_(3, index, center * mid)
        new_spread.scatter_add_(3, index, center.abs() * half + spread * (mid + half))
    shape = (*center.shape[:3], height, width)
    return new_center.reshape(shape), new_spread.reshape(shape)


def interval_jacobian_norm(modules: Sequence[nn.Module], states: Mapping[int, BallBox], start: int,
                           weights: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Per-sample ``||J_c||_2 + ||J_r||_2`` for the sub-network modules[start:] over the set ``states[start]``.

    ``states[i]`` must hold sound bounds on the input of every ReLU / MaxPool2d at i >= start.
    """
    weights = weights or {}
    output = states[len(modules)].center
    batch, outputs = output.shape[0], output[0].numel()
    center = torch.eye(outputs, dtype=output.dtype).reshape(outputs, *output.shape[1:])
    center = center.unsqueeze(0).expand(batch, *center.shape).contiguous()
    spread = torch.zeros_like(center)
    scratch = torch.zeros(batch, outputs, dtype=output.dtype)
    for position in range(len(modules) - 1, start - 1, -1):
        module, state = modules[position], states[position]
        if isinstance(module, PRUNABLE):
            w = weight_in_use(module, position, weights)
            center = backward_affine(module, w, center, state.center.shape, scratch.clone())
            spread = backward_affine(module, w.abs(), spread, state.center.shape, scratch.clone())
        elif isinstance(module, nn.ReLU):
            center, spread = _relu_interval(state, center, spread)
        elif isinstance(module, nn.MaxPool2d):
            center, spread = _maxpool_interval(module, state, center, spread)
        else:
            center = center.reshape(batch, outputs, *state.center.shape[1:])
            spread = spread.reshape(batch, outputs, *state.center.shape[1:])
    return (_spectral_norms(center) + _spectral_norms(spread)).to(output.dtype)


def _spectral_norms(matrices: torch.Tensor) -> torch.Tensor:
    """``||M_b||_2`` of each (outputs x N) matrix, through the small Gram matrix ``M M^T``."""
    flat = matrices.flatten(2).double()
    return torch.linalg.eigvalsh(flat @ flat.transpose(1, 2))[:, -1].clamp_min(0).sqrt()
