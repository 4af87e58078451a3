"""Presets: ``quick`` (the default run, under an hour on 2 CPU cores), ``paper`` (GUIDE section 3) and ``smoke``.

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


# The authors' recipes (GUIDE section 3), trained until the validation accuracy stops improving:
# at most MAX_EPOCHS epochs, stopping after PATIENCE epochs without a better validation accuracy.
MAX_EPOCHS = 30
PATIENCE = {"fc": 5, "cnn": 4}
# cnn8 needs about 34 s an epoch on 2 CPU cores; the quick and smoke presets use its half-width
# variant (analysis.models.cnn8_narrow) so that the default run trains it to convergence.
NARROW = {"cnn8": "cnn8-narrow"}


def paper_training(model: str, data: DataConfig, **overrides) -> TrainConfig:
    """The authors' training setup to convergence: Adam 1e-3 with Keras decay lr/epochs and batch 300 for
    fc nets, SGD 0.01 momentum 0.9 batch 32 for CNNs; early stopping on the validation accuracy."""
    if model == "fc":
        base = dict(optimizer="adam", lr=1e-3, lr_decay=1e-3 / MAX_EPOCHS, batch_size=300, epochs=MAX_EPOCHS,
                    patience=PATIENCE["fc"])
    else:
        base = dict(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=32, epochs=MAX_EPOCHS,
                    patience=PATIENCE["cnn"])
    return TrainConfig(data=data, model=model, **{**base, **overrides})


def preset_training(preset: str, model: str, dataset: str | DataConfig, **overrides) -> TrainConfig:
    """The network ``model`` of ``preset`` trained on ``dataset`` (a name or a DataConfig).

    ``paper`` and ``quick`` train on the whole training set to convergence (``quick`` swaps cnn8 for
    cnn8-narrow); ``smoke`` trains one epoch on 1,000 samples.
    """
    data = dataset if isinstance(dataset, DataConfig) else DataConfig(dataset)
    if check_preset(preset) != "paper":
        model = NARROW.get(model, model)
    if preset == "smoke":
        return paper_training(model, _subset(data, 1000),
                              **{"epochs": 1, "batch_size": 64, "patience": None, "lr_decay": 0.0, **overrides})
    return paper_training(model, data, **overrides)


def _subset(data: DataConfig, size: int) -> DataConfig:
    from dataclasses import replace

    if data.manifold is not None or data.train_size is not None:
        return data
    return replace(data, train_size=size)
