"""Bounds and estimates of the output change ``||f~(x) - f(x)||_2`` caused by pruning.

Pruning layer l replaces ``W_l`` by ``W~_l``; with residual ``R_l = W_l - W~_l`` its
pre-activation changes by exactly ``-R_l h_{l-1}(x)`` (GUIDE section 2). From loosest to
tightest, for one pruned layer:

* 'batch_max':  ``||R||_2 max_x ||h_{l-1}(x)|| prod_{j>l} L_j``, the max over the BATCH passed in
  (a bound for every input whose ``||h_{l-1}||`` is at most the batch's largest; not a bound
  over the input domain)
* 'per_sample': ``||R h_{l-1}(x)|| prod_{j>l} L_j``
* 'crown':      the l2 ball of radius ``||R h_{l-1}(x)||`` around the actual pre-activation
  pushed through the rest of the network (``tight_bound``): ball-box arithmetic, CROWN
  output intervals [L, U] giving ``||max(U - f, f - L)||_2``, and an interval-Jacobian local
  Lipschitz bound; the smallest of these (and of 'per_sample').

``L_j`` are the module Lipschitz constants (certified upper bounds on the operator norms of
the later Linear/Conv2d layers, 1 for relu, sqrt(c) for max-pooling). 'jacobian_estimate' is the first-order
ESTIMATE ``||J(x) R h_{l-1}(x)||``, not a bound.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.func import jvp

from .errors import TheoryError
from .jacobian_interval import interval_jacobian_norm
from .lipschitz import module_lipschitz_constants
from .norms import layer_operator_norm
from .network import (apply_module, check_inputs, check_network, forward_all, layer_position,
                      module_input_shapes, pruned_by_position, run_from)
from .propagation import DEFAULT_CROWN_FLOPS_PER_SAMPLE, propagate


def _setup(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor):
    modules = check_network(model)
    inputs = check_inputs(modules, inputs)
    weights = pruned_by_position(modules, pruned)
    return modules, inputs, weights, forward_all(modules, inputs)


def measured_perturbation(model: nn.Sequential, pruned: Mapping[int, torch.Tensor],
                          inputs: torch.Tensor) -> torch.Tensor:
    """``||f~(x) - f(x)||_2`` per sample; ``pruned`` maps layer index -> new weight (model untouched)."""
    modules, _, weights, actual = _setup(model, pruned, inputs)
    return _measured(modules, actual, weights)


def _measured(modules: Sequence[nn.Module], actual: Sequence[torch.Tensor],
              weights: Mapping[int, torch.Tensor]) -> torch.Tensor:
    first = min(weights)  # everything before the first pruned layer is unchanged: start there
    with torch.no_grad():
        perturbed = run_from(modules, first, actual[first], weights)
    return (perturbed - actual[-1]).flatten(1).norm(dim=1)


def _residual_output(module: nn.Module, new_weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    residual = module.weight.detach().to(x.dtype) - new_weight.to(x.dtype)
    return apply_module(module, x, residual, with_bias=False)


def recursive_bound(modules: Sequence[nn.Module], actual: Sequence[torch.Tensor],
                    weights: Mapping[int, torch.Tensor], lipschitz: Sequence[float],
                    residual_norms: Mapping[int, float] | None = None) -> torch.Tensor:
    """Layer-by-layer bound on ``||f~(x) - f(x)||`` for pruned layers at positions ``weights``.

    Recursion over modules (``D`` bounds the deviation of the current value):
    at a Linear/Conv2d ``D <- L~ D + e`` with ``L~`` the operator norm of the weight in use
    (pruned or not: ``lipschitz`` must hold the norms of the pruned weights) and ``e`` the
    norm of ``R h(x)`` if the layer is pruned (0 otherwise); elsewhere ``D <- L D``. This uses
    ``W~ h~ - W h = W~ (h~ - h) - R h`` (biases cancel). Per sample, ``e = ||R h(x)||``;
    over the batch (``residual_norms`` given), ``e = ||R||_2 max_x ||h(x)||``, the bias-aware form of
    the recursion in the proof of Neyshabur et al. 2018 (arXiv 1707.09564), Lemma 2.
    """
    batch = actual[0].shape[0]
    bound = torch.zeros(batch, dtype=actual[0].dtype)
    for position, module in enumerate(modules):
        bound = bound * lipschitz[position]
        if position in weights:
            x = actual[position]
            if residual_norms is None:
                bound = bound + _residual_output(module, weights[position], x).flatten(1).norm(dim=1)
            else:
                bound = bound + residual_norms[position] * x.flatten(1).norm(dim=1).max()
    return bound


def neyshabur_lemma2_bound(weight_norms: Sequence[float], perturbation_norms: Sequence[float],
                           input_norm: float) -> float:
    """Neyshabur et al. 2018 (arXiv 1707.09564), Lemma 2, for bias-free relu nets of depth d:

    if ``||U_i||_2 <= ||W_i||_2 / d`` for all i, then
    ``|f_{W+U}(x) - f_W(x)|_2 <= e B prod_i ||W_i||_2 sum_i ||U_i||_2 / ||W_i||_2`` with ``||x|| <= B``.
    """
    depth = len(weight_norms)
    if depth == 0 or len(perturbation_norms) != depth:
        raise TheoryError(f"weight_norms and perturbation_norms must have the same length >= 1, got "
                          f"{len(weight_norms)} and {len(perturbation_norms)}")
    if not (math.isfinite(input_norm) and input_norm >= 0):
        raise TheoryError(f"input_norm must be finite and >= 0, got {input_norm!r}")
    for i, (w, u) in enumerate(zip(weight_norms, perturbation_norms)):
        if not (math.isfinite(w) and w > 0 and math.isfinite(u) and u >= 0):
            raise TheoryError(f"layer {i}: weight norm must be finite > 0 and perturbation norm finite >= 0, "
                              f"got {w!r} and {u!r}")
        if u > w / depth:
            raise TheoryError(f"layer {i}: Lemma 2 needs ||U|| <= ||W|| / d = {w / depth:.4g}, got ||U|| = {u:.4g}")
    product = torch.tensor(weight_norms, dtype=torch.float64).prod().item()
    ratio_sum = sum(u / w for w, u in zip(weight_norms, perturbation_norms))
    return float(torch.e * input_norm * product * ratio_sum)


def jacobian_estimate(model: nn.Sequential, pruned: Mapping[int, torch.Tensor],
                      inputs: torch.Tensor) -> torch.Tensor:
    """First-order ESTIMATE (not a bound) ``||d/dt f(W - t R)|_{t=0}||`` per sample.

    For one pruned layer this is ``||J_{l->L}(x) R h_{l-1}(x)||`` with ``J_{l->L}`` the Jacobian
    of the network output with respect to layer l's pre-activation (torch.func.jvp).
    """
    modules, _, weights, actual = _setup(model, pruned, inputs)
    return _jacobian_estimate(modules, actual, weights)


def _jacobian_estimate(modules: Sequence[nn.Module], actual: Sequence[torch.Tensor],
                       weights: Mapping[int, torch.Tensor]) -> torch.Tensor:
    positions = sorted(weights)
    dtype = actual[0].dtype
    originals = tuple(modules[p].weight.detach().to(dtype) for p in positions)
    tangents = tuple(weights[p].to(dtype) - w for p, w in zip(positions, originals))

    def network(*layer_weights: torch.Tensor) -> torch.Tensor:
        return run_from(modules, positions[0], actual[positions[0]], dict(zip(positions, layer_weights)))

    with torch.no_grad():
        _, change = jvp(network, originals, tangents)
    return change.flatten(1).norm(dim=1)


def checked_lipschitz(lipschitz: Sequence[float], modules: Sequence[nn.Module]) -> list[float]:
    """``lipschitz`` as a list after checking it has one finite constant > 0 per module."""
    constants = list(lipschitz)
    if len(constants) != len(modules):
        raise TheoryError(f"lipschitz must hold one constant per module ({len(modules)}), got {len(constants)}")
    for position, value in enumerate(constants):
        try:
            constants[position] = float(value)
        except (TypeError, ValueError):
            constants[position] = math.nan
        if not (math.isfinite(constants[position]) and constants[position] > 0):
            raise TheoryError(f"lipschitz[{position}] ({type(modules[position]).__name__}) must be a finite "
                              f"number > 0, got {value!r}")
    return constants


def lipschitz_with_pruned(model: nn.Sequential, modules: Sequence[nn.Module], input_shape: Sequence[int],
                          weights: Mapping[int, torch.Tensor],
                          lipschitz: Sequence[float] | None = None) -> list[float]:
    """Module Lipschitz constants with the certified norms of the weights in use at the pruned positions.

    ``lipschitz`` (the unpruned network's, from ``module_lipschitz_constants``) skips recomputing
    the other modules; the pruned positions (``weights``: position -> weight) are always recomputed.
    """
    if lipschitz is None:
        constants = module_lipschitz_constants(model, input_shape)
    else:
        constants = checked_lipschitz(lipschitz, modules)
    shapes = module_input_shapes(modules, input_shape)
    for position, weight in weights.items():
        constants[position] = layer_operator_norm(modules[position], shapes[position], weight)
    return constants


def tight_bound(modules: Sequence[nn.Module], first: int, actual: Sequence[torch.Tensor], radius: torch.Tensor,
                lipschitz: Sequence[float], flops_per_sample: float = DEFAULT_CROWN_FLOPS_PER_SAMPLE,
                weights: Mapping[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Sound per-sample bound on the output change when the input of module ``first`` moves
    anywhere in the l2 ball of ``radius`` around its actual value: the smallest of

    * the l2 norm of the output deviation box (CROWN over the affordable tail, ball-box before);
    * the propagated l2 radius (Lipschitz constants, capped by the boxes);
    * ``(||J_c||_2 + ||J_r||_2) * radius_m`` from the interval Jacobian of the CROWN region,
      which starts at m (``jacobian_interval``).
    """
    states, region_start = propagate(modules, first, actual, radius, lipschitz, weights, flops_per_sample)
    output = states[len(modules)]
    deviation = torch.maximum(output.upper - output.center, output.center - output.lower).clamp_min(0)
    bound = torch.minimum(deviation.flatten(1).norm(dim=1), output.radius)
    if region_start < len(modules):
        local = interval_jacobian_norm(modules, states, region_start, weights) * states[region_start].radius
        bound = torch.minimum(bound, local)
    return bound


def layer_bounds(model: nn.Sequential, layer_index: int, pruned_weight: torch.Tensor, inputs: torch.Tensor,
                 *, lipschitz: Sequence[float] | None = None,
                 crown_flops_per_sample: float = DEFAULT_CROWN_FLOPS_PER_SAMPLE) -> dict[str, torch.Tensor]:
    """All per-sample bounds for pruning ONE layer, plus the estimate and the measured change.

    Returns tensors of shape (N,) under 'batch_max' >= 'per_sample' >= 'crown' >= 'measured' and
    'jacobian_estimate' (an estimate). ``lipschitz`` (from ``module_lipschitz_constants``, one
    finite constant > 0 per module) may be passed to skip recomputing the norms; the pruned
    layer's own entry is not used. Inputs in float64 give bounds free of float32 rounding.
    """
    modules, inputs, weights, actual = _setup(model, {layer_index: pruned_weight}, inputs)
    position = layer_position(modules, layer_index)
    constants = (module_lipschitz_constants(model, tuple(inputs.shape[1:])) if lipschitz is None
                 else checked_lipschitz(lipschitz, modules))
    residual = modules[position].weight.detach() - weights[position]
    residual_norm = layer_operator_norm(modules[position], tuple(actual[position].shape[1:]), residual)
    per_sample = recursive_bound(modules, actual, weights, constants)
    batch_max = recursive_bound(modules, actual, weights, constants, {position: residual_norm})
    radius = _residual_output(modules[position], weights[position], actual[position]).flatten(1).norm(dim=1)
    crown = tight_bound(modules, position + 1, actual, radius, constants, crown_flops_per_sample)
    return {"batch_max": batch_max, "per_sample": per_sample, "crown": torch.minimum(crown, per_sample),
            "jacobian_estimate": _jacobian_estimate(modules, actual, weights),
            "measured": _measured(modules, actual, weights)}


def multi_layer_bounds(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                       *, lipschitz: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """Bounds for several layers pruned at once (``pruned``: layer index -> new weight).

    'batch_max' and 'per_sample' follow ``recursive_bound`` (Neyshabur et al. 2018, Lemma 2's
    recursion) with the certified norms of the PRUNED weights at the pruned layers, which this
    function always computes itself; ``lipschitz`` (the unpruned network's constants, one per
    module) only saves recomputing the other modules. Also 'jacobian_estimate' and 'measured'.
    """
    modules, inputs, weights, actual = _setup(model, pruned, inputs)
    constants = lipschitz_with_pruned(model, modules, tuple(inputs.shape[1:]), weights, lipschitz)
    residual_norms = {p: layer_operator_norm(modules[p], tuple(actual[p].shape[1:]),
                                             modules[p].weight.detach() - w) for p, w in weights.items()}
    return {"batch_max": recursive_bound(modules, actual, weights, constants, residual_norms),
            "per_sample": recursive_bound(modules, actual, weights, constants),
            "jacobian_estimate": _jacobian_estimate(modules, actual, weights),
            "measured": _measured(modules, actual, weights)}
