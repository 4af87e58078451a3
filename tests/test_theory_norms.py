"""Norms: exact spectral norms, convolution operator norms against dense matrices, cheap bounds."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from theory import (TheoryError, conv_norm_upper_bound, conv_operator_norm, frobenius_norm, layer_operator_norm,
                    residual_norms, spectral_norm)


def dense_conv_matrix(weight, input_shape, stride, padding, dilation=1):
    """Columns = conv2d of each basis vector of the input space."""
    size = int(np.prod(input_shape))
    basis = torch.eye(size, dtype=torch.float64).reshape(size, *input_shape)
    out = F.conv2d(basis, weight.double(), None, stride, padding, dilation)
    return out.reshape(size, -1).T


@pytest.mark.parametrize("stride,padding,dilation,shape", [
    (1, 0, 1, (2, 6, 6)), (1, 1, 1, (2, 6, 5)), (2, 0, 1, (2, 7, 7)), (2, 1, 1, (2, 6, 6)),
    (3, 2, 1, (2, 8, 7)), (1, 1, 2, (2, 7, 7)), ((2, 1), (0, 1), 1, (2, 6, 6)),
])
def test_conv_operator_norm_matches_dense_spectral_norm(stride, padding, dilation, shape):
    torch.manual_seed(1)
    weight = torch.randn(3, 2, 3, 3)
    exact = torch.linalg.matrix_norm(dense_conv_matrix(weight, shape, stride, padding, dilation), ord=2).item()
    estimate = conv_operator_norm(weight, shape, stride, padding, dilation)
    assert exact * (1 - 1e-12) <= estimate <= exact * (1 + 2e-4)  # 1e-12: the cap may equal it
    assert estimate <= conv_norm_upper_bound(weight, stride, dilation) * (1 + 1e-12)


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
    assert norms["operator"] == pytest.approx(np.linalg.norm(residual, 2), rel=1e-10)
    assert norms["frobenius"] == pytest.approx(np.linalg.norm(residual), rel=1e-10)
    assert norms["operator"] <= norms["frobenius"]


def test_bad_inputs_raise_clear_errors():
    conv = nn.Conv2d(2, 3, 3)
    with pytest.raises(TheoryError, match="input_shape"):
        conv_operator_norm(conv.weight, (3, 6, 6))
    with pytest.raises(TheoryError, match="needs input_shape"):
        layer_operator_norm(conv)
    with pytest.raises(TheoryError, match=r"\(3, 2, 3, 3\)"):
        residual_norms(conv, torch.zeros(3, 2, 2, 2))
    with pytest.raises(TheoryError, match="ReLU"):
        layer_operator_norm(nn.ReLU())
