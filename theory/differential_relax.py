"""Boxes and linear relaxations for the twin (unpruned, difference) network of ``differential``.

At every module input the twin network carries the unpruned value ``v``, the difference
``d = v~ - v`` and the pruned value ``p = v~ = v + d``. A ``TwinBox`` holds elementwise
bounds on all three. Through a weight layer (``W~ = W - R``, biases equal)::

    v' = W v + b,    d' = W~ d - R v = W d - R p,    p' = W~ p + b,

through a relu ``d' = relu(v + d) - relu(v)`` and through a max-pool
``d' = max_w(v + d) - max_w(v)`` (ReluDiff, Paulsen, Wang, Wang, ICSE 2020; NeuroDiff,
Paulsen, Wang, Wang, Wang, ASE 2020).

``forward_box`` is interval arithmetic on the three quantities, intersected with each other.
``backward_nonlinear`` replaces a linear function ``a . v' + c . d'`` of a relu or pooling
output by an upper plane in ``(v, d)``, choosing per unit and specification the tighter of:

* twin: ``(a - c) h(v) + c h(p)``, each ``h`` relaxed as in CROWN / DeepPoly (exact when
  stable), so every case where both networks' units are stable is exact;
* difference: ``a h(v) + c g(d)``, with ``g`` = relu difference bounded by the chords of
  ``max(d, 0)`` (above) and ``min(d, 0)`` (below) over ``[d_lo, d_hi]``, or for max-pooling
  ``min_i d_i <= g <= max_i d_i`` (each side by the chord plane of ``maxpool_relaxation``).

Twin is used where both units are stable; elsewhere the plane with the smaller maximum over
the unit's box (a heuristic; both are sound).
Max-pooling must be non-overlapping (kernel == stride, no padding, dilation 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .network import PRUNABLE, apply_module


@dataclass
class TwinBox:
    """Bounds ``v_lo <= v <= v_hi``, ``d_lo <= d <= d_hi``, ``p_lo <= p <= p_hi`` (batch first)."""

    v_lo: torch.Tensor
    v_hi: torch.Tensor
    d_lo: torch.Tensor
    d_hi: torch.Tensor
    p_lo: torch.Tensor
    p_hi: torch.Tensor

    def tightened(self) -> TwinBox:
        """Intersect each box with what the other two imply (``p = v + d``)."""
        p_lo, p_hi = meet(self.p_lo, self.p_hi, self.v_lo + self.d_lo, self.v_hi + self.d_hi)
        d_lo, d_hi = meet(self.d_lo, self.d_hi, p_lo - self.v_hi, p_hi - self.v_lo)
        v_lo, v_hi = meet(self.v_lo, self.v_hi, p_lo - d_hi, p_hi - d_lo)
        return TwinBox(v_lo, v_hi, d_lo, d_hi, p_lo, p_hi)

    def map(self, fn) -> TwinBox:
        return TwinBox(*(fn(t) for t in (self.v_lo, self.v_hi, self.d_lo, self.d_hi, self.p_lo, self.p_hi)))


def meet(lo1, hi1, lo2, hi2):
    """Intersection of two boxes for the same value; where rounding makes them cross, their hull."""
    lo, hi = torch.maximum(lo1, lo2), torch.minimum(hi1, hi2)
    crossed = lo > hi
    return torch.where(crossed, torch.minimum(lo, hi), lo), torch.where(crossed, torch.maximum(lo, hi), hi)


def _affine_interval(module, weight, lo, hi, with_bias=True):
    mid = apply_module(module, (lo + hi) / 2, weight, with_bias)
    rad = apply_module(module, (hi - lo) / 2, weight.abs(), with_bias=False)
    return mid - rad, mid + rad


def windows(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C * Ho * Wo, kernel^2): the non-overlapping pooling windows."""
    b, c, h, w = x.shape
    ho, wo = h // kernel, w // kernel
    x = x[:, :, :ho * kernel, :wo * kernel].reshape(b, c, ho, kernel, wo, kernel)
    return x.permute(0, 1, 2, 4, 3, 5).reshape(b, c * ho * wo, kernel * kernel)


def unwindow(coef: torch.Tensor, kernel: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of ``windows`` for (B, S, U, kernel^2) coefficients; uncovered pixels get 0."""
    b, s = coef.shape[:2]
    c, h, w = shape
    ho, wo = h // kernel, w // kernel
    x = coef.reshape(b, s, c, ho, wo, kernel, kernel).permute(0, 1, 2, 3, 5, 4, 6)
    out = coef.new_zeros(b, s, c, h, w)
    out[:, :, :, :ho * kernel, :wo * kernel] = x.reshape(b, s, c, ho * kernel, wo * kernel)
    return out


def forward_box(module: nn.Module, weight: torch.Tensor | None, box: TwinBox) -> TwinBox:
    """Interval bounds after ``module``; ``weight`` is the pruned weight of a pruned layer, else None."""
    if isinstance(module, PRUNABLE):
        w = module.weight.detach().to(box.v_lo.dtype)
        pruned = w if weight is None else weight.to(w.dtype)
        v_lo, v_hi = _affine_interval(module, w, box.v_lo, box.v_hi)
        p_lo, p_hi = _affine_interval(module, pruned, box.p_lo, box.p_hi)
        d_lo, d_hi = _difference_interval(module, w, pruned, box)
        return TwinBox(v_lo, v_hi, d_lo, d_hi, p_lo, p_hi).tightened()
    if isinstance(module, nn.ReLU):
        d_lo = torch.maximum(box.d_lo.clamp_max(0), box.p_lo.relu() - box.v_hi.relu())
        d_hi = torch.minimum(box.d_hi.clamp_min(0), box.p_hi.relu() - box.v_lo.relu())
        return TwinBox(box.v_lo.relu(), box.v_hi.relu(), d_lo, d_hi, box.p_lo.relu(), box.p_hi.relu()).tightened()
    if isinstance(module, nn.MaxPool2d):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        shape = (box.v_lo.shape[0], box.v_lo.shape[1], box.v_lo.shape[2] // k, box.v_lo.shape[3] // k)

        def pool_max(t):
            return windows(t, k).amax(-1).reshape(shape)

        d_lo = torch.maximum(windows(box.d_lo, k).amin(-1).reshape(shape), pool_max(box.p_lo) - pool_max(box.v_hi))
        d_hi = torch.minimum(pool_max(box.d_hi), pool_max(box.p_hi) - pool_max(box.v_lo))
        return TwinBox(pool_max(box.v_lo), pool_max(box.v_hi), d_lo, d_hi,
                       pool_max(box.p_lo), pool_max(box.p_hi)).tightened()
    return box.map(lambda t: apply_module(module, t))  # Flatten, Dropout, Identity


def _difference_interval(module, w, pruned, box):
    """``d' = W~ d - R v`` and ``d' = W d - R p`` by interval arithmetic, intersected."""
    residual = w - pruned
    if not residual.any():
        return _affine_interval(module, w, box.d_lo, box.d_hi, with_bias=False)
    bounds = []
    for through_d, through_r, r_lo, r_hi in ((pruned, residual, box.v_lo, box.v_hi),
                                             (w, residual, box.p_lo, box.p_hi)):
        lo1, hi1 = _affine_interval(module, through_d, box.d_lo, box.d_hi, with_bias=False)
        lo2, hi2 = _affine_interval(module, through_r, r_lo, r_hi, with_bias=False)
        bounds.append((lo1 - hi2, hi1 - lo2))
    return meet(*bounds[0], *bounds[1])


class Relaxation(NamedTuple):
    """``sum_t lo_slope_t z_t + lo_icpt <= h(z) <= sum_t up_slope_t z_t + up_icpt`` per unit.

    Slopes have shape (B, 1, U, T) (T inputs per unit), intercepts (B, 1, U).
    """

    up_slope: torch.Tensor
    up_icpt: torch.Tensor
    lo_slope: torch.Tensor
    lo_icpt: torch.Tensor

    def exact(self) -> torch.Tensor:
        """(B, 1, U): where the upper and lower planes coincide (the unit is stable)."""
        return (self.up_slope == self.lo_slope).all(-1) & (self.up_icpt == self.lo_icpt)

    def term(self, coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Upper plane of ``coef * h(z)`` for coefficients (B, S, U): slopes (B, S, U, T), constants (B, S, U)."""
        positive = coef >= 0
        slope = coef.unsqueeze(-1) * torch.where(positive.unsqueeze(-1), self.up_slope, self.lo_slope)
        return slope, coef * torch.where(positive, self.up_icpt, self.lo_icpt)


def relu_relaxation(lo: torch.Tensor, hi: torch.Tensor) -> Relaxation:
    """CROWN: upper chord ``u (z - l) / (u - l)``, lower ``z`` if ``u >= -l`` else 0 (exact when stable)."""
    lo, hi = lo.flatten(1).unsqueeze(1), hi.flatten(1).unsqueeze(1)
    unstable = (lo < 0) & (hi > 0)
    active = (lo >= 0).to(lo.dtype)
    up = torch.where(unstable, hi / torch.where(unstable, hi - lo, 1.0), active)
    low = torch.where(unstable, (hi >= -lo).to(lo.dtype), active)
    return Relaxation(up.unsqueeze(-1), torch.where(unstable, -up * lo, 0.0), low.unsqueeze(-1), torch.zeros_like(lo))


def relu_difference_relaxation(d_lo: torch.Tensor, d_hi: torch.Tensor) -> Relaxation:
    """``min(d, 0) <= relu(v + d) - relu(v) <= max(d, 0)``, each side by its chord over [d_lo, d_hi]."""
    lo, hi = d_lo.flatten(1).unsqueeze(1), d_hi.flatten(1).unsqueeze(1)
    mixed = (lo < 0) & (hi > 0)
    gap = torch.where(mixed, hi - lo, 1.0)
    up = torch.where(mixed, hi / gap, (lo >= 0).to(lo.dtype))
    low = torch.where(mixed, -lo / gap, (hi <= 0).to(lo.dtype))
    return Relaxation(up.unsqueeze(-1), torch.where(mixed, -up * lo, 0.0),
                      low.unsqueeze(-1), torch.where(mixed, -low * hi, 0.0))


def _one_hot(index: torch.Tensor, taps: int, dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(index, taps).to(dtype)


def maxpool_relaxation(lo: torch.Tensor, hi: torch.Tensor, kernel: int) -> Relaxation:
    """Planes of ``m = max_w z`` over the window's box.

    Below (DeepPoly, Singh et al., POPL 2019): ``m >= z_j``, j = the tap of largest lower bound.
    Above: with j = the tap of largest upper bound ``u_j`` and ``U = max_{i != j} u_i``,
    ``m <= max(z_j, U) = z_j + relu(U - z_j)``, and the convex ``relu(U - z_j)`` lies below its chord
    over ``[l_j, u_j]``::

        m <= z_j + (U - l_j) (u_j - z_j) / (u_j - l_j)      (= z_j when l_j >= U: j dominates)

    Never above DeepPoly's constant ``max_i u_i`` (it equals ``u_j`` at ``z_j = u_j`` and ``U`` at
    ``z_j = l_j``).
    """
    lo_w, hi_w = windows(lo, kernel), windows(hi, kernel)
    taps = lo_w.shape[-1]
    index = lo_w.argmax(-1)
    top, top_index = hi_w.max(-1)
    others = hi_w.scatter(-1, top_index.unsqueeze(-1), -torch.inf).amax(-1)
    top_lo = lo_w.gather(-1, top_index.unsqueeze(-1)).squeeze(-1)
    dominant = top_lo >= others
    gap = torch.where(dominant, 1.0, top - top_lo)  # > 0 where j does not dominate
    slope = torch.where(dominant, 1.0, (top - others) / gap)
    up = _one_hot(top_index, taps, lo.dtype) * slope.unsqueeze(-1)
    up_icpt = torch.where(dominant, 0.0, (others - top_lo) * top / gap)
    pick = _one_hot(index, taps, lo.dtype)
    return Relaxation(up.unsqueeze(1), up_icpt.unsqueeze(1), pick.unsqueeze(1), torch.zeros_like(up_icpt).unsqueeze(1))


def maxpool_difference_relaxation(d_lo: torch.Tensor, d_hi: torch.Tensor, kernel: int) -> Relaxation:
    """``min_i d_i <= max_w(v + d) - max_w(v) <= max_i d_i``, each side by the planes of ``maxpool_relaxation``."""
    upper = maxpool_relaxation(d_lo, d_hi, kernel)
    lower = maxpool_relaxation(-d_hi, -d_lo, kernel)  # max_i(-d_i) relaxed, then negated
    return Relaxation(upper.up_slope, upper.up_icpt, lower.up_slope, -lower.up_icpt)


def _plane_max(slope_v, slope_d, const, box_windows):
    """Per unit, the maximum of ``slope_v . v + slope_d . d + const`` over the unit's box: (B, S, U)."""
    v_mid, v_rad, d_mid, d_rad = box_windows
    return (const + (slope_v * v_mid + slope_v.abs() * v_rad + slope_d * d_mid + slope_d.abs() * d_rad).sum(-1))


def backward_nonlinear(module: nn.Module, box: TwinBox, coef_v: torch.Tensor,
                       coef_d: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Upper plane of ``coef_v . v' + coef_d . d'`` (v', d' after a ReLU/MaxPool2d) in its inputs.

    ``coef_*`` have shape (B, S, *output shape); ``coef_d`` None means d = 0 here. Returns the
    coefficients on (v, d) at the module input and the constant (B, S).
    """
    shape = tuple(box.v_lo.shape[1:])
    if isinstance(module, nn.ReLU):
        kernel = 1
        rel_v, rel_p = relu_relaxation(box.v_lo, box.v_hi), relu_relaxation(box.p_lo, box.p_hi)
        rel_g = relu_difference_relaxation(box.d_lo, box.d_hi)
        split = (lambda t: t.flatten(1).unsqueeze(-1))
    else:
        kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        rel_v, rel_p = maxpool_relaxation(box.v_lo, box.v_hi, kernel), maxpool_relaxation(box.p_lo, box.p_hi, kernel)
        rel_g = maxpool_difference_relaxation(box.d_lo, box.d_hi, kernel)
        split = (lambda t: windows(t, kernel))
    a = coef_v.flatten(2)
    if coef_d is None:
        slope, const = rel_v.term(a)
        return _merge(slope, kernel, shape), None, const.sum(-1)
    c = coef_d.flatten(2)
    twin_v, twin_vc = rel_v.term(a - c)
    twin_p, twin_pc = rel_p.term(c)
    diff_v, diff_vc = rel_v.term(a)
    diff_g, diff_gc = rel_g.term(c)
    unit_box = tuple(t.unsqueeze(1) for t in (split((box.v_lo + box.v_hi) / 2), split((box.v_hi - box.v_lo) / 2),
                                              split((box.d_lo + box.d_hi) / 2), split((box.d_hi - box.d_lo) / 2)))
    twin_slope_v, twin_const, diff_const = twin_v + twin_p, twin_vc + twin_pc, diff_vc + diff_gc
    exact = rel_v.exact() & rel_p.exact()  # both units stable: twin is exact
    use_twin = exact | (_plane_max(twin_slope_v, twin_p, twin_const, unit_box)
                        <= _plane_max(diff_v, diff_g, diff_const, unit_box))
    slope_v = torch.where(use_twin.unsqueeze(-1), twin_slope_v, diff_v)
    slope_d = torch.where(use_twin.unsqueeze(-1), twin_p, diff_g)
    const = torch.where(use_twin, twin_const, diff_const).sum(-1)
    return _merge(slope_v, kernel, shape), _merge(slope_d, kernel, shape), const


def _merge(slope: torch.Tensor, kernel: int, shape: tuple[int, ...]) -> torch.Tensor:
    """(B, S, U, T) slopes -> coefficients (B, S, *input shape)."""
    if kernel == 1:
        return slope.squeeze(-1).reshape(*slope.shape[:2], *shape)
    return unwindow(slope, kernel, shape)
