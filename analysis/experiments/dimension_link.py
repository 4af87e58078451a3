"""Claim 4: networks trained on data of lower latent dimension are more robust to hard thresholding.

Two controlled experiments, each a grid of dimension levels x seeds:

* ``pca``: inputs projected onto their top-n principal components and reconstructed
  (GUIDE section 3; CIFAR-10 is turned grey first, as in the paper);
* ``synthetic``: classification on a k-dimensional manifold embedded in a fixed ambient
  dimension, labels from the latent coordinates, so only k changes.

Per cell a network is trained, every layer is hard-thresholded over the sparsity grid
(``depth_cell``), and the intrinsic dimension of the training inputs is estimated.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pruning import check_sparsity

from ..data import Split
from ..dimension import estimate_dimension
from ..dimension.synthetic import fit_pca, manifold_task
from ..errors import WorkbenchError
from ..executor import run_cells
from ..models import prunable_layers
from ..training import TrainConfig, dataset_split, train_or_load
from .depth import DepthConfig, depth_cell


@dataclass(frozen=True)
class DimensionLinkConfig:
    pca_network: TrainConfig = field(default_factory=lambda: TrainConfig(model="fc"))
    pca_components: tuple[int, ...] = (10, 25, 50, 100, 200)
    synthetic_network: TrainConfig = field(default_factory=lambda: TrainConfig(dataset="synthetic", model="fc"))
    latent_dimensions: tuple[int, ...] = (2, 4, 8, 16, 32)
    ambient_dimension: int = 784
    synthetic_sizes: tuple[int, int] = (10_000, 2_000)
    seeds: tuple[int, ...] = (0, 1, 2)
    sparsities: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    eval_size: int | None = 2000
    estimate_samples: int = 5000
    estimate_neighbors: int = 20

    def __post_init__(self):
        for s in self.sparsities:
            check_sparsity(s)
        if min(self.pca_components + self.latent_dimensions, default=1) < 1:
            raise WorkbenchError("pca_components and latent_dimensions must be positive")


def grey(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True) if x.shape[1] == 3 else x


def pca_split(base: Split, n_components: int) -> Split:
    """Every split reconstructed from the top principal components of the (grey) training inputs."""
    basis = fit_pca(grey(base.x_train), n_components)
    project = lambda x: basis.reconstruct(grey(x))  # noqa: E731
    return Split(project(base.x_train), base.y_train, project(base.x_val), base.y_val,
                 project(base.x_test), base.y_test)


def synthetic_split(config: DimensionLinkConfig, k: int, seed: int) -> Split:
    n_train, n_test = config.synthetic_sizes
    task = manifold_task(k, config.ambient_dimension, n_train=n_train, n_test=n_test, seed=seed)
    empty = task.x_train[:0]
    return Split(task.x_train, task.y_train, empty, task.y_train[:0], task.x_test, task.y_test)


def _estimates(x: torch.Tensor, config: DimensionLinkConfig, seed: int) -> dict:
    points = x[:config.estimate_samples].reshape(min(len(x), config.estimate_samples), -1)
    mle = estimate_dimension(points, "mle", n_neighbors=config.estimate_neighbors, seed=seed)
    twonn = estimate_dimension(points, "twonn", seed=seed)
    return {"estimated_mle": mle.value, "estimated_twonn": twonn.value}


def link_cell(kind: str, level: int, seed: int, config: DimensionLinkConfig, cache_dir: Path,
              device: torch.device, base_split: Split | None, progress: bool) -> list[dict]:
    if kind == "pca":
        split = pca_split(base_split, level)
        train = replace(config.pca_network, seed=seed, variant=f"pca{level}")
        true_dimension = float("nan")
    else:
        split = synthetic_split(config, level, seed)
        train = replace(config.synthetic_network, seed=seed, variant=f"manifold{level}-d{config.ambient_dimension}")
        true_dimension = float(level)
    trained = train_or_load(train, cache_dir, device, split=split, progress=progress)
    estimates = _estimates(split.x_train, config, seed)
    depth = DepthConfig(train, sparsities=config.sparsities)
    x, y = split.x_test[:config.eval_size].to(device), split.y_test[:config.eval_size].to(device)
    rows = []
    for index in range(len(prunable_layers(trained.model)) - 1):
        for row in depth_cell(trained.model, index, depth, x, y):
            rows.append({"true_dimension": true_dimension, **estimates, "model": train.model,
                         "layer_index": index, **row})
    return rows


def run_dimension_link(config: DimensionLinkConfig, cache_dir: Path, device: torch.device,
                       data_dir: Path | None = None, download: bool = True, progress: bool = True) -> pd.DataFrame:
    base = dataset_split(config.pca_network, data_dir, download) if config.pca_components else None
    cells = ([{"kind": "pca", "level": n, "seed": s} for n in config.pca_components for s in config.seeds]
             + [{"kind": "synthetic", "level": k, "seed": s} for k in config.latent_dimensions for s in config.seeds])

    def compute(cell: dict) -> list[dict]:
        rows = link_cell(cell["kind"], cell["level"], cell["seed"], config, cache_dir, device, base, progress)
        dataset = config.pca_network.dataset if cell["kind"] == "pca" else "synthetic"
        return [{"dataset": dataset, **row} for row in rows]

    return run_cells(config, cells, compute, cache_dir, description="dimension-link cells",
                     progress=progress)
