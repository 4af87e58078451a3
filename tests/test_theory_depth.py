"""Depth profile: one row per layer, exact factor identities, agreement with the per-layer calls."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pruning import hard_threshold
from test_theory_bounds import random_networks
from theory import (TheoryError, depth_profile, jacobian_estimate, measured_perturbation, module_lipschitz_constants,
                    multi_layer_bounds, tail_lipschitz)


def small_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    inputs = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return model.double().eval(), inputs


@pytest.mark.parametrize("mode", ["alone", "onward"])
def test_factor_identities_hold_and_rows_follow_the_layers(mode):
    model, inputs = small_cnn()
    table = depth_profile(model, inputs, hard_threshold, 0.6, mode)
    assert list(table["layer"]) == [0, 1, 2, 3] and list(table["remaining_depth"]) == [3, 2, 1, 0]
    assert list(table["name"]) == ["0", "3", "6", "9"]
    assert list(table["layers_pruned"]) == ([1, 1, 1, 1] if mode == "alone" else [4, 3, 2, 1])
    assert (table["per_sample_bound"] >= table["measured"]).all()
    residual, bound = table["residual"].to_numpy(), table["per_sample_bound"].to_numpy()
    assert residual * table["gain"].to_numpy() == pytest.approx(table["measured"].to_numpy(), rel=1e-12)
    assert residual * table["gain"].to_numpy() * table["looseness"].to_numpy() == pytest.approx(bound, rel=1e-12)
    assert residual * table["bound_gain"].to_numpy() == pytest.approx(bound, rel=1e-12)
    last = table.iloc[-1]  # nothing after the output layer: the bound is the measurement
    assert last["gain"] == pytest.approx(1.0) and last["looseness"] == pytest.approx(1.0)


def test_alone_rows_match_the_single_layer_calls():
    model, inputs = small_cnn()
    table = depth_profile(model, inputs, hard_threshold, 0.5, "alone")
    constants = module_lipschitz_constants(model, (1, 8, 8))
    layers = [m for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    for index, layer in enumerate(layers):
        pruned = {index: hard_threshold(layer.weight.detach(), 0.5)}
        row = table.iloc[index]
        assert row["measured"] == pytest.approx(float(measured_perturbation(model, pruned, inputs).mean()), rel=1e-12)
        assert row["jacobian_estimate"] == pytest.approx(float(jacobian_estimate(model, pruned, inputs).mean()),
                                                         rel=1e-12)
        assert row["tail_lipschitz"] == pytest.approx(tail_lipschitz(model, index, (1, 8, 8), constants), rel=1e-12)
        assert row["bound_gain"] == pytest.approx(row["tail_lipschitz"], rel=1e-12)


def test_onward_rows_match_multi_layer_bounds():
    model, inputs = small_cnn()
    table = depth_profile(model, inputs, hard_threshold, 0.7, "onward")
    layers = [m for m in model if isinstance(m, (nn.Linear, nn.Conv2d))]
    for index in range(len(layers)):
        pruned = {i: hard_threshold(layers[i].weight.detach(), 0.7) for i in range(index, len(layers))}
        bounds = multi_layer_bounds(model, pruned, inputs)
        row = table.iloc[index]
        assert row["per_sample_bound"] == pytest.approx(float(bounds["per_sample"].mean()), rel=1e-12)
        assert row["measured"] == pytest.approx(float(bounds["measured"].mean()), rel=1e-12)
        # the bound's gain is a residual-weighted mean of the tails T_j of the pruned layers
        constants = module_lipschitz_constants(model, (1, 8, 8), pruned)
        tails = [tail_lipschitz(model, j, (1, 8, 8), constants) for j in pruned]
        assert row["tail_lipschitz"] == pytest.approx(tails[0], rel=1e-12)
        assert min(tails) * (1 - 1e-12) <= row["bound_gain"] <= max(tails) * (1 + 1e-12)


def test_zero_sparsity_gives_zero_change_and_undefined_ratios():
    model, inputs = small_cnn()
    table = depth_profile(model, inputs, hard_threshold, 0.0, "onward")
    assert (table["measured"] == 0).all() and (table["per_sample_bound"] == 0).all()
    assert table["gain"].isna().all() and table["looseness"].isna().all()


def test_bad_input_raises():
    model, inputs = small_cnn()
    with pytest.raises(TheoryError, match="mode must be one of"):
        depth_profile(model, inputs, hard_threshold, 0.5, "together")
    for sparsity in (1.0, -0.1, math.nan, "half"):
        with pytest.raises(TheoryError, match="sparsity must be a number in"):
            depth_profile(model, inputs, hard_threshold, sparsity)
    with pytest.raises(TheoryError, match=r"pruned weight of layer 0 .* has shape"):
        depth_profile(model, inputs, lambda w, s: w[:1], 0.5)
    with pytest.raises(TheoryError, match="pruned weight of layer 0 contains NaN"):
        depth_profile(model, inputs, lambda w, s: w * math.nan, 0.5)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=random_networks(), sparsity=st.floats(0.0, 0.95), mode=st.sampled_from(["alone", "onward"]))
def test_depth_profile_bounds_are_sound(network, sparsity, mode):
    model, input_shape = network
    inputs = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    table = depth_profile(model, inputs, hard_threshold, sparsity, mode)
    assert (table["per_sample_bound"] >= table["measured"] * (1 - 1e-9) - 1e-12).all()
