"""Presets: ``quick`` (minutes on 2 CPU cores), ``paper`` (GUIDE section 3) and ``smoke``.

``smoke`` exists for the end-to-end tests and the notebooks in CI: the same code paths on
a few thousand samples and one epoch, finishing in seconds. Its numbers mean nothing.
Each experiment module's ``preset`` picks its grid per preset with ``pick``; the networks
come from ``preset_training``.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from .data.config import DataConfig
from .errors import WorkbenchError
from .training import TrainConfig

PRESETS = ("quick", "paper", "smoke")
T = TypeVar("T")


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise WorkbenchError(f"--preset: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    return preset


def pick(preset: str, *, smoke: Callable[[], T], quick: Callable[[], T], paper: Callable[[], T]) -> T:
    """The value of ``preset``'s branch (each branch is built only when chosen)."""
    return {"smoke": smoke, "quick": quick, "paper": paper}[check_preset(preset)]()


def sparsity_grid(step: float = 0.05, top: float = 0.95) -> tuple[float, ...]:
    """0, step, 2 step, ..., top (rounded to 4 digits)."""
    return tuple(round(step * i, 4) for i in range(int(round(top / step)) + 1))


def paper_training(model: str, data: DataConfig, **overrides) -> TrainConfig:
    """The authors' training setup: Adam 1e-3 batch 300 for fc nets, SGD 0.01 m0.9 batch 32 for CNNs."""
    if model == "fc":
        base = dict(optimizer="adam", lr=1e-3, batch_size=300, epochs=20)
    else:
        base = dict(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=32, epochs=20)
    return TrainConfig(data=data, model=model, **{**base, **overrides})


QUICK_SIZES = {"fc": (20_000, dict(epochs=3)), "lenet5": (10_000, dict(epochs=2)),
               "cnn8": (8_000, dict(epochs=2, batch_size=64))}


def preset_training(preset: str, model: str, dataset: str | DataConfig, **overrides) -> TrainConfig:
    """The network ``model`` of ``preset`` trained on ``dataset`` (a name or a DataConfig)."""
    data = dataset if isinstance(dataset, DataConfig) else DataConfig(dataset)
    if check_preset(preset) == "smoke":
        return paper_training(model, _subset(data, 1000), **{"epochs": 1, "batch_size": 64, **overrides})
    if preset == "quick":
        size, options = QUICK_SIZES[model]
        return paper_training(model, _subset(data, size), **{**options, **overrides})
    return paper_training(model, data, **overrides)


def _subset(data: DataConfig, size: int) -> DataConfig:
    from dataclasses import replace

    if data.manifold is not None or data.train_size is not None:
        return data
    return replace(data, train_size=size)
