"""The one cache of trained networks: on disk by provenance key, the last one in memory.

A checkpoint's key is the hash of the training config (which holds the data config) and
the digest of the dataset files, so a network trained on other data is never reused. A
lock per checkpoint makes a concurrent run wait for the first to finish training and load
its result. Each process keeps the last network it used, so the cells of one sweep that
share a network load it once, and ``derived`` keeps what the cells compute from it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .data import Split
from .data.config import data_key, load_split
from .hashing import stable_hash
from .models import build_model
from .runtime import Runtime
from .store import artefact_lock, config_dict, load_torch, save_torch
from .training import TrainConfig, fit, num_classes


@dataclass
class TrainedModel:
    model: nn.Sequential
    config: TrainConfig
    metrics: dict
    split: Split
    key: str


_LAST: dict[tuple, TrainedModel] = {}


def checkpoint_key(config: TrainConfig, runtime: Runtime) -> str:
    return stable_hash({"train": config, "data": data_key(config.data, runtime.data_dir, runtime.download)})


def checkpoint_path(config: TrainConfig, runtime: Runtime) -> Path:
    name = f"{config.model}-{config.data.label}-seed{config.seed}-{checkpoint_key(config, runtime)}.pt"
    return runtime.cache / "models" / name


def trained_network(config: TrainConfig, runtime: Runtime) -> TrainedModel:
    """The network for ``config``: from memory, from the checkpoint cache, or trained and cached now."""
    device = runtime.torch_device()
    path = checkpoint_path(config, runtime)
    memo = (str(path), str(device))
    if memo not in _LAST:
        _LAST.clear()
        _LAST[memo] = _load_or_train(config, path, runtime, device)
    return _LAST[memo]


def _load_or_train(config: TrainConfig, path: Path, runtime: Runtime, device: torch.device) -> TrainedModel:
    split = load_split(config.data, runtime.data_dir, runtime.download)
    with artefact_lock(path):
        if path.is_file():
            entry = load_torch(path)
            model = build_model(config.model, tuple(split.x_train.shape[1:]), num_classes(split),
                                hidden=config.hidden)
            model.load_state_dict(entry["state_dict"])
            return TrainedModel(model.to(device).eval(), config, entry["metrics"], split, path.stem)
        model, metrics = fit(config, split, device, runtime.progress)
        save_torch(path, {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                          "config": config_dict(config), "metrics": metrics})
    return TrainedModel(model, config, metrics, split, path.stem)


_DERIVED: dict[str, dict] = {}


def derived(network_key: str, what: tuple, make: Callable[[], Any]) -> Any:
    """A value computed from one trained network (its activations, a float64 copy, a dimension estimate),
    kept while the cells of that network run in this process; ``network_key`` is ``TrainedModel.key``."""
    if network_key not in _DERIVED:
        _DERIVED.clear()
        _DERIVED[network_key] = {}
    memo = _DERIVED[network_key]
    if what not in memo:
        memo[what] = make()
    return memo[what]


def training_record(trained: TrainedModel) -> dict:
    """What a reader checks convergence on: epochs run, the best (kept) epoch, and the cap; a run that
    stopped before the cap stopped early, on its validation accuracy."""
    metrics, config = trained.metrics, trained.config
    epochs, best = metrics.get("epochs_trained", float("nan")), metrics.get("best_epoch", float("nan"))
    if config.patience and epochs < config.epochs and epochs - best < config.patience:
        # Checkpoints trained before the fix of c2b7529 recorded a run that reached the cap one epoch
        # short (the epoch hook never saw its last epoch). A stop on patience leaves exactly `patience`
        # epochs after the best one, so fewer mark such a run.
        epochs = config.epochs
    return {"epochs_trained": epochs, "best_epoch": best, "max_epochs": config.epochs}


def with_seed(config: TrainConfig, seed: int) -> TrainConfig:
    return replace(config, seed=seed)
