"""Presets: ``quick`` (minutes on 2 CPU cores), ``paper`` (GUIDE section 3) and ``smoke``.

``smoke`` exists for the end-to-end tests: the same code paths on a few thousand
samples and one epoch, finishing in seconds. Its numbers mean nothing.
"""
from __future__ import annotations

from .errors import WorkbenchError
from .experiments.depth import DepthConfig, sparsity_grid
from .experiments.methods import MethodsConfig
from .retraining import RetrainConfig
from .training import TrainConfig

PRESETS = ("quick", "paper", "smoke")


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
                           sparsities=sparsity_grid(0.1, 0.9) + (0.95,), eval_size=2000)
    return DepthConfig(training(preset, model, dataset), seeds=seeds or (0, 1, 2))


def methods_config(preset: str, dataset: str, seeds: tuple[int, ...] | None = None) -> MethodsConfig:
    """FC net of the paper for ``dataset`` and LeNet-5's fully connected layer, every method."""
    networks = tuple(training(preset, model, dataset) for model in ("fc", "lenet5"))
    if check_preset(preset) == "smoke":
        return MethodsConfig(networks[:1], seeds=seeds or (0,), sparsities=(0.5, 0.9), prune_samples=2000,
                             eval_size=1000, retrain=RetrainConfig(max_epochs=1.0, tolerance=0.01, eval_every=5))
    if preset == "quick":
        return MethodsConfig(networks, seeds=seeds or (0, 1), sparsities=(0.5, 0.7, 0.9, 0.95),
                             prune_samples=10_000, eval_size=5000,
                             retrain=RetrainConfig(max_epochs=2.0, tolerance=0.01, eval_every=10))
    return MethodsConfig(networks, seeds=seeds or (0, 1, 2), retrain_sparsities=(0.8, 0.9, 0.95),
                         retrain=RetrainConfig(max_epochs=10.0, tolerance=0.01, eval_every=20))
