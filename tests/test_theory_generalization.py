"""Sokolic et al. generalization bound (arXiv 1605.08254, Theorem 3)."""
import math

import pytest

from theory import (TheoryError, input_margin_lower_bound, log_complexity_ratio_after_shrink,
                    pruned_output_margin, sokolic_generalization_bound)


def test_matches_hand_evaluated_formula():
    k, c_m, gamma, m, classes, delta = 3, 2.0, 0.5, 10_000, 10, 0.05
    # sqrt(log 2 * 10 * 2^4 * 2^3 / (0.5^3 * 10000)) + sqrt(2 log 20 / 10000)
    first = math.sqrt(0.6931471805599453 * 10 * 16 * 8 / (0.125 * 10_000))
    second = math.sqrt(2 * 2.995732273553991 / 10_000)
    assert sokolic_generalization_bound(k, c_m, gamma, m, classes, delta) == pytest.approx(first + second, rel=1e-12)


def test_monotone_in_k_when_covering_ratio_exceeds_half():
    values = [sokolic_generalization_bound(k, 1.0, 1.0, 1000, 10) for k in range(0, 40, 3)]
    assert all(a < b for a, b in zip(values, values[1:]))
    # with C_M / gamma < 1/2 the term 2^k (C_M/gamma)^k shrinks as k grows
    values = [sokolic_generalization_bound(k, 0.1, 1.0, 1000, 10) for k in range(0, 40, 3)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_large_k_does_not_overflow():
    assert sokolic_generalization_bound(5000, 3.0, 0.1, 60_000, 10) == math.inf
    assert math.isfinite(log_complexity_ratio_after_shrink(5000, 1.0, 0.5))


def test_margin_shrink_helpers():
    k = 10
    ratio = math.exp(log_complexity_ratio_after_shrink(k, 1.0, 0.5))
    before = sokolic_generalization_bound(k, 1.0, 1.0, 10**6, 10, 0.5)
    after = sokolic_generalization_bound(k, 1.0, 0.5, 10**6, 10, 0.5)
    confidence = math.sqrt(2 * math.log(2) / 10**6)
    assert (after - confidence) / (before - confidence) == pytest.approx(ratio) == pytest.approx(2 ** 5)
    assert pruned_output_margin(2.0, 1 / math.sqrt(2)) == pytest.approx(1.0)
    assert input_margin_lower_bound(math.sqrt(2), 2.0) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs,word", [({"margin": 0}, "margin"), ({"k": -1}, "k"),
                                         ({"delta": 1.0}, "delta"), ({"num_samples": 0}, "num_samples")])
def test_bad_parameters_raise(kwargs, word):
    args = {"k": 2, "covering_constant": 1.0, "margin": 0.5, "num_samples": 100, "num_classes": 10, "delta": 0.1}
    args.update(kwargs)
    with pytest.raises(TheoryError, match=word):
        sokolic_generalization_bound(**args)
