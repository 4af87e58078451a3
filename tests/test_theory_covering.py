"""Greedy covering numbers, the fitted covering constant, and the generalization bound before/after pruning."""
import math

import numpy as np
import pytest
import torch

from theory import (CoveringNumbers, TheoryError, covering_constant, covering_numbers, pruned_generalization_bounds,
                    sokolic_generalization_bound)


def brute_force_greedy_count(points, rho):
    """Farthest-point traversal written out plainly, stopping at covering radius <= rho."""
    centres = [0]
    nearest = np.linalg.norm(points - points[0], axis=1)
    while nearest.max() > rho:
        centres.append(int(nearest.argmax()))
        nearest = np.minimum(nearest, np.linalg.norm(points - points[centres[-1]], axis=1))
    return centres


def test_counts_match_a_plain_traversal_and_form_a_separated_net():
    points = np.random.default_rng(0).normal(size=(300, 5))
    radii = [0.5, 1.0, 2.0, 4.0]
    covering = covering_numbers(points, radii)
    for rho, count in zip(radii, covering.counts):
        centres = brute_force_greedy_count(points, rho)
        assert count == len(centres)
        distances = np.linalg.norm(points[:, None] - points[centres][None], axis=2)
        assert distances.min(axis=1).max() <= rho  # a cover
        if len(centres) > 1:
            between = distances[centres][:, np.arange(len(centres))] + np.eye(len(centres)) * 1e9
            assert between.min() > rho  # and rho-separated, hence N_cover(rho) <= count <= N_cover(rho / 2)
    assert list(covering.counts) == sorted(covering.counts, reverse=True)


def test_circle_counts_grow_like_one_over_rho():
    angles = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    circle = np.c_[np.cos(angles), np.sin(angles)]
    radii = np.array([0.02, 0.04, 0.08, 0.16])
    covering = covering_numbers(circle, radii)
    slope = np.polyfit(np.log(1 / radii), np.log(covering.counts), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.1)
    # a ball of radius rho holds an arc of angle 4 arcsin(rho / 2) of the unit circle: a lower bound on any cover
    assert np.all(covering.counts >= 2 * np.pi / (4 * np.arcsin(radii / 2)) - 1)


def test_covering_constant_is_the_upper_envelope():
    covering = CoveringNumbers(np.array([0.1, 0.2, 0.4, 1.0]), np.array([500, 120, 30, 1000]), 1000)
    expected = max(0.1 * 500 ** 0.5, 0.2 * 120 ** 0.5, 0.4 * 30 ** 0.5)  # the saturated scale is left out
    c_m = covering_constant(covering, 2)
    assert c_m == pytest.approx(expected)
    assert np.all(covering.counts[:3] <= (c_m / covering.radii[:3]) ** 2 * (1 + 1e-12))
    square = covering_numbers(np.random.default_rng(1).random((3000, 2)), [0.05, 0.1, 0.2])
    assert covering_constant(square, 2) == pytest.approx(1.0, rel=0.3)  # the unit square: N ~ (1 / rho)^2


def test_generalization_bounds_before_and_after_pruning():
    result = pruned_generalization_bounds(3.0, (2.0, 4.0), 0.5, 0.25, 2.0, 10, 10_000, 0.05)
    assert result["bound_before"] == sokolic_generalization_bound(3.0, 2.0, 0.5, 10_000, 10, 0.05)
    assert result["bound_after"] > result["bound_before"]
    assert result["bound_after_high"] == sokolic_generalization_bound(4.0, 2.0, 0.25, 10_000, 10, 0.05)
    assert result["bound_after_low"] == sokolic_generalization_bound(2.0, 2.0, 0.25, 10_000, 10, 0.05)
    assert pruned_generalization_bounds(3.0, (2.0, 4.0), 0.5, -0.1, 2.0, 10, 10_000)["bound_after"] == math.inf


def test_generalization_bounds_with_measured_covering_numbers_refit_c_m_per_k():
    covering = covering_numbers(np.random.default_rng(2).random((1500, 2)), [0.05, 0.1, 0.2])
    result = pruned_generalization_bounds(2.0, (1.5, 2.5), 0.3, 0.2, covering, 10, 1500)
    assert result["covering_constant"] == covering_constant(covering, 2.0)
    low_end = sokolic_generalization_bound(1.5, covering_constant(covering, 1.5), 0.2, 1500, 10)
    high_end = sokolic_generalization_bound(2.5, covering_constant(covering, 2.5), 0.2, 1500, 10)
    assert result["bound_after_high"] == max(low_end, high_end)  # convex in k: the maximum is at an end
    assert result["bound_after_low"] <= result["bound_after"] <= result["bound_after_high"]


@pytest.mark.parametrize("call,word", [
    (lambda: covering_numbers(np.zeros((0, 3)), [1.0]), "points"),
    (lambda: covering_numbers(np.full((3, 2), np.nan), [1.0]), "NaN"),
    (lambda: covering_numbers(np.zeros((3, 2)), [0.0, 1.0]), "radii"),
    (lambda: covering_numbers(np.zeros((3, 2)), [1.0], start=3), "start"),
    (lambda: covering_constant(covering_numbers(np.eye(3), [0.1]), 2), "saturated"),
    (lambda: covering_constant(covering_numbers(np.eye(3), [2.0]), 0), "k must be"),
    (lambda: pruned_generalization_bounds(3, (4, 5), 1, 1, 1.0, 10, 100), "k_interval"),
    (lambda: pruned_generalization_bounds(3, (2, 4), 1, 1, 1.0, 10, 100, delta=1.5), "delta"),
    (lambda: pruned_generalization_bounds(3, (2, 4), 1, math.nan, 1.0, 10, 100), "margin_after"),
    (lambda: pruned_generalization_bounds(3, (2, 4), 1, 1, -1.0, 10, 100), "covering"),
    (lambda: pruned_generalization_bounds(3, (2, 4), 1, 1, 1.0, 10, 0), "num_samples"),
])
def test_bad_input_raises(call, word):
    with pytest.raises(TheoryError, match=word):
        call()


def test_torch_points_are_accepted():
    points = torch.rand(200, 3, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(covering_numbers(points, [0.3]).counts, covering_numbers(points.numpy(), [0.3]).counts)
