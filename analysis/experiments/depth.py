"""Claim 3: hard thresholding costs more the more depth remains after the pruned layer.

For every hidden layer k and sparsity s, prune (a) layer k alone and (b) layers k..last hidden
together ("onward", each layer its own threshold), and measure the test accuracy, loss and output
perturbation against the unpruned network, over several seeds (GUIDE section 3, the depth design).

Methods: thresholding (``threshold``) runs on the whole sparsity grid, any other registered method
(FeTa, L-OBS, ... which prune conv layers as linear maps on their unfolded input patches,
``pruning.layerdata``) only at the claim-3 sparsities (70/80/90/95%), through
``pruning.prune_network`` on ``prune_samples`` training images, layers in forward order (cascade:
each layer sees the inputs of the network pruned so far). The first layer an onward prune handles
sees the same data as the alone prune, so "layer k alone" is the onward network's layer k put back
into the unpruned one (the same result without solving layer k twice; a test checks it).

Grid: seed x method x layer x sparsity. Tables: ``depth`` (thresholding on its whole grid, one row
per cell and mode), ``depth_methods`` (every method at the claim-3 sparsities, one row per seed and
mode; thresholding's rows where its grid holds those sparsities) and ``depth_claim3`` (those rows
summarised over seeds: mean and 95% Student-t interval).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from pruning import apply_mask, available_methods, check_sparsity, hard_threshold, prune_network
from pruning.layers import hidden_layers, prunable_layers

from ..contract import METHODS_OPTION, Cell, check_unique, method_subset
from ..designs import CLAIM3_SPARSITIES
from ..errors import WorkbenchError
from ..measures import output_metrics, sequential_position, swapped_weights
from ..models import MODEL_NAMES, layer_names
from ..networks import derived, trained_network, training_record, with_seed
from ..presets import pick, preset_training, sparsity_grid
from ..runtime import Runtime
from ..statistics import mean_interval
from ..training import TrainConfig, predict

MODES = ("alone", "onward")
TABLES = ("depth", "depth_methods", "depth_claim3")
OPTIONS = (("--model", dict(default="cnn8", choices=MODEL_NAMES, help="network to prune")), METHODS_OPTION)
SMART_METHODS = ("feta", "lobs")
# Training images the data methods see per cell. A Linear layer gets one row per image; a conv layer
# unfolds every image's patches and keeps PATCH_ROWS (50,000) of them, drawn without replacement
# (pruning.layerdata). Patch sampling cost, measured on cnn8-narrow, 1,000 Fashion-MNIST images, one
# core: capturing every hidden layer's inputs and outputs 0.5 s CPU, unfolding and sampling the
# patches 0.06-0.6 s CPU per conv layer (under a second for all six).
PRUNE_SAMPLES = 1000
# Solver options per preset. Every solver runs to its tolerance; each row records whether it converged.
# Measured (one core, quick preset, 1,000 images, 90%): FeTa on cnn8-narrow's last two conv layers
# 9 s and 11 s, on fc 576->512 16 s, on fc 512->256 2 s. Smoke keeps L-OBS on fewer conv patches.
SOLVER_OPTIONS = {
    "smoke": {"lobs": {"patch_rows": 5000}},
    "quick": {},
    "paper": {},
}
# 1: thresholded weights were memoised by id(); a reloaded network could get another layer's.
# 2: FeTa's Newton steps sweep coordinates in another order (RowGrams keeps holes): its results
#    move within the solver's tolerance.
REVISION = 2
# feta 1: lam is searched until FeTa's own solution has the target's non-zeros (methods.py).
COORDINATE_REVISIONS = {"method": {"feta": 1}}
SUMMARY_KEYS = ("dataset", "model", "method", "layer", "layer_index", "remaining_depth", "mode",
                "layers_pruned", "sparsity")


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("seeds", "sparsities", "methods", "claim_sparsities")

    train: TrainConfig = field(default_factory=lambda: TrainConfig(model="cnn8"))
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = sparsity_grid()  # thresholding's grid
    eval_size: int | None = None  # test samples used (None = the whole test set)
    include_output_layer: bool = False
    methods: tuple[str, ...] = ("threshold",)
    claim_sparsities: tuple[float, ...] = CLAIM3_SPARSITIES  # the data methods' grid; depth_claim3's
    prune_samples: int | None = PRUNE_SAMPLES  # training images the data methods see (None = all)
    method_options: dict = field(default_factory=dict)  # method name -> constructor options
    cascade: bool = True  # onward: each layer sees the inputs of the network pruned so far

    def __post_init__(self):
        for s in self.sparsities + self.claim_sparsities:
            check_sparsity(s)
        for name in self.GRID:
            check_unique(name, getattr(self, name))
        unknown = sorted(set(self.methods) - set(available_methods()))
        if unknown:
            raise WorkbenchError(f"depth: unknown pruning method(s) {unknown}; choose from "
                                 f"{', '.join(available_methods())}")
        if self.prune_samples is not None and self.prune_samples < 1:
            raise WorkbenchError(f"depth: prune_samples must be >= 1 or None, got {self.prune_samples!r}")


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None, model: str = "cnn8",
           methods: tuple[str, ...] | None = None) -> Config:
    """Thresholding on the whole grid; FeTa and L-OBS at 70-95% (smoke: L-OBS at 90% only). ``methods``
    replaces the preset's methods."""
    train = preset_training(name, model, dataset)
    smart = ("threshold",) + SMART_METHODS
    return method_subset(pick(name,
                smoke=lambda: Config(train, seeds or (0, 1), (0.0, 0.5, 0.9), eval_size=500,
                                     methods=("threshold", "lobs"), claim_sparsities=(0.9,), prune_samples=200,
                                     method_options=SOLVER_OPTIONS["smoke"]),
                quick=lambda: Config(train, seeds or (0, 1, 2), sparsity_grid(0.1, 0.9) + (0.95,), eval_size=5000,
                                     methods=smart, method_options=SOLVER_OPTIONS["quick"]),
                paper=lambda: Config(train, seeds or (0, 1, 2), methods=smart, prune_samples=5000)), methods)


def _layers(model, config: Config):
    return prunable_layers(model) if config.include_output_layer else hidden_layers(model)


def method_sparsities(config: Config, method: str) -> tuple[float, ...]:
    """Thresholding: its whole grid (the claim-3 table takes the claim sparsities found on it);
    any other method: the claim-3 sparsities only."""
    return config.sparsities if method == "threshold" else config.claim_sparsities


def cells(config: Config) -> list[Cell]:
    names = layer_names(config.train)
    layers = names if config.include_output_layer else names[:-1]
    return [Cell.make("depth", config, seed=seed, method=method, layer=name, sparsity=sparsity)
            for seed in config.seeds for method in config.methods for name in layers
            for sparsity in method_sparsities(config, method)]


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    trained = trained_network(with_seed(config.train, cell["seed"]), runtime)
    device = runtime.torch_device()
    x = trained.split.x_test[:config.eval_size].to(device)
    y = trained.split.y_test[:config.eval_size].to(device)
    index = [name for name, _ in _layers(trained.model, config)].index(cell["layer"])
    if cell["method"] == "threshold":
        rows = depth_rows(trained.model, index, cell["sparsity"], config, x, y, trained.key)
    else:
        samples = trained.split.x_train[:config.prune_samples].to(device)
        rows = method_rows(trained.model, index, cell["method"], cell["sparsity"], config, x, y, samples,
                           trained.key)
    return [{"dataset": config.train.data.label, "model": config.train.model, **training_record(trained), **row}
            for row in rows]


def _remembered(model_key: str, what: tuple, make):
    return derived(model_key, what, make) if model_key else make()


def depth_rows(model: torch.nn.Sequential, layer_index: int, sparsity: float, config: Config,
               x: torch.Tensor, y: torch.Tensor, model_key: str = "") -> list[dict]:
    """Rows for thresholding layer ``layer_index`` alone and onward at one sparsity.

    ``model_key`` names the trained weights; given, the unpruned activations and the thresholded
    weights are reused across calls.
    """
    layers = _layers(model, config)
    position = sequential_position(model, layers[layer_index][1])
    hidden = _remembered(model_key, ("hidden", position, len(x)), lambda: predict(model[:position], x))
    reference = _remembered(model_key, ("reference", position, len(x)), lambda: predict(model[position:], hidden))
    suffix = model[position:]
    total = len(prunable_layers(model))
    base_accuracy = (reference.argmax(1) == y).float().mean().item()
    rows = []
    for mode in MODES:
        targets = layers[layer_index:layer_index + 1] if mode == "alone" else layers[layer_index:]
        # Keyed by layer name: an id() could be reused by a later cell's freshly loaded network.
        pruned = {m: _remembered(model_key, ("pruned", name, sparsity),
                                 lambda m=m: hard_threshold(m.weight.data, sparsity)) for name, m in targets}
        with swapped_weights(pruned):
            logits = predict(suffix, hidden)
        metrics = output_metrics(logits, reference, y)
        rows.append({"layer_index": layer_index, "remaining_depth": total - 1 - layer_index, "mode": mode,
                     "layers_pruned": len(targets), "base_accuracy": base_accuracy, **metrics,
                     "accuracy_drop": base_accuracy - metrics["accuracy"]})
    return rows


def method_rows(model: torch.nn.Sequential, layer_index: int, method: str, sparsity: float, config: Config,
                x: torch.Tensor, y: torch.Tensor, samples: torch.Tensor, model_key: str = "") -> list[dict]:
    """Rows for pruning layer ``layer_index`` alone and onward with ``method`` at one sparsity.

    One ``prune_network`` call prunes layers ``layer_index``.. in forward order; its first layer is
    also the alone result (it saw the same inputs and outputs). Rows carry the methods' wall time
    (``pruning_time_s``, without the activation capture) and whether every solver converged.
    """
    layers = _layers(model, config)
    names = [name for name, _ in layers]
    name = names[layer_index]
    reference = _remembered(model_key, ("logits", len(x)), lambda: _logits(model, x))
    base_accuracy = (reference.argmax(1) == y).float().mean().item()
    onward = prune_network(model, names[layer_index:], method, sparsity, samples, cascade=config.cascade,
                           **config.method_options.get(method, {}))
    alone = copy.deepcopy(model).eval()
    _copy_pruned_layer(getattr(onward.model, name), getattr(alone, name), onward.masks[name])
    infos = {"alone": {name: onward.infos[name]}, "onward": onward.infos}
    total = len(prunable_layers(model))
    rows = []
    for mode, network in (("alone", alone), ("onward", onward.model)):
        metrics = output_metrics(_logits(network, x), reference, y)
        rows.append({"layer_index": layer_index, "remaining_depth": total - 1 - layer_index, "mode": mode,
                     "layers_pruned": len(infos[mode]), "base_accuracy": base_accuracy, **metrics,
                     "accuracy_drop": base_accuracy - metrics["accuracy"],
                     "pruning_time_s": sum(info["wall_time_s"] for info in infos[mode].values()),
                     "converged": all(info.get("converged", True) for info in infos[mode].values()),
                     "prune_samples": len(samples)})
    return rows


@torch.no_grad()
def _copy_pruned_layer(source: torch.nn.Module, target: torch.nn.Module, mask: torch.Tensor) -> None:
    """Give ``target`` the pruned weights, mask and bias of ``source``."""
    if source.bias is not None:
        target.bias.copy_(source.bias)
    apply_mask(target, mask, source.weight.detach())


@torch.no_grad()
def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return predict(model, x)


def _among(values: pd.Series, grid: tuple[float, ...]) -> pd.Series:
    """Which ``values`` lie on ``grid`` (up to float noise)."""
    return values.apply(lambda v: any(np.isclose(v, g) for g in grid)).astype(bool)


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    threshold = rows[(rows["method"] == "threshold") & _among(rows["sparsity"], config.sparsities)]
    claim = rows[_among(rows["sparsity"], config.claim_sparsities)]
    tidy = [part.dropna(axis=1, how="all").reset_index(drop=True).infer_objects() for part in (threshold, claim)]
    return {"depth": tidy[0], "depth_methods": tidy[1], "depth_claim3": claim3_summary(tidy[1])}


def claim3_summary(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per method, layer, mode and sparsity: the test accuracy and the accuracy drop over seeds, each
    as its mean and Student-t ``confidence`` interval (``analysis.statistics.mean_interval``; NaN
    with one seed) clipped to the values they can take ([0, 1] and [-1, 1]), the mean unpruned
    accuracy and, for data methods, the mean pruning time and the fraction of seeds whose solvers all
    converged. Rows: thresholding first, then by method, layer position, mode and sparsity."""
    keys = [key for key in SUMMARY_KEYS if key in table.columns]
    records = []
    for values, group in table.groupby(keys, sort=False):
        record = dict(zip(keys, values))
        for column, label, low_end in (("accuracy", "accuracy", 0.0), ("accuracy_drop", "drop", -1.0)):
            mean, low, high, _ = mean_interval(group[column], confidence)
            low, high = np.clip([low, high], low_end, 1.0)  # NaN stays NaN
            record.update({f"{label}_mean": mean, f"{label}_low": float(low), f"{label}_high": float(high)})
        record.update({"n_seeds": group["seed"].nunique(), "base_accuracy": group["base_accuracy"].mean(),
                       "pruning_time_s": group["pruning_time_s"].mean() if "pruning_time_s" in group else np.nan,
                       "converged": group["converged"].astype(float).mean() if "converged" in group else np.nan})
        records.append(record)
    summary = pd.DataFrame(records)
    if summary.empty:
        return summary
    order = summary["method"].ne("threshold").rename("not_threshold")
    return (summary.assign(not_threshold=order)
            .sort_values(["not_threshold", "method", "layer_index", "mode", "sparsity"], kind="stable")
            .drop(columns="not_threshold").reset_index(drop=True))
