"""Norms of weight matrices, convolutions and pruning residuals ``R = W - W_pruned``.

Dense layers get the exact spectral norm (largest singular value). A convolution is
the linear map ``x -> conv2d(x, W)`` at its real stride, padding and dilation on a
given input shape; its operator norm is found by power iteration on ``A^T A`` with
``conv2d`` / ``conv_transpose2d`` and checked against the sound bound of
``conv_norm_upper_bound``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import TheoryError


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def frobenius_norm(matrix: torch.Tensor) -> float:
    """``||M||_F = sqrt(sum M_ij^2)`` (any shape, computed in float64)."""
    return float(torch.linalg.vector_norm(matrix.detach().double()))


def spectral_norm(matrix: torch.Tensor) -> float:
    """Exact ``||M||_2`` (largest singular value) of a 2-D matrix, in float64.

    Computed as ``sqrt(lambda_max(M M^T))`` on the smaller side's Gram matrix (symmetric
    eigenvalues are far cheaper than an SVD; squaring costs only relative precision ~1e-16).
    """
    if matrix.ndim != 2:
        raise TheoryError(f"spectral_norm needs a 2-D matrix, got shape {tuple(matrix.shape)}")
    m = matrix.detach().double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    if gram.numel() == 0:
        return 0.0
    return math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))


def conv_overlap(kernel: int, stride: int, dilation: int = 1) -> int:
    """Most kernel taps that can land on one input pixel along one axis: ``ceil(k / (s / gcd(s, d)))``."""
    period = stride // math.gcd(stride, dilation)
    return math.ceil(kernel / period)


def conv_norm_upper_bound(weight: torch.Tensor, stride: int | Sequence[int] = 1,
                          dilation: int | Sequence[int] = 1, groups: int = 1) -> float:
    """Sound bound ``||conv_W||_2 <= sqrt(c_h c_w) * max_g ||W_g||_2`` for any input shape and padding.

    ``W_g`` is group g's kernel reshaped to ``(out/groups, in/groups * kh * kw)``, and
    ``c = conv_overlap(k, s, d)`` per axis. Proof: output position p is ``W_mat patch_p(x)``,
    so ``||conv(x)||^2 <= ||W_mat||^2 sum_p ||patch_p(x)||^2 <= ||W_mat||^2 c_h c_w ||x||^2``
    because each input pixel lies in at most ``c_h c_w`` patches (zero padding only removes
    terms). For stride 1 this is the ``sqrt(kh kw)`` bound of Sedghi, Gupta, Long (ICLR 2019).
    """
    (kh, kw), (sh, sw), (dh, dw) = weight.shape[-2:], _pair(stride), _pair(dilation)
    overlap = conv_overlap(kh, sh, dh) * conv_overlap(kw, sw, dw)
    blocks = weight.detach().double().reshape(groups, weight.shape[0] // groups, -1)
    return math.sqrt(overlap) * float(torch.linalg.matrix_norm(blocks, ord=2).max())


def _transpose_output_padding(in_size: int, out_size: int, kernel: int, stride: int,
                              padding: int, dilation: int) -> int:
    return in_size - ((out_size - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1)


def conv_operator_norm(weight: torch.Tensor, input_shape: Sequence[int], stride: int | Sequence[int] = 1,
                       padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1,
                       iterations: int = 300, tol: float = 1e-6, safety: float = 1e-4,
                       seed: int = 0) -> float:
    """Operator norm ``max ||conv2d(x, W)||_2 / ||x||_2`` over inputs of shape ``input_shape = (C, H, W)``.

    Power iteration ``v <- A^T A v / ||A^T A v||`` (A = conv2d, A^T = conv_transpose2d) in
    float32 from a seeded random start, until the estimate ``sqrt(||A^T A v||)`` (unit v)
    changes by less than ``tol`` (relative) or ``iterations`` are done; the last vector is
    re-evaluated in float64. The estimate is a lower bound of the true norm; we return it
    times ``(1 + safety)``, capped by the sound ``conv_norm_upper_bound``. So the value is an upper bound in practice (it is exact up to
    the safety margin once the iteration has converged) but not a certified one when the
    top two singular values are so close that the iteration has not converged.
    """
    if len(input_shape) != 3 or input_shape[0] != weight.shape[1] * groups:
        raise TheoryError(f"input_shape {tuple(input_shape)} does not match conv weight of shape "
                          f"{tuple(weight.shape)} (expected ({weight.shape[1] * groups}, H, W))")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    generator = torch.Generator().manual_seed(seed)
    basis = torch.randn(1, *input_shape, generator=generator)
    w32 = weight.detach().float()
    out = F.conv2d(basis[:1], w32, None, stride, padding, dilation, groups)
    output_padding = tuple(_transpose_output_padding(input_shape[1 + a], out.shape[2 + a], w32.shape[2 + a],
                                                     stride[a], padding[a], dilation[a]) for a in range(2))

    def conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, None, stride, padding, dilation, groups)

    def gram(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(conv(x, w), w, None, stride, padding, output_padding, groups, dilation)

    # power iteration in float32; the last vector is re-evaluated in float64
    v = basis[:1] / basis[:1].norm()
    estimate = 0.0
    for _ in range(iterations):
        g = gram(v, w32)
        norm = float(g.norm())
        if norm == 0.0:
            return 0.0
        previous, estimate = estimate, math.sqrt(norm)
        v = g / norm
        if abs(estimate - previous) <= tol * estimate:
            break
    v = v.double() / v.double().norm()
    estimate = math.sqrt(float(gram(v, weight.detach().double()).norm()))
    return min(estimate * (1.0 + safety), conv_norm_upper_bound(weight, stride, dilation, groups))


def layer_operator_norm(layer: nn.Module, input_shape: Sequence[int] | None = None,
                        weight: torch.Tensor | None = None, **power_options) -> float:
    """``||W||_2`` of a Linear layer, or the conv operator norm at ``input_shape`` (C, H, W).

    ``weight`` replaces the layer's own (e.g. a pruned weight or a residual).
    """
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise TheoryError(f"layer {type(layer).__name__}: expected Linear or Conv2d")
    w = layer.weight if weight is None else weight
    if isinstance(layer, nn.Linear):
        return spectral_norm(w)
    if isinstance(layer, nn.Conv2d):
        if input_shape is None:
            raise TheoryError("layer_operator_norm of a Conv2d needs input_shape (C, H, W)")
        return conv_operator_norm(w, input_shape, layer.stride, layer.padding, layer.dilation,
                                  layer.groups, **power_options)
    raise TheoryError(f"layer {type(layer).__name__}: expected Linear or Conv2d")


def residual_norms(layer: nn.Module, pruned_weight: torch.Tensor,
                   input_shape: Sequence[int] | None = None) -> dict[str, float]:
    """Norms of ``R = W - W_pruned``: 'frobenius', 'operator' and (conv) the cheap 'operator_upper_bound'."""
    if tuple(pruned_weight.shape) != tuple(layer.weight.shape):
        raise TheoryError(f"pruned weight has shape {tuple(pruned_weight.shape)}, expected "
                          f"{tuple(layer.weight.shape)}")
    residual = layer.weight.detach() - pruned_weight.detach()
    norms = {"frobenius": frobenius_norm(residual),
             "operator": layer_operator_norm(layer, input_shape, residual)}
    if isinstance(layer, nn.Conv2d):
        norms["operator_upper_bound"] = conv_norm_upper_bound(residual, layer.stride, layer.dilation,
                                                              layer.groups)
    return norms
