"""Pruning several layers of a network with any registered method, on captured activations."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from pruning import apply_mask, get_method
from pruning.capture import capture_activations

from .models import followed_by_relu, prunable_layers


@dataclass
class PrunedNetwork:
    model: nn.Sequential  # a copy; masks attached, so retraining keeps pruned weights at zero
    masks: dict[str, torch.Tensor]
    infos: dict[str, dict]

    @property
    def pruning_time_s(self) -> float:
        return sum(info["wall_time_s"] for info in self.infos.values())


def prune_network(model: nn.Sequential, layer_names: list[str], method: str, sparsity: float,
                  samples: torch.Tensor | None = None, cascade: bool = True, **options) -> PrunedNetwork:
    """Prune ``layer_names`` of a copy of ``model`` in forward order with ``method``.

    Data methods see the layer's inputs over ``samples`` and the ORIGINAL network's
    pre-activations; with ``cascade`` the inputs come from the network pruned so far
    (Net-Trim's cascade mode), else from the original network (parallel mode).
    Wall time covers the method only, not the activation capture.
    """
    pruner = get_method(method, **options)
    pruned = copy.deepcopy(model).eval()
    modules = dict(pruned.named_modules())
    masks, infos = {}, {}
    original = None
    if pruner.needs_data:
        original = capture_activations(model, layer_names, samples)
    for name in layer_names:
        layer = modules[name]
        inputs = outputs = None
        if pruner.needs_data:
            outputs = original[name].outputs
            inputs = (capture_activations(pruned, [name], samples)[name].inputs if cascade
                      else original[name].inputs)
        result = pruner.prune(layer, inputs, outputs, sparsity, relu=followed_by_relu(pruned, name),
                              layer_name=name)
        with torch.no_grad():
            if result.bias is not None:
                layer.bias.copy_(result.bias)
        apply_mask(layer, result.mask, result.weight)
        masks[name], infos[name] = result.mask, result.info
    return PrunedNetwork(pruned, masks, infos)


def hidden_linear_names(model: nn.Module) -> list[str]:
    """Names of the Linear layers except the output layer."""
    return [name for name, m in prunable_layers(model)[:-1] if isinstance(m, nn.Linear)]


def last_hidden_representation(model: nn.Sequential, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Post-relu output of the last hidden layer (the input of the output layer)."""
    name, _ = prunable_layers(model)[-1]
    return capture_activations(model, [name], x, batch_size)[name].inputs
