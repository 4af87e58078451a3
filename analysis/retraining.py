"""Retraining a pruned network with its masks enforced, timed until accuracy recovers."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from pruning import apply_mask

from .data import Split
from .errors import WorkbenchError
from .training import TrainConfig, batch_order, evaluate, make_optimizer


@dataclass(frozen=True)
class RetrainConfig:
    """Stop after ``max_epochs`` or once accuracy is within ``tolerance`` of the reference."""

    max_epochs: float = 5.0
    tolerance: float | None = 0.01
    eval_every: int = 50  # optimiser steps between accuracy checks
    lr_scale: float = 1.0

    def __post_init__(self):
        if self.max_epochs <= 0 or self.eval_every <= 0:
            raise WorkbenchError("max_epochs and eval_every must be positive")
        if self.tolerance is not None and not 0 <= self.tolerance < 1:
            raise WorkbenchError(f"tolerance must lie in [0, 1), got {self.tolerance}")


@dataclass
class RetrainResult:
    time_s: float  # optimiser time only; accuracy checks are not counted
    steps: int
    final_accuracy: float
    reached: bool
    history: list[dict] = field(default_factory=list)  # (time_s, step, accuracy)


def attach_masks(masks: dict[nn.Module, torch.Tensor]) -> None:
    """Make each mask persistent on its layer, so retraining cannot revive pruned weights."""
    for layer, mask in masks.items():
        apply_mask(layer, mask)


def retrain(model: nn.Module, masks: dict[nn.Module, torch.Tensor], train_config: TrainConfig, split: Split,
            reference_accuracy: float, config: RetrainConfig = RetrainConfig(),
            x_eval: torch.Tensor | None = None, y_eval: torch.Tensor | None = None) -> RetrainResult:
    """Retrain ``model`` in place with ``masks`` attached; accuracy measured on (x_eval, y_eval)."""
    device = next(model.parameters()).device
    x_eval = split.x_test if x_eval is None else x_eval
    y_eval = split.y_test if y_eval is None else y_eval
    attach_masks(masks)
    optimizer = make_optimizer(model, train_config, lr=train_config.lr * config.lr_scale)
    x, y = split.x_train.to(device), split.y_train.to(device)
    target = None if config.tolerance is None else reference_accuracy - config.tolerance
    accuracy = evaluate(model, x_eval, y_eval)["accuracy"]
    history = [{"time_s": 0.0, "step": 0, "accuracy": accuracy}]
    elapsed, step = 0.0, 0
    max_steps = int(config.max_epochs * -(-len(x) // train_config.batch_size))
    epoch = 0
    while step < max_steps and (target is None or accuracy < target):
        order = batch_order(len(x), train_config.seed + 1, epoch, device)
        for start in range(0, len(order), train_config.batch_size):
            tic = time.perf_counter()
            model.train()
            index = order[start:start + train_config.batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed += time.perf_counter() - tic
            step += 1
            if step % config.eval_every == 0 or step == max_steps:
                accuracy = evaluate(model, x_eval, y_eval)["accuracy"]
                history.append({"time_s": elapsed, "step": step, "accuracy": accuracy})
                if step >= max_steps or (target is not None and accuracy >= target):
                    break
        epoch += 1
    reached = target is not None and accuracy >= target
    return RetrainResult(elapsed, step, accuracy, reached, history)
