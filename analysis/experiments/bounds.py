"""Tightness report: each bound of ``theory`` beside the measured output perturbation.

For every prunable layer and sparsity, hard-threshold the layer (alone, and with every
layer after it) and compute per test sample each bound on ``||f~(x) - f(x)||``, the first
order estimate, the measured perturbation, and the certified accuracy each bound gives.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from pruning import check_sparsity, hard_threshold
from theory import certified_accuracy, layer_bounds, module_lipschitz_constants, multi_layer_bounds

from ..executor import run_cells
from ..models import prunable_layers
from ..training import TrainConfig, dataset_split, train_or_load, with_seed
from .common import swapped_weights

BOUND_ORDER = ("global", "per_sample", "crown", "jacobian_estimate")
ESTIMATES = ("jacobian_estimate",)


@dataclass(frozen=True)
class BoundsConfig:
    networks: tuple[TrainConfig, ...] = field(default_factory=lambda: (TrainConfig(model="lenet5"),))
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    eval_size: int = 256
    onward: bool = True  # also prune each layer together with every layer after it

    def __post_init__(self):
        for s in self.sparsities:
            check_sparsity(s)


def _summaries(bounds: dict[str, torch.Tensor], logits: torch.Tensor, labels: torch.Tensor,
               pruned_accuracy: float) -> list[dict]:
    measured = bounds["measured"]
    positive = measured > 1e-12
    rows = []
    for name in BOUND_ORDER:
        if name not in bounds:
            continue
        values = bounds[name]
        ratio = (values[positive] / measured[positive]).median().item() if positive.any() else float("nan")
        certified = float("nan") if name in ESTIMATES else certified_accuracy(values, logits, labels)
        rows.append({"bound": name, "is_estimate": name in ESTIMATES, "mean_bound": values.mean().item(),
                     "median_ratio": ratio, "violations": int((values < measured * (1 - 1e-6)).sum())
                     if name not in ESTIMATES else 0,
                     "mean_measured": measured.mean().item(), "certified_accuracy": certified,
                     "measured_accuracy": pruned_accuracy})
    return rows


def float64_model(model: torch.nn.Sequential) -> torch.nn.Sequential:
    """A float64 copy, so that the bounds are free of float32 rounding."""
    return copy.deepcopy(model).double().eval()


def bounds_cell(model: torch.nn.Sequential, layer_index: int, config: BoundsConfig, x: torch.Tensor,
                y: torch.Tensor, constants: list[float]) -> list[dict]:
    """Rows for one layer of a float64 ``model``: every sparsity, alone (and onward), every bound.

    ``constants`` are the model's per-module Lipschitz constants (``module_lipschitz_constants``).
    """
    x = x.double()
    layers = prunable_layers(model)
    with torch.no_grad():
        logits = model(x)
    rows = []
    for sparsity in config.sparsities:
        modes = [("alone", [layer_index])]
        if config.onward and layer_index < len(layers) - 1:
            modes.append(("onward", list(range(layer_index, len(layers)))))
        for mode, indices in modes:
            pruned = {i: hard_threshold(layers[i][1].weight.detach(), sparsity) for i in indices}
            if mode == "alone":
                bounds = layer_bounds(model, layer_index, pruned[layer_index], x, lipschitz=constants)
            else:
                bounds = multi_layer_bounds(model, pruned, x)
            with torch.no_grad(), swapped_weights({layers[i][1]: pruned[i] for i in indices}):
                pruned_accuracy = (model(x).argmax(1) == y).double().mean().item()
            for row in _summaries(bounds, logits, y, pruned_accuracy):
                rows.append({"layer": layers[layer_index][0], "remaining_depth": len(layers) - 1 - layer_index,
                             "mode": mode, "sparsity": sparsity, **row})
    return rows


def run_bounds(config: BoundsConfig, cache_dir: Path, device: torch.device, data_dir: Path | None = None,
               download: bool = True, progress: bool = True) -> pd.DataFrame:
    cells, splits = [], {}
    for index, train in enumerate(config.networks):
        splits[index] = dataset_split(train, data_dir, download)
        n_layers = len(prunable_layers(train_or_load(with_seed(train, config.seeds[0]), cache_dir, device,
                                                     split=splits[index], progress=progress).model))
        cells += [{"network": index, "seed": s, "layer_index": k} for s in config.seeds for k in range(n_layers)]

    loaded = {}

    def model_and_constants(network: int, seed: int):
        if (network, seed) not in loaded:
            loaded.clear()
            train = with_seed(config.networks[network], seed)
            trained = train_or_load(train, cache_dir, device, split=splits[network], progress=progress)
            model = float64_model(trained.model)
            shape = tuple(trained.split.x_test.shape[1:])
            loaded[(network, seed)] = (trained, model, module_lipschitz_constants(model, shape))
        return loaded[(network, seed)]

    def compute(cell: dict) -> list[dict]:
        trained, model, constants = model_and_constants(cell["network"], cell["seed"])
        x = trained.split.x_test[:config.eval_size].to(device)
        y = trained.split.y_test[:config.eval_size].to(device)
        rows = bounds_cell(model, cell["layer_index"], config, x, y, constants)
        return [{"model": trained.config.model, "dataset": trained.config.dataset, **row} for row in rows]

    return run_cells(config, cells, compute, cache_dir, description="bounds cells", progress=progress)


def tightness_summary(table: pd.DataFrame, sparsity: float = 0.5) -> pd.DataFrame:
    """Per network and bound: median ratio bound/measured over layers and sparsities (single layer
    pruned), certified accuracy at ``sparsity``, and the Spearman correlation across layers at
    ``sparsity`` between the bound's mean and the measured mean perturbation."""
    alone = table[table["mode"] == "alone"]
    rows = []
    for (model, dataset, bound), part in alone.groupby(["model", "dataset", "bound"], sort=False):
        at = part[np.isclose(part["sparsity"], sparsity)].groupby("layer")[["mean_bound", "mean_measured",
                                                                           "certified_accuracy",
                                                                           "measured_accuracy"]].mean()
        rho = spearmanr(at["mean_bound"], at["mean_measured"]).statistic if len(at) > 2 else float("nan")
        rows.append({"model": model, "dataset": dataset, "bound": bound,
                     "median_ratio": part["median_ratio"].median(), "violations": int(part["violations"].sum()),
                     f"spearman_at_{sparsity:g}": rho,
                     f"min_certified_accuracy_at_{sparsity:g}": at["certified_accuracy"].min(),
                     f"min_measured_accuracy_at_{sparsity:g}": at["measured_accuracy"].min()})
    return pd.DataFrame(rows)
