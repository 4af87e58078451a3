"""Measurements shared by the experiments: pruned-weight swaps and the output perturbation."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn


@contextmanager
def swapped_weights(weights: Mapping[nn.Module, torch.Tensor]) -> Iterator[None]:
    """Temporarily give each layer the weight tensor mapped to it; restore on exit."""
    saved = {layer: layer.weight.data for layer in weights}
    try:
        for layer, weight in weights.items():
            layer.weight.data = weight
        yield
    finally:
        for layer, weight in saved.items():
            layer.weight.data = weight


def sequential_position(model: nn.Sequential, layer: nn.Module) -> int:
    for position, module in enumerate(model):
        if module is layer:
            return position
    raise ValueError(f"layer {layer} is not a direct child of the model")


def output_metrics(logits: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy, loss and the output perturbation ``||f~(x) - f(x)||_2`` against the unpruned logits."""
    distance = (logits - reference).norm(dim=1)
    return {
        "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        "loss": F.cross_entropy(logits, labels).item(),
        "mean_perturbation": distance.mean().item(),
        "max_perturbation": distance.max().item(),
        "relative_perturbation": (distance / reference.norm(dim=1).clamp_min(1e-12)).mean().item(),
        "changed_fraction": (logits.argmax(1) != reference.argmax(1)).float().mean().item(),
    }
