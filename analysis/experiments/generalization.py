"""The Sokolic et al. generalization bound, evaluated against the measured dimension and robustness.

For synthetic tasks on k-dimensional manifolds (the networks of ``dimension_link``), per seed and
sparsity: the MLE intrinsic dimension of the training inputs with its bootstrap interval, the
greedy covering numbers of those inputs and the covering constant C_M fitted to them, the input
margins before and after thresholding the first layer (output margin / (sqrt 2 x the network's
Lipschitz bound)), ``theory.pruned_generalization_bounds`` at k and over its interval, and the
measured accuracy drop. One table, ``generalization``.

Honesty notes: the theorem needs every training sample to have the margin, so ``margin="min"``
is the theorem's (the bound is infinite when a training sample is misclassified); the
``margin="quantile"`` rows use the ``quantile`` of the margins of the correctly classified
training samples and are OUTSIDE the theorem, shown only to see how the bound moves with k.
C_M describes the sample, not the manifold.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from pruning import check_sparsity, hard_threshold
from pruning.layers import prunable_layers
from theory import covering_numbers, logit_margin, network_lipschitz, pruned_generalization_bounds

from ..contract import Cell, check_unique
from ..data.config import MANIFOLD, DataConfig, ManifoldSpec, manifold_data
from ..dimension import estimate_dimension
from ..errors import WorkbenchError
from ..measures import swapped_weights
from ..networks import derived, trained_network
from ..presets import pick, preset_training
from ..runtime import Runtime
from ..training import TrainConfig, predict

TABLES = ("generalization",)


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("latent_dimensions", "seeds", "sparsities")

    network: TrainConfig = field(default_factory=lambda: TrainConfig(
        model="fc", data=DataConfig(MANIFOLD, manifold=ManifoldSpec(2))))
    latent_dimensions: tuple[int, ...] = (2, 4, 8, 16, 32)
    ambient_dimension: int = 784
    synthetic_sizes: tuple[int, int] = (10_000, 2_000)
    seeds: tuple[int, ...] = (0, 1, 2)
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.7, 0.9)
    estimate_samples: int = 3000
    n_bootstrap: int = 10
    covering_samples: int = 2000
    quantile: float = 0.1
    delta: float = 0.05

    def __post_init__(self):
        for s in self.sparsities:
            check_sparsity(s)
        for name in self.GRID:
            check_unique(name, getattr(self, name))
        if not 0 < self.quantile < 1 or not 0 < self.delta < 1:
            raise WorkbenchError(f"quantile and delta must lie in (0, 1), got {self.quantile} and {self.delta}")


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None) -> Config:
    network = preset_training(name, "fc", DataConfig(MANIFOLD, manifold=ManifoldSpec(2)))
    return pick(name,
                smoke=lambda: Config(network, (2, 8), synthetic_sizes=(2000, 500), seeds=seeds or (0,),
                                     sparsities=(0.0, 0.9), estimate_samples=1000, n_bootstrap=5,
                                     covering_samples=500),
                quick=lambda: Config(network, seeds=seeds or (0, 1, 2)),
                paper=lambda: Config(network, seeds=seeds or tuple(range(10)), n_bootstrap=20))


def network(config: Config, k: int, seed: int) -> TrainConfig:
    """The network trained on the k-manifold task (the same as ``dimension_link``'s, so it is cached once)."""
    data = manifold_data(k, config.ambient_dimension, config.synthetic_sizes, seed)
    return replace(config.network, seed=seed, data=data)


def cells(config: Config) -> list[Cell]:
    return [Cell.make("generalization", config, level=k, seed=seed, sparsity=s)
            for k in config.latent_dimensions for seed in config.seeds for s in config.sparsities]


def data_terms(trained, config: Config, device: str) -> dict:
    """Dimension estimate with interval, and covering numbers, of one network's training inputs."""
    def make():
        x = trained.split.x_train.reshape(len(trained.split.x_train), -1)
        estimate = estimate_dimension(x[:config.estimate_samples], "mle", n_bootstrap=config.n_bootstrap,
                                      seed=0, device=device)
        points = x[:config.covering_samples].double()
        diameter = float((points - points.mean(0)).norm(dim=1).max()) * 2
        radii = diameter * np.geomspace(0.05, 0.5, 8)
        return {"k": estimate.value, "k_low": estimate.ci_low, "k_high": estimate.ci_high,
                "covering": covering_numbers(points, radii)}
    return derived(trained.key, ("data terms",), make)


def _input_margins(model, x, y) -> np.ndarray:
    """Lower bounds on each sample's input margin: output margin / (sqrt 2 x Lipschitz bound of the network)."""
    logits = predict(model, x)
    return (logit_margin(logits, y) / (np.sqrt(2) * network_lipschitz(model, tuple(x.shape[1:])))).cpu().numpy()


def _low_quantile(quantile: float):
    """The ``quantile`` of the positive margins (correctly classified samples); 0 (no bound) when there are none."""
    return lambda margins: np.quantile(margins[margins > 0], quantile) if (margins > 0).any() else 0.0


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    trained = trained_network(network(config, cell["level"], cell["seed"]), runtime)
    terms = data_terms(trained, config, runtime.device)
    device = runtime.torch_device()
    model = trained.model
    x, y = trained.split.x_train.to(device), trained.split.y_train.to(device)
    first = prunable_layers(model)[0][1]
    before = _input_margins(model, x, y)
    with swapped_weights({first: hard_threshold(first.weight.data, cell["sparsity"])}):
        after = _input_margins(model, x, y)
        test_accuracy = (predict(model, trained.split.x_test.to(device)).argmax(1)
                         == trained.split.y_test.to(device)).float().mean().item()
    k, interval = terms["k"], (min(terms["k_low"], terms["k"]), max(terms["k_high"], terms["k"]))
    rows = []
    for margin, pick_margin in (("min", np.min), ("quantile", _low_quantile(config.quantile))):
        bounds = pruned_generalization_bounds(k, interval, float(pick_margin(before)), float(pick_margin(after)),
                                              terms["covering"], trained.split.num_classes, len(x), config.delta)
        rows.append({"margin": margin, "within_theorem": margin == "min", "true_dimension": float(cell["level"]),
                     "k": k, "k_low": interval[0], "k_high": interval[1], "margin_before": float(pick_margin(before)),
                     "margin_after": float(pick_margin(after)), **bounds,
                     "base_accuracy": trained.metrics["test_accuracy"], "pruned_accuracy": test_accuracy,
                     "accuracy_drop": trained.metrics["test_accuracy"] - test_accuracy})
    return rows


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"generalization": rows}
