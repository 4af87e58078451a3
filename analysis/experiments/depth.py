"""Claim 3: hard thresholding costs more the more depth remains after the pruned layer.

For every prunable layer k and sparsity s, threshold (a) layer k alone and (b) layers
k..last together (each layer its own threshold), and measure the test accuracy, loss and
output perturbation against the unpruned network, over several seeds.
Grid: seed x layer x sparsity; one table, ``depth``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd
import torch

from pruning import check_sparsity, hard_threshold
from pruning.layers import hidden_layers, prunable_layers

from ..contract import Cell, check_unique
from ..measures import output_metrics, sequential_position, swapped_weights
from ..models import MODEL_NAMES, layer_names
from ..networks import derived, trained_network, with_seed
from ..presets import preset_training, sparsity_grid, pick
from ..runtime import Runtime
from ..training import TrainConfig, predict

MODES = ("alone", "onward")
TABLES = ("depth",)
OPTIONS = (("--model", dict(default="cnn8", choices=MODEL_NAMES, help="network to threshold")),)


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("seeds", "sparsities")

    train: TrainConfig = field(default_factory=lambda: TrainConfig(model="cnn8"))
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = sparsity_grid()
    eval_size: int | None = None  # test samples used (None = the whole test set)
    include_output_layer: bool = False

    def __post_init__(self):
        for s in self.sparsities:
            check_sparsity(s)
        check_unique("seeds", self.seeds)
        check_unique("sparsities", self.sparsities)


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None, model: str = "cnn8") -> Config:
    train = preset_training(name, model, dataset)
    return pick(name,
                smoke=lambda: Config(train, seeds or (0, 1), (0.0, 0.5, 0.9), eval_size=500),
                quick=lambda: Config(train, seeds or (0, 1), sparsity_grid(0.1, 0.9) + (0.95,), eval_size=500),
                paper=lambda: Config(train, seeds or (0, 1, 2)))


def _layers(model, config: Config):
    return prunable_layers(model) if config.include_output_layer else hidden_layers(model)


def cells(config: Config) -> list[Cell]:
    names = layer_names(config.train)
    layers = names if config.include_output_layer else names[:-1]
    return [Cell.make("depth", config, seed=seed, layer=name, sparsity=sparsity)
            for seed in config.seeds for name in layers for sparsity in config.sparsities]


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    trained = trained_network(with_seed(config.train, cell["seed"]), runtime)
    device = runtime.torch_device()
    x = trained.split.x_test[:config.eval_size].to(device)
    y = trained.split.y_test[:config.eval_size].to(device)
    index = [name for name, _ in _layers(trained.model, config)].index(cell["layer"])
    rows = depth_rows(trained.model, index, cell["sparsity"], config, x, y, trained.key)
    return [{"dataset": config.train.data.label, "model": config.train.model, **row} for row in rows]


def _remembered(model_key: str, what: tuple, make):
    return derived(model_key, what, make) if model_key else make()


def depth_rows(model: torch.nn.Sequential, layer_index: int, sparsity: float, config: Config,
               x: torch.Tensor, y: torch.Tensor, model_key: str = "") -> list[dict]:
    """Rows for thresholding layer ``layer_index`` alone and onward at one sparsity.

    ``model_key`` names the trained weights; given, the unpruned activations and the thresholded
    weights are reused across calls.
    """
    layers = _layers(model, config)
    name, layer = layers[layer_index]
    position = sequential_position(model, layer)
    hidden = _remembered(model_key, ("hidden", position, len(x)), lambda: predict(model[:position], x))
    reference = _remembered(model_key, ("reference", position, len(x)), lambda: predict(model[position:], hidden))
    suffix = model[position:]
    total = len(prunable_layers(model))
    base_accuracy = (reference.argmax(1) == y).float().mean().item()
    rows = []
    for mode in MODES:
        targets = [layer] if mode == "alone" else [m for _, m in layers[layer_index:]]
        pruned = {m: _remembered(model_key, ("pruned", id(m), sparsity),
                                 lambda m=m: hard_threshold(m.weight.data, sparsity)) for m in targets}
        with swapped_weights(pruned):
            logits = predict(suffix, hidden)
        metrics = output_metrics(logits, reference, y)
        rows.append({"layer_index": layer_index, "remaining_depth": total - 1 - layer_index, "mode": mode,
                     "layers_pruned": len(targets), "base_accuracy": base_accuracy, **metrics,
                     "accuracy_drop": base_accuracy - metrics["accuracy"]})
    return rows


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"depth": rows}
