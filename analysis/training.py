"""Seeded, deterministic training on in-memory tensors: one loop with hooks, one evaluation.

``train_steps`` is the only optimisation loop of the workbench: training from scratch
(``fit``) and retraining a pruned network (``analysis.retraining``) both drive it through
hooks. Each epoch the data is permuted once on the device, so every batch is a contiguous
slice and no step waits for the host.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data.config import DataConfig
from .errors import WorkbenchError
from .models import PAPER_FC_HIDDEN, build_model

StepHook = Callable[[int, torch.Tensor], bool]  # (steps done, batch loss) -> stop?
EpochHook = Callable[[int, torch.Tensor], bool]  # (epochs done, mean loss) -> stop?


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained network (the device does not)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: str = "fc"
    hidden: tuple[int, ...] | None = None  # fc widths; None = the paper's for the dataset
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    lr_decay: float = 0.0  # Keras-style: the step-t learning rate is lr / (1 + lr_decay * t)
    batch_size: int = 300
    epochs: int = 10  # the most epochs; fewer when early stopping ends training
    patience: int | None = None  # stop after this many epochs without a better validation accuracy
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise WorkbenchError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        for name in ("lr", "batch_size", "epochs"):
            if getattr(self, name) <= 0:
                raise WorkbenchError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.lr_decay < 0:
            raise WorkbenchError(f"lr_decay must be >= 0, got {self.lr_decay!r}")
        if self.patience is not None and self.patience < 1:
            raise WorkbenchError(f"patience must be a positive integer or None, got {self.patience!r}")
        if self.model == "fc" and self.hidden is None:
            object.__setattr__(self, "hidden", PAPER_FC_HIDDEN.get(self.data.dataset, (100, 100)))

    @property
    def dataset(self) -> str:
        return self.data.dataset


def make_optimizer(model: nn.Module, config: TrainConfig, lr: float | None = None) -> torch.optim.Optimizer:
    lr = config.lr if lr is None else lr
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum)


def batch_order(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                batch_size: int, seed: int, max_steps: int, after_step: StepHook | None = None,
                after_epoch: EpochHook | None = None) -> int:
    """Minimise cross-entropy over ``x, y`` (on the model's device) for at most ``max_steps`` steps.

    Epoch ``e`` visits the samples in ``batch_order(len(x), seed, e)``. A hook returning True
    stops training; the number of steps taken is returned.
    """
    step, epoch = 0, 0
    while step < max_steps:
        order = batch_order(len(x), seed, epoch, x.device)
        xs, ys = x[order], y[order]
        total = torch.zeros((), device=x.device)
        model.train()
        for start in range(0, len(order), batch_size):
            xb, yb = xs[start:start + batch_size], ys[start:start + batch_size]
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(yb)
            step += 1
            if (after_step is not None and after_step(step, loss)) or step >= max_steps:
                return step
        epoch += 1
        if after_epoch is not None and after_epoch(epoch, total / len(order)):
            return step
    return step


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched, on the model's device."""
    model.eval()
    parameter = next(model.parameters(), None)
    device = x.device if parameter is None else parameter.device
    return torch.cat([model(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> dict:
    """Accuracy and mean cross-entropy of ``model`` on ``x, y``."""
    logits = predict(model, x, batch_size)
    y = y.to(logits.device)
    return {"accuracy": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item()}


class EarlyStopping:
    """Epoch hook: keep the weights of the best validation accuracy; stop after ``patience`` worse epochs."""

    def __init__(self, model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, patience: int | None):
        self.model, self.x_val, self.y_val, self.patience = model, x_val, y_val, patience
        self.best_accuracy, self.best_epoch, self.epochs = -1.0, 0, 0
        self.best_state: dict | None = None
        self.last_loss = float("nan")

    def __call__(self, epoch: int, mean_loss: torch.Tensor) -> bool:
        self.epochs, self.last_loss = epoch, mean_loss.item()
        if self.patience is None or not len(self.x_val):
            return False
        accuracy = evaluate(self.model, self.x_val, self.y_val)["accuracy"]
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def num_classes(split) -> int:
    """Classes of a split: the checked count of its dataset (labels 0..C-1, not the largest label seen)."""
    if split.num_classes is None:
        raise WorkbenchError("the split does not say how many classes it has; build it with split_train_val")
    return split.num_classes


def fit(config: TrainConfig, split, device: torch.device, progress: bool = True) -> tuple[nn.Sequential, dict]:
    """Train a fresh model from ``config`` on ``split``; returns it with its metrics.

    With ``config.patience`` set, training stops once the validation accuracy has not improved
    for that many epochs and the best epoch's weights are kept (``best_epoch`` in the metrics).
    Convolutional nets train in channels-last memory format (about 20% faster on CPU) and are
    returned in the default format, so the returned model computes what its checkpoint will.
    """
    torch.manual_seed(config.seed)
    model = build_model(config.model, tuple(split.x_train.shape[1:]), num_classes(split),
                        seed=config.seed, hidden=config.hidden).to(device)
    x, y = split.x_train.to(device), split.y_train.to(device)
    if x.dim() == 4:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + config.lr_decay * step))
    stopper = EarlyStopping(model, split.x_val.to(device), split.y_val.to(device), config.patience)
    bar = tqdm(total=config.epochs, desc=f"train {config.model}/{config.data.label} seed {config.seed}",
               unit="epoch", disable=not progress, dynamic_ncols=True)

    def after_step(step: int, loss: torch.Tensor) -> bool:
        schedule.step()
        return False

    def after_epoch(epoch: int, loss: torch.Tensor) -> bool:
        stop = stopper(epoch, loss)
        bar.update(1)
        bar.set_postfix(loss=f"{stopper.last_loss:.3f}", val=f"{stopper.best_accuracy:.4f}")
        return stop

    start = time.perf_counter()
    steps_per_epoch = -(-len(x) // config.batch_size)
    steps = train_steps(model, optimizer, x, y, config.batch_size, config.seed, config.epochs * steps_per_epoch,
                        after_step=after_step if config.lr_decay else None, after_epoch=after_epoch)
    epochs = -(-steps // steps_per_epoch)  # the hook does not see an epoch that ends at the step cap
    bar.close()
    stopper.restore_best()
    model = model.to(memory_format=torch.contiguous_format)
    metrics = {"train_time_s": time.perf_counter() - start, "train_loss": stopper.last_loss,
               "epochs_trained": epochs,
               "best_epoch": stopper.best_epoch if config.patience else epochs,
               "val_accuracy": evaluate(model, split.x_val, split.y_val)["accuracy"] if len(split.x_val)
               else float("nan"),
               **{f"test_{k}": v for k, v in evaluate(model, split.x_test, split.y_test).items()}}
    return model.eval(), metrics
