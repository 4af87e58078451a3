"""Sound propagation of a perturbation set through the layers after a pruned layer.

The set at a point of the network is a ``BallBox``: the perturbed value ``v~`` satisfies
``lower <= v~ <= upper`` elementwise and ``||v~ - center||_2 <= radius``, where ``center``
is the actual (unpruned) value. Two sound schemes are combined:

* forward ball-box arithmetic (cheap; every layer): affine layers bound the deviation
  ``W (v~ - v)`` by interval arithmetic (IBP) intersected with Cauchy-Schwarz per neuron,
  ``|w_i . d| <= ||w_i restricted to where d can be nonzero||_2 * radius``, and the radius by
  the operator norm; relu and max-pooling are applied to the box ends, the radius is
  multiplied by their Lipschitz constants (1, or sqrt(c) for overlapping pooling);
* CROWN backward bounds (Zhang et al., NeurIPS 2018, arXiv 1811.00866) over the last
  modules of the network, as far back as a FLOP budget allows: relu is relaxed by the
  upper line ``u (x - l) / (u - l)`` and the adaptive lower line ``x`` or ``0``; max-pooling
  by the DeepPoly relaxation (exact when one input's lower bound dominates the others'
  upper bounds, else lower ``x_{argmax l}``, upper the constant ``max u``). The linear
  bound ``a . v~ + b`` is maximised over the region's starting set, box and ball separately
  (``a . c + radius ||a||_2``), keeping the smaller. ReLU/MaxPool inputs inside the region
  whose size fits the budget get their bounds refined by CROWN too, in forward order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .network import PRUNABLE, apply_module

DEFAULT_CROWN_FLOPS_PER_SAMPLE = 2e7
CROWN_MEMORY_BYTES = 2 ** 29  # working memory of one chunk of CROWN specification rows


@dataclass
class BallBox:
    """``lower <= v~ <= upper`` and ``||v~ - center||_2 <= radius`` (per sample; batch first)."""

    center: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    radius: torch.Tensor

    @classmethod
    def ball(cls, center: torch.Tensor, radius: torch.Tensor) -> "BallBox":
        spread = radius.view(-1, *([1] * (center.ndim - 1)))
        return cls(center, center - spread, center + spread, radius)

    def box_radius(self) -> torch.Tensor:
        """l2 norm of the largest elementwise deviation the box allows."""
        deviation = torch.maximum(self.upper - self.center, self.center - self.lower).clamp_min(0)
        return deviation.flatten(1).norm(dim=1)


def weight_in_use(module: nn.Module, position: int, weights: Mapping[int, torch.Tensor]) -> torch.Tensor:
    return weights.get(position, module.weight).detach()


def forward_step(module: nn.Module, position: int, state: BallBox, next_center: torch.Tensor,
                 lipschitz: float, weights: Mapping[int, torch.Tensor]) -> BallBox:
    """The BallBox after ``module`` given the one before it (``next_center`` = actual output)."""
    if isinstance(module, PRUNABLE):
        w = weight_in_use(module, position, weights)
        low_dev, high_dev = state.lower - state.center, state.upper - state.center
        mid = apply_module(module, (low_dev + high_dev) / 2, w, with_bias=False)
        spread = apply_module(module, (high_dev - low_dev) / 2, w.abs(), with_bias=False)
        can_move = (high_dev > low_dev).to(state.center.dtype)
        row_norms = apply_module(module, can_move, w * w, with_bias=False).clamp_min(0).sqrt()
        cauchy = row_norms * state.radius.view(-1, *([1] * (row_norms.ndim - 1)))
        low = torch.maximum(mid - spread, -cauchy)
        high = torch.minimum(mid + spread, cauchy)
        result = BallBox(next_center, next_center + low, next_center + high, state.radius * lipschitz)
    elif isinstance(module, (nn.ReLU, nn.MaxPool2d)):
        result = BallBox(next_center, apply_module(module, state.lower), apply_module(module, state.upper),
                         state.radius * lipschitz)
    else:  # Flatten, Dropout, Identity
        result = BallBox(next_center, apply_module(module, state.lower), apply_module(module, state.upper),
                         state.radius)
    result.radius = torch.minimum(result.radius, result.box_radius())
    return result


def backward_affine(module: nn.Module, w: torch.Tensor, coef: torch.Tensor, in_shape: torch.Size,
                     const: torch.Tensor) -> torch.Tensor:
    """Replace ``coef . (W v + b)`` by ``(W^T coef) . v`` and add ``coef . b`` to ``const`` (in place)."""
    batch, specs = coef.shape[:2]
    bias = None if module.bias is None else module.bias.detach().to(coef.dtype)
    if isinstance(module, nn.Linear):
        if bias is not None:
            const += coef @ bias
        return coef @ w.to(coef.dtype)
    if bias is not None:
        const += (coef.sum(dim=(-2, -1)) * bias).sum(-1)
    out_hw = coef.shape[-2:]
    output_padding = tuple(
        in_shape[-2 + a] - ((out_hw[a] - 1) * module.stride[a] - 2 * module.padding[a]
                            + module.dilation[a] * (w.shape[2 + a] - 1) + 1) for a in range(2))
    flat = coef.reshape(batch * specs, *coef.shape[2:])
    back = F.conv_transpose2d(flat, w.to(coef.dtype), None, module.stride, module.padding, output_padding,
                              module.groups, module.dilation)
    return back.reshape(batch, specs, *in_shape[1:])


def _backward_relu(state: BallBox, coef: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """CROWN relaxation of relu for an UPPER bound of ``coef . relu(v)``."""
    low, high = state.lower.unsqueeze(1), state.upper.unsqueeze(1)
    unstable = (low < 0) & (high > 0)
    gap = torch.where(unstable, high - low, torch.ones_like(high))
    upper_slope = torch.where(unstable, high / gap, (low >= 0).to(coef.dtype))
    upper_intercept = torch.where(unstable, -upper_slope * low, torch.zeros_like(low))
    lower_slope = torch.where(unstable, (high >= -low).to(coef.dtype), (low >= 0).to(coef.dtype))
    positive, negative = coef.clamp_min(0), coef.clamp_max(0)
    const += (positive * upper_intercept).flatten(2).sum(-1)
    return positive * upper_slope + negative * lower_slope


def _backward_maxpool(module: nn.MaxPool2d, state: BallBox, coef: torch.Tensor,
                      const: torch.Tensor) -> torch.Tensor:
    """DeepPoly relaxation of max-pooling for an UPPER bound of ``coef . maxpool(v)``."""
    batch, channels, height, width = state.lower.shape
    kernel, stride = module.kernel_size, module.stride
    padding, dilation = module.padding, module.dilation
    pad = (padding, padding, padding, padding) if isinstance(padding, int) else (
        padding[1], padding[1], padding[0], padding[0])

    def patches(x: torch.Tensor, fill: float) -> torch.Tensor:
        x = F.pad(x, pad, value=fill)
        return F.unfold(x, kernel, dilation=dilation, stride=stride).reshape(x.shape[0], x.shape[1], -1,
                                                                            coef.shape[-2] * coef.shape[-1])

    low_p, high_p = patches(state.lower, -math.inf), patches(state.upper, -math.inf)
    positions = torch.arange(height * width, dtype=coef.dtype).reshape(1, 1, height, width)
    position_p = patches(positions, -1.0)[0, 0].round().long()            # (window taps, windows)
    best_low, chosen = low_p.max(dim=2)                                   # (B, C, windows)
    others_high = high_p.scatter(2, chosen.unsqueeze(2), -math.inf).amax(dim=2)
    dominant = best_low >= others_high
    window_max = high_p.amax(dim=2)
    chosen_position = position_p[chosen, torch.arange(chosen.shape[-1])]  # (B, C, windows)

    coef = coef.flatten(3)
    use_constant = (coef >= 0) & ~dominant.unsqueeze(1)
    const += torch.where(use_constant, coef * window_max.unsqueeze(1), torch.zeros_like(coef)).flatten(2).sum(-1)
    linear = torch.where(use_constant, torch.zeros_like(coef), coef)
    index = chosen_position.unsqueeze(1).expand_as(linear)
    back = torch.zeros(*coef.shape[:3], height * width, dtype=coef.dtype).scatter_add_(3, index, linear)
    return back.reshape(*coef.shape[:3], height, width)


def crown_upper_bound(modules: Sequence[nn.Module], states: Mapping[int, BallBox], start: int, end: int,
                      spec: torch.Tensor, weights: Mapping[int, torch.Tensor]) -> torch.Tensor:
    """Upper bound of ``spec . v_end`` (v_end = output of modules[end - 1]) over ``states[start]``.

    ``spec`` has shape (B, S, *shape of v_end); the result has shape (B, S).
    """
    coef = spec
    const = torch.zeros(spec.shape[:2], dtype=spec.dtype)
    for position in range(end - 1, start - 1, -1):
        module, state = modules[position], states[position]
        if isinstance(module, PRUNABLE):
            coef = backward_affine(module, weight_in_use(module, position, weights), coef, state.center.shape, const)
        elif isinstance(module, nn.ReLU):
            coef = _backward_relu(state, coef, const)
        elif isinstance(module, nn.MaxPool2d):
            coef = _backward_maxpool(module, state, coef, const)
        else:
            coef = coef.reshape(*coef.shape[:2], *state.center.shape[1:])
    first = states[start]
    coef = coef.flatten(2)
    center = first.center.flatten(1).unsqueeze(1)
    over_ball = (coef * center).sum(-1) + first.radius.unsqueeze(1) * coef.norm(dim=-1)
    over_box = (coef.clamp_min(0) * first.upper.flatten(1).unsqueeze(1)
                + coef.clamp_max(0) * first.lower.flatten(1).unsqueeze(1)).sum(-1)
    return const + torch.minimum(over_ball, over_box)


def backward_cost(module: nn.Module, in_shape: Sequence[int], out_shape: Sequence[int]) -> float:
    """Multiply-adds per specification row to pass ``module`` backwards."""
    if isinstance(module, nn.Linear):
        return float(module.in_features * module.out_features)
    if isinstance(module, nn.Conv2d):
        taps = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        return float(math.prod(out_shape) * taps)
    return float(math.prod(in_shape))


def crown_region_start(modules: Sequence[nn.Module], shapes: Sequence[Sequence[int]], first: int,
                       specs: int, flops_per_sample: float) -> int:
    """Earliest module position >= ``first`` such that the backward pass fits the budget."""
    start, spent = len(modules), 0.0
    while start > first:
        cost = specs * backward_cost(modules[start - 1], shapes[start - 1], shapes[start])
        if spent + cost > flops_per_sample and start < len(modules):
            break
        spent += cost
        start -= 1
    return start


def _refine_with_crown(modules: Sequence[nn.Module], states: dict[int, BallBox], region_start: int,
                       position: int, weights: Mapping[int, torch.Tensor]) -> None:
    """Tighten the box at ``position`` by CROWN, one unit vector ``+-e_i`` per specification row.

    The rows are passed in chunks so that the backward coefficients (batch x rows x the largest
    activation on the way) stay within ``CROWN_MEMORY_BYTES``: the result does not depend on the chunking.
    """
    state = states[position]
    batch, size = state.center.shape[0], state.center[0].numel()
    widest = max(states[p].center[0].numel() for p in range(region_start, position + 1))
    itemsize = state.center.element_size()
    rows = max(1, CROWN_MEMORY_BYTES // (4 * batch * widest * itemsize))  # coef, its clamps and a product
    upper, lower = torch.empty(batch, size, dtype=state.center.dtype), torch.empty(batch, size, dtype=state.center.dtype)
    for begin in range(0, size, rows):
        end = min(begin + rows, size)
        eye = torch.zeros(end - begin, size, dtype=state.center.dtype)
        eye[torch.arange(end - begin), torch.arange(begin, end)] = 1.0
        eye = eye.reshape(end - begin, *state.center.shape[1:])
        spec = torch.cat([eye, -eye]).unsqueeze(0).expand(batch, *([-1] * eye.ndim))
        bounds = crown_upper_bound(modules, states, region_start, position, spec, weights)
        upper[:, begin:end], lower[:, begin:end] = bounds[:, :end - begin], -bounds[:, end - begin:]
    upper, lower = upper.reshape(state.center.shape), lower.reshape(state.center.shape)
    state.upper = torch.minimum(state.upper, upper)
    state.lower = torch.maximum(state.lower, torch.minimum(lower, state.upper))
    state.radius = torch.minimum(state.radius, state.box_radius())


def propagate(modules: Sequence[nn.Module], first: int, actual: Sequence[torch.Tensor], radius: torch.Tensor,
              lipschitz: Sequence[float], weights: Mapping[int, torch.Tensor] | None = None,
              flops_per_sample: float = DEFAULT_CROWN_FLOPS_PER_SAMPLE) -> tuple[dict[int, BallBox], int]:
    """Bound the network output when the input of module ``first`` moves by at most ``radius`` (l2).

    ``actual[i]`` is the unperturbed input of module i (``actual[-1]`` the output). Returns the
    BallBox at every position >= ``first`` (``states[len(modules)]`` is the output, its box from
    CROWN where affordable) and the position where CROWN starts (``len(modules)`` if none).
    """
    weights = weights or {}
    shapes = [tuple(a.shape[1:]) for a in actual]
    outputs = shapes[-1][0] if len(shapes[-1]) == 1 else math.prod(shapes[-1])
    region_start = crown_region_start(modules, shapes, first, 2 * outputs, flops_per_sample)
    suffix_cost = [0.0] * (len(modules) + 1)
    for position in range(first, len(modules)):
        suffix_cost[position + 1] = suffix_cost[position] + backward_cost(modules[position], shapes[position],
                                                                         shapes[position + 1])
    states = {first: BallBox.ball(actual[first], radius)}
    for position in range(first, len(modules)):
        states[position + 1] = forward_step(modules[position], position, states[position], actual[position + 1],
                                            lipschitz[position], weights)
        nxt = position + 1
        if nxt < len(modules) and isinstance(modules[nxt], (nn.ReLU, nn.MaxPool2d)) and nxt > region_start:
            size = math.prod(shapes[nxt])
            if 2 * size * (suffix_cost[nxt] - suffix_cost[region_start]) <= flops_per_sample:
                _refine_with_crown(modules, states, region_start, nxt, weights)
    if region_start < len(modules):
        _refine_with_crown(modules, states, region_start, len(modules), weights)
    return states, region_start
