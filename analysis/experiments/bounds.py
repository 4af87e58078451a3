"""Tightness report: each bound of ``theory`` beside the measured output perturbation.

Grid: network x seed x layer x sparsity; one table, ``bounds``.

For every prunable layer and sparsity, hard-threshold the layer (alone, and with every
layer after it) and compute per test sample each bound on ``||f~(x) - f(x)||``, the first
order estimate, the measured perturbation, and the certified accuracy each bound gives.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from pruning import check_sparsity, hard_threshold
from pruning.layers import prunable_layers
from theory import certified_accuracy, layer_bounds, module_lipschitz_constants, multi_layer_bounds

from ..contract import Cell, check_unique
from ..measures import swapped_weights
from ..models import layer_names
from ..networks import trained_network, with_seed
from ..presets import pick, preset_training, sparsity_grid
from ..runtime import Runtime
from ..training import TrainConfig

TABLES = ("bounds",)
BOUND_ORDER = ("batch_max", "per_sample", "crown", "jacobian_estimate")
ESTIMATES = ("jacobian_estimate",)


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("seeds", "sparsities")

    networks: tuple[TrainConfig, ...] = field(default_factory=lambda: (TrainConfig(model="lenet5"),))
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    eval_size: int = 256
    onward: bool = True  # also prune each layer together with every layer after it

    def __post_init__(self):
        for s in self.sparsities:
            check_sparsity(s)
        check_unique("seeds", self.seeds)
        check_unique("sparsities", self.sparsities)


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None) -> Config:
    """LeNet-5 and the 8-layer CNN, the networks of the tightness goal."""
    networks = tuple(preset_training(name, model, dataset) for model in ("lenet5", "cnn8"))
    return pick(name,
                smoke=lambda: Config(networks[:1], seeds or (0,), (0.5, 0.9), eval_size=32, onward=True),
                quick=lambda: Config(networks, seeds or (0,), (0.3, 0.5, 0.7, 0.9), eval_size=128, onward=False),
                paper=lambda: Config(networks, seeds or (0, 1, 2), sparsity_grid(0.1, 0.9), eval_size=1000))


def cells(config: Config) -> list[Cell]:
    return [Cell.make("bounds", config, network=index, seed=seed, layer_index=k, sparsity=sparsity)
            for index, train in enumerate(config.networks) for seed in config.seeds
            for k in range(len(layer_names(train))) for sparsity in config.sparsities]


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


def bounds_rows(model: torch.nn.Sequential, layer_index: int, sparsity: float, onward: bool, x: torch.Tensor,
                y: torch.Tensor, constants: list[float]) -> list[dict]:
    """Rows for one layer of a float64 ``model`` at one sparsity: alone (and onward), every bound.

    ``constants`` are the model's per-module Lipschitz constants (``module_lipschitz_constants``).
    """
    x = x.double()
    layers = prunable_layers(model)
    with torch.no_grad():
        logits = model(x)
    modes = [("alone", [layer_index])]
    if onward and layer_index < len(layers) - 1:
        modes.append(("onward", list(range(layer_index, len(layers)))))
    rows = []
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
                         "mode": mode, **row})
    return rows


_FLOAT64: dict[str, tuple] = {}


def _float64_network(trained) -> tuple[torch.nn.Sequential, list[float]]:
    """The float64 copy of a trained network and its Lipschitz constants, kept for its next cells."""
    if trained.key not in _FLOAT64:
        _FLOAT64.clear()
        model = float64_model(trained.model)
        _FLOAT64[trained.key] = model, module_lipschitz_constants(model, tuple(trained.split.x_test.shape[1:]))
    return _FLOAT64[trained.key]


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    trained = trained_network(with_seed(config.networks[cell["network"]], cell["seed"]), runtime)
    model, constants = _float64_network(trained)
    device = runtime.torch_device()
    x = trained.split.x_test[:config.eval_size].to(device)
    y = trained.split.y_test[:config.eval_size].to(device)
    rows = bounds_rows(model, cell["layer_index"], cell["sparsity"], config.onward, x, y, constants)
    return [{"model": trained.config.model, "dataset": trained.config.data.label, **row} for row in rows]


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"bounds": rows}


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
