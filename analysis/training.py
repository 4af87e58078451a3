"""Seeded, deterministic training on in-memory tensors, with checkpoints cached by config hash."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import Split, load_dataset, split_train_val
from .errors import WorkbenchError
from .models import PAPER_FC_HIDDEN, build_model
from .store import config_dict, config_hash, load_torch, save_torch


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained network (the device does not)."""

    dataset: str = "fashion-mnist"
    model: str = "fc"
    hidden: tuple[int, ...] | None = None  # fc widths; None = the paper's for the dataset
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 300
    epochs: int = 10
    train_size: int | None = None  # subsample the training split (None = all)
    val_size: int = 5000
    seed: int = 0
    variant: str = ""  # names a transformation an experiment applied to the data (part of the hash)

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise WorkbenchError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        for name in ("lr", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise WorkbenchError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.model == "fc" and self.hidden is None:
            object.__setattr__(self, "hidden", PAPER_FC_HIDDEN.get(self.dataset, (100, 100)))


@dataclass
class TrainedModel:
    model: nn.Sequential
    config: TrainConfig
    metrics: dict
    split: Split


def make_optimizer(model: nn.Module, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    lr = config.lr if lr is None else lr
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum)


def batch_order(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                batch_size: int, order: torch.Tensor) -> float:
    """One pass over ``x, y`` (already on the model's device) in the given order; mean loss.

    The data is permuted once per epoch, so every batch is a contiguous slice (no gather per step).
    """
    model.train()
    x, y = x[order], y[order]
    total = torch.zeros((), device=x.device)
    for start in range(0, len(order), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(yb)
    return (total / len(order)).item()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> dict:
    logits = predict(model, x, batch_size)
    y = y.to(logits.device)
    return {"accuracy": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item()}


def fit(config: TrainConfig, split: Split, device: torch.device, progress: bool = True) -> tuple[nn.Sequential, dict]:
    """Train a fresh model from ``config`` on ``split``; returns it with its metrics."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, tuple(split.x_train.shape[1:]), int(split.y_train.max()) + 1,
                        seed=config.seed, hidden=config.hidden).to(device)
    optimizer = make_optimizer(model, config)
    x, y = split.x_train.to(device), split.y_train.to(device)
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"train {config.model}/{config.dataset} seed {config.seed}",
               unit="epoch", disable=not progress, dynamic_ncols=True)
    for epoch in bar:
        loss = train_epoch(model, optimizer, x, y, config.batch_size, batch_order(len(x), config.seed, epoch, device))
        bar.set_postfix(loss=f"{loss:.3f}")
    train_time = time.perf_counter() - start
    metrics = {"train_time_s": train_time, "train_loss": loss,
               "val_accuracy": evaluate(model, split.x_val, split.y_val)["accuracy"] if len(split.x_val) else float("nan"),
               **{f"test_{k}": v for k, v in evaluate(model, split.x_test, split.y_test).items()}}
    return model, metrics


def dataset_split(config: TrainConfig, data_dir: Path | None = None, download: bool = True,
                  test_size: int | None = None) -> Split:
    dataset = load_dataset(config.dataset, data_dir=data_dir, download=download)
    val_size = min(config.val_size, len(dataset.x_train) // 5)
    return split_train_val(dataset, val_size, seed=0, train_size=config.train_size, test_size=test_size)


def train_or_load(config: TrainConfig, cache_dir: Path, device: torch.device, split: Split | None = None,
                  data_dir: Path | None = None, download: bool = True, progress: bool = True) -> TrainedModel:
    """The trained network for ``config``: from the checkpoint cache, or trained and cached now."""
    split = split if split is not None else dataset_split(config, data_dir, download)
    variant = f"-{config.variant}" if config.variant else ""
    path = cache_dir / "models" / f"{config.model}-{config.dataset}{variant}-{config_hash(config)}.pt"
    if path.is_file():
        entry = load_torch(path)
        model = build_model(config.model, tuple(split.x_train.shape[1:]), int(split.y_train.max()) + 1,
                            hidden=config.hidden)
        model.load_state_dict(entry["state_dict"])
        return TrainedModel(model.to(device).eval(), config, entry["metrics"], split)
    model, metrics = fit(config, split, device, progress)
    save_torch(path, {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                      "config": config_dict(config), "metrics": metrics})
    return TrainedModel(model.eval(), config, metrics, split)


class LastTrained:
    """Trains or loads networks on demand and keeps only the last one in memory."""

    def __init__(self, cache_dir: Path, device: torch.device, progress: bool = True):
        self.cache_dir, self.device, self.progress = cache_dir, device, progress
        self._last: TrainedModel | None = None

    def get(self, config: TrainConfig, split: Split) -> TrainedModel:
        if self._last is None or self._last.config != config:
            self._last = train_or_load(config, self.cache_dir, self.device, split=split, progress=self.progress)
        return self._last


def with_seed(config: TrainConfig, seed: int) -> TrainConfig:
    return replace(config, seed=seed)
