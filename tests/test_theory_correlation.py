"""Pooled rank correlation with a bootstrap interval."""
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from theory import TheoryError, pooled_rank_correlation


def test_rho_is_spearman_with_ties_and_the_interval_brackets_it():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, size=60).astype(float)  # many ties
    y = x + rng.normal(scale=2.0, size=60)
    rho, low, high = pooled_rank_correlation(x, y, n_boot=1000)
    assert rho == pytest.approx(spearmanr(x, y).statistic, rel=1e-12)
    assert low < rho < high and 0 < low and high < 1


def test_monotone_data_give_one_and_resolution_beyond_steps_of_point_two():
    x = np.arange(20.0)
    assert pooled_rank_correlation(x, np.exp(x / 5)) == pytest.approx((1.0, 1.0, 1.0), rel=1e-12)
    layers_by_sparsities = np.tile(np.arange(4.0), 5) + 0.1 * np.repeat(np.arange(5.0), 4)
    rho, _, _ = pooled_rank_correlation(layers_by_sparsities, layers_by_sparsities ** 2 + np.sin(7 * np.arange(20)))
    assert abs(rho * 5 - round(rho * 5)) > 1e-6  # 20 pooled cells: not restricted to multiples of 0.2


def test_interval_covers_the_population_value_in_most_draws():
    # bivariate normal with correlation r has Spearman rho = (6 / pi) arcsin(r / 2)
    rng, r, hits = np.random.default_rng(1), 0.6, 0
    truth = 6 / math.pi * math.asin(r / 2)
    for _ in range(60):
        x = rng.normal(size=80)
        y = r * x + math.sqrt(1 - r * r) * rng.normal(size=80)
        _, low, high = pooled_rank_correlation(x, y, n_boot=400, confidence=0.9, seed=int(rng.integers(1000)))
        hits += low <= truth <= high
    assert hits >= 46  # nominal 54 of 60; 46 is more than 3 binomial standard deviations below


def test_seeded_and_constant_input():
    x, y = np.arange(10.0), np.arange(10.0) % 3
    assert pooled_rank_correlation(x, y, seed=3) == pooled_rank_correlation(x, y, seed=3)
    rho, low, high = pooled_rank_correlation(np.ones(5), np.arange(5.0))
    assert math.isnan(rho) and math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize("kwargs,word", [({"x": [1.0, 2.0]}, "at least 3"),
                                         ({"y": [1.0, 2.0, 3.0, 4.0]}, "same length"),
                                         ({"x": [1.0, math.nan, 3.0]}, "x contains NaN"),
                                         ({"confidence": 1.0}, "confidence"), ({"n_boot": 0}, "n_boot")])
def test_bad_input_raises(kwargs, word):
    args = {"x": [1.0, 2.0, 3.0], "y": [3.0, 1.0, 2.0]}
    args.update(kwargs)
    with pytest.raises(TheoryError, match=word):
        pooled_rank_correlation(**args)
