"""Retraining a pruned network, timed until its accuracy recovers.

The network comes as ``pruning.prune_network`` leaves it: masks attached through
``torch.nn.utils.prune``, so the optimiser can never revive a pruned weight. Training runs
through ``training.train_steps``; the clock counts optimiser steps only, not the accuracy
checks between them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import WorkbenchError
from .training import TrainConfig, evaluate, make_optimizer, train_steps


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


class _RecoveryWatch:
    """Step hook: every ``eval_every`` steps, stop the clock, measure accuracy, stop once recovered."""

    def __init__(self, model: nn.Module, x_eval, y_eval, target: float | None, eval_every: int, max_steps: int):
        self.model, self.x_eval, self.y_eval = model, x_eval, y_eval
        self.target, self.eval_every, self.max_steps = target, eval_every, max_steps
        self.cuda = next(model.parameters()).device.type == "cuda"
        self.accuracy = evaluate(model, x_eval, y_eval)["accuracy"]
        self.history = [{"time_s": 0.0, "step": 0, "accuracy": self.accuracy}]
        self.elapsed, self.tic = 0.0, time.perf_counter()

    def recovered(self) -> bool:
        return self.target is not None and self.accuracy >= self.target

    def __call__(self, step: int, loss: torch.Tensor) -> bool:
        if step % self.eval_every and step < self.max_steps:
            return False
        if self.cuda:
            torch.cuda.synchronize()
        self.elapsed += time.perf_counter() - self.tic
        self.accuracy = evaluate(self.model, self.x_eval, self.y_eval)["accuracy"]
        self.history.append({"time_s": self.elapsed, "step": step, "accuracy": self.accuracy})
        self.tic = time.perf_counter()
        return self.recovered()


def retrain(model: nn.Module, train_config: TrainConfig, split, reference_accuracy: float,
            config: RetrainConfig = RetrainConfig(), x_eval: torch.Tensor | None = None,
            y_eval: torch.Tensor | None = None) -> RetrainResult:
    """Retrain the pruned ``model`` in place; accuracy measured on (x_eval, y_eval) (default: test set)."""
    device = next(model.parameters()).device
    x_eval = split.x_test if x_eval is None else x_eval
    y_eval = split.y_test if y_eval is None else y_eval
    x, y = split.x_train.to(device), split.y_train.to(device)
    max_steps = int(config.max_epochs * -(-len(x) // train_config.batch_size))
    target = None if config.tolerance is None else reference_accuracy - config.tolerance
    watch = _RecoveryWatch(model, x_eval, y_eval, target, config.eval_every, max_steps)
    steps = 0
    if not watch.recovered():
        optimizer = make_optimizer(model, train_config, lr=train_config.lr * config.lr_scale)
        steps = train_steps(model, optimizer, x, y, train_config.batch_size, train_config.seed + 1, max_steps,
                            after_step=watch)
    return RetrainResult(watch.elapsed, steps, watch.accuracy, watch.recovered(), watch.history)
