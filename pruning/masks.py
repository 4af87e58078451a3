"""Masks that stay enforced while a network is retrained.

Built on ``torch.nn.utils.prune``: the mask lives as the buffer ``weight_mask``,
the trainable tensor as ``weight_orig``, and ``weight = weight_orig * weight_mask``
is recomputed before every forward pass, so gradients never revive a pruned
weight. ``make_permanent`` removes the reparametrisation.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune


def apply_mask(layer: nn.Module, mask: torch.Tensor, weight: torch.Tensor | None = None) -> None:
    """Attach ``mask`` (True = kept) to ``layer.weight``, optionally replacing the weights first."""
    if torch_prune.is_pruned(layer):
        torch_prune.remove(layer, "weight")
    if weight is not None:
        with torch.no_grad():
            layer.weight.copy_(weight)
    torch_prune.custom_from_mask(layer, "weight", mask.to(layer.weight.device))


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every attached mask into the plain ``weight`` parameter."""
    for module in model.modules():
        if torch_prune.is_pruned(module) and hasattr(module, "weight_mask"):
            torch_prune.remove(module, "weight")
    return model


def layer_mask(layer: nn.Module) -> torch.Tensor:
    """The kept-weights mask of ``layer`` (all True when it is not pruned)."""
    if hasattr(layer, "weight_mask"):
        return layer.weight_mask.bool()
    return torch.ones_like(layer.weight, dtype=torch.bool)


def weight_sparsity(layer: nn.Module) -> float:
    """Fraction of exactly-zero entries of the effective weight."""
    return (layer.weight == 0).float().mean().item()
