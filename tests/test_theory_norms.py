"""Norms: certified conv operator norms against dense SVDs, the power-iteration estimate, cheap bounds."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from theory import (TheoryError, circular_conv_norm, conv_norm_upper_bound, conv_operator_norm,
                    conv_operator_norm_estimate, frobenius_norm, layer_bounds, layer_operator_norm, residual_norms,
                    spectral_norm)


def dense_conv_matrix(weight, input_shape, stride, padding, dilation=1, groups=1):
    """Columns = conv2d (zero padding) of each basis vector of the input space."""
    size = int(np.prod(input_shape))
    basis = torch.eye(size, dtype=torch.float64).reshape(size, *input_shape)
    out = F.conv2d(basis, weight.double(), None, stride, padding, dilation, groups)
    return out.reshape(size, -1).T


def exact_norm(matrix):
    return torch.linalg.matrix_norm(matrix, ord=2).item()


def near_degenerate_conv():
    """3x3 conv (padding 1) whose only tap is diag(1, 0.999): the identity scaled per channel, norm 1."""
    weight = torch.zeros(2, 2, 3, 3, dtype=torch.float64)
    weight[0, 0, 1, 1], weight[1, 1, 1, 1] = 1.0, 0.999
    return weight


def test_near_degenerate_reproducer_is_certified_and_the_estimate_is_not():
    weight, shape = near_degenerate_conv(), (2, 6, 6)
    assert exact_norm(dense_conv_matrix(weight, shape, 1, 1)) == pytest.approx(1.0, rel=1e-14)
    for dense_limit in (0, 10_000):  # the DFT bound, and the dense matrix
        assert 1.0 <= conv_operator_norm(weight, shape, 1, 1, dense_limit=dense_limit) <= 1.0 + 1e-9
    assert conv_operator_norm_estimate(weight, shape, 1, 1) < 0.9999  # the old value; it was used in bounds


def test_bounds_hold_on_the_near_degenerate_network():
    # pruning a 1x1 conv that feeds channel 0 only: the change passes the next conv with gain exactly 1
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 3, padding=1, bias=False), nn.Flatten()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.05], [0.3, 1.0]]).view(2, 2, 1, 1))
        model[1].weight.copy_(near_degenerate_conv())
    pruned = model[0].weight.detach().clone()
    pruned[0, 1] = 0.0
    inputs = torch.rand(16, 2, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bounds = layer_bounds(model, 0, pruned, inputs)
    assert torch.all(bounds["per_sample"] >= bounds["measured"])
    assert torch.all(bounds["crown"] >= bounds["measured"] * (1 - 1e-12))  # exact on a linear tail, to rounding
    torch.testing.assert_close(bounds["per_sample"], bounds["measured"], rtol=1e-8, atol=0)


@pytest.mark.parametrize("stride,padding,dilation,shape", [
    (1, 0, 1, (2, 6, 6)), (1, 1, 1, (2, 6, 5)), (2, 0, 1, (2, 7, 7)), (2, 1, 1, (2, 6, 6)),
    (3, 2, 1, (2, 8, 7)), (1, 1, 2, (2, 7, 7)), ((2, 1), (0, 1), 1, (2, 6, 6)),
])
def test_estimate_and_certified_norm_bracket_the_dense_spectral_norm(stride, padding, dilation, shape):
    torch.manual_seed(1)
    weight = torch.randn(3, 2, 3, 3)
    exact = exact_norm(dense_conv_matrix(weight, shape, stride, padding, dilation))
    assert exact * (1 - 2e-4) <= conv_operator_norm_estimate(weight, shape, stride, padding, dilation) <= exact * (
        1 + 1e-9)
    for dense_limit in (0, 10_000):
        certified = conv_operator_norm(weight, shape, stride, padding, dilation, dense_limit=dense_limit)
        assert exact <= certified <= conv_norm_upper_bound(weight, stride, dilation)
    assert certified == pytest.approx(exact, rel=1e-9)  # the dense path is exact


def test_certified_norm_approaches_the_true_norm_on_larger_inputs():
    torch.manual_seed(0)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    ratios = []
    for side in (8, 24):
        exact = exact_norm(dense_conv_matrix(weight, (2, side, side), 1, 1))
        ratios.append(conv_operator_norm(weight, (2, side, side), 1, 1, dense_limit=0) / exact)
    assert 1.0 <= ratios[1] < ratios[0] and ratios[1] < 1.01
    assert conv_norm_upper_bound(weight) / exact > 1.3  # the kernel-reshaping bound stays loose


@pytest.mark.parametrize("dilation,groups,torus", [(1, 1, (5, 5)), (1, 1, (4, 6)), (2, 1, (7, 6)), (1, 2, (5, 5)),
                                                   ((1, 2), 2, (6, 7))])
def test_circular_norm_equals_the_dense_circular_convolution(dilation, groups, torus):
    torch.manual_seed(2)
    weight = torch.randn(4, 4 // groups, 3, 2, dtype=torch.float64)
    dilation_pair = (dilation, dilation) if isinstance(dilation, int) else dilation
    size = (4, *torus)  # output i reads inputs i .. i + extent - 1 modulo the torus side
    basis = torch.eye(int(np.prod(size)), dtype=torch.float64).reshape(-1, *size)
    wrap = [d * (k - 1) for d, k in zip(dilation_pair, weight.shape[-2:])]
    dense = F.conv2d(F.pad(basis, (0, wrap[1], 0, wrap[0]), mode="circular"), weight, None, 1, 0, dilation_pair,
                     groups).reshape(basis.shape[0], -1).T
    assert circular_conv_norm(weight, torus, dilation, groups) == pytest.approx(exact_norm(dense), rel=1e-12)


@st.composite
def convolutions(draw):
    """A small conv (weight, input shape, stride, padding, dilation, groups), some with degenerate spectra."""
    groups = draw(st.sampled_from([1, 1, 2]))
    in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    height = draw(st.integers(max(1, extent[0] - 2 * padding[0]), 7))
    width = draw(st.integers(max(1, extent[1] - 2 * padding[1]), 7))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    shape = (out_channels, in_channels // groups, kh, kw)
    kind = draw(st.sampled_from(["random", "one_tap_repeated", "near_equal"]))
    weight = torch.randn(shape, generator=generator, dtype=torch.float64)
    if kind != "random":  # one tap U diag(s) V^T with equal or nearly equal singular values, others tiny
        gap = 0.0 if kind == "one_tap_repeated" else draw(st.sampled_from([1e-3, 1e-6, 1e-9]))
        weight *= 0.0 if kind == "one_tap_repeated" else 1e-7
        side = min(shape[:2])
        u, _, vh = torch.linalg.svd(torch.randn(shape[:2], generator=generator, dtype=torch.float64))
        values = torch.tensor([1.0 - gap * i for i in range(side)], dtype=torch.float64)
        weight[:, :, draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))] += u[:, :side] @ torch.diag(
            values) @ vh[:side]
    return weight, (in_channels, height, width), stride, padding, dilation, groups


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv=convolutions(), dense_limit=st.sampled_from([0, 0, 0, 10_000]))
def test_certified_norm_is_never_below_the_dense_svd(conv, dense_limit):
    weight, shape, stride, padding, dilation, groups = conv
    exact = exact_norm(dense_conv_matrix(weight, shape, stride, padding, dilation, groups))
    certified = conv_operator_norm(weight, shape, stride, padding, dilation, groups, dense_limit=dense_limit)
    assert exact <= certified <= conv_norm_upper_bound(weight, stride, dilation, groups)


@st.composite
def matrices_with_close_singular_values(draw):
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    u, _, vh = torch.linalg.svd(torch.randn(rows, cols, generator=generator, dtype=torch.float64),
                                full_matrices=False)
    gap = draw(st.sampled_from([0.0, 1e-12, 1e-6, 1e-2, 0.5]))
    scale = draw(st.sampled_from([1e-6, 1.0, 1e4]))
    values = scale * torch.clamp(1.0 - gap * torch.arange(u.shape[1], dtype=torch.float64), min=0.0)
    return (u * values) @ vh


@settings(max_examples=300, deadline=None)
@given(matrix=matrices_with_close_singular_values())
def test_linear_operator_norm_is_never_below_the_svd(matrix):
    layer = nn.Linear(matrix.shape[1], matrix.shape[0]).double()
    exact = torch.linalg.svdvals(matrix)[0].item()
    assert exact <= layer_operator_norm(layer, weight=matrix) <= exact * (1 + 1e-9) + 1e-300


def test_conv_upper_bound_is_sqrt_kernel_area_for_stride_one():
    torch.manual_seed(2)
    weight = torch.randn(4, 3, 3, 3)
    reshaped = torch.linalg.matrix_norm(weight.double().reshape(4, -1), ord=2).item()
    assert conv_norm_upper_bound(weight, 1) == pytest.approx(3.0 * reshaped)
    assert conv_norm_upper_bound(weight, 3) == pytest.approx(reshaped)  # no overlap: one patch per pixel


def test_spectral_and_frobenius_norms_match_numpy():
    rng = np.random.default_rng(0)
    for shape in [(5, 9), (9, 5), (1, 4)]:
        matrix = rng.normal(size=shape)
        assert spectral_norm(torch.tensor(matrix)) == pytest.approx(np.linalg.norm(matrix, 2), rel=1e-10)
        assert frobenius_norm(torch.tensor(matrix)) == pytest.approx(np.linalg.norm(matrix), rel=1e-12)


def test_residual_norms_of_a_pruned_linear_layer():
    torch.manual_seed(3)
    layer = nn.Linear(6, 4)
    pruned = layer.weight.detach() * (layer.weight.detach().abs() > 0.2)
    residual = (layer.weight.detach() - pruned).double().numpy()
    norms = residual_norms(layer, pruned)
    assert norms["operator"] == pytest.approx(np.linalg.norm(residual, 2), rel=1e-9)
    assert norms["operator"] >= np.linalg.norm(residual, 2)
    assert norms["frobenius"] == pytest.approx(np.linalg.norm(residual), rel=1e-10)


def test_bad_inputs_raise_clear_errors():
    conv = nn.Conv2d(2, 3, 3)
    with pytest.raises(TheoryError, match="input_shape"):
        conv_operator_norm(conv.weight, (3, 6, 6))
    with pytest.raises(TheoryError, match="input_shape"):
        conv_operator_norm_estimate(conv.weight, (3, 6, 6))
    with pytest.raises(TheoryError, match="needs input_shape"):
        layer_operator_norm(conv)
    with pytest.raises(TheoryError, match=r"\(3, 2, 3, 3\)"):
        residual_norms(conv, torch.zeros(3, 2, 2, 2))
    with pytest.raises(TheoryError, match="ReLU"):
        layer_operator_norm(nn.ReLU())
    with pytest.raises(TheoryError, match="NaN"):
        conv_operator_norm(torch.full((3, 2, 3, 3), math.nan), (2, 6, 6))
    with pytest.raises(TheoryError, match="torus_shape"):
        circular_conv_norm(conv.weight, (2, 2))
