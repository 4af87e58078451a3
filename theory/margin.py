"""Margin certificates: when a bound on the output change cannot flip a prediction.

With logit margin ``gamma(x) = f_y(x) - max_{j != y} f_j(x)`` and ``d = f~(x) - f(x)``,
``f~_y - f~_j = (f_y - f_j) + (d_y - d_j) >= gamma - sqrt(2) ||d||_2`` because
``|d_y - d_j| <= sqrt(2) ||d||_2``. So a correctly classified x keeps its label when
``bound(x) < gamma(x) / sqrt(2)`` (GUIDE section 2), and the fraction of such x is a
lower bound on the accuracy after pruning.
"""
from __future__ import annotations

import math

import torch

from .errors import TheoryError


def _check(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise TheoryError(f"logits must have shape (N, classes >= 2), got {tuple(logits.shape)}")
    if labels.shape != logits.shape[:1]:
        raise TheoryError(f"labels of shape {tuple(labels.shape)} do not match logits of shape "
                          f"{tuple(logits.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise TheoryError(f"labels must lie in [0, {logits.shape[1] - 1}]")


def logit_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``gamma(x) = f_y(x) - max_{j != y} f_j(x)`` per sample (negative when misclassified)."""
    _check(logits, labels)
    labels = labels.long()
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], -math.inf)
    return true - others.max(dim=1).values


def certified_mask(bound: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """True where x is correctly classified and ``bound(x) < gamma(x) / sqrt(2)``."""
    margin = logit_margin(logits, labels)
    if bound.shape != margin.shape:
        raise TheoryError(f"bound of shape {tuple(bound.shape)} does not match {tuple(margin.shape)} samples")
    return (margin > 0) & (bound.to(margin.dtype) < margin / math.sqrt(2))


def certified_accuracy(bound: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples certified by ``certified_mask``: a lower bound on accuracy after pruning."""
    return float(certified_mask(bound, logits, labels).float().mean())


def interval_certified_mask(lower: torch.Tensor, upper: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """True where sound output intervals ``lower <= f~(x) <= upper`` force the label:
    ``lower_y > max_{j != y} upper_j``. Tighter than the l2 test when the intervals are tight.
    """
    _check(upper, labels)
    labels = labels.long()
    true_low = lower.gather(1, labels[:, None]).squeeze(1)
    others = upper.scatter(1, labels[:, None], -math.inf).max(dim=1).values
    return true_low > others


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose argmax is the label."""
    _check(logits, labels)
    return float((logits.argmax(dim=1) == labels).float().mean())
