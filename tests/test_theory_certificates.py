"""Distribution-level certificates: exact values, empirical coverage over many draws, bad input."""
import math

import numpy as np
import pytest
import torch
from statsmodels.stats.proportion import proportion_confint
from torch import nn

from theory import (TheoryError, accuracy_lower_bound, disagreement_upper_bound, order_statistic_rank,
                    pruning_certificates, quantile_upper_bound)

TRIALS = 2000
COVERAGE_TOLERANCE = 0.02  # three standard errors of a coverage estimate from 2,000 trials at 0.9


def test_clopper_pearson_exact_values():
    assert accuracy_lower_bound([True] * 10, 0.05) == pytest.approx(0.05 ** (1 / 10), rel=1e-12)
    assert accuracy_lower_bound(np.zeros(7), 0.05) == 0.0
    assert disagreement_upper_bound(torch.zeros(30, dtype=torch.bool), 0.1) == pytest.approx(1 - 0.1 ** (1 / 30),
                                                                                           rel=1e-12)
    assert disagreement_upper_bound([1, 1, 1], 0.1) == 1.0
    outcomes = np.r_[np.ones(37), np.zeros(13)]
    low, high = proportion_confint(37, 50, alpha=0.2, method="beta")  # two-sided 0.8 = one-sided 0.9 each side
    assert accuracy_lower_bound(outcomes, 0.1) == pytest.approx(low, rel=1e-10)
    assert disagreement_upper_bound(outcomes, 0.1) == pytest.approx(high, rel=1e-10)


def test_order_statistic_needs_59_samples_for_the_95th_percentile_at_95_percent():
    values = np.arange(59.0)
    assert order_statistic_rank(59, 0.95, 0.05) == 59  # 0.95^59 = 0.0485 <= 0.05
    assert quantile_upper_bound(values, 0.95, 0.05) == 58.0
    assert quantile_upper_bound(values[:58], 0.95, 0.05) == math.inf  # 0.95^58 = 0.051
    assert order_statistic_rank(100, 0.5, 0.05) == 59  # P(Bin(100, 1/2) >= 59) = 0.044, >= 58 is 0.067


def test_dkw_rank_by_hand():
    values = np.random.default_rng(0).permutation(1000).astype(float)
    eps = math.sqrt(math.log(20) / 2000)  # 0.0387
    assert quantile_upper_bound(values, 0.5, 0.05, method="dkw") == math.ceil(1000 * (0.5 + eps)) - 1
    assert quantile_upper_bound(values[:20], 0.9, 0.05, method="dkw") == math.inf
    assert quantile_upper_bound(values, 0.5, 0.05, method="dkw") >= quantile_upper_bound(values, 0.5, 0.05)


@pytest.mark.parametrize("probability", [0.05, 0.5, 0.8, 0.97])
def test_clopper_pearson_covers_the_true_rate(probability):
    rng, delta, n = np.random.default_rng(1), 0.1, 40
    draws = rng.random((TRIALS, n)) < probability
    lower = np.array([accuracy_lower_bound(row, delta) for row in draws])
    upper = np.array([disagreement_upper_bound(row, delta) for row in draws])
    assert np.mean(lower <= probability) >= 1 - delta - COVERAGE_TOLERANCE
    assert np.mean(upper >= probability) >= 1 - delta - COVERAGE_TOLERANCE
    assert np.median(lower) > probability - 0.15 and np.median(upper) < probability + 0.15  # not vacuous


@pytest.mark.parametrize("method", ["order_statistic", "dkw"])
@pytest.mark.parametrize("distribution", ["exponential", "atoms"])
def test_quantile_bound_covers_the_true_quantile(method, distribution):
    rng, delta, q, n = np.random.default_rng(2), 0.1, 0.9, 80
    if distribution == "exponential":
        samples, truth = rng.exponential(size=(TRIALS, n)), -math.log(1 - q)
    else:  # P(0) = 0.85, P(1) = 0.15: the 0.9-quantile is 1, an atom
        samples, truth = (rng.random((TRIALS, n)) < 0.15).astype(float), 1.0
    bounds = np.array([quantile_upper_bound(row, q, delta, method) for row in samples])
    assert np.mean(bounds >= truth) >= 1 - delta - COVERAGE_TOLERANCE
    if distribution == "exponential" and method == "order_statistic":  # not vacuous either
        assert np.median(bounds) < 2 * truth


def test_pruning_certificates_on_a_small_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).double().eval()
    inputs = torch.randn(200, 6, dtype=torch.float64)
    with torch.no_grad():
        labels = model(inputs).argmax(dim=1)
    labels[:20] = (labels[:20] + 1) % 3
    pruned = {0: model[0].weight.detach() * (model[0].weight.detach().abs() > 0.2)}
    result = pruning_certificates(model, pruned, inputs, labels, delta=0.05, q=0.9)
    with torch.no_grad():
        changed = nn.functional.linear(torch.relu(nn.functional.linear(inputs, pruned[0], model[0].bias)),
                                       model[2].weight, model[2].bias)
        original = model(inputs)
    assert result["accuracy"] == pytest.approx(float((changed.argmax(1) == labels).double().mean()))
    assert result["disagreement"] == pytest.approx(float((changed.argmax(1) != original.argmax(1)).double().mean()))
    assert result["accuracy_lower_bound"] <= result["accuracy"]
    assert result["disagreement_upper_bound"] >= result["disagreement"]
    distances = (changed - original).norm(dim=1).numpy()
    assert result["quantile_upper_bound"] == quantile_upper_bound(distances, 0.9, 0.05)
    assert result["n"] == 200


@pytest.mark.parametrize("call,word", [
    (lambda: accuracy_lower_bound([1, 0], 0.0), "delta"),
    (lambda: accuracy_lower_bound([1, 0], 1.0), "delta"),
    (lambda: disagreement_upper_bound([1, 0], math.nan), "delta"),
    (lambda: quantile_upper_bound([1.0, 2.0], 1.0), "q must lie"),
    (lambda: quantile_upper_bound([1.0, 2.0], 0.5, method="bootstrap"), "method"),
    (lambda: quantile_upper_bound([], 0.5), "values must be a non-empty"),
    (lambda: quantile_upper_bound([1.0, math.inf], 0.5), "values contains NaN"),
    (lambda: accuracy_lower_bound([1, 0.5], 0.1), "booleans"),
    (lambda: accuracy_lower_bound(np.ones((2, 2)), 0.1), "correct must be a non-empty 1-D"),
])
def test_bad_input_raises(call, word):
    with pytest.raises(TheoryError, match=word):
        call()


def test_pruning_certificates_check_their_arguments():
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(TheoryError, match="labels"):
        pruning_certificates(model, {0: torch.zeros(2, 4)}, torch.randn(5, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TheoryError, match="q must lie"):
        pruning_certificates(model, {0: torch.zeros(2, 4)}, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), q=2)
