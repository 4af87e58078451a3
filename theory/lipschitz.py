"""Lipschitz constants (l2 -> l2) of the modules of a flat Sequential and of its tails.

* Linear / Conv2d: a certified upper bound on the operator norm (``norms.layer_operator_norm``).
* ReLU, Flatten, Dropout (eval), Identity: 1.
* MaxPool2d: ``sqrt(c)`` with ``c`` the largest number of pooling windows that contain
  one input pixel (1 for non-overlapping pooling).

Derivation of the max-pooling constant: ``|max_w x - max_w x'| <= max_{i in w} |x_i - x'_i|
<= ||(x - x')_w||_2`` for every window w, so ``||pool(x) - pool(x')||^2 <= sum_w ||(x - x')_w||^2
= sum_i c_i (x_i - x'_i)^2 <= c ||x - x'||^2`` with ``c_i`` the number of windows holding
pixel i. The constant is attained: from x = 0, raising a pixel that lies in c windows by
t raises all c window maxima by t. Windows are products of per-axis windows, so
``c = c_h * c_w`` with per-axis counts computed exactly for the given input size.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from .errors import TheoryError
from .network import PRUNABLE, check_network, layer_position, module_input_shapes
from .norms import layer_operator_norm


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _axis_window_counts(size: int, kernel: int, stride: int, padding: int, dilation: int) -> list[int]:
    outputs = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    counts = [0] * size
    for o in range(outputs):
        for j in range(kernel):
            i = o * stride - padding + j * dilation
            if 0 <= i < size:
                counts[i] += 1
    return counts


def maxpool_window_multiplicity(kernel_size: int | Sequence[int], stride: int | Sequence[int] | None,
                                padding: int | Sequence[int], dilation: int | Sequence[int],
                                spatial_shape: Sequence[int]) -> int:
    """Largest number of pooling windows containing one input pixel, on an (H, W) input."""
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    if len(spatial_shape) != 2:
        raise TheoryError(f"spatial_shape must be (H, W), got {tuple(spatial_shape)}")
    per_axis = [max(_axis_window_counts(spatial_shape[a], kernel[a], stride[a], padding[a], dilation[a]),
                    default=0) for a in range(2)]
    return per_axis[0] * per_axis[1]


def maxpool_lipschitz(pool: nn.MaxPool2d, input_shape: Sequence[int]) -> float:
    """l2 Lipschitz constant ``sqrt(c)`` of ``pool`` on inputs of shape (C, H, W) or (H, W)."""
    if pool.ceil_mode:
        raise TheoryError("MaxPool2d with ceil_mode=True is unsupported; allowed: ceil_mode=False")
    c = maxpool_window_multiplicity(pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                                    tuple(input_shape)[-2:])
    return math.sqrt(c)


def module_lipschitz_constants(model: nn.Sequential, input_shape: Sequence[int],
                               weights: Mapping[int, torch.Tensor] | None = None) -> list[float]:
    """One Lipschitz constant per module of ``model`` for per-sample inputs of ``input_shape``.

    ``weights`` maps a prunable layer index to a replacement weight (e.g. pruned).
    """
    modules = check_network(model)
    shapes = module_input_shapes(modules, input_shape)
    by_position = {layer_position(modules, i): w for i, w in (weights or {}).items()}
    constants = []
    for position, module in enumerate(modules):
        if isinstance(module, PRUNABLE):
            constants.append(layer_operator_norm(module, shapes[position], by_position.get(position)))
        elif isinstance(module, nn.MaxPool2d):
            constants.append(maxpool_lipschitz(module, shapes[position]))
        else:
            constants.append(1.0)
    return constants


def network_lipschitz(model: nn.Sequential, input_shape: Sequence[int]) -> float:
    """Upper bound on the l2 Lipschitz constant of the whole network: product of module constants."""
    return math.prod(module_lipschitz_constants(model, input_shape))


def tail_lipschitz(model: nn.Sequential, layer_index: int, input_shape: Sequence[int],
                   constants: Sequence[float] | None = None) -> float:
    """Lipschitz bound of the sub-network after prunable layer ``layer_index`` (from its pre-activation).

    ``prod_{modules after layer l} L_module``, i.e. ``prod_{j > l} ||W_j||_2`` times the
    max-pooling constants. ``constants`` (from ``module_lipschitz_constants``) avoids recomputing.
    """
    modules = check_network(model)
    position = layer_position(modules, layer_index)
    constants = module_lipschitz_constants(model, input_shape) if constants is None else constants
    return math.prod(constants[position + 1:])
