"""Claim 3: degradation from hard thresholding grows with the depth that remains after the pruned layer.

For every prunable layer k and sparsity s, threshold (a) layer k alone and (b) layers
k..last together (each layer its own threshold), and measure the test accuracy,
loss and output perturbation against the unpruned network, over several seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from pruning import check_sparsity, hard_threshold

from ..errors import WorkbenchError
from ..executor import run_cells
from ..models import hidden_layers, prunable_layers
from ..training import LastTrained, TrainConfig, dataset_split, with_seed
from .common import output_metrics, run_batched, sequential_position, swapped_weights

MODES = ("alone", "onward")


def sparsity_grid(step: float = 0.05, top: float = 0.95) -> tuple[float, ...]:
    return tuple(round(step * i, 4) for i in range(int(round(top / step)) + 1))


@dataclass(frozen=True)
class DepthConfig:
    train: TrainConfig = field(default_factory=lambda: TrainConfig(model="cnn8"))
    seeds: tuple[int, ...] = (0,)
    sparsities: tuple[float, ...] = sparsity_grid()
    eval_size: int | None = None  # test samples used (None = the whole test set)
    include_output_layer: bool = False

    def __post_init__(self):
        for s in self.sparsities:
            check_sparsity(s)
        if not self.seeds:
            raise WorkbenchError("seeds must not be empty")


def _layers(model, config: DepthConfig):
    return prunable_layers(model) if config.include_output_layer else hidden_layers(model)


def depth_cell(model: torch.nn.Sequential, layer_index: int, config: DepthConfig,
               x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """Rows for pruning layer ``layer_index`` alone and onward, at every sparsity."""
    layers = _layers(model, config)
    name, layer = layers[layer_index]
    position = sequential_position(model, layer)
    hidden = run_batched(model[:position], x)
    suffix = model[position:]
    reference = run_batched(suffix, hidden)
    total = len(prunable_layers(model))
    base_accuracy = (reference.argmax(1) == y).float().mean().item()
    rows = []
    for mode in MODES:
        targets = [layer] if mode == "alone" else [m for _, m in layers[layer_index:]]
        for sparsity in config.sparsities:
            weights = {m: hard_threshold(m.weight.data, sparsity) for m in targets}
            with swapped_weights(weights):
                logits = run_batched(suffix, hidden)
            rows.append({"layer": name, "remaining_depth": total - 1 - layer_index, "mode": mode,
                         "sparsity": sparsity, "layers_pruned": len(targets),
                         "base_accuracy": base_accuracy, **output_metrics(logits, reference, y)})
            rows[-1]["accuracy_drop"] = base_accuracy - rows[-1]["accuracy"]
    return rows


def run_depth(config: DepthConfig, cache_dir: Path, device: torch.device, data_dir: Path | None = None,
              download: bool = True, progress: bool = True) -> pd.DataFrame:
    """The depth experiment's tidy table (one row per seed, layer, mode and sparsity)."""
    split = dataset_split(config.train, data_dir, download)
    networks = LastTrained(cache_dir, device, progress)

    def model_for(seed: int):
        return networks.get(with_seed(config.train, seed), split)

    first = model_for(config.seeds[0])
    n_layers = len(_layers(first.model, config))
    cells = [{"seed": s, "layer_index": k} for s in config.seeds for k in range(n_layers)]

    def compute(cell: dict) -> list[dict]:
        trained = model_for(cell["seed"])
        x, y = trained.split.x_test[:config.eval_size], trained.split.y_test[:config.eval_size]
        rows = depth_cell(trained.model, cell["layer_index"], config, x.to(device), y.to(device))
        return [{"dataset": config.train.dataset, "model": config.train.model, **row} for row in rows]

    return run_cells(config, cells, compute, cache_dir, description="depth cells", progress=progress)
