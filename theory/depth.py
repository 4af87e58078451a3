"""Output perturbation against the depth that remains after the pruned layer, as one table.

The paper's claim 3: hard-thresholding damage grows with the remaining depth. For every
prunable layer k, ``depth_profile`` prunes layer k alone, or layer k with every layer after
it (``onward``, the claim's setting), and splits the sound bound into three factors:

    per_sample_bound = residual x gain x looseness,     measured = residual x gain

* ``residual``: mean over the inputs of ``r(x) = sum_{j pruned} ||R_j h_{j-1}(x)||``, the size of
  the pre-activation changes injected by pruning (``h`` the UNPRUNED activations; one term when
  alone). It is exactly what the recursion of ``perturbation.recursive_bound`` injects.
* ``gain = measured / residual``: the exact amplification along the path.
* ``looseness = per_sample_bound / measured``.

Also ``tail_lipschitz`` ``T_k``, the product of the certified module constants after layer k
(the norms of the pruned weights at pruned layers), and ``bound_gain = per_sample_bound /
residual``: equal to ``T_k`` when alone; onward it is the residual-weighted mean of the
``T_j`` of the pruned layers (``bound = sum_j ||R_j h_{j-1}|| T_j``). All means are over the
inputs and ratios are ratios of means, so the products hold exactly for the table's columns.
"""
from __future__ import annotations

import math
from typing import Callable

import pandas as pd
import torch
from torch import nn

from pruning.layers import remaining_depth

from .errors import TheoryError
from .lipschitz import module_lipschitz_constants
from .network import check_inputs, check_network, check_pruned_weight, forward_all, prunable_positions
from .norms import layer_operator_norm
from .perturbation import _jacobian_estimate, _measured, _residual_output, recursive_bound

MODES = ("alone", "onward")
Pruner = Callable[[torch.Tensor, float], torch.Tensor]


def _check_sparsity(sparsity: float) -> float:
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise TheoryError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    return value


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def depth_profile(model: nn.Sequential, inputs: torch.Tensor, prune: Pruner, sparsity: float,
                  mode: str = "alone") -> pd.DataFrame:
    """One row per prunable layer k: the measured change, the estimate and the bound, split into factors.

    ``prune(weight, sparsity) -> pruned weight`` (e.g. ``pruning.hard_threshold``) is applied to
    layer k (``mode="alone"``) or to layers k, k+1, ..., L together (``mode="onward"``). Columns:
    layer, name, mode, sparsity, remaining_depth, layers_pruned, measured (mean of
    ``||f~(x) - f(x)||_2``), jacobian_estimate (mean first-order ESTIMATE, not a bound),
    per_sample_bound (mean of the sound ``recursive_bound``), residual, gain, looseness,
    tail_lipschitz, bound_gain (module docstring). Pure: the model is not modified. Inputs in
    float64 give bounds free of float32 rounding.
    """
    if mode not in MODES:
        raise TheoryError(f"mode must be one of {MODES}, got {mode!r}")
    sparsity = _check_sparsity(sparsity)
    modules = check_network(model)
    inputs = check_inputs(modules, inputs)
    positions = prunable_positions(modules)
    pruned = {p: check_pruned_weight(modules[p], prune(modules[p].weight.detach(), sparsity), index)
              for index, p in enumerate(positions)}
    actual = forward_all(modules, inputs)
    unpruned = module_lipschitz_constants(model, tuple(inputs.shape[1:]))
    pruned_norms = {p: layer_operator_norm(modules[p], tuple(actual[p].shape[1:]), w) for p, w in pruned.items()}
    names = [name for name, _ in model.named_children()]
    rows = []
    for index, position in enumerate(positions):
        in_play = [position] if mode == "alone" else positions[index:]
        weights = {p: pruned[p] for p in in_play}
        constants = [pruned_norms[p] if p in weights else c for p, c in enumerate(unpruned)]
        residual = sum(_residual_output(modules[p], w, actual[p]).flatten(1).norm(dim=1) for p, w in weights.items())
        measured = float(_measured(modules, actual, weights).mean())
        bound = float(recursive_bound(modules, actual, weights, constants).mean())
        size = float(residual.mean())
        rows.append({"layer": index, "name": names[position], "mode": mode, "sparsity": sparsity,
                     "remaining_depth": remaining_depth(model, index), "layers_pruned": len(in_play),
                     "measured": measured,
                     "jacobian_estimate": float(_jacobian_estimate(modules, actual, weights).mean()),
                     "per_sample_bound": bound, "residual": size, "gain": _ratio(measured, size),
                     "looseness": _ratio(bound, measured), "tail_lipschitz": math.prod(constants[position + 1:]),
                     "bound_gain": _ratio(bound, size)})
    return pd.DataFrame(rows)
