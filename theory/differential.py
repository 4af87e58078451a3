"""Differential bounds: the worst case of ``||f~(x') - f(x')||_2`` over an l-infinity ball.

For each sample x and every ``x'`` in ``B(x) = {x' : ||x' - x||_inf <= eps} ∩ [lo, hi]^d``
(``domain``, default [0, 1]), ``differential_bounds`` returns a sound upper bound on
``max_{x' in B(x)} ||f~(x') - f(x')||_2`` and a certificate that the pruned network ``f~``
predicts the unpruned network's class everywhere in the ball. ``differential_attack`` gives
the lower side of the sandwich ``attack <= max_B ||f~ - f|| <= bound`` by projected gradient
ascent.

Method (ReluDiff, Paulsen, Wang, Wang, ICSE 2020; NeuroDiff, Paulsen, Wang, Wang, Wang,
ASE 2020): the difference ``d = v~ - v`` is propagated beside the unpruned value ``v`` as one
twin network (``differential_relax``): ``d' = W~ d - R v`` through a weight layer with residual
``R = W - W~``, ``d' = relu(v + d) - relu(v)`` through a relu. Every relu input first gets
interval bounds on ``v``, ``d`` and ``v~``, then, for the units unstable in either network,
DeepPoly/CROWN back-substitution (Singh et al., POPL 2019; Zhang et al., NeurIPS 2018) of
``±v, ±d, ±v~`` through the twin network, with a case analysis of each relu on both networks'
bounds; the output gets the same for ``±d_j`` and the class margins. The result:

* ``bound = || max(|d_lo|, |d_hi|) ||_2`` over the output's difference box ``[d_lo, d_hi]``;
* ``certified``: with ``c`` the unpruned class at x, the lower bounds of ``min_{j != c}
  f_c(x') - f_j(x')`` AND of ``min_{j != c} f~_c(x') - f~_j(x')`` over the ball are both > 0.
  Then ``argmax f~(x') = argmax f(x') = c`` for every ``x'`` in the ball: the pruned network
  agrees with the unpruned one on the whole ball (and the unpruned class is constant on it).
  A sample whose unpruned class changes inside the ball is never certified.

At ``eps = 0`` every relu is stable, every relaxation exact, and ``bound`` equals the measured
``||f~(x) - f(x)||_2`` to rounding.

Complexity: the interval pass costs about six forward passes. Back-substitution to a target
with S specification rows costs S x (multiply-adds of the modules passed backwards), twice
after the first pruned layer (``v`` and ``d`` carry coefficients). Per target and sample it
goes back only as far as ``flops_per_sample`` allows and concretises there on the interval
boxes (the region may be empty: intervals only). Coefficients are processed in chunks of at
most ``MEMORY_ELEMENTS`` numbers (the relaxations' temporaries make the peak about 60 times
that, ~1 GB). Total work <= (relu layers + 1) x ``flops_per_sample`` x N. The default budget
back-substitutes every fully connected layer of the 784-100-100-10 net to the input, but only
the output of LeNet-5 and the 8-layer CNN: their conv-layer relu inputs keep interval bounds,
which are loose (refining them all costs ~2e10 multiply-adds per sample on LeNet-5).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from .differential_relax import TwinBox, backward_nonlinear, forward_box
from .errors import TheoryError
from .network import PRUNABLE, check_inputs, check_network, forward_all, pruned_by_position, run_from
from .propagation import backward_affine, backward_cost

DEFAULT_FLOPS_PER_SAMPLE = 2e8
MEMORY_ELEMENTS = 2 ** 21


def differential_bounds(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                        eps: float, *, domain: tuple[float, float] | None = (0.0, 1.0),
                        flops_per_sample: float = DEFAULT_FLOPS_PER_SAMPLE) -> dict[str, torch.Tensor]:
    """Per-sample differential bounds over the l-infinity ball of radius ``eps`` (see the module docstring).

    ``pruned`` maps prunable-layer index -> pruned weight (one or several layers). Returns float64
    tensors of shape (N,): 'bound' (>= ||f~(x') - f(x')||_2 on the ball), 'measured' (at x),
    'pruned_margin_lower', 'unpruned_margin_lower' (lower bounds of the class-c margins on the
    ball) and 'certified' (bool); and (N, K) 'difference_lower', 'difference_upper' (box of f~ - f).
    """
    modules, weights, centre, lo, hi = _setup(model, pruned, inputs, eps, domain)
    first = min(weights)
    actual = forward_all(modules, centre)
    if actual[-1].ndim != 2 or actual[-1].shape[1] < 2:
        raise TheoryError(f"network output must have shape (N, K) with K >= 2 classes, got {tuple(actual[-1].shape)}")
    with torch.no_grad():  # the model's parameters require grad; no graph is wanted here
        boxes = _twin_boxes(modules, weights, lo, hi, first, flops_per_sample)
        result = _output_bounds(modules, weights, boxes, actual[-1].argmax(1), first, flops_per_sample)
        measured = (run_from(modules, first, actual[first], weights) - actual[-1]).norm(dim=1)
    result["measured"] = measured
    result["bound"] = torch.maximum(result["difference_lower"].abs(), result["difference_upper"].abs()).norm(dim=1)
    result["certified"] = (result["pruned_margin_lower"] > 0) & (result["unpruned_margin_lower"] > 0)
    return result


def differential_attack(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                        eps: float, *, domain: tuple[float, float] | None = (0.0, 1.0), steps: int = 40,
                        restarts: int = 4, seed: int = 0) -> torch.Tensor:
    """Largest ``||f~(x') - f(x')||_2`` found in the ball by PGD (Madry et al., ICLR 2018): a LOWER bound.

    Signed-gradient ascent on ``||f~ - f||^2`` with a step decaying from eps/2, projected on the
    box; the first start is x, the others uniform in the ball. Returns (N,) float64, the best
    value seen at any iterate (never below the value at x).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise TheoryError(f"steps must be an int >= 1, got {steps!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise TheoryError(f"restarts must be an int >= 1, got {restarts!r}")
    modules, weights, centre, lo, hi = _setup(model, pruned, inputs, eps, domain)

    def gap(x: torch.Tensor) -> torch.Tensor:
        return (run_from(modules, 0, x, weights) - run_from(modules, 0, x)).flatten(1).pow(2).sum(1)

    with torch.no_grad():
        best = gap(centre)
    generator = torch.Generator().manual_seed(seed)
    for restart in range(restarts if eps > 0 else 0):
        uniform = torch.rand(centre.shape, generator=generator, dtype=centre.dtype).to(centre.device)
        x = centre if restart == 0 else lo + (hi - lo) * uniform
        for step in range(steps):
            x = x.detach().requires_grad_(True)
            value = gap(x)
            grad, = torch.autograd.grad(value.sum(), x)
            best = torch.maximum(best, value.detach())
            size = eps * max(0.02, 0.5 * (1 - step / steps))
            x = torch.minimum(torch.maximum(x.detach() + size * grad.sign(), lo), hi)
        with torch.no_grad():
            best = torch.maximum(best, gap(x))
    return best.sqrt()


def _setup(model, pruned, inputs, eps, domain):
    modules = check_network(model)
    for position, module in enumerate(modules):
        if isinstance(module, nn.MaxPool2d):
            _check_pooling(position, module)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise TheoryError(f"eps must be a finite number >= 0, got {eps!r}")
    centre = check_inputs(modules, inputs).double()
    weights = {p: w.double() for p, w in pruned_by_position(modules, pruned).items()}
    lo, hi = centre - eps, centre + eps
    if domain is not None:
        low, high = domain
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise TheoryError(f"domain must be finite (low, high) with low < high, got {domain!r}")
        if centre.min() < low or centre.max() > high:
            raise TheoryError(f"inputs lie outside the domain [{low}, {high}] (range [{centre.min().item():.4g}, "
                              f"{centre.max().item():.4g}]); pass domain=None or rescale them")
        lo, hi = lo.clamp_min(low), hi.clamp_max(high)
    return modules, weights, centre, lo, hi


def _check_pooling(position: int, module: nn.MaxPool2d) -> None:
    def pair(value):
        return (value, value) if isinstance(value, int) else tuple(value)

    kernel, stride = pair(module.kernel_size), pair(module.stride)
    if kernel[0] != kernel[1] or stride != kernel or pair(module.padding) != (0, 0) or pair(module.dilation) != (1, 1):
        raise TheoryError(f"module {position} (MaxPool2d): only non-overlapping square pooling is supported "
                          f"(kernel == stride, padding 0, dilation 1), got kernel {module.kernel_size}, stride "
                          f"{module.stride}, padding {module.padding}, dilation {module.dilation}")


def _twin_boxes(modules: Sequence[nn.Module], weights: Mapping[int, torch.Tensor], lo: torch.Tensor,
                hi: torch.Tensor, first: int, flops_per_sample: float) -> list[TwinBox]:
    """TwinBox at every module input (and the output, last): intervals, refined at relu inputs."""
    zero = torch.zeros_like(lo)
    boxes = [TwinBox(lo, hi, zero, zero, lo, hi)]
    for position, module in enumerate(modules):
        box = forward_box(module, weights.get(position), boxes[position])
        target = position + 1
        if target < len(modules) and isinstance(modules[target], nn.ReLU):
            box = _refine(modules, weights, boxes + [box], target, first, flops_per_sample)
        boxes.append(box)
    return boxes


def _region_start(modules, boxes, target: int, rows: int, first: int, budget: float) -> int:
    """Earliest position from which ``rows`` specifications can be back-substituted to ``target``."""
    start, spent = target, 0.0
    while start > 0:
        j = start - 1
        cost = rows * backward_cost(modules[j], boxes[j].v_lo.shape[1:], boxes[start].v_lo.shape[1:])
        cost *= 2 if j >= first else 1
        if spent + cost > budget:
            break
        spent, start = spent + cost, j
    region = modules[start:target]
    if not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in region) and sum(
            isinstance(m, PRUNABLE) for m in region) <= 1:
        return target  # one affine map of a box: the intervals are as good
    return start


def _refine(modules, weights, boxes: list[TwinBox], target: int, first: int, budget: float) -> TwinBox:
    """Tighten the box at ``target`` by back-substitution for the units unstable in either network.

    Each sample gets its own units (padded to the largest count in the batch).
    """
    box = boxes[target]
    unstable = (((box.v_lo < 0) & (box.v_hi > 0)) | ((box.p_lo < 0) & (box.p_hi > 0))).flatten(1)
    counts = unstable.sum(1)
    rows = int(counts.max())
    live = target > first  # d is zero up to the first pruned layer
    per_unit = 6 if live else 2
    start = _region_start(modules, boxes, target, per_unit * rows, first, budget)
    if rows == 0 or start == target:
        return box
    batch, size = unstable.shape
    order = unstable.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, :rows]
    valid = torch.arange(rows, device=counts.device) < counts.unsqueeze(1)
    flat = [t.flatten(1).clone() for t in (box.v_lo, box.v_hi, box.d_lo, box.d_hi, box.p_lo, box.p_hi)]
    widest = max(b.v_lo[0].numel() for b in boxes[start:target + 1])
    chunk = max(1, MEMORY_ELEMENTS // (batch * widest * per_unit))
    for index, ok in zip(order.split(chunk, dim=1), valid.split(chunk, dim=1)):
        eye = box.v_lo.new_zeros(batch, index.shape[1], size).scatter_(2, index.unsqueeze(-1),
                                                                         ok.unsqueeze(-1).to(box.v_lo.dtype))
        none = torch.zeros_like(eye)
        coef_v = torch.cat([eye, -eye, none, none, eye, -eye] if live else [eye, -eye], dim=1)
        coef_d = torch.cat([none, none, eye, -eye, eye, -eye], dim=1) if live else None
        shape = (batch, coef_v.shape[1], *box.v_lo.shape[1:])
        upper = _upper_bounds(modules, weights, boxes, start, target, coef_v.view(shape),
                              None if coef_d is None else coef_d.view(shape), first)
        for k, values in enumerate(upper.split(index.shape[1], dim=1)):
            side, negated = divmod(k, 2)  # the upper bound of +q (k even) or of -q (k odd)
            bound = flat[2 * side + 1 - negated]
            old = bound.gather(1, index)
            new = torch.maximum(old, -values) if negated else torch.minimum(old, values)
            bound.scatter_(1, index, torch.where(ok, new, old))
    if not live:
        flat[4], flat[5] = flat[0], flat[1]
    return TwinBox(*(t.reshape(box.v_lo.shape) for t in flat)).tightened()


def _transpose(module: nn.Module, weight: torch.Tensor, coef: torch.Tensor, in_shape) -> torch.Tensor:
    scratch = coef.new_zeros(coef.shape[:2])  # receives the bias term, which is not wanted here
    return backward_affine(module, weight, coef, in_shape, scratch)


def _upper_bounds(modules, weights, boxes, start: int, target: int, coef_v: torch.Tensor,
                  coef_d: torch.Tensor | None, first: int) -> torch.Tensor:
    """Upper bound (B, S) of ``coef_v . v + coef_d . d`` at ``target``, back-substituted to ``start``."""
    const = coef_v.new_zeros(coef_v.shape[:2])
    for j in range(target - 1, start - 1, -1):
        module, in_shape = modules[j], boxes[j].v_lo.shape
        if isinstance(module, PRUNABLE):
            w = module.weight.detach().to(coef_v.dtype)
            new_v = backward_affine(module, w, coef_v, in_shape, const)
            if coef_d is not None:
                if j in weights:
                    new_v = new_v - _transpose(module, w - weights[j], coef_d, in_shape)
                coef_d = None if j <= first else _transpose(module, weights.get(j, w), coef_d, in_shape)
            coef_v = new_v
        elif isinstance(module, (nn.ReLU, nn.MaxPool2d)):
            coef_v, coef_d, extra = backward_nonlinear(module, boxes[j], coef_v, coef_d)
            const = const + extra
        else:
            coef_v = coef_v.reshape(*coef_v.shape[:2], *in_shape[1:])
            coef_d = None if coef_d is None else coef_d.reshape(coef_v.shape)
    return const + _concretize(boxes[start], coef_v, coef_d)


def _concretize(box: TwinBox, coef_v: torch.Tensor, coef_d: torch.Tensor | None) -> torch.Tensor:
    """Max of ``coef_v . v + coef_d . d`` over the box, per element the best of writing it in (v, d),
    (v, v~) or (v~, d)."""
    def box_max(coef, lo, hi):
        return coef.clamp_min(0) * hi.flatten(1).unsqueeze(1) + coef.clamp_max(0) * lo.flatten(1).unsqueeze(1)

    cv = coef_v.flatten(2)
    if coef_d is None:  # c . mid + |c| . radius, as batched matrix products
        mid, rad = ((box.v_hi + box.v_lo) / 2).flatten(1), ((box.v_hi - box.v_lo) / 2).flatten(1)
        return (cv @ mid.unsqueeze(-1) + cv.abs() @ rad.unsqueeze(-1)).squeeze(-1)
    cd = coef_d.flatten(2)
    in_vd = box_max(cv, box.v_lo, box.v_hi) + box_max(cd, box.d_lo, box.d_hi)
    in_vp = box_max(cv - cd, box.v_lo, box.v_hi) + box_max(cd, box.p_lo, box.p_hi)
    in_pd = box_max(cv, box.p_lo, box.p_hi) + box_max(cd - cv, box.d_lo, box.d_hi)
    return torch.minimum(torch.minimum(in_vd, in_vp), in_pd).sum(-1)


def _output_bounds(modules, weights, boxes, classes, first, budget) -> dict[str, torch.Tensor]:
    """Box of ``d`` at the output and lower bounds of both networks' class-c margins."""
    out = boxes[-1]
    batch, k = out.v_lo.shape
    eye = torch.eye(k, dtype=out.v_lo.dtype, device=out.v_lo.device).expand(batch, k, k)
    margin = -(nn.functional.one_hot(classes, k).to(eye.dtype).unsqueeze(1) - eye)  # -(e_c - e_j) per row j
    none = torch.zeros_like(eye)
    coef_v = torch.cat([none, none, margin, margin], dim=1)
    coef_d = torch.cat([eye, -eye, margin, none], dim=1)
    d_lo, d_hi = out.d_lo.clone(), out.d_hi.clone()
    p_margin = out.p_lo.gather(1, classes[:, None]) - out.p_hi
    v_margin = out.v_lo.gather(1, classes[:, None]) - out.v_hi
    start = _region_start(modules, boxes, len(modules), 4 * k, first, budget)
    if start < len(modules):
        upper = _upper_bounds(modules, weights, boxes, start, len(modules), coef_v, coef_d, first)
        d_hi, d_lo = torch.minimum(d_hi, upper[:, :k]), torch.maximum(d_lo, -upper[:, k:2 * k])
        p_margin = torch.maximum(p_margin, -upper[:, 2 * k:3 * k])
        v_margin = torch.maximum(v_margin, -upper[:, 3 * k:])
    others = ~nn.functional.one_hot(classes, k).bool()
    return {"difference_lower": d_lo, "difference_upper": d_hi,
            "pruned_margin_lower": p_margin.masked_fill(~others, math.inf).amin(1),
            "unpruned_margin_lower": v_margin.masked_fill(~others, math.inf).amin(1)}
