"""The paper's networks as ``nn.Sequential`` of Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout.

Every model is a flat ``nn.Sequential``, so the theory calculators and the pruning
code can walk it layer by layer. ``prunable_layers`` lists the weight layers
(Linear and Conv2d) in order; it is the one place that defines "the depth that
remains after layer k": the number of weight layers after it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

MODEL_NAMES = ("fc", "lenet5", "cnn8")

# Hidden widths of the paper's fully connected nets, per dataset (GUIDE section 3).
PAPER_FC_HIDDEN = {"mnist": (60, 60), "fashion-mnist": (100, 100), "cifar10": (100, 100)}
DEFAULT_FC_HIDDEN = (100, 100)


class ModelError(ValueError):
    """Unknown model name or a model that does not fit the data."""


def fully_connected(input_shape: tuple[int, ...], num_classes: int,
                    hidden: tuple[int, ...] = DEFAULT_FC_HIDDEN, dropout: float = 0.2) -> nn.Sequential:
    """relu MLP with dropout after each hidden layer (e.g. 784-100-100-10)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def lenet5(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """LeNet-5 as in Caffe: conv20(5x5)-pool-conv50(5x5)-pool-fc500-fc10, relu after each conv."""
    channels, height, width = input_shape
    side_h, side_w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * side_h * side_w, 500), nn.ReLU(),
        nn.Linear(500, num_classes),
    )


def cnn8(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """conv32-conv32-pool-conv64-conv64-pool-conv128-conv128-pool-fc1024-fc512-fc10 (3x3, same padding)."""
    channels, height, width = input_shape
    layers: list[nn.Module] = []
    for out in (32, 64, 128):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(out, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, height, width = out, height // 2, width // 2
    layers += [nn.Flatten(), nn.Linear(channels * height * width, 1024), nn.ReLU(),
               nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


_BUILDERS: dict[str, Callable[..., nn.Sequential]] = {
    "fc": fully_connected, "lenet5": lenet5, "cnn8": cnn8,
}


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, seed: int = 0,
                hidden: tuple[int, ...] | None = None) -> nn.Sequential:
    """Build model ``name`` with weights initialised from ``seed``."""
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    if name != "fc" and len(input_shape) != 3:
        raise ModelError(f"model {name!r} needs image inputs (C, H, W), got shape {input_shape}")
    torch.manual_seed(seed)
    if name == "fc":
        model = fully_connected(input_shape, num_classes, tuple(hidden or DEFAULT_FC_HIDDEN))
    else:
        model = _BUILDERS[name](input_shape, num_classes)
    return he_initialise(model)


def he_initialise(model: nn.Module) -> nn.Module:
    """He-normal weights and zero biases: plain deep relu nets (cnn8) barely train from torch's default."""
    for _, layer in prunable_layers(model):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    return model


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear and Conv2d, in forward order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def hidden_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The prunable layers except the output layer."""
    return prunable_layers(model)[:-1]


def remaining_depth(model: nn.Module, layer_index: int) -> int:
    """Number of weight layers after prunable layer ``layer_index``."""
    return len(prunable_layers(model)) - 1 - layer_index


def followed_by_relu(model: nn.Sequential, layer_name: str) -> bool:
    """Whether the module right after ``layer_name`` in the Sequential is a ReLU."""
    names = [n for n, _ in model.named_children()]
    position = names.index(layer_name)
    return position + 1 < len(names) and isinstance(model[position + 1], nn.ReLU)
