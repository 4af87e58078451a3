"""Forward symbolic propagation of the twin network as zonotopes: the unpruned value ``v``, the pruned
value ``p`` and their difference ``d = p - v``, all affine in shared symbols.

Every value is an affine form of symbols in ``[-1, 1]``::

    q = q_c + sum_k q_g[k] eps_k + q_r * eta_q        (q in v, p, d; per unit)

with the input symbols first (the box ``x = mid + radius * eps``), then the relaxation symbols
(one per relaxed unit and network, shared by the forms it enters), and a per-unit box term ``r``
(independent symbols ``eta``) that takes the relaxation errors that no longer fit the symbol budget.
``v`` and ``p`` are each the zonotope (DeepZ, Singh et al., NeurIPS 2018) of their own network;
``d`` is propagated directly, as in NeuroDiff (Paulsen, Wang, Wang, Wang, ASE 2020), which keeps the
difference symbolic in terms of the input rather than concretising it at every layer (ReluDiff,
ICSE 2020). ``d`` is always met with ``p - v`` (the same symbols), so it is never wider than the
two networks bounded separately.

Transformers (each sound for every input whose values lie in the given bounds):

* weight layer: ``v' = W v + b``, ``p' = W~ p + b``, ``d' = W~ d - R v`` (``R = W - W~``): exact;
* relu on ``v`` and on ``p``: DeepZ, ``relu(z) in lam z + mu +- mu``, ``lam = u / (u - l)``,
  ``mu = -lam l / 2`` (exact when the unit is stable);
* relu difference ``g = relu(v + d) - relu(v)``: per unit the narrower of ``p' - v'`` and the
  plane ``a v + b d + c +- e`` that encloses ``g`` on the box of ``(v, d)``, for the best ``(a, b)``
  of a grid over the hull of g's four linear pieces ``d, 0, -v, v + d``;
* non-overlapping max-pooling, per window the narrowest of: the chain ``m <- m + relu(z_i - m)``
  over the taps in decreasing order of the centre value (``max(a, b) = a + relu(b - a)``), and
  ``B + [max(0, max_i lo(z_i - B)), max_i hi(z_i - B)]`` for a base ``B`` (the leading tap, the mean
  of the two leading taps, the mean of all four); exact while the leading tap dominates. The
  difference per window is the narrowest of ``p' - v'``, the chain on ``d`` (relu differences of
  ``(z_i - m)`` in v's order) and ``B_d + [min_i lo(d_i - B_d), max_i hi(d_i - B_d)]`` (as
  ``min_i d_i <= max(v + d) - max(v) <= max_i d_i``). A window's errors touch only its own unit,
  so they are kept as box terms during the window and turned into symbols after it.

Symbol budget: after each relu or pooling layer the box terms become symbols (``promote_boxes``),
then the relaxation symbols of least total weight are folded back into box terms until at most
``symbol_cap`` remain (``reduce_order``, Girard's zonotope order reduction with a per-unit box).

When every unit is stable in both networks the forms are exact, and the support function of an
output form is the exact maximum of a linear function of ``(v, p, d)`` over the input box.
Cost: (input dims + symbols) forward passes of each layer, for ``v``, and after the first pruned
layer also for ``p`` and ``d``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .differential_relax import TwinBox, meet, windows
from .network import PRUNABLE, apply_module


@dataclass
class Form:
    """``c + sum_k g[:, k] eps_k + r eta`` per unit: centre (B, U), generators (B, G, U), box radius (B, U)."""

    c: torch.Tensor
    g: torch.Tensor
    r: torch.Tensor

    def radius(self) -> torch.Tensor:
        return _combination_radius([(1.0, self)])

    def interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        spread = self.radius()
        return self.c - spread, self.c + spread

    def plus(self, other: Form) -> Form:
        return Form(self.c + other.c, self.g + other.g, self.r + other.r)

    def minus(self, other: Form) -> Form:
        return Form(self.c - other.c, self.g - other.g, self.r + other.r)


def _select(use: torch.Tensor, one: Form, other: Form) -> Form:
    """Per unit, ``one`` where ``use`` else ``other``."""
    return Form(torch.where(use, one.c, other.c), torch.where(use.unsqueeze(1), one.g, other.g),
                torch.where(use, one.r, other.r))


@dataclass
class TwinZonotope:
    """Forms of ``v``, ``p`` and ``d`` at one module input; ``p`` and ``d`` are None while the
    networks agree (before the first pruned layer: ``p = v``, ``d = 0``)."""

    shape: tuple[int, ...]
    v: Form
    p: Form | None
    d: Form | None
    inputs: int = 0  # the first ``inputs`` symbols are the input box's

    def forms(self) -> list[Form]:
        return [f for f in (self.v, self.p, self.d) if f is not None]

    def intervals(self) -> TwinBox:
        """Bounds on ``v``, ``d`` and ``p`` (each form met with what the other two imply), in the
        activation's shape."""
        full = (-1, *self.shape)
        v_lo, v_hi = self.v.interval()
        if self.d is None:
            zero = torch.zeros_like(v_lo)
            bounds = (v_lo, v_hi, zero, zero, v_lo, v_hi)
        else:
            d_lo, d_hi = meet(*self.d.interval(), *_spread(self.p.c - self.v.c, [(1.0, self.p), (-1.0, self.v)]))
            p_lo, p_hi = meet(*self.p.interval(), *_spread(self.v.c + self.d.c, [(1.0, self.v), (1.0, self.d)]))
            bounds = (v_lo, v_hi, d_lo, d_hi, p_lo, p_hi)
        return TwinBox(*(t.reshape(full) for t in bounds)).tightened()


def input_zonotope(lo: torch.Tensor, hi: torch.Tensor) -> TwinZonotope:
    """The box ``[lo, hi]`` with one symbol per input coordinate that can move (in any sample)."""
    batch = lo.shape[0]
    mid, rad = ((lo + hi) / 2).flatten(1), ((hi - lo) / 2).flatten(1)
    moving = (rad > 0).any(0).nonzero().squeeze(1)
    g = rad.new_zeros(batch, len(moving), rad.shape[1])
    g[:, torch.arange(len(moving), device=g.device), moving] = rad[:, moving]
    return TwinZonotope(tuple(lo.shape[1:]), Form(mid, g, torch.zeros_like(mid)), None, None, len(moving))


OVERSHOOT = 1  # quarters of the symbol cap that new symbols may add before the order reduction picks
CONV_CHUNK_ELEMENTS = 2 ** 22  # bounds the unfolded input of one convolution call (CPU float64 im2col)


def _linear(module: nn.Module, weight: torch.Tensor, t: torch.Tensor, shape, bias: bool) -> torch.Tensor:
    """``module``'s linear map with ``weight`` (plus its bias if ``bias``) on rows of flattened units,
    a chunk of rows at a time for convolutions (their unfolded input would otherwise dominate memory)."""
    lead = t.shape[:-1]
    rows = t.reshape(-1, *shape)
    out_units = apply_module(module, t.new_zeros(1, *shape), weight, bias).shape[1:]
    out = t.new_empty(rows.shape[0], *out_units)
    per_row = out_units.numel() * (weight[0].numel() if isinstance(module, nn.Conv2d) else 1)
    step = max(1, CONV_CHUNK_ELEMENTS // per_row) if isinstance(module, nn.Conv2d) else max(1, rows.shape[0])
    for start in range(0, rows.shape[0], step):
        out[start:start + step] = apply_module(module, rows[start:start + step], weight, bias)
    return out.reshape(*lead, out_units.numel())


def _map_form(module, weight, form: Form, shape, bias: bool) -> Form:
    return Form(_linear(module, weight, form.c, shape, bias), _linear(module, weight, form.g, shape, False),
                _linear(module, weight.abs(), form.r, shape, False))


def _out_shape(module, shape, like: torch.Tensor) -> tuple[int, ...]:
    return tuple(apply_module(module, like.new_zeros(1, *shape)).shape[1:])


def zonotope_step(module: nn.Module, pruned: torch.Tensor | None, z: TwinZonotope, box: TwinBox | None,
                  symbol_cap: int) -> TwinZonotope:
    """The twin zonotope after ``module``; ``box`` bounds its input (needed for ReLU and MaxPool2d).

    ``pruned`` is the pruned weight of this module (None if it is not pruned); ``symbol_cap`` the
    most symbols in all.
    """
    shape = z.shape
    if isinstance(module, PRUNABLE):
        w = module.weight.detach().to(z.v.c.dtype)
        out = _out_shape(module, shape, z.v.c)
        v = _map_form(module, w, z.v, shape, True)
        if pruned is None:
            if z.d is None:
                return TwinZonotope(out, v, None, None, z.inputs)
            p, d = _map_form(module, w, z.p, shape, True), _map_form(module, w, z.d, shape, False)
            return TwinZonotope(out, v, p, d, z.inputs)
        small = pruned.to(w.dtype)
        p = _map_form(module, small, z.v if z.p is None else z.p, shape, True)
        residual = _map_form(module, w - small, z.v, shape, False)
        d = Form(-residual.c, -residual.g, residual.r) if z.d is None else _map_form(
            module, small, z.d, shape, False).minus(residual)
        return TwinZonotope(out, v, p, d, z.inputs)
    if isinstance(module, nn.ReLU):
        return reduce_order(_relu(z, box, _overshoot(symbol_cap)), symbol_cap)
    if isinstance(module, nn.MaxPool2d):  # the window's own errors are local: boxes first, symbols after
        kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return reduce_order(promote_boxes(_maxpool(z, kernel), _overshoot(symbol_cap)), symbol_cap)
    if isinstance(module, nn.Flatten):
        return TwinZonotope((z.v.c.shape[1],), z.v, z.p, z.d, z.inputs)
    return z  # Dropout (eval), Identity


def _overshoot(symbol_cap: int) -> int:
    return symbol_cap + symbol_cap * OVERSHOOT // 4


def promote_boxes(z: TwinZonotope, symbol_cap: int) -> TwinZonotope:
    """Turn the largest box terms into symbols (one per unit and form), up to ``symbol_cap`` symbols,
    so that the next weight layer sums them with their signs instead of their absolute values."""
    v, p, d = _add_symbols([z.v, z.p, z.d], [], symbol_cap, promote=True)
    return TwinZonotope(z.shape, v, p, d, z.inputs)


def reduce_order(z: TwinZonotope, symbol_cap: int) -> TwinZonotope:
    """At most ``symbol_cap`` symbols: per sample, the relaxation symbols of least total weight
    ``sum |g|`` (over units and forms) go to the box terms (Girard's order reduction, with the
    box kept per unit); the input symbols are always kept."""
    forms = z.forms()
    total = forms[0].g.shape[1]
    if total <= symbol_cap or total <= z.inputs:
        return z
    weight = sum(f.g[:, z.inputs:].abs().sum(-1) for f in forms)  # (B, relaxation symbols)
    keep = max(0, symbol_cap - z.inputs)
    order = weight.argsort(dim=1, descending=True, stable=True)
    kept, dropped = order[:, :keep] + z.inputs, order[:, keep:] + z.inputs

    def reduced(form: Form | None) -> Form | None:
        if form is None:
            return None
        def take(index):
            return form.g.gather(1, index.unsqueeze(-1).expand(*index.shape, form.g.shape[2]))
        g = torch.cat([form.g[:, :z.inputs], take(kept)], 1)
        return Form(form.c, g, form.r + take(dropped).abs().sum(1))

    z = TwinZonotope(z.shape, z.v, z.p, z.d, z.inputs)  # a new holder, reduced one form at a time
    z.v = reduced(z.v)
    z.p = reduced(z.p)
    z.d = reduced(z.d)
    return z


def _deepz(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``relu(z) in lam z + mu +- mu`` for z in [lo, hi]: (lam, mu); exact (mu = 0) when stable."""
    unstable = (lo < 0) & (hi > 0)
    lam = torch.where(unstable, hi / torch.where(unstable, hi - lo, 1.0), (lo >= 0).to(lo.dtype))
    return lam, torch.where(unstable, -lam * lo / 2, 0.0)


PLANE_SLOPES = [(a / 4, b / 4) for a in range(-4, 5) for b in range(5)]


def _plane_fit(v_lo, v_hi, d_lo, d_hi):
    """A plane ``a v + b d + c +- e`` enclosing ``g = relu(v + d) - relu(v)`` on the box, for the
    (a, b) of ``PLANE_SLOPES`` that minimises ``|a| rad v + b rad d + e``: (a, b, c, e).

    ``g`` is piecewise linear with creases on ``v = 0`` and ``v + d = 0``, so the extremes of
    ``g - a v - b d`` over the box are at the box corners and the creases' crossings with the box
    edges and each other, all in the candidate set (points outside the box are clamped into it).
    """
    def inside_v(t):
        return torch.minimum(torch.maximum(t, v_lo), v_hi)

    def inside_d(t):
        return torch.minimum(torch.maximum(t, d_lo), d_hi)

    zero = torch.zeros_like(v_lo)
    vs = [v_lo, v_lo, v_hi, v_hi, inside_v(zero), inside_v(zero), v_lo, v_hi, inside_v(-d_lo), inside_v(-d_hi),
          inside_v(zero)]
    ds = [d_lo, d_hi, d_lo, d_hi, d_lo, d_hi, inside_d(-v_lo), inside_d(-v_hi), d_lo, d_hi, inside_d(zero)]
    v, d = torch.stack(vs), torch.stack(ds)
    g = (v + d).relu() - v.relu()
    rad_v, rad_d = (v_hi - v_lo) / 2, (d_hi - d_lo) / 2
    best = None
    for a, b in PLANE_SLOPES:
        rest = g - a * v - b * d
        hi, lo = rest.amax(0), rest.amin(0)
        score = abs(a) * rad_v + b * rad_d + (hi - lo) / 2
        candidate = (torch.full_like(v_lo, a), torch.full_like(v_lo, b), (hi + lo) / 2, (hi - lo).clamp_min(0) / 2,
                     score)
        if best is None:
            best = candidate
        else:
            better = score < best[4]
            best = tuple(torch.where(better, new, old) for new, old in zip(candidate, best))
    return best[:4]


def _scaled(lam: torch.Tensor, form: Form, shift: torch.Tensor) -> Combination:
    return Combination([(lam, form)], shift)


def _plane(v: Form, d: Form, box) -> tuple[Form, torch.Tensor]:
    """The plane relaxation of the relu difference: the form (before its symbol) and the error."""
    a, b, c, e = _plane_fit(*box)
    return Form(a * v.c + b * d.c + c, a.unsqueeze(1) * v.g + b.unsqueeze(1) * d.g, a.abs() * v.r + b * d.r), e


class Relaxed:
    """Forms after a nonlinearity, before their new symbols, and the symbols' coefficients:
    ``symbols`` is a list of (in v, in p, in d) per-unit coefficient triples (None = 0)."""

    def __init__(self, v: Combination, p: Combination | None, d: Combination | None, symbols: list):
        self.v, self.p, self.d, self.symbols = v, p, d, symbols


def _relu_forms(v: Form, p: Form | None, d: Form | None, box: tuple[torch.Tensor, ...]) -> Relaxed:
    """relu on the three forms; ``box`` = flattened (v_lo, v_hi, d_lo, d_hi, p_lo, p_hi)."""
    v_lo, v_hi, _, _, p_lo, p_hi = box
    lam_v, mu_v = _deepz(v_lo, v_hi)
    v_out = _scaled(lam_v, v, mu_v)
    if d is None:
        return Relaxed(v_out, None, None, [(mu_v, None, None)])
    lam_p, mu_p = _deepz(p_lo, p_hi)
    use, d_terms, d_shift, error = _difference_choice(v, p, d, box, (lam_v, mu_v, lam_p, mu_p))
    return Relaxed(v_out, _scaled(lam_p, p, mu_p), _combination(d_terms, d_shift),
                   [(mu_v, None, torch.where(use, -mu_v, 0.0)), (None, mu_p, torch.where(use, mu_p, 0.0)),
                    (None, None, torch.where(use, 0.0, error))])


def _difference_choice(v: Form, p: Form, d: Form, box, deepz):
    """Per unit, twin ``relax(relu(p)) - relax(relu(v))`` or the plane, whichever is narrower:
    (use twin, the chosen form's terms, its shift, the plane's error)."""
    v_lo, v_hi, d_lo, d_hi, _, _ = box
    lam_v, mu_v, lam_p, mu_p = deepz
    a, b, c, error = _plane_fit(v_lo, v_hi, d_lo, d_hi)
    twin_width = _combination_radius([(lam_p, p), (-lam_v, v)]) + mu_p + mu_v
    use = twin_width <= _combination_radius([(a, v), (b, d)]) + error
    terms = [(torch.where(use, -lam_v, a), v), (torch.where(use, lam_p, 0.0), p), (torch.where(use, 0.0, b), d)]
    return use, terms, torch.where(use, mu_p - mu_v, c), error


class Combination:
    """The form ``sum_k a_k f_k + shift`` (per-unit a_k), its generators not built until ``write``
    (box terms add in absolute value)."""

    def __init__(self, terms: list[tuple[torch.Tensor, Form]], shift: torch.Tensor):
        self.terms = terms
        self.c = sum(k * f.c for k, f in terms) + shift
        self.r = sum(k.abs() * f.r for k, f in terms)
        self.count = terms[0][1].g.shape[1]

    def write(self, out: torch.Tensor) -> torch.Tensor:
        """The generators, into ``out`` (B, G, U)."""
        (a, first), rest = self.terms[0], self.terms[1:]
        torch.mul(first.g, a.unsqueeze(1), out=out)
        for coefficient, form in rest:
            out.addcmul_(form.g, coefficient.unsqueeze(1))
        return out

    def form(self) -> Form:
        g = self.terms[0][1].g
        return Form(self.c, self.write(torch.empty_like(g)), self.r)


def _combination(terms: list[tuple[torch.Tensor, Form]], shift: torch.Tensor) -> Combination:
    return Combination(terms, shift)


def _combination_radius(terms: list[tuple[torch.Tensor | float, Form]], chunk: int = 64) -> torch.Tensor:
    """``radius(sum_k a_k f_k)`` (per-unit or scalar a_k) without building the form (symbols in chunks)."""
    def factor(k):
        return k.unsqueeze(1) if isinstance(k, torch.Tensor) else k

    count = terms[0][1].g.shape[1]
    total = sum(abs(k) * f.r for k, f in terms)
    for start in range(0, count, chunk):
        part = sum(factor(k) * f.g[:, start:start + chunk] for k, f in terms)
        total = total + part.abs().sum(1)
    return total


def _spread(centre: torch.Tensor, terms) -> tuple[torch.Tensor, torch.Tensor]:
    radius = _combination_radius(terms)
    return centre - radius, centre + radius


def _relu(z: TwinZonotope, box: TwinBox, symbol_cap: int) -> TwinZonotope:
    flat = tuple(t.flatten(1) for t in (box.v_lo, box.v_hi, box.d_lo, box.d_hi, box.p_lo, box.p_hi))
    out = _relu_forms(z.v, z.p, z.d, flat)
    v, p, d = _add_symbols([out.v, out.p, out.d], out.symbols, symbol_cap, promote=True)
    return TwinZonotope(z.shape, v, p, d, z.inputs)


def _taps(form: Form, shape, kernel: int, order: torch.Tensor) -> list[Form]:
    """The forms of every window's taps, as (B, U') forms, in ``order`` (B, U', T) per window."""
    batch, count = form.g.shape[:2]
    c = windows(form.c.reshape(batch, *shape), kernel).gather(-1, order)
    r = windows(form.r.reshape(batch, *shape), kernel).gather(-1, order)
    g = windows(form.g.reshape(batch * count, *shape), kernel)
    g = g.reshape(batch, count, *g.shape[1:]).gather(-1, order.unsqueeze(1).expand(batch, count, *order.shape[1:]))
    return [Form(c[..., t], g[..., t], r[..., t]) for t in range(order.shape[-1])]


def _order(form: Form, shape, kernel: int) -> torch.Tensor:
    return windows(form.c.reshape(-1, *shape), kernel).argsort(dim=-1, descending=True, stable=True)


def _maxpool(z: TwinZonotope, kernel: int) -> TwinZonotope:
    """Max-pooling per window (see the module docstring); the window's errors go to its box terms."""
    channels, height, width = z.shape
    shape = (channels, height // kernel, width // kernel)
    order = _order(z.v, z.shape, kernel)
    v_taps = _taps(z.v, z.shape, kernel, order)
    if z.d is None:
        v_max = _best_window_form(_chain(v_taps, None)[0], v_taps, difference=False)
        return TwinZonotope(shape, v_max, None, None, z.inputs)
    d_taps = _taps(z.d, z.shape, kernel, order)
    p_taps = _taps(z.p, z.shape, kernel, _order(z.p, z.shape, kernel))
    v_chain, d_chain = _chain(v_taps, d_taps)
    v_max = _best_window_form(v_chain, v_taps, difference=False)
    p_max = _best_window_form(_chain(p_taps, None)[0], p_taps, difference=False)
    d_max = _best_window_form(d_chain, d_taps, difference=True)
    twin = p_max.minus(v_max)
    return TwinZonotope(shape, v_max, p_max, _select(twin.radius() <= d_max.radius(), twin, d_max), z.inputs)


def _mean(group: list[Form]) -> Form:
    share = 1.0 / len(group)
    return Form(sum(t.c for t in group) * share, sum(t.g for t in group) * share, sum(t.r for t in group) * share)


def _best_window_form(chain: Form, taps: list[Form], difference: bool) -> Form:
    """Per window, the narrowest of the chain and ``B + t`` for a base ``B`` (the leading tap, the
    mean of the two leading taps, the mean of all), with the offset's error in the box term:
    ``t = max_i z_i - B = max_i (z_i - B)`` lies in ``[max(0, max_i lo(z_i - B)), max_i hi(z_i - B)]``
    (``t >= 0`` as B is a convex combination of the taps); for the ``difference`` of the two
    networks' maxima, ``max(v + d) - max(v) - B`` lies in ``[min_i lo(d_i - B), max_i hi(d_i - B)]``
    (since ``min_i d_i <= max(v + d) - max(v) <= max_i d_i``)."""
    best, best_width = chain, chain.radius()
    for base in (taps[0], _mean(taps[:2]), _mean(taps)):
        bounds = [t.minus(base).interval() for t in taps]
        lows, highs = torch.stack([lo for lo, _ in bounds]), torch.stack([hi for _, hi in bounds])
        if difference:
            low, high = lows.amin(0), highs.amax(0)
        else:
            low, high = lows.amax(0).clamp_min(0), highs.amax(0).clamp_min(0)
        candidate = Form(base.c + (low + high) / 2, base.g, base.r + (high - low).clamp_min(0) / 2)
        width = candidate.radius()
        use = width < best_width
        best, best_width = _select(use, candidate, best), torch.where(use, width, best_width)
    return best


def _chain(taps: list[Form], d_taps: list[Form] | None) -> tuple[Form, Form | None]:
    """``max`` of ``taps`` by the relu chain ``m <- m + relu(z_i - m)``, and beside it (same order) the
    difference chain of ``d_taps`` by the plane relaxation; the errors go to the box terms."""
    top, d_top = taps[0], None if d_taps is None else d_taps[0]
    for t in range(1, len(taps)):
        w_v = taps[t].minus(top)
        v_lo, v_hi = w_v.interval()
        lam, mu = _deepz(v_lo, v_hi)
        relaxed = _scaled(lam, w_v, mu).form()
        top = top.plus(Form(relaxed.c, relaxed.g, relaxed.r + mu))
        if d_taps is not None:
            w_d = d_taps[t].minus(d_top)
            d_lo, d_hi = w_d.interval()
            p_lo, p_hi = w_v.plus(w_d).interval()
            plane, error = _plane(w_v, w_d, (v_lo, v_hi, *meet(d_lo, d_hi, p_lo - v_hi, p_hi - v_lo)))
            d_top = d_top.plus(Form(plane.c, plane.g, plane.r + error))
    return top, d_top


def _add_symbols(forms: list, symbols: list, symbol_cap: int, promote: bool = False) -> list[Form | None]:
    """Add the relaxation errors as new symbols: ``symbols`` lists per new symbol (per unit) its
    coefficients in each of ``forms`` (Forms or Combinations; None = 0).
    Units beyond ``symbol_cap`` symbols in all (the smallest errors) go to the box terms instead.
    With ``promote``, the box terms then become symbols too (one per unit and form), as far as room
    is left. Each result's generators are built once, in place."""
    reference = next(f for f in forms if f is not None)
    count = reference.count if isinstance(reference, Combination) else reference.g.shape[1]
    room = symbol_cap - count
    boxes = [None if f is None else f.r for f in forms]
    blocks = []  # (column offset, width, index, valid, per-form values)
    if promote:
        symbols = list(symbols) + [tuple("box" if j == k else None for j in range(len(forms)))
                                   for k, f in enumerate(forms) if f is not None]
    added = 0
    for coefs in symbols:
        coefs = [boxes[k] if isinstance(c, str) else c for k, c in enumerate(coefs)]
        present = [c for c, f in zip(coefs, forms) if c is not None and f is not None]
        size = sum(c.abs() for c in present)
        keep = min(int((size > 0).sum(1).max()) if size.numel() else 0, max(0, room - added))
        index = size.argsort(dim=1, descending=True, stable=True)[:, :keep]
        chosen = torch.zeros_like(size, dtype=torch.bool).scatter_(1, index, True) & (size > 0)
        values = []
        for k, (coef, form) in enumerate(zip(coefs, forms)):
            if form is not None and coef is not None:
                boxes[k] = torch.where(chosen, 0.0, coef.abs()) + (0.0 if coef is boxes[k] else boxes[k])
            values.append(None if coef is None or keep == 0 else
                          torch.where(chosen.gather(1, index), coef.gather(1, index), 0.0))
        if keep:
            blocks.append((count + added, keep, index, values))
        added += keep
    built = [None if f is None else Form(f.c, _generators(f, k, blocks, count, added), boxes[k])
             for k, f in enumerate(forms)]
    return built


def _generators(form, k: int, blocks: list, count: int, added: int) -> torch.Tensor:
    """The generators of ``form`` followed by the new symbols' columns (form number ``k``)."""
    if not added and isinstance(form, Form):
        return form.g
    batch, units = form.c.shape
    out = form.c.new_zeros(batch, count + added, units)
    if isinstance(form, Combination):
        form.write(out[:, :count])
    else:
        out[:, :count] = form.g
    for offset, width, index, values in blocks:
        if values[k] is not None:
            out[:, offset:offset + width].scatter_(2, index.unsqueeze(-1), values[k].unsqueeze(-1))
    return out


def support(z: TwinZonotope, coef_v: torch.Tensor, coef_d: torch.Tensor) -> torch.Tensor:
    """Upper bound (B, S) of ``coef_v . v + coef_d . d`` over the zonotope; coefficients (B, S, U).

    The least of writing it with the form of ``d`` and with ``p - v`` (as ``(coef_v - coef_d) . v +
    coef_d . p``); each is the exact support function over its zonotope when the box terms are zero.
    """
    if z.d is None:
        return _support(z.v, coef_v)
    return torch.minimum(_support(z.v, coef_v, z.d, coef_d), _support(z.v, coef_v - coef_d, z.p, coef_d))


def _support(one: Form, coef_one: torch.Tensor, two: Form | None = None, coef_two: torch.Tensor | None = None):
    centre = (coef_one * one.c.unsqueeze(1)).sum(-1)
    gens = coef_one @ one.g.transpose(1, 2)
    boxes = coef_one.abs() @ one.r.unsqueeze(-1)
    if two is not None:
        centre = centre + (coef_two * two.c.unsqueeze(1)).sum(-1)
        gens = gens + coef_two @ two.g.transpose(1, 2)
        boxes = boxes + coef_two.abs() @ two.r.unsqueeze(-1)
    return centre + gens.abs().sum(-1) + boxes.squeeze(-1)
