"""The paper's networks as ``nn.Sequential`` of Linear, Conv2d, ReLU, MaxPool2d, Flatten, Dropout.

Every model is a flat ``nn.Sequential``, so the theory calculators and the pruning
code can walk it layer by layer. What "prunable" means, and so "the depth that remains
after layer k", is defined once, in ``pruning.layers``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from pruning.layers import prunable_layers

MODEL_NAMES = ("fc", "lenet5", "cnn8", "cnn8-narrow")

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
    if min(side_h, side_w) < 1:
        raise ModelError(f"lenet5 needs images of at least 16x16 pixels, got {height}x{width}")
    return nn.Sequential(
        nn.Conv2d(channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * side_h * side_w, 500), nn.ReLU(),
        nn.Linear(500, num_classes),
    )


def cnn8(input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, int, int] = (32, 64, 128),
         dense: tuple[int, int] = (1024, 512)) -> nn.Sequential:
    """conv32-conv32-pool-conv64-conv64-pool-conv128-conv128-pool-fc1024-fc512-fc10 (3x3, same padding)."""
    channels, height, width = input_shape
    layers: list[nn.Module] = []
    for out in widths:
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(out, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, height, width = out, height // 2, width // 2
    layers += [nn.Flatten(), nn.Linear(channels * height * width, dense[0]), nn.ReLU(),
               nn.Linear(dense[0], dense[1]), nn.ReLU(), nn.Linear(dense[1], num_classes)]
    return nn.Sequential(*layers)


def cnn8_narrow(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """cnn8 at half width (conv16-16-32-32-64-64, fc512-256): the same 8 hidden layers, a quarter of the
    compute, so that the default run trains it to convergence on 2 CPU cores (about 11 s an epoch on
    Fashion-MNIST against 34 s for cnn8)."""
    return cnn8(input_shape, num_classes, widths=(16, 32, 64), dense=(512, 256))


_BUILDERS: dict[str, Callable[..., nn.Sequential]] = {
    "fc": fully_connected, "lenet5": lenet5, "cnn8": cnn8, "cnn8-narrow": cnn8_narrow,
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


def layer_names(config) -> list[str]:
    """Names of the prunable layers of the network a TrainConfig describes, without data or training.

    The names depend on the architecture only, so a stand-in input shape is used.
    """
    return [name for name, _ in prunable_layers(_stand_in(config))]


def hidden_layer_names(config) -> list[str]:
    """Names of every prunable layer before the output layer (conv included), for a TrainConfig."""
    return layer_names(config)[:-1]


def hidden_linear_names(config) -> list[str]:
    """Names of the fully connected layers before the output layer, for a TrainConfig."""
    return [name for name, m in prunable_layers(_stand_in(config))[:-1] if isinstance(m, nn.Linear)]


def _stand_in(config) -> nn.Sequential:
    """The architecture of ``config``'s network on a stand-in input (layer names do not depend on it)."""
    shape = (784,) if config.model == "fc" else (1, 28, 28)
    return build_model(config.model, shape, 10, hidden=config.hidden)
