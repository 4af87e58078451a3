"""Claim 4: networks trained on data of lower latent dimension are more robust to hard thresholding.

Two controlled experiments, each a grid of dimension levels x seeds x sparsities:

* ``pca``: inputs projected onto their top-n principal components and reconstructed
  (GUIDE section 3; CIFAR-10 is turned grey first, as in the paper);
* ``synthetic``: classification on a k-dimensional manifold embedded in a fixed ambient
  dimension, labels from the latent coordinates, so only k changes.

Per (kind, level, seed) a network is trained and the intrinsic dimension of its training
inputs estimated; each cell thresholds every hidden layer at one sparsity (alone and onward).
One table, ``dimension_link``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import pandas as pd

from pruning import check_sparsity

from ..contract import Cell, check_unique
from ..data.config import MANIFOLD, DataConfig, ManifoldSpec, manifold_data
from ..dimension import estimate_dimension
from ..errors import WorkbenchError
from ..models import layer_names
from ..networks import derived, trained_network
from ..presets import pick, preset_training
from ..runtime import Runtime
from ..training import TrainConfig
from .depth import Config as DepthConfig
from .depth import depth_rows

TABLES = ("dimension_link",)


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("pca_components", "latent_dimensions", "seeds", "sparsities")

    pca_network: TrainConfig = field(default_factory=lambda: TrainConfig(model="fc"))
    pca_components: tuple[int, ...] = (10, 25, 50, 100, 200)
    synthetic_network: TrainConfig = field(default_factory=lambda: TrainConfig(model="fc"))
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
        for name in self.GRID:
            check_unique(name, getattr(self, name))
        if min(self.pca_components + self.latent_dimensions, default=1) < 1:
            raise WorkbenchError("pca_components and latent_dimensions must be positive")


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None) -> Config:
    synthetic = preset_training(name, "fc", DataConfig(MANIFOLD, manifold=ManifoldSpec(2)))
    return pick(
        name,
        smoke=lambda: Config(preset_training(name, "fc", dataset), (10, 100), synthetic, (2, 8),
                             synthetic_sizes=(2000, 500), seeds=seeds or (0, 1), sparsities=(0.0, 0.5, 0.9),
                             eval_size=500, estimate_samples=1000),
        quick=lambda: Config(preset_training(name, "fc", dataset), (10, 25, 50, 100, 300), synthetic,
                             (2, 4, 8, 16, 32), synthetic_sizes=(10_000, 2000), seeds=seeds or (0, 1, 2),
                             estimate_samples=3000),
        paper=lambda: Config(preset_training(name, "cnn8", dataset), tuple(range(50, 351, 50)), synthetic,
                             seeds=seeds or tuple(range(10)),
                             sparsities=tuple(round(0.95 * i / 49, 4) for i in range(50))))


def network(config: Config, kind: str, level: int, seed: int) -> TrainConfig:
    """The training config of one dimension level: its data config carries the projection or manifold."""
    if kind == "pca":
        return replace(config.pca_network, seed=seed, data=replace(config.pca_network.data, pca_components=level))
    data = manifold_data(level, config.ambient_dimension, config.synthetic_sizes, seed)
    return replace(config.synthetic_network, seed=seed, data=data)


def cells(config: Config) -> list[Cell]:
    levels = [("pca", n) for n in config.pca_components] + [("synthetic", k) for k in config.latent_dimensions]
    return [Cell.make("dimension_link", config, kind=kind, level=level, seed=seed, sparsity=sparsity)
            for kind, level in levels for seed in config.seeds for sparsity in config.sparsities]


def estimates(trained, config: Config, seed: int, device: str) -> dict:
    """MLE and TwoNN of the training inputs, kept for the other sparsities of the same network."""
    def make():
        x = trained.split.x_train[:config.estimate_samples]
        points = x.reshape(len(x), -1)
        mle = estimate_dimension(points, "mle", n_neighbors=config.estimate_neighbors, seed=seed, device=device)
        twonn = estimate_dimension(points, "twonn", seed=seed, device=device)
        return {"estimated_mle": mle.value, "estimated_twonn": twonn.value}
    return derived(trained.key, ("estimates",), make)


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    train = network(config, cell["kind"], cell["level"], cell["seed"])
    trained = trained_network(train, runtime)
    found = estimates(trained, config, cell["seed"], runtime.device)
    device = runtime.torch_device()
    x = trained.split.x_test[:config.eval_size].to(device)
    y = trained.split.y_test[:config.eval_size].to(device)
    depth = DepthConfig(train, sparsities=(cell["sparsity"],))
    true_dimension = float(cell["level"]) if cell["kind"] == "synthetic" else float("nan")
    dataset = config.pca_network.data.dataset if cell["kind"] == "pca" else "synthetic"
    rows = []
    for index in range(len(layer_names(train)) - 1):
        for row in depth_rows(trained.model, index, cell["sparsity"], depth, x, y, trained.key):
            rows.append({"dataset": dataset, "true_dimension": true_dimension, **found, "model": train.model,
                         **row})
    return rows


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"dimension_link": rows}
