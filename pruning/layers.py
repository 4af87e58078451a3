"""What "prunable" means, defined once: Linear and Conv2d weight layers, in forward order.

``prunable_layers`` is also the one place that defines "the depth that remains after
layer k": the number of prunable layers after it. ``theory`` and ``analysis`` import
these helpers rather than repeating the type test.
"""
from __future__ import annotations

from torch import nn

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)


def is_prunable(module: nn.Module) -> bool:
    """Whether ``module`` is a weight layer a pruning method can act on (Linear or Conv2d)."""
    return isinstance(module, PRUNABLE_TYPES)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear and Conv2d of ``model``, in forward (registration) order."""
    return [(name, module) for name, module in model.named_modules() if is_prunable(module)]


def hidden_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The prunable layers except the output layer."""
    return prunable_layers(model)[:-1]


def remaining_depth(model: nn.Module, layer_index: int) -> int:
    """Number of prunable layers after prunable layer ``layer_index``."""
    return len(prunable_layers(model)) - 1 - layer_index


def followed_by_relu(model: nn.Sequential, layer_name: str) -> bool:
    """Whether the module right after ``layer_name`` in the flat Sequential ``model`` is a ReLU."""
    names = [name for name, _ in model.named_children()]
    if layer_name not in names:
        raise KeyError(f"{layer_name!r} is not a direct child of the model")
    position = names.index(layer_name)
    return position + 1 < len(names) and isinstance(model[position + 1], nn.ReLU)
