"""Norms of weight matrices, convolutions and pruning residuals ``R = W - W_pruned``.

Dense layers get the spectral norm (largest singular value, float64). A convolution is the
linear map ``x -> conv2d(x, W)`` at its real stride, padding and dilation on a given input
shape. Every bound of ``theory`` uses ``layer_operator_norm``, a CERTIFIED upper bound: for
convolutions ``conv_operator_norm`` (Sedghi, Gupta, Long, ICLR 2019, through the 2-D DFT of
the kernel; the dense matrix on small inputs), with a documented rounding slack; the power iteration
``conv_operator_norm_estimate`` is kept as a labelled estimate (it can stop below the true
norm when the top singular values are close).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TheoryError

# Absolute rounding slack added to certified norms, in units of a Frobenius-type scale that
# bounds the norm itself (||W||_F; sqrt(kh kw) ||K||_F for every DFT matrix K^(u, v)). The float64
# FFT and eigenvalue errors are ~1e-16 * (log n + matrix side) of that scale: 1e-10 covers them
# by orders of magnitude and changes no bound visibly.
ROUNDING_SLACK = 1e-10
DENSE_LIMIT = 1024  # input sizes C*H*W up to which conv norms come from the dense matrix (exact, < 0.1 s)


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
    ``ROUNDING_SLACK ||W||_F`` is added to ``max_g ||W_g||_2`` for float64 rounding.
    """
    (kh, kw), (sh, sw), (dh, dw) = weight.shape[-2:], _pair(stride), _pair(dilation)
    overlap = conv_overlap(kh, sh, dh) * conv_overlap(kw, sw, dw)
    blocks = weight.detach().double().reshape(groups, weight.shape[0] // groups, -1)
    block_norm = float(torch.linalg.matrix_norm(blocks, ord=2).max()) + ROUNDING_SLACK * frobenius_norm(weight)
    return math.sqrt(overlap) * block_norm


def _check_conv_input_shape(weight: torch.Tensor, input_shape: Sequence[int], groups: int) -> None:
    if weight.ndim != 4:
        raise TheoryError(f"conv weight must have 4 dimensions (out, in/groups, kh, kw), got shape "
                          f"{tuple(weight.shape)}")
    if len(input_shape) != 3 or input_shape[0] != weight.shape[1] * groups:
        raise TheoryError(f"input_shape {tuple(input_shape)} does not match conv weight of shape "
                          f"{tuple(weight.shape)} (expected ({weight.shape[1] * groups}, H, W))")
    if not torch.isfinite(weight).all():
        raise TheoryError("conv weight contains NaN or infinite values")


def circular_conv_norm(weight: torch.Tensor, torus_shape: Sequence[int], dilation: int | Sequence[int] = 1,
                       groups: int = 1) -> float:
    """Exact operator norm of the stride-1 CIRCULAR convolution with ``weight`` on an (n_h, n_w) torus.

    Sedghi, Gupta, Long (ICLR 2019), Theorem 6: the singular values of a circular convolution
    are those of the ``C_out x C_in`` matrices ``K^(u, v) = sum_{a, b} K[:, :, a, b] w_h^(u a) w_w^(v b)``
    (``w = exp(-2 pi i / n)``) over all frequencies (u, v), so the norm is
    ``max_{u, v} ||K^(u, v)||_2``. Dilation spreads the taps (the kernel is embedded with holes);
    groups make the map block diagonal (max over groups). Computed in float64 with ``rfft2``
    (a real kernel gives ``K^(-u, -v) = conj K^(u, v)``, same singular values) and the largest
    eigenvalue of ``K^H K``.
    """
    (dh, dw), (nh, nw) = _pair(dilation), (int(torus_shape[0]), int(torus_shape[1]))
    out_channels, in_per_group, kh, kw = weight.shape
    extent = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    if extent[0] > nh or extent[1] > nw:
        raise TheoryError(f"torus_shape {(nh, nw)} is smaller than the dilated kernel extent {extent}")
    kernel = weight.detach().double().reshape(groups, out_channels // groups, in_per_group, kh, kw)
    spread = torch.zeros(*kernel.shape[:3], nh, nw, dtype=torch.float64)
    spread[..., :extent[0]:dh, :extent[1]:dw] = kernel
    spectrum = torch.fft.rfft2(spread)                        # (g, out/g, in/g, nh, nw // 2 + 1)
    per_frequency = spectrum.permute(0, 3, 4, 1, 2)            # (g, nh, nw // 2 + 1, out/g, in/g)
    small_side = per_frequency if per_frequency.shape[-2] >= per_frequency.shape[-1] else per_frequency.mT
    gram = small_side.mH @ small_side
    # numpy's LAPACK loop over the batch: torch's batched complex eigvalsh can take 30x longer
    # when it runs on more than one thread on a busy machine.
    largest = max(float(np.linalg.eigvalsh(gram.numpy())[..., -1].max()), 0.0)
    return math.sqrt(largest)


def dense_conv_norm(weight: torch.Tensor, input_shape: Sequence[int], stride: int | Sequence[int] = 1,
                    padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1) -> float:
    """Certified ``||conv||_2`` from the dense matrix (conv2d of every basis image), for small inputs.

    ``spectral_norm`` of the ``out x (C H W)`` matrix, float64, plus ``ROUNDING_SLACK ||A||_F``.
    Memory and time grow with ``(C H W)^2``: meant for ``C H W`` up to a few thousand.
    """
    _check_conv_input_shape(weight, input_shape, groups)
    size = math.prod(input_shape)
    basis = torch.eye(size, dtype=torch.float64).reshape(size, *input_shape)
    dense = F.conv2d(basis, weight.detach().double(), None, _pair(stride), _pair(padding), _pair(dilation), groups)
    dense = dense.reshape(size, -1)
    return spectral_norm(dense) + ROUNDING_SLACK * frobenius_norm(dense)


def conv_operator_norm(weight: torch.Tensor, input_shape: Sequence[int], stride: int | Sequence[int] = 1,
                       padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                       groups: int = 1, dense_limit: int = DENSE_LIMIT) -> float:
    """CERTIFIED upper bound on ``max ||conv2d(x, W)||_2 / ||x||_2`` over inputs of shape (C, H, W).

    A zero-padded conv is ``P C E`` (per axis, input side H, padding p, dilated kernel extent e):
    ``E`` places x at offsets ``p .. p + H - 1`` of a torus of side ``n = max(H + p, e)``, zeros
    elsewhere (an isometry); ``C`` is the stride-1 circular convolution there; ``P`` keeps the
    valid outputs at the real stride (a coordinate restriction, norm <= 1). ``P C E`` is the
    zero-padded conv because every tap of a valid output reads padded index
    ``i in [0, H + 2p)``, and ``i mod n`` holds the right value: ``i`` itself when ``i < n``,
    else ``i - n in [0, p)``, a zero like the padding it stands for. So
    ``||conv|| <= ||C|| = circular_conv_norm(W, (n_h, n_w))`` (Sedghi, Gupta, Long, ICLR 2019);
    the torus ``H + 2p + e`` of the paper's construction works too but is looser or equal.
    The value returned is ``min(||C|| + slack, conv_norm_upper_bound)``, both sound;
    ``slack = ROUNDING_SLACK * sqrt(kh kw) ||W||_F`` covers float64 rounding. Equality (up to
    the slack) holds when the zero-padded map has the circulant's norm, e.g. a kernel with one
    non-zero tap, or as H, W grow at stride 1. On small inputs (``C H W <= dense_limit``) the
    circulant can be loose (1.5x at 2x2), so there the exact ``dense_conv_norm`` replaces it.
    """
    _check_conv_input_shape(weight, input_shape, groups)
    cheap = conv_norm_upper_bound(weight, stride, dilation, groups)
    if math.prod(input_shape) <= dense_limit:
        return min(dense_conv_norm(weight, input_shape, stride, padding, dilation, groups), cheap)
    (ph, pw), (kh, kw), (dh, dw) = _pair(padding), weight.shape[-2:], _pair(dilation)
    torus = (max(input_shape[1] + ph, dh * (kh - 1) + 1), max(input_shape[2] + pw, dw * (kw - 1) + 1))
    slack = ROUNDING_SLACK * math.sqrt(kh * kw) * frobenius_norm(weight)
    return min(circular_conv_norm(weight, torus, dilation, groups) + slack, cheap)


def _transpose_output_padding(in_size: int, out_size: int, kernel: int, stride: int,
                              padding: int, dilation: int) -> int:
    return in_size - ((out_size - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1)


def conv_operator_norm_estimate(weight: torch.Tensor, input_shape: Sequence[int],
                                stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                                dilation: int | Sequence[int] = 1, groups: int = 1, iterations: int = 300,
                                tol: float = 1e-6, seed: int = 0) -> float:
    """ESTIMATE (not a bound) of the conv operator norm by power iteration; a lower bound in exact arithmetic.

    Power iteration ``v <- A^T A v / ||A^T A v||`` (A = conv2d, A^T = conv_transpose2d) in
    float32 from a seeded random start, until the estimate ``sqrt(||A^T A v||)`` (unit v)
    changes by less than ``tol`` (relative) or ``iterations`` are done; the last vector is
    re-evaluated in float64. When the top two singular values are close the iteration
    converges slowly and the stopping rule fires early, BELOW the true norm (a 3x3 conv acting
    as diag(1, 0.999) on two channels gives 0.9996 for a norm of 1). Use ``conv_operator_norm``
    in bounds.
    """
    _check_conv_input_shape(weight, input_shape, groups)
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
    return estimate


def layer_operator_norm(layer: nn.Module, input_shape: Sequence[int] | None = None,
                        weight: torch.Tensor | None = None) -> float:
    """Certified upper bound on the operator norm of a Linear layer or of a Conv2d at ``input_shape`` (C, H, W).

    Linear: ``||W||_2 + ROUNDING_SLACK ||W||_F``; Conv2d: ``conv_operator_norm``.
    ``weight`` replaces the layer's own (e.g. a pruned weight or a residual).
    """
    if not isinstance(layer, (nn.Linear, nn.Conv2d)):
        raise TheoryError(f"layer {type(layer).__name__}: expected Linear or Conv2d")
    w = layer.weight if weight is None else weight
    if not torch.isfinite(w).all():
        raise TheoryError(f"layer {type(layer).__name__}: weight contains NaN or infinite values")
    if isinstance(layer, nn.Linear):
        return spectral_norm(w) + ROUNDING_SLACK * frobenius_norm(w)
    if input_shape is None:
        raise TheoryError("layer_operator_norm of a Conv2d needs input_shape (C, H, W)")
    return conv_operator_norm(w, input_shape, layer.stride, layer.padding, layer.dilation, layer.groups)


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
