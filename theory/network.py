"""Walk a flat ``nn.Sequential`` module by module, with optional replaced weights.

"Layer l" is an index into the prunable layers (Linear and Conv2d, in forward order).
Dropout and Identity are treated as the identity (the network in eval mode); the
functions here never touch the model's parameters or its ``training`` flag.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pruning.layers import PRUNABLE_TYPES as PRUNABLE

from .errors import TheoryError

SUPPORTED = (nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)


def check_network(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` in order, after checking every one is supported.

    Also rejects a Linear that would receive a 4-D activation (a Conv2d or MaxPool2d before it
    with no Flatten in between) and NaN or infinite parameters, naming the module.
    """
    if not isinstance(model, nn.Sequential):
        raise TheoryError(f"model must be a flat nn.Sequential, got {type(model).__name__}")
    modules = list(model)
    allowed = ", ".join(t.__name__ for t in SUPPORTED)
    spatial = False  # whether the activation reaching this module is (N, C, H, W)
    for position, module in enumerate(modules):
        where = f"module {position} ({type(module).__name__})"
        for name, parameter in module.named_parameters():
            if not torch.isfinite(parameter).all():
                raise TheoryError(f"{where}: {name} contains NaN or infinite values")
        if isinstance(module, nn.Linear) and spatial:
            raise TheoryError(f"{where}: Linear applied to a 4-D (N, C, H, W) activation; put a Flatten "
                              f"before it")
        spatial = isinstance(module, (nn.Conv2d, nn.MaxPool2d)) or (spatial and not isinstance(module, nn.Flatten))
        if not isinstance(module, SUPPORTED):
            raise TheoryError(f"{where}: unsupported layer type; allowed: {allowed}")
        if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
            raise TheoryError(f"{where}: padding_mode {module.padding_mode!r} unsupported; allowed: 'zeros'")
        if isinstance(module, nn.Conv2d) and isinstance(module.padding, str):
            raise TheoryError(f"{where}: string padding {module.padding!r} unsupported; give integers")
        if isinstance(module, nn.MaxPool2d) and module.ceil_mode:
            raise TheoryError(f"{where}: ceil_mode=True unsupported; allowed: ceil_mode=False")
        if isinstance(module, nn.Flatten) and (module.start_dim, module.end_dim) != (1, -1):
            raise TheoryError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
    return modules


def prunable_positions(modules: Sequence[nn.Module]) -> list[int]:
    """Positions (in the Sequential) of the Linear and Conv2d modules."""
    return [i for i, m in enumerate(modules) if isinstance(m, PRUNABLE)]


def layer_position(modules: Sequence[nn.Module], layer_index: int) -> int:
    """Position in the Sequential of prunable layer ``layer_index``."""
    positions = prunable_positions(modules)
    if isinstance(layer_index, bool) or not isinstance(layer_index, int) or not 0 <= layer_index < len(positions):
        raise TheoryError(f"layer_index must be an int in [0, {len(positions) - 1}], got {layer_index!r}")
    return positions[layer_index]


def check_pruned_weight(module: nn.Module, weight: torch.Tensor, layer_index: int) -> torch.Tensor:
    """Return ``weight`` after checking it has the shape of ``module.weight`` and is finite."""
    if not isinstance(weight, torch.Tensor):
        raise TheoryError(f"pruned weight of layer {layer_index} must be a tensor, got {type(weight).__name__}")
    if tuple(weight.shape) != tuple(module.weight.shape):
        raise TheoryError(f"pruned weight of layer {layer_index} ({type(module).__name__}) has shape "
                          f"{tuple(weight.shape)}, expected {tuple(module.weight.shape)}")
    if not torch.isfinite(weight).all():
        raise TheoryError(f"pruned weight of layer {layer_index} contains NaN or infinite values")
    return weight.detach()


def pruned_by_position(modules: Sequence[nn.Module],
                       pruned: Mapping[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Map {layer_index: weight} to {position in Sequential: checked weight}."""
    if len(pruned) == 0:
        raise TheoryError("pruned must name at least one layer")
    out = {}
    for index, weight in pruned.items():
        position = layer_position(modules, index)
        out[position] = check_pruned_weight(modules[position], weight, index)
    return out


def apply_module(module: nn.Module, x: torch.Tensor, weight: torch.Tensor | None = None,
                 with_bias: bool = True) -> torch.Tensor:
    """Forward of one module in eval mode, with ``weight`` replacing its own if given."""
    if isinstance(module, PRUNABLE):
        w = (module.weight if weight is None else weight).to(x.dtype)
        b = module.bias.to(x.dtype) if (with_bias and module.bias is not None) else None
        if isinstance(module, nn.Linear):
            return F.linear(x, w, b)
        return F.conv2d(x, w, b, module.stride, module.padding, module.dilation, module.groups)
    if isinstance(module, nn.ReLU):
        return torch.relu(x)
    if isinstance(module, nn.MaxPool2d):
        return F.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation)
    if isinstance(module, nn.Flatten):
        return x.flatten(1)
    return x  # Dropout (eval) and Identity


def check_inputs(modules: Sequence[nn.Module], inputs: torch.Tensor) -> torch.Tensor:
    """Check ``inputs`` is a finite batch the first module accepts; return it detached."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 2 or inputs.shape[0] == 0:
        raise TheoryError("inputs must be a non-empty batch tensor (N, ...)")
    if not inputs.is_floating_point() or not torch.isfinite(inputs).all():
        raise TheoryError("inputs must be finite floating point values")
    first = next((m for m in modules if isinstance(m, PRUNABLE)), None)
    if isinstance(first, nn.Conv2d) and modules.index(first) == 0 and (
            inputs.ndim != 4 or inputs.shape[1] != first.in_channels):
        raise TheoryError(f"inputs of shape {tuple(inputs.shape)} do not match Conv2d with "
                          f"in_channels={first.in_channels} (expected (N, {first.in_channels}, H, W))")
    return inputs.detach()


def forward_all(modules: Sequence[nn.Module], inputs: torch.Tensor,
                weights: Mapping[int, torch.Tensor] | None = None) -> list[torch.Tensor]:
    """acts[i] = input of module i; acts[-1] = network output. ``weights`` maps position -> weight."""
    weights = weights or {}
    acts = [inputs]
    with torch.no_grad():
        for position, module in enumerate(modules):
            if isinstance(module, nn.Linear) and acts[-1].ndim != 2:
                raise TheoryError(f"module {position} (Linear) receives a {acts[-1].ndim}-D activation of shape "
                                  f"{tuple(acts[-1].shape)}; expected (N, {module.in_features})")
            try:
                acts.append(apply_module(module, acts[-1], weights.get(position)))
            except RuntimeError as error:
                raise TheoryError(f"module {position} ({type(module).__name__}) rejects its input of "
                                  f"shape {tuple(acts[-1].shape)}: {str(error).splitlines()[0]}") from error
    return acts


def run_from(modules: Sequence[nn.Module], start: int, x: torch.Tensor,
             weights: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Apply modules[start:] to ``x`` (differentiable; used by jvp)."""
    weights = weights or {}
    for position in range(start, len(modules)):
        x = apply_module(modules[position], x, weights.get(position))
    return x


def module_input_shapes(modules: Sequence[nn.Module], input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Per-sample input shape of every module (and of the output, last), traced with zeros."""
    acts = forward_all(modules, torch.zeros(1, *input_shape))
    return [tuple(a.shape[1:]) for a in acts]
