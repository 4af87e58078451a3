"""Differential bounds over l-infinity balls: soundness (sampled points, PGD), eps = 0, certificates."""
import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import theory.differential as differential
from theory import TheoryError
from theory.differential import differential_attack, differential_bounds
from pruning import hard_threshold
from pruning.layers import prunable_layers

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
       budget=st.sampled_from([0.0, 3e3, differential.DEFAULT_FLOPS_PER_SAMPLE]), seed=st.integers(0, 1000))
def test_sound_against_sampled_points_attack_and_certificate(net, eps, budget, seed):
    model, shape, pruned = net
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(3, *shape, generator=generator, dtype=torch.float64)
    result = differential_bounds(model, pruned, x, eps, flops_per_sample=budget)
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


def test_unpruned_weights_give_zero_and_wider_balls_give_more():
    model = lenet_like()
    x = torch.rand(8, 1, 10, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    same = differential_bounds(model, {1: prunable(model)[1].weight.detach()}, x, 0.1)
    assert torch.equal(same["bound"], torch.zeros(8))
    pruned = {1: magnitude_pruned(prunable(model)[1].weight, 0.5)}
    bounds = [differential_bounds(model, pruned, x, eps)["bound"] for eps in (0.0, 1 / 255, 4 / 255, 0.05)]
    assert all((small <= large * (1 + SLACK)).all() for small, large in zip(bounds, bounds[1:]))


def test_back_substitution_tightens_intervals_and_chunking_changes_nothing(monkeypatch):
    model = lenet_like()
    pruned = {0: magnitude_pruned(prunable(model)[0].weight, 0.5)}
    x = torch.rand(8, 1, 10, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    intervals = differential_bounds(model, pruned, x, 0.02, flops_per_sample=0)["bound"]
    full = differential_bounds(model, pruned, x, 0.02)["bound"]
    assert (full <= intervals * (1 + SLACK)).all() and (full < 0.9 * intervals).any()
    monkeypatch.setattr(differential, "MEMORY_ELEMENTS", 500)
    torch.testing.assert_close(differential_bounds(model, pruned, x, 0.02)["bound"], full, rtol=1e-12, atol=0)


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


@pytest.fixture(scope="module")
def trained_digits_net():
    """64-32-32-10 relu net trained for a few seconds on scikit-learn's 8x8 digits (pixels in [0, 1])."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        for batch in torch.randperm(1500).split(100):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    assert (model(x[1500:]).argmax(1) == y[1500:]).float().mean() > 0.9
    return model, x[1500:1564].double()


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_tight_on_a_trained_fc_net_at_one_grey_level(trained_digits_net, layer):
    model, x = trained_digits_net
    pruned = {layer: magnitude_pruned(prunable(model)[layer].weight, 0.5)}
    bound = differential_bounds(model, pruned, x, 1 / 255)["bound"]
    attack = differential_attack(model, pruned, x, 1 / 255)
    ratio = (bound / attack).median().item()
    print(f"layer {layer}: median bound / attack at eps = 1/255, 50% sparsity: {ratio:.4f}")
    assert 1 <= ratio <= 1.5


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
])
def test_bad_input_names_the_culprit(call, message):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    pruned = {0: magnitude_pruned(model[0].weight, 0.5)}
    x = torch.rand(4, 24, dtype=torch.float64)
    with pytest.raises(TheoryError, match=message):
        call(model, pruned, x)
