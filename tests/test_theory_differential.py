"""Differential bounds over l-infinity balls: soundness (sampled points, PGD), eps = 0, certificates,
the zonotope transformers, and tightness on trained networks."""
import copy
import itertools
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pruning import hard_threshold
from pruning.layers import prunable_layers
from theory import TheoryError, differential
from theory.differential import certificate_attack, differential_attack, differential_bounds, differential_boxes
from theory.differential_relax import maxpool_relaxation, windows
from theory.differential_zonotope import (
    Form,
    TwinZonotope,
    _plane_fit,
    promote_boxes,
    reduce_order,
    support,
)
from theory.network import check_network, forward_all, pruned_by_position

SLACK = 1e-9  # relative; float64 rounding only


def prunable(model):
    return [module for _, module in prunable_layers(model)]


def magnitude_pruned(weight, sparsity):
    return hard_threshold(weight.detach(), sparsity)


def conv_stack(draw, side):
    layers, channels = [], 1
    for _ in range(draw(st.integers(1, 2))):
        kernel, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        if side + 2 * padding < kernel:
            break
        out = draw(st.integers(1, 3))
        layers += [nn.Conv2d(channels, out, kernel, stride, padding), nn.ReLU()]
        channels, side = out, (side + 2 * padding - kernel) // stride + 1
        if draw(st.booleans()) and side >= 2:
            layers.append(nn.MaxPool2d(2))
            side //= 2
    return layers, channels * side * side


@st.composite
def networks(draw):
    """A small fc or conv Sequential on (1, side, side) inputs (non-overlapping pooling) and pruned weights."""
    torch.manual_seed(draw(st.integers(0, 10_000)))
    side = draw(st.integers(4, 7))
    layers, width = conv_stack(draw, side) if draw(st.booleans()) else ([], side * side)
    layers.append(nn.Flatten())
    for _ in range(draw(st.integers(0, 2))):
        hidden = draw(st.integers(2, 8))
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(0.2)]
        width = hidden
    layers.append(nn.Linear(width, draw(st.integers(2, 4))))
    model = nn.Sequential(*layers).eval()
    weights = prunable(model)
    chosen = draw(st.sets(st.integers(0, len(weights) - 1), min_size=1, max_size=min(2, len(weights))))
    pruned = {i: magnitude_pruned(weights[i].weight, draw(st.floats(0.0, 0.95))) for i in sorted(chosen)}
    return model, (1, side, side), pruned


def both_outputs(model, pruned, x):
    """Outputs of the unpruned and of a pruned copy of ``model`` (float64), by plain torch forward passes."""
    changed = copy.deepcopy(model).double()
    with torch.no_grad():
        for i, weight in pruned.items():
            prunable(changed)[i].weight.copy_(weight)
        return copy.deepcopy(model).double()(x), changed(x)


def points_in_ball(x, eps, count, generator):
    """``count`` uniform points and ``count`` vertices of the ball intersected with [0, 1]^d: (2 count, N, ...)."""
    lo, hi = (x - eps).clamp_min(0), (x + eps).clamp_max(1)
    shape = (count, *x.shape)
    uniform = lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=x.dtype)
    corner = torch.where(torch.rand(shape, generator=generator) < 0.5, lo, hi)
    return torch.cat([uniform, corner])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks(), eps=st.sampled_from([0.0, 1 / 255, 0.02, 0.1, 0.3]),
       budget=st.sampled_from([0.0, 3e3, differential.DEFAULT_FLOPS_PER_SAMPLE]), seed=st.integers(0, 1000),
       zonotope=st.sampled_from(["off", "tiny", "default"]))
def test_sound_against_sampled_points_attack_and_certificate(net, eps, budget, seed, zonotope):
    """``tiny`` leaves room for only MIN_RELAXATION_SYMBOLS relaxation symbols: order reduction and box terms."""
    model, shape, pruned = net
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(3, *shape, generator=generator, dtype=torch.float64)
    result = differential_bounds(model, pruned, x, eps, flops_per_sample=budget, symbolic=zonotope != "off",
                                 zonotope_elements=1 if zonotope == "tiny" else None)
    bound = result["bound"] * (1 + SLACK) + 1e-12
    attack = differential_attack(model, pruned, x, eps, steps=6, restarts=2, seed=seed)
    assert (attack <= bound).all() and (result["measured"] <= bound).all()

    points = points_in_ball(x, eps, 16, generator)
    reference, changed = (o.view(len(points), len(x), -1) for o in both_outputs(model, pruned, points.flatten(0, 1)))
    difference = changed - reference
    assert (difference.norm(dim=-1) <= bound).all()
    assert (difference >= result["difference_lower"] - 1e-9).all()
    assert (difference <= result["difference_upper"] + 1e-9).all()

    classes = both_outputs(model, pruned, x)[0].argmax(1).view(1, -1, 1).expand(len(points), -1, 1)
    for values, lower in ((reference, result["unpruned_margin_lower"]), (changed, result["pruned_margin_lower"])):
        margin = values.gather(2, classes).squeeze(2) - values.scatter(2, classes, -math.inf).amax(2)
        assert (margin >= lower - 1e-9).all()
    agree = (changed.argmax(2) == classes[..., 0]) & (reference.argmax(2) == classes[..., 0])
    assert agree[:, result["certified"]].all()


def lenet_like():
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 12), nn.ReLU(), nn.Linear(12, 5)).eval()


@pytest.mark.parametrize("layers", [(0,), (1,), (2,), (3,), (0, 2), (1, 3)])
def test_equals_measurement_at_eps_zero(layers):
    model = lenet_like()
    pruned = {i: magnitude_pruned(prunable(model)[i].weight, 0.6) for i in layers}
    x = torch.rand(16, 1, 10, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    result = differential_bounds(model, pruned, x, 0.0)
    reference, changed = both_outputs(model, pruned, x)
    exact = (changed - reference).norm(dim=1)
    assert exact.min() > 0
    torch.testing.assert_close(result["bound"], exact, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(differential_attack(model, pruned, x, 0.0), exact, rtol=1e-12, atol=1e-14)
    agree = (changed.argmax(1) == reference.argmax(1))
    assert torch.equal(result["certified"], agree)  # at a point the certificate is exact (no ties here)


@pytest.mark.parametrize("layers", [(0,), (2,), (1, 3)])
def test_boxes_hold_every_activation_and_difference_in_the_ball(layers):
    model = lenet_like()
    pruned = {i: magnitude_pruned(prunable(model)[i].weight, 0.6) for i in layers}
    x = torch.rand(4, 1, 10, 10, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    modules = check_network(copy.deepcopy(model).double())
    weights = {p: w.double() for p, w in pruned_by_position(modules, pruned).items()}
    exact = differential_boxes(model, pruned, x, 0.0)
    reference, changed = forward_all(modules, x), forward_all(modules, x, weights)
    for box, v, p in zip(exact, reference, changed):
        torch.testing.assert_close(box["v_lo"], v, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(box["d_hi"], p - v, rtol=1e-12, atol=1e-12)
    boxes = differential_boxes(model, pruned, x, 0.05)
    points = points_in_ball(x, 0.05, 16, torch.Generator().manual_seed(8)).flatten(0, 1)
    reference, changed = forward_all(modules, points), forward_all(modules, points, weights)
    for box, v, p in zip(boxes, reference, changed):
        v, d = (t.view(-1, *box["v_lo"].shape) for t in (v, p - v))
        assert (v >= box["v_lo"] - 1e-9).all() and (v <= box["v_hi"] + 1e-9).all()
        assert (d >= box["d_lo"] - 1e-9).all() and (d <= box["d_hi"] + 1e-9).all()
    assert (boxes[-1]["d_hi"] - boxes[-1]["d_lo"]).min() > 0


def test_unpruned_weights_give_zero_and_wider_balls_give_more():
    model = lenet_like()
    x = torch.rand(8, 1, 10, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    same = differential_bounds(model, {1: prunable(model)[1].weight.detach()}, x, 0.1)
    assert torch.equal(same["bound"], torch.zeros(8))
    pruned = {1: magnitude_pruned(prunable(model)[1].weight, 0.5)}
    bounds = [differential_bounds(model, pruned, x, eps)["bound"] for eps in (0.0, 1 / 255, 4 / 255, 0.05)]
    assert all((small <= large * (1 + SLACK)).all() for small, large in itertools.pairwise(bounds))


def test_back_substitution_tightens_intervals_and_chunking_changes_nothing(monkeypatch):
    model = lenet_like()
    pruned = {0: magnitude_pruned(prunable(model)[0].weight, 0.5)}
    x = torch.rand(8, 1, 10, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    intervals = differential_bounds(model, pruned, x, 0.02, flops_per_sample=0, symbolic=False)["bound"]
    full = differential_bounds(model, pruned, x, 0.02, symbolic=False)["bound"]
    assert (full <= intervals * (1 + SLACK)).all() and (full < 0.9 * intervals).any()
    monkeypatch.setattr(differential, "MEMORY_ELEMENTS", 500)
    torch.testing.assert_close(differential_bounds(model, pruned, x, 0.02, symbolic=False)["bound"], full,
                               rtol=1e-12, atol=0)


def test_zonotope_tightens_and_samples_are_independent():
    """Without back-substitution the zonotope alone beats intervals by far, and adding it does not loosen
    back-substitution; with room for every symbol the zonotope gives each sample of a batch the bound
    it gets alone."""
    model = lenet_like()
    pruned = {0: magnitude_pruned(prunable(model)[0].weight, 0.5)}
    x = torch.rand(6, 1, 10, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    intervals = differential_bounds(model, pruned, x, 0.02, flops_per_sample=0, symbolic=False)["bound"]
    zonotope = differential_bounds(model, pruned, x, 0.02, flops_per_sample=0)["bound"]
    assert (zonotope < 0.6 * intervals).all() and (zonotope / intervals).mean() < 0.5
    crown = differential_bounds(model, pruned, x, 0.02, symbolic=False)["bound"]
    batch = differential_bounds(model, pruned, x, 0.02)
    # (tighter boxes change the zonotope's greedy choices, so adding back-substitution is not monotone)
    assert (batch["bound"] <= crown * (1 + SLACK)).all() and (batch["bound"] <= zonotope * 1.05).all()
    # (back-substitution sizes its region by the batch's largest row count; without it, only rounding
    # differs, which can flip a tie between two relaxations of equal width)
    alone = torch.cat([differential_bounds(model, pruned, x[i:i + 1], 0.02, flops_per_sample=0)["bound"]
                       for i in range(len(x))])
    torch.testing.assert_close(alone, zonotope, rtol=0.05, atol=0)
    assert torch.isclose(alone, zonotope, rtol=1e-9).sum() >= len(x) // 2


def test_fewer_symbols_are_looser_but_sound(monkeypatch):
    model = lenet_like()
    pruned = {1: magnitude_pruned(prunable(model)[1].weight, 0.5)}
    x = torch.rand(4, 1, 10, 10, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    rich = differential_bounds(model, pruned, x, 0.05, flops_per_sample=0)["bound"]
    monkeypatch.setattr(differential, "MIN_RELAXATION_SYMBOLS", 0)  # input symbols only: errors in boxes
    poor = differential_bounds(model, pruned, x, 0.05, flops_per_sample=0, zonotope_elements=1)["bound"]
    attack = differential_attack(model, pruned, x, 0.05, steps=20, restarts=2)
    assert (attack <= rich * (1 + SLACK)).all() and (attack <= poor * (1 + SLACK)).all()
    assert rich.sum() < 0.9 * poor.sum()


def random_form(generator, batch, symbols, units, box=True):
    g = torch.randn(batch, symbols, units, generator=generator, dtype=torch.float64)
    g = g * (torch.rand(g.shape, generator=generator, dtype=torch.float64) < 0.5)
    r = torch.rand(batch, units, generator=generator, dtype=torch.float64) if box else torch.zeros(batch, units,
                                                                                                   dtype=torch.float64)
    return Form(torch.randn(batch, units, generator=generator, dtype=torch.float64), g, r)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), inputs=st.integers(0, 4), cap=st.integers(0, 12))
def test_order_reduction_and_box_promotion_only_grow_the_set(seed, inputs, cap):
    """Support functions (in random directions, over v and d together) never shrink: folding symbols
    into boxes over-approximates, promoting boxes to symbols is exact."""
    generator = torch.Generator().manual_seed(seed)
    forms = [random_form(generator, 2, inputs + 6, 5) for _ in range(3)]
    z = TwinZonotope((5,), *forms, inputs=inputs)
    coef_v = torch.randn(2, 7, 5, generator=generator, dtype=torch.float64)
    coef_d = torch.randn(2, 7, 5, generator=generator, dtype=torch.float64)
    before = support(z, coef_v, coef_d)
    reduced = reduce_order(z, inputs + cap)
    assert reduced.v.g.shape[1] <= max(inputs + cap, inputs)
    assert (support(reduced, coef_v, coef_d) >= before - 1e-12).all()
    promoted = promote_boxes(z, inputs + 6 + cap)
    assert (support(promoted, coef_v, coef_d) >= before - 1e-12).all()
    lossless = promote_boxes(z, 10 ** 6)
    assert torch.count_nonzero(lossless.v.r) == 0
    torch.testing.assert_close(lossless.v.radius(), z.v.radius())


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1e-3, 1.0, 50.0]))
def test_plane_encloses_the_relu_difference(seed, scale):
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randn(4, 64, generator=generator, dtype=torch.float64) * scale
    v_lo, v_hi = corners[0].minimum(corners[1]), corners[0].maximum(corners[1])
    d_lo, d_hi = corners[2].minimum(corners[3]), corners[2].maximum(corners[3])
    a, b, c, e = _plane_fit(v_lo, v_hi, d_lo, d_hi)
    t = torch.rand(2, 500, 64, generator=generator, dtype=torch.float64)
    t[:, :100] = t[:, :100].round()  # vertices of the box too
    v, d = v_lo + (v_hi - v_lo) * t[0], d_lo + (d_hi - d_lo) * t[1]
    g = (v + d).relu() - v.relu()
    assert ((g - (a * v + b * d + c)).abs() <= e * (1 + 1e-12) + 1e-12 * scale).all()
    assert (e <= torch.maximum(v_hi - v_lo, d_hi - d_lo)).all()  # never worse than the pure constant by much


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1e-3, 1.0, 50.0]), spread=st.sampled_from([0.0, 0.3, 3.0]))
def test_maxpool_planes_enclose_the_window_maximum(seed, scale, spread):
    generator = torch.Generator().manual_seed(seed)
    centre = torch.randn(1, 3, 4, 4, generator=generator, dtype=torch.float64) * scale
    radius = torch.rand(1, 3, 4, 4, generator=generator, dtype=torch.float64) * spread * scale
    radius[..., 0, :] = 0  # some windows with a fixed tap, ties and dominant taps included
    lo, hi = centre - radius, centre + radius
    planes = maxpool_relaxation(lo, hi, 2)
    t = torch.rand(400, 3, 4, 4, generator=generator, dtype=torch.float64)
    t[:100] = t[:100].round()  # vertices of the box too
    taps = windows(lo + (hi - lo) * t, 2)  # (points, units, 4)
    peak = taps.amax(-1)
    upper = (planes.up_slope[0] * taps).sum(-1) + planes.up_icpt[0]
    lower = (planes.lo_slope[0] * taps).sum(-1) + planes.lo_icpt[0]
    tolerance = 1e-12 * scale
    assert (lower <= peak + tolerance).all() and (peak <= upper + tolerance).all()
    deeppoly_constant = windows(hi, 2).amax(-1)  # the plane never rises above max_i u_i
    assert (upper <= deeppoly_constant + tolerance).all()


def test_certificate_refuses_a_ball_that_crosses_the_decision_boundary():
    model = nn.Sequential(nn.Linear(2, 2)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model[0].bias.zero_()
    x = torch.tensor([[0.5, 0.48], [0.9, 0.1]], dtype=torch.float64)
    pruned = {0: torch.tensor([[1.0, 0.0], [0.0, 0.9]])}
    result = differential_bounds(model, pruned, x, 0.05)
    assert result["certified"].tolist() == [False, True]
    # f~ - f = (0, -0.1 x1): exact worst case over the ball is 0.1 * max x1
    torch.testing.assert_close(result["bound"], torch.tensor([0.053, 0.015], dtype=torch.float64))


def test_certificate_attack_finds_the_crossing_and_never_contradicts_a_certificate():
    model = nn.Sequential(nn.Linear(2, 2)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
    x = torch.tensor([[0.5, 0.48], [0.9, 0.1]], dtype=torch.float64)
    pruned = {0: torch.tensor([[1.0, 0.0], [0.0, 0.9]])}
    assert certificate_attack(model, pruned, x, 0.05).tolist() == [True, False]  # (0.45, 0.53) flips sample 0
    assert certificate_attack(model, pruned, x, 0.0).tolist() == [False, False]


def train_on_digits(model: nn.Module, epochs: int, min_accuracy: float, samples: int):
    """Train ``model`` with Adam on the first 1,500 of scikit-learn's 8x8 digits (pixels in [0, 1]);
    check its held-out accuracy; return it in eval mode and ``samples`` held-out images in float64."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(1500).split(100):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    assert (model(x[1500:]).argmax(1) == y[1500:]).float().mean() > min_accuracy
    return model, x[1500:1500 + samples].double()


@pytest.fixture(scope="module")
def trained_digits_net():
    """64-32-32-10 relu net trained for a few seconds on scikit-learn's 8x8 digits (pixels in [0, 1])."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    return train_on_digits(model, epochs=30, min_accuracy=0.9, samples=64)


@pytest.mark.parametrize("eps", [1 / 255, 8 / 255])
def test_certified_and_refuted_samples_are_disjoint_on_a_trained_net(trained_digits_net, eps):
    model, x = trained_digits_net
    pruned = {1: magnitude_pruned(prunable(model)[1].weight, 0.5)}
    certified = differential_bounds(model, pruned, x, eps)["certified"]
    refuted = certificate_attack(model, pruned, x, eps)
    assert not (certified & refuted).any()
    assert certified.any() if eps < 2 / 255 else refuted.any()


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_tight_on_a_trained_fc_net_at_one_grey_level(trained_digits_net, layer):
    model, x = trained_digits_net
    pruned = {layer: magnitude_pruned(prunable(model)[layer].weight, 0.5)}
    bound = differential_bounds(model, pruned, x, 1 / 255)["bound"]
    attack = differential_attack(model, pruned, x, 1 / 255)
    ratio = (bound / attack).median().item()
    print(f"layer {layer}: median bound / attack at eps = 1/255, 50% sparsity: {ratio:.4f}")
    assert 1 <= ratio <= 1.5


@pytest.fixture(scope="module")
def trained_digits_cnn():
    """conv8-pool-conv16-pool-fc32-fc10 trained for a second on scikit-learn's 8x8 digits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    return train_on_digits(model, epochs=15, min_accuracy=0.8, samples=16)


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_tight_on_a_trained_cnn_with_pooling(trained_digits_cnn, layer):
    """Conv layers and max-pooling: the zonotope keeps the bound within a few percent of the attack."""
    model, x = trained_digits_cnn
    pruned = {layer: magnitude_pruned(prunable(model)[layer].weight, 0.5)}
    result = differential_bounds(model, pruned, x, 1 / 255)
    attack = differential_attack(model, pruned, x, 1 / 255)
    ratio = (result["bound"] / attack).median().item()
    print(f"cnn layer {layer}: median bound / attack at eps = 1/255, 50% sparsity: {ratio:.4f}, "
          f"certified {result['certified'].double().mean().item():.2f}")
    assert 1 <= ratio <= 1.3 and result["certified"].double().mean() >= 0.5


@pytest.mark.parametrize("call, message", [
    (lambda m, p, x: differential_bounds(m, p, x, -0.1), "eps"),
    (lambda m, p, x: differential_bounds(m, p, x, float("nan")), "eps"),
    (lambda m, p, x: differential_bounds(m, p, x.clone().fill_(float("inf")), 0.1), "finite"),
    (lambda m, p, x: differential_bounds(m, {0: torch.full((12, 24), float("nan"))}, x, 0.1), "NaN"),
    (lambda m, p, x: differential_bounds(m, {0: torch.zeros(3, 3)}, x, 0.1), "shape"),
    (lambda m, p, x: differential_bounds(m, p, x + 2, 0.1), "domain"),
    (lambda m, p, x: differential_bounds(m, p, x, 0.1, domain=(1.0, 0.0)), "domain"),
    (lambda m, p, x: differential_bounds(nn.Sequential(nn.Flatten(), nn.Linear(4, 12), nn.Tanh(),
                                                       nn.Linear(12, 3)), {0: torch.zeros(12, 4)}, x[:, :4], 0.1),
     "Tanh"),
    (lambda m, p, x: differential_bounds(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3, 1), nn.Flatten(),
                                                       nn.Linear(8, 2)), {0: torch.zeros(2, 1, 3, 3)},
                                         torch.rand(4, 1, 6, 6), 0.1), "MaxPool2d"),
    (lambda m, p, x: differential_attack(m, p, x, 0.1, steps=0), "steps"),
    (lambda m, p, x: differential_bounds(m, p, x, 0.1, zonotope_elements=0), "zonotope_elements"),
])
def test_bad_input_names_the_culprit(call, message):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    pruned = {0: magnitude_pruned(model[0].weight, 0.5)}
    x = torch.rand(4, 24, dtype=torch.float64)
    with pytest.raises(TheoryError, match=message):
        call(model, pruned, x)
