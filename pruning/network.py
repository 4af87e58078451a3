"""Pruning several layers of a network with any registered method, on captured activations.

Data methods see each layer's inputs over ``samples`` and the ORIGINAL network's
pre-activations. In cascade mode (Net-Trim's, Aghasi et al. 2017) the inputs come from the
network pruned so far; in parallel mode from the original network. The first layer sees
the same data either way, and a method that needs no data gives the same result either way.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .base import PruningError, get_method
from .capture import capture_activations, resolve_layers
from .layers import PRUNABLE_TYPES, followed_by_relu, hidden_layers, prunable_layers
from .masks import apply_mask


@dataclass
class PrunedNetwork:
    """A pruned copy of a network with its masks attached (retraining keeps pruned weights at 0)."""

    model: nn.Module
    masks: dict[str, torch.Tensor]
    infos: dict[str, dict]

    @property
    def pruning_time_s(self) -> float:
        """Wall time of the methods only (not of the activation capture)."""
        return sum(info["wall_time_s"] for info in self.infos.values())


def _check_names(model: nn.Module, layer_names: list[str]) -> None:
    duplicates = sorted({name for name in layer_names if layer_names.count(name) > 1})
    if duplicates:
        raise PruningError(f"layer_names: {', '.join(map(repr, duplicates))} given more than once")
    resolve_layers(model, layer_names)


def prune_network(model: nn.Sequential, layer_names: list[str], method: str, sparsity: float,
                  samples: torch.Tensor | None = None, cascade: bool = True,
                  supports: dict[str, torch.Tensor] | None = None, **options) -> PrunedNetwork:
    """Prune ``layer_names`` of a copy of ``model`` in forward order with ``method``.

    ``options`` go to the method. ``samples`` (a tensor or an iterable of batches) is needed
    by data methods. ``supports`` maps layer names to fixed supports (True = kept): there the
    method's solver runs on that support instead of choosing one (the support/refit ablation).
    ``model`` is a flat Sequential (the relu test looks at the next child).
    """
    layer_names = list(layer_names)
    _check_names(model, layer_names)
    supports = supports or {}
    unknown = sorted(set(supports) - set(layer_names))
    if unknown:
        raise PruningError(f"supports: layer(s) {', '.join(map(repr, unknown))} are not among the layers pruned")
    pruner = get_method(method, **options)
    if pruner.needs_data and samples is None:
        raise PruningError(f"method {method!r} needs samples to capture layer activations")
    order = [name for name, _ in prunable_layers(model)]
    layer_names.sort(key=order.index)
    pruned = copy.deepcopy(model).eval()
    modules = dict(pruned.named_modules())
    original = capture_activations(model, layer_names, samples) if pruner.needs_data else {}
    masks, infos = {}, {}
    for name in layer_names:
        layer = modules[name]
        inputs = outputs = None
        if pruner.needs_data:
            outputs = original[name].outputs
            inputs = (capture_activations(pruned, [name], samples)[name].inputs if cascade
                      else original[name].inputs)
        result = pruner.prune(layer, inputs, outputs, sparsity, relu=followed_by_relu(pruned, name),
                              layer_name=name, mask=supports.get(name))
        with torch.no_grad():
            if result.bias is not None:
                layer.bias.copy_(result.bias)
        apply_mask(layer, result.mask, result.weight)
        masks[name], infos[name] = result.mask, result.info
    return PrunedNetwork(pruned, masks, infos)


def hidden_layer_names(model: nn.Module, types: tuple[type[nn.Module], ...] = PRUNABLE_TYPES) -> list[str]:
    """Names of the prunable layers of the given ``types`` except the output layer."""
    return [name for name, module in hidden_layers(model) if isinstance(module, types)]


def last_hidden_representation(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Post-relu output of the last hidden layer (the input of the output layer)."""
    name, _ = prunable_layers(model)[-1]
    return capture_activations(model, [name], x, batch_size)[name].inputs
