"""Margin certificates."""
import math

import pytest
import torch

from theory import TheoryError, certified_accuracy, certified_mask, interval_certified_mask, logit_margin


def test_logit_margin_by_hand():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 2.0, -1.0]])
    labels = torch.tensor([0, 0])
    torch.testing.assert_close(logit_margin(logits, labels), torch.tensor([0.5, -2.0]))


def test_certificate_threshold_is_margin_over_sqrt2_and_tight():
    logits = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 0])
    just_below = 1 / math.sqrt(2) - 1e-6
    bound = torch.tensor([just_below, 1 / math.sqrt(2) + 1e-6, 0.0])
    assert certified_mask(bound, logits, labels).tolist() == [True, False, False]  # misclassified never counts
    assert certified_accuracy(bound, logits, labels) == pytest.approx(1 / 3)
    # the threshold is tight: a perturbation of norm 1/sqrt(2) along (-1, 1) reaches a tie
    change = torch.tensor([-0.5, 0.5])
    assert change.norm().item() == pytest.approx(1 / math.sqrt(2))
    assert float((logits[0] + change)[0] - (logits[0] + change)[1]) == pytest.approx(0.0)


def test_random_perturbations_within_the_certificate_never_flip():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2000, 5, generator=generator)
    labels = logits.argmax(dim=1)
    margin = logit_margin(logits, labels)
    direction = torch.nn.functional.normalize(torch.randn(2000, 5, generator=generator), dim=1)
    radius = 0.999 * margin / math.sqrt(2)
    flipped = (logits + radius[:, None] * direction).argmax(dim=1) != labels
    assert certified_mask(radius, logits, labels).all() and not flipped.any()


def test_interval_certificate():
    lower = torch.tensor([[2.0, -1.0, 0.0], [2.0, 1.0, 0.0]])
    upper = torch.tensor([[3.0, 1.9, 1.0], [3.0, 2.5, 1.0]])
    assert interval_certified_mask(lower, upper, torch.tensor([0, 0])).tolist() == [True, False]


def test_bad_shapes_raise():
    with pytest.raises(TheoryError, match="labels"):
        logit_margin(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TheoryError, match=r"\[0, 3\]"):
        logit_margin(torch.zeros(2, 4), torch.tensor([0, 4]))
    with pytest.raises(TheoryError, match="bound"):
        certified_mask(torch.zeros(5), torch.zeros(2, 4), torch.tensor([0, 1]))
