"""Differential bounds: the worst case of ``||f~(x') - f(x')||_2`` over an l-infinity ball.

For each sample x and every ``x'`` in ``B(x) = {x' : ||x' - x||_inf <= eps} ∩ [lo, hi]^d``
(``domain``, default [0, 1]), ``differential_bounds`` returns a sound upper bound on
``max_{x' in B(x)} ||f~(x') - f(x')||_2`` and a certificate that the pruned network ``f~``
predicts the unpruned network's class everywhere in the ball. ``differential_attack`` gives
the lower side of the sandwich ``attack <= max_B ||f~ - f|| <= bound`` by projected gradient
ascent.

Method (ReluDiff, Paulsen, Wang, Wang, ICSE 2020; NeuroDiff, Paulsen, Wang, Wang, Wang, ASE 2020):
the pruned network is run beside the unpruned one as a twin network carrying the unpruned value
``v``, the difference ``d = v~ - v`` and the pruned value ``p = v~``: ``d' = W~ d - R v`` through a
weight layer with residual ``R = W - W~``, ``d' = relu(v + d) - relu(v)`` through a relu. Three
sound passes, each met with the others:

1. interval arithmetic on ``v``, ``d`` and ``p`` (``differential_relax.forward_box``);
2. forward symbolic propagation (``differential_zonotope``): ``v``, ``p`` and ``d`` as zonotopes,
   affine in the input and in one symbol per relaxed unit, shared between the three, so the
   difference stays symbolic in terms of the input instead of being concretised at every layer;
   where all units are stable it is exact;
3. DeepPoly/CROWN back-substitution (Singh et al., POPL 2019; Zhang et al., NeurIPS 2018) of
   ``+-v, +-d, +-p`` through the twin network for the relu units still unstable in either network,
   and of the output specifications, as far back as ``flops_per_sample`` allows, with a case
   analysis of each relu on both networks' bounds.

The output specifications are ``+-q . d`` for the rows ``q`` of three orthonormal frames (the
standard basis, a Householder frame whose first row is the direction of the measured difference,
the principal axes of the zonotope of ``d``) and the class margins. Each gets the least upper bound
of intervals, the zonotope's support function and back-substitution. The result:

* ``bound = min over frames Q of || (max(hi(q . d), hi(-q . d)))_{q in Q} ||_2`` -- sound because
  ``||d||_2^2 = sum_q (q . d)^2`` for every orthonormal frame; the measured-direction frame makes
  it nearly tight when the difference at x dominates its variation over the ball;
* ``certified``: with ``c`` the unpruned class at x, the lower bounds of ``min_{j != c}
  f_c(x') - f_j(x')`` AND of ``min_{j != c} f~_c(x') - f~_j(x')`` over the ball are both > 0.
  Then ``argmax f~(x') = argmax f(x') = c`` for every ``x'`` in the ball: the pruned network
  agrees with the unpruned one on the whole ball (and the unpruned class is constant on it).
  A sample whose unpruned class changes inside the ball is never certified.

At ``eps = 0`` every relu is stable, every relaxation exact, and ``bound`` equals the measured
``||f~(x) - f(x)||_2`` to rounding.

Complexity. The zonotope pass costs (input dims + relaxation symbols) forward passes of the network,
for ``v`` and, after the first pruned layer, for ``p`` and ``d`` too. Each form holds at most
``zonotope_elements`` numbers (default ``ZONOTOPE_ELEMENTS`` = 2^24, 128 MB in float64; the peak is a
few times that): samples are processed in chunks, and the relaxation symbols beyond what fits go to
per-unit box terms (least weight first); at most ``RELAXATION_SYMBOLS_PER_INPUT`` relaxation
symbols per input symbol. Measured on one (shared) CPU core, 50% sparsity, eps = 1/255: the
784-100-100-10 net about 0.05 s per sample; LeNet-5 on 28x28 inputs 2-20 s per sample (layer 0 the
slowest, ~2 GB peak), most of it float64 convolutions of the generators (a GPU makes them cheap);
the 8-layer CNN on 28x28 inputs 10-50 s per sample, and there the symbol budget is far below the
number of unstable units, so its bounds stay vacuous (ratio to the attack 1e4-1e5).

Back-substitution to a target with S specification rows costs S x (multiply-adds of the modules
passed backwards), twice after the first pruned layer; per target it goes back only as far as
``flops_per_sample`` allows and concretises there on the boxes, and for the output also on the
zonotopes kept where they are small (the least wins). Coefficients are processed in chunks of at
most ``MEMORY_ELEMENTS`` numbers.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .differential_relax import TwinBox, backward_nonlinear, forward_box, meet
from .differential_zonotope import TwinZonotope, input_zonotope, support, zonotope_step
from .errors import TheoryError
from .network import (
    PRUNABLE,
    check_inputs,
    check_network,
    forward_all,
    pruned_by_position,
    run_from,
)
from .propagation import backward_affine, backward_cost

DEFAULT_FLOPS_PER_SAMPLE = 2e8
MEMORY_ELEMENTS = 2 ** 21
ZONOTOPE_ELEMENTS = 2 ** 24  # numbers per zonotope generator tensor (samples are processed in chunks)
MIN_RELAXATION_SYMBOLS = 64  # relaxation symbols always allowed beside the input symbols
RELAXATION_SYMBOLS_PER_INPUT = 8  # and at most this many per input symbol (more cost time, gain little)


def differential_bounds(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                        eps: float, *, domain: tuple[float, float] | None = (0.0, 1.0),
                        flops_per_sample: float = DEFAULT_FLOPS_PER_SAMPLE, symbolic: bool = True,
                        zonotope_elements: int | None = None) -> dict[str, torch.Tensor]:
    """Per-sample differential bounds over the l-infinity ball of radius ``eps`` (see the module docstring).

    ``pruned`` maps prunable-layer index -> pruned weight (one or several layers). ``symbolic=False``
    skips the forward zonotope pass (intervals and back-substitution only); ``zonotope_elements``
    (default ``ZONOTOPE_ELEMENTS``) is the most numbers per zonotope form: less memory and time,
    fewer relaxation symbols, looser bounds. The zonotope is skipped when one sample's input symbols
    over the widest activation exceed four times that. Returns float64
    tensors of shape (N,): 'bound' (>= ||f~(x') - f(x')||_2 on the ball), 'measured' (at x),
    'pruned_margin_lower', 'unpruned_margin_lower' (lower bounds of the class-c margins on the
    ball) and 'certified' (bool); and (N, K) 'difference_lower', 'difference_upper' (box of f~ - f).
    """
    modules, weights, centre, lo, hi = _setup(model, pruned, inputs, eps, domain)
    elements = _check_elements(zonotope_elements)
    first = min(weights)
    actual = forward_all(modules, centre)
    if actual[-1].ndim != 2 or actual[-1].shape[1] < 2:
        raise TheoryError(f"network output must have shape (N, K) with K >= 2 classes, got {tuple(actual[-1].shape)}")
    with torch.no_grad():  # the model's parameters require grad; no graph is wanted here
        measured_difference = run_from(modules, first, actual[first], weights) - actual[-1]
        parts = [_output_bounds(modules, weights, twin, actual[-1][rows].argmax(1), measured_difference[rows],
                                first, flops_per_sample)
                 for rows, twin in _twin_chunks(modules, weights, actual, lo, hi, symbolic, elements,
                                                flops_per_sample)]
    result = {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    result["measured"] = measured_difference.norm(dim=1)
    result["certified"] = (result["pruned_margin_lower"] > 0) & (result["unpruned_margin_lower"] > 0)
    return result


def differential_boxes(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                       eps: float, *, domain: tuple[float, float] | None = (0.0, 1.0),
                       flops_per_sample: float = DEFAULT_FLOPS_PER_SAMPLE, symbolic: bool = True,
                       zonotope_elements: int | None = None) -> list[dict[str, torch.Tensor]]:
    """The elementwise bounds behind ``differential_bounds``, at every module input and the output (last).

    Same arguments and passes (intervals met with the zonotope and refined by back-substitution).
    Entry i holds float64 tensors shaped like module i's input batch: 'v_lo', 'v_hi' (the unpruned
    activation over the ball) and 'd_lo', 'd_hi' (the difference ``f~ - f`` there). Comparing them
    with an attack on single units shows which layer's relaxation makes a bound loose.
    """
    modules, weights, centre, lo, hi = _setup(model, pruned, inputs, eps, domain)
    elements = _check_elements(zonotope_elements)
    with torch.no_grad():
        parts = [twin[0] for _, twin in _twin_chunks(modules, weights, forward_all(modules, centre), lo, hi,
                                                     symbolic, elements, flops_per_sample)]
    keys = ("v_lo", "v_hi", "d_lo", "d_hi")
    return [{key: torch.cat([getattr(boxes[position], key) for boxes in parts]) for key in keys}
            for position in range(len(parts[0]))]


def _check_elements(zonotope_elements: int | None) -> int:
    elements = ZONOTOPE_ELEMENTS if zonotope_elements is None else zonotope_elements
    if isinstance(elements, bool) or not isinstance(elements, int) or elements < 1:
        raise TheoryError(f"zonotope_elements must be a positive int, got {zonotope_elements!r}")
    return elements


def _twin_chunks(modules, weights, actual, lo, hi, symbolic: bool, elements: int, flops_per_sample: float):
    """(rows, (boxes, output zonotope, cuts) of ``_twin_boxes``) for each chunk of samples that fits."""
    symbolic = symbolic and _zonotope_fits(actual, lo, hi, elements)
    for rows in _sample_chunks(actual, lo, hi, symbolic, elements):
        yield rows, _twin_boxes(modules, weights, lo[rows], hi[rows], min(weights), flops_per_sample,
                                elements if symbolic else 0)


def _sample_chunks(actual: Sequence[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor, symbolic: bool,
                   elements: int) -> list[slice]:
    """Row slices of the batch whose zonotopes (twice the input symbols x the widest layer, per form)
    fit ``elements`` numbers."""
    moving = int((hi > lo).flatten(1).any(0).sum()) if symbolic else 0
    widest = max(a[0].numel() for a in actual)
    size = max(1, elements // max(1, 2 * moving * widest))
    return [slice(s, s + size) for s in range(0, len(lo), size)]


def _zonotope_fits(actual: Sequence[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor, elements: int) -> bool:
    """Whether one sample's input symbols over the widest layer fit ``4 x elements`` numbers (else the
    zonotope is skipped: e.g. 3072 CIFAR-10 inputs over a 32 x 32 x 32 activation)."""
    moving = int((hi > lo).flatten(1).any(0).sum())
    return moving * max(a[0].numel() for a in actual) <= 4 * elements


def _symbol_caps(sizes: Sequence[int], batch: int, inputs: int, elements: int) -> list[int]:
    """Most symbols at each module input: what keeps every later form within ``elements`` numbers and
    at most ``RELAXATION_SYMBOLS_PER_INPUT`` relaxation symbols per input symbol, but never fewer than
    the input symbols plus ``MIN_RELAXATION_SYMBOLS``."""
    most = (1 + RELAXATION_SYMBOLS_PER_INPUT) * inputs
    return [max(inputs + MIN_RELAXATION_SYMBOLS, min(most, elements // (batch * max(sizes[position:]))))
            for position in range(len(sizes))]


def differential_attack(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                        eps: float, *, domain: tuple[float, float] | None = (0.0, 1.0), steps: int = 40,
                        restarts: int = 4, seed: int = 0) -> torch.Tensor:
    """Largest ``||f~(x') - f(x')||_2`` found in the ball by PGD (Madry et al., ICLR 2018): a LOWER bound.

    Signed-gradient ascent on ``||f~ - f||^2`` with a step decaying from eps/2, projected on the
    box; the first start is x, the others uniform in the ball. Returns (N,) float64, the best
    value seen at any iterate (never below the value at x).
    """
    _check_attack(steps, restarts)
    modules, weights, centre, lo, hi = _setup(model, pruned, inputs, eps, domain)

    def gap(x: torch.Tensor) -> torch.Tensor:
        return (run_from(modules, 0, x, weights) - run_from(modules, 0, x)).flatten(1).pow(2).sum(1)

    return _best_over_restarts(gap, centre, lo, hi, eps, steps, restarts, seed).sqrt()


def certificate_attack(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor, eps: float,
                       *, domain: tuple[float, float] | None = (0.0, 1.0), steps: int = 100, restarts: int = 4,
                       seed: int = 0) -> torch.Tensor:
    """Whether PGD refutes ``differential_bounds``' certificate: (N,) bool, True where it found ``x'`` in the
    ball with ``argmax f(x') != c`` or ``argmax f~(x') != c`` (c = the unpruned class at x).

    Signed-gradient ascent (as ``differential_attack``) on ``max(m(x'), m~(x'))``,
    ``m = max_{j != c} f_j - f_c``. A refuted sample can never be certified, so the fraction not refuted is
    an upper bound on what any sound certificate reaches; the certified fraction sits below it.
    """
    _check_attack(steps, restarts)
    modules, weights, centre, lo, hi = _setup(model, pruned, inputs, eps, domain)
    with torch.no_grad():
        classes = run_from(modules, 0, centre).argmax(1, keepdim=True)

    def worst_margin(x: torch.Tensor) -> torch.Tensor:
        def margin(out):
            return out.scatter(1, classes, -torch.inf).amax(1) - out.gather(1, classes).squeeze(1)
        return torch.maximum(margin(run_from(modules, 0, x)), margin(run_from(modules, 0, x, weights)))

    return _best_over_restarts(worst_margin, centre, lo, hi, eps, steps, restarts, seed) > 0


def _check_attack(steps: int, restarts: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise TheoryError(f"steps must be an int >= 1, got {steps!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise TheoryError(f"restarts must be an int >= 1, got {restarts!r}")


def _best_over_restarts(objective, centre: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float, steps: int,
                        restarts: int, seed: int) -> torch.Tensor:
    """Largest per-row ``objective`` seen by ``signed_gradient_ascent`` from x, then from ``restarts - 1``
    uniform points of the box (none when eps is 0): never below its value at x."""
    with torch.no_grad():
        best = objective(centre)
    generator = torch.Generator().manual_seed(seed)
    for restart in range(restarts if eps > 0 else 0):
        uniform = torch.rand(centre.shape, generator=generator, dtype=centre.dtype).to(centre.device)
        x = centre if restart == 0 else lo + (hi - lo) * uniform
        best, x = signed_gradient_ascent(objective, x, lo, hi, eps, steps, best)
        with torch.no_grad():
            best = torch.maximum(best, objective(x))
    return best


def signed_gradient_ascent(objective, start: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float,
                           steps: int, best: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` signed-gradient steps on ``objective`` (per-row values) from ``start``, projected on the box
    [lo, hi], the step decaying from eps/2 to eps/50; returns the best value seen at any iterate before a
    step (at least ``best``) and the last point."""
    x = start
    for step in range(steps):
        x = x.detach().requires_grad_(True)
        value = objective(x)
        grad, = torch.autograd.grad(value.sum(), x)
        best = value.detach() if best is None else torch.maximum(best, value.detach())
        size = eps * max(0.02, 0.5 * (1 - step / steps))
        x = torch.minimum(torch.maximum(x.detach() + size * grad.sign(), lo), hi)
    return best, x


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
                hi: torch.Tensor, first: int, flops_per_sample: float,
                elements: int) -> tuple[list[TwinBox], TwinZonotope | None, dict[int, TwinZonotope]]:
    """TwinBox at every module input (and the output, last): intervals, met with the zonotope's
    concretisation at relu and pooling inputs and at the output, then refined at relu inputs by
    back-substitution; the output zonotope (None when ``elements`` is 0: no zonotope); and the
    zonotopes at the module inputs where all three forms fit ``elements / 2`` numbers."""
    zero = torch.zeros_like(lo)
    boxes = [TwinBox(lo, hi, zero, zero, lo, hi)]
    zonotope = input_zonotope(lo, hi) if elements else None
    if zonotope is not None:
        sizes = [a.numel() for a in _activation_shapes(modules, lo)]
        caps = _symbol_caps(sizes, lo.shape[0], zonotope.inputs, elements)
    cuts = {}
    for position, module in enumerate(modules):
        box = forward_box(module, weights.get(position), boxes[position])
        target = position + 1
        if zonotope is not None:
            if position > 0 and sum(f.g.numel() for f in zonotope.forms()) <= elements // 2:
                cuts[position] = zonotope  # small enough to keep for back-substitution to stop at
            zonotope = zonotope_step(module, weights.get(position), zonotope, boxes[position], caps[target])
            if target == len(modules) or isinstance(modules[target], (nn.ReLU, nn.MaxPool2d)):
                box = _meet_boxes(box, zonotope.intervals())
        if target < len(modules) and isinstance(modules[target], nn.ReLU):
            box = _refine(modules, weights, boxes + [box], target, first, flops_per_sample)
        boxes.append(box)
    return boxes, zonotope, cuts


def _activation_shapes(modules: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Size]:
    """Per-sample activation shape at every module input and the output (one zero sample traced)."""
    return [a.shape[1:] for a in forward_all(modules, torch.zeros_like(x[:1]))]


def _meet_boxes(one: TwinBox, other: TwinBox) -> TwinBox:
    pairs = [meet(*pair) for pair in ((one.v_lo, one.v_hi, other.v_lo, other.v_hi),
                                       (one.d_lo, one.d_hi, other.d_lo, other.d_hi),
                                       (one.p_lo, one.p_hi, other.p_lo, other.p_hi))]
    return TwinBox(*pairs[0], *pairs[1], *pairs[2]).tightened()


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
                  coef_d: torch.Tensor | None, first: int,
                  cuts: Mapping[int, TwinZonotope] | None = None) -> torch.Tensor:
    """Upper bound (B, S) of ``coef_v . v + coef_d . d`` at ``target``, back-substituted to ``start``
    and concretised there on the box; also on the way, at every position of ``cuts``, on the
    zonotope there (its support function), keeping the least."""
    const = coef_v.new_zeros(coef_v.shape[:2])
    best = None
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
        if cuts and j in cuts:
            flat_v = coef_v.flatten(2)
            flat_d = torch.zeros_like(flat_v) if coef_d is None else coef_d.flatten(2)
            here = const + support(cuts[j], flat_v, flat_d)
            best = here if best is None else torch.minimum(best, here)
    final = const + _concretize(boxes[start], coef_v, coef_d)
    return final if best is None else torch.minimum(best, final)


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


def _frames(measured: torch.Tensor, zonotope: TwinZonotope | None) -> torch.Tensor:
    """Orthonormal frames (B, F, K, K) of the output space, rows = directions: the standard basis, a
    Householder frame whose first row is the measured difference's direction, and (with a zonotope)
    the principal axes of the difference's generators."""
    batch, k = measured.shape
    eye = torch.eye(k, dtype=measured.dtype, device=measured.device).expand(batch, k, k)
    norm = measured.norm(dim=1, keepdim=True)
    unit = torch.where(norm > 0, measured / norm.clamp_min(1e-300), eye[:, 0])
    w = eye[:, 0] - unit
    scale = torch.where((w * w).sum(1, keepdim=True) > 1e-24, 2 / (w * w).sum(1, keepdim=True).clamp_min(1e-300), 0.0)
    frames = [eye, eye - scale.unsqueeze(-1) * w.unsqueeze(2) * w.unsqueeze(1)]
    if zonotope is not None and zonotope.d is not None and zonotope.d.g.shape[1] > 0:
        gram = zonotope.d.g.transpose(1, 2) @ zonotope.d.g
        frames.append(torch.linalg.eigh(gram)[1].transpose(1, 2).flip(1))
    return torch.stack(frames, 1)


def _output_bounds(modules, weights, twin, classes, measured, first, budget) -> dict[str, torch.Tensor]:
    """Box of ``d`` at the output, the bound on ``||d||_2`` and lower bounds of both networks' class-c
    margins: every specification's upper bound is the least of intervals, the zonotope's support
    function and back-substitution (where the budget allows); the norm bound is the least over the
    frames of ``|| max(hi(q_j . d), hi(-q_j . d)) ||_2`` (exact identity ``||d||^2 = sum (q_j . d)^2``).
    ``twin`` = (boxes, output zonotope, zonotopes where back-substitution may stop)."""
    boxes, zonotope, cuts = twin
    out = boxes[-1]
    batch, k = out.v_lo.shape
    frames = _frames(measured, zonotope)
    count = frames.shape[1]
    directions = torch.cat([frames, -frames], 1).flatten(1, 2)  # (B, 2 F K, K): +q rows of every frame, then -q
    eye = torch.eye(k, dtype=out.v_lo.dtype, device=out.v_lo.device).expand(batch, k, k)
    margin = -(nn.functional.one_hot(classes, k).to(eye.dtype).unsqueeze(1) - eye)  # -(e_c - e_j) per row j
    none = torch.zeros_like(eye)
    coef_v = torch.cat([torch.zeros_like(directions), margin, margin], dim=1)
    coef_d = torch.cat([directions, margin, none], dim=1)
    upper = _interval_upper(out, coef_v, coef_d)
    if zonotope is not None:
        upper = torch.minimum(upper, support(zonotope, coef_v, coef_d))
    start = _region_start(modules, boxes, len(modules), coef_v.shape[1], first, budget)
    if start < len(modules):
        upper = torch.minimum(upper, _upper_bounds(modules, weights, boxes, start, len(modules), coef_v, coef_d,
                                                   first, cuts))
    rows = 2 * count * k
    along = upper[:, :rows].view(batch, 2, count, k)
    bound = torch.maximum(along[:, 0], along[:, 1]).clamp_min(0).norm(dim=2).amin(1)
    d_hi, d_lo = torch.minimum(out.d_hi, upper[:, :k]), torch.maximum(out.d_lo, -upper[:, count * k:count * k + k])
    p_margin, v_margin = -upper[:, rows:rows + k], -upper[:, rows + k:]
    others = ~nn.functional.one_hot(classes, k).bool()
    return {"bound": bound, "difference_lower": d_lo, "difference_upper": d_hi,
            "pruned_margin_lower": p_margin.masked_fill(~others, math.inf).amin(1),
            "unpruned_margin_lower": v_margin.masked_fill(~others, math.inf).amin(1)}


def _interval_upper(box: TwinBox, coef_v: torch.Tensor, coef_d: torch.Tensor) -> torch.Tensor:
    """Upper bound (B, S) of ``coef_v . v + coef_d . d`` over the output box (see ``_concretize``)."""
    return _concretize(box, coef_v, coef_d)
