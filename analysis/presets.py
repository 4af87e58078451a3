"""Presets: ``quick`` (minutes on 2 CPU cores), ``paper`` (GUIDE section 3) and ``smoke``.

``smoke`` exists for the end-to-end tests: the same code paths on a few thousand
samples and one epoch, finishing in seconds. Its numbers mean nothing.
"""
from __future__ import annotations

from .errors import WorkbenchError
from .experiments.bounds import BoundsConfig
from .experiments.depth import DepthConfig, sparsity_grid
from .experiments.dimension_estimates import DatasetDimensionConfig, ValidationConfig
from .experiments.dimension_link import DimensionLinkConfig
from .experiments.methods import DEFAULT_METHODS, MethodsConfig
from .retraining import RetrainConfig
from .training import TrainConfig

PRESETS = ("quick", "paper", "smoke")
# Fewer ADMM iterations and eps bisection steps: minutes instead of an hour on a CPU, at some accuracy.
CHEAP_NETTRIM = {"search_steps": 5, "max_iterations": 50, "refit_iterations": 30}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise WorkbenchError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    return preset


def paper_training(model: str, dataset: str, **overrides) -> TrainConfig:
    """The authors' training setup: Adam 1e-3 batch 300 for fc nets, SGD 0.01 m0.9 batch 32 for CNNs."""
    if model == "fc":
        base = dict(optimizer="adam", lr=1e-3, batch_size=300, epochs=20)
    else:
        base = dict(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=32, epochs=20)
    return TrainConfig(dataset=dataset, model=model, **{**base, **overrides})


def quick_training(model: str, dataset: str, **overrides) -> TrainConfig:
    """Small subsets and few epochs, for a run of minutes on a laptop CPU."""
    sizes = {"fc": dict(train_size=20_000, epochs=3), "lenet5": dict(train_size=10_000, epochs=2),
             "cnn8": dict(train_size=8_000, epochs=2, batch_size=64)}[model]
    return paper_training(model, dataset, **{**sizes, **overrides})


def smoke_training(model: str, dataset: str, **overrides) -> TrainConfig:
    return paper_training(model, dataset, **{"train_size": 2000, "epochs": 1, "batch_size": 64, **overrides})


def training(preset: str, model: str, dataset: str, **overrides) -> TrainConfig:
    builders = {"quick": quick_training, "paper": paper_training, "smoke": smoke_training}
    return builders[check_preset(preset)](model, dataset, **overrides)


def depth_config(preset: str, dataset: str, seeds: tuple[int, ...] | None = None,
                 model: str = "cnn8") -> DepthConfig:
    if check_preset(preset) == "smoke":
        return DepthConfig(training(preset, model, dataset), seeds=seeds or (0, 1),
                           sparsities=(0.0, 0.5, 0.9), eval_size=500)
    if preset == "quick":
        return DepthConfig(training(preset, model, dataset), seeds=seeds or (0, 1),
                           sparsities=sparsity_grid(0.1, 0.9) + (0.95,), eval_size=500)
    return DepthConfig(training(preset, model, dataset), seeds=seeds or (0, 1, 2))


def methods_config(preset: str, dataset: str, seeds: tuple[int, ...] | None = None) -> MethodsConfig:
    """FC net of the paper for ``dataset`` and LeNet-5's fully connected layer, every method."""
    networks = tuple(training(preset, model, dataset) for model in ("fc", "lenet5"))
    if check_preset(preset) == "smoke":
        return MethodsConfig(networks[:1], seeds=seeds or (0,), sparsities=(0.5, 0.9), prune_samples=2000,
                             method_options={"nettrim": CHEAP_NETTRIM},
                             eval_size=1000, retrain=RetrainConfig(max_epochs=1.0, tolerance=0.01, eval_every=5))
    if preset == "quick":
        return MethodsConfig(networks, seeds=seeds or (0, 1), sparsities=(0.5, 0.75, 0.9),
                             method_options={"nettrim": CHEAP_NETTRIM}, prune_samples=3000, eval_size=5000,
                             retrain=RetrainConfig(max_epochs=5.0, tolerance=0.01, eval_every=10))
    return MethodsConfig(networks, methods=DEFAULT_METHODS + ("lobs-exact",), seeds=seeds or (0, 1, 2),
                         retrain_sparsities=(0.8, 0.9, 0.95),
                         retrain=RetrainConfig(max_epochs=10.0, tolerance=0.01, eval_every=20))


def bounds_config(preset: str, dataset: str, seeds: tuple[int, ...] | None = None) -> BoundsConfig:
    """LeNet-5 and the 8-layer CNN, the networks of the tightness goal."""
    if check_preset(preset) == "smoke":
        return BoundsConfig((training(preset, "lenet5", dataset),), seeds=seeds or (0,), sparsities=(0.5, 0.9),
                            eval_size=32, onward=True)
    networks = (training(preset, "lenet5", dataset), training(preset, "cnn8", dataset))
    if preset == "quick":
        return BoundsConfig(networks, seeds=seeds or (0,), sparsities=(0.3, 0.5, 0.7, 0.9), eval_size=128,
                            onward=False)
    return BoundsConfig(networks, seeds=seeds or (0, 1, 2), sparsities=sparsity_grid(0.1, 0.9), eval_size=1000)


def validation_config(preset: str) -> ValidationConfig:
    if check_preset(preset) == "smoke":
        return ValidationConfig(n_points=200, methods=("mle", "twonn", "lpca"))
    return ValidationConfig(n_points=500 if preset == "quick" else 2000)


def dataset_dimension_config(preset: str, dataset: str) -> DatasetDimensionConfig:
    """The chosen dataset first, then the others where they are on disk."""
    others = tuple(d for d in ("fashion-mnist", "mnist", "cifar10") if d != dataset)
    if check_preset(preset) == "smoke":
        return DatasetDimensionConfig((dataset,), samples=2000, mle_neighbors=(5, 20), per_class=False,
                                      n_bootstrap=20)
    if preset == "quick":
        return DatasetDimensionConfig((dataset,) + others, samples=10_000, n_bootstrap=10)
    return DatasetDimensionConfig((dataset,) + others, samples=None, n_bootstrap=20)


def dimension_link_config(preset: str, dataset: str, seeds: tuple[int, ...] | None = None) -> DimensionLinkConfig:
    synthetic = training(preset, "fc", "synthetic")
    if check_preset(preset) == "smoke":
        return DimensionLinkConfig(training(preset, "fc", dataset), pca_components=(10, 100),
                                   synthetic_network=synthetic, latent_dimensions=(2, 8),
                                   synthetic_sizes=(2000, 500), seeds=seeds or (0, 1), sparsities=(0.0, 0.5, 0.9),
                                   eval_size=500, estimate_samples=1000)
    if preset == "quick":
        return DimensionLinkConfig(training(preset, "fc", dataset), pca_components=(10, 25, 50, 100, 300),
                                   synthetic_network=synthetic, latent_dimensions=(2, 4, 8, 16, 32),
                                   synthetic_sizes=(10_000, 2000), seeds=seeds or (0, 1, 2),
                                   estimate_samples=3000)
    return DimensionLinkConfig(training(preset, "cnn8", dataset), pca_components=tuple(range(50, 351, 50)),
                               synthetic_network=synthetic, seeds=seeds or tuple(range(10)),
                               sparsities=tuple(round(0.95 * i / 49, 4) for i in range(50)))
