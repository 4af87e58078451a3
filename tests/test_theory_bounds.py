"""Perturbation bounds: soundness on random networks (hypothesis), exact cases, multi-layer bounds."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from theory import (TheoryError, accuracy, certified_accuracy, interval_certified_mask, jacobian_estimate,
                    layer_bounds, measured_perturbation, module_lipschitz_constants, multi_layer_bounds,
                    neyshabur_lemma2_bound)
from theory.network import check_network, forward_all
from theory.perturbation import _residual_output
from theory import propagation
from theory.propagation import propagate
from pruning import hard_threshold
from pruning.layers import prunable_layers

RELATIVE = 1e-6


@st.composite
def random_networks(draw):
    """A small flat Sequential of Conv2d/ReLU/MaxPool2d, then Flatten and Linear layers, and its input shape.

    Some convolutions have one dominant tap with equal or nearly equal singular values (the
    spectra on which power iteration stopped below the norm).
    """
    torch.manual_seed(draw(st.integers(0, 10_000)))  # before any layer is built: weights follow the seed
    channels, side = draw(st.integers(1, 2)), draw(st.integers(6, 9))
    input_shape = (channels, side, side)
    layers, height = [], side
    for _ in range(draw(st.integers(0, 2))):
        kernel, stride, padding = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
        if height + 2 * padding < kernel:
            break
        out = draw(st.integers(1, 3))
        conv = nn.Conv2d(channels, out, kernel, stride, padding)
        gap = draw(st.sampled_from([None, 0.0, 1e-3]))  # None: random kernel; else near-degenerate spectrum
        if gap is not None:
            with torch.no_grad():
                conv.weight.mul_(1e-6)
                side = min(out, channels)
                u, _, vh = torch.linalg.svd(torch.randn(out, channels))
                values = torch.tensor([1.0 - gap * i for i in range(side)])
                conv.weight[:, :, kernel // 2, kernel // 2] += u[:, :side] @ torch.diag(values) @ vh[:side]
        layers += [conv, nn.ReLU()]
        channels, height = out, (height + 2 * padding - kernel) // stride + 1
        if draw(st.booleans()) and height >= 3:
            pool_kernel, pool_stride = draw(st.integers(2, 3)), draw(st.integers(1, 2))  # may overlap
            layers.append(nn.MaxPool2d(pool_kernel, pool_stride))
            height = (height - pool_kernel) // pool_stride + 1
    layers.append(nn.Flatten())
    width = channels * height * height
    for _ in range(draw(st.integers(0, 2))):
        hidden = draw(st.integers(2, 8))
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(0.3)]
        width = hidden
    layers.append(nn.Linear(width, draw(st.integers(2, 4))))
    return nn.Sequential(*layers).eval(), input_shape


def prunable(model):
    return [module for _, module in prunable_layers(model)]


def magnitude_pruned(weight, sparsity):
    return hard_threshold(weight.detach(), sparsity)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=random_networks(), sparsity=st.floats(0.0, 0.95), data=st.data())
def test_bounds_are_sound_and_ordered(network, sparsity, data):
    model, input_shape = network
    layers = prunable(model)
    index = data.draw(st.integers(0, len(layers) - 1))
    pruned = magnitude_pruned(layers[index].weight, sparsity)
    scale = data.draw(st.sampled_from([0.1, 1.0, 5.0]))
    inputs = scale * torch.randn(7, *input_shape, generator=torch.Generator().manual_seed(index),
                                 dtype=torch.float64)
    budget = data.draw(st.sampled_from([0.0, 300.0, 2e7]))  # CROWN over: last module only .. everything
    bounds = layer_bounds(model, index, pruned, inputs, crown_flops_per_sample=budget)
    measured = bounds["measured"]
    slack = RELATIVE * measured + 1e-12
    assert torch.all(bounds["crown"] >= measured - slack)
    assert torch.all(bounds["per_sample"] >= bounds["crown"] - RELATIVE * bounds["crown"])
    assert torch.all(bounds["batch_max"] >= bounds["per_sample"] - RELATIVE * bounds["per_sample"])

    acts = forward_all(check_network(model), inputs)
    labels = acts[-1].argmax(dim=1).roll(1)  # some samples right, some wrong
    pruned_logits = forward_all(check_network(model), inputs, {list(model).index(layers[index]): pruned})[-1]
    measured_accuracy = accuracy(pruned_logits, labels)
    for name in ("batch_max", "per_sample", "crown", "measured"):
        assert certified_accuracy(bounds[name], acts[-1], labels) <= measured_accuracy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=random_networks(), data=st.data())
def test_output_intervals_are_sound_and_certify_no_more_than_measured(network, data):
    model, input_shape = network
    modules = check_network(model)
    layers = prunable(model)
    index = data.draw(st.integers(0, len(layers) - 1))
    position = modules.index(layers[index])
    pruned = magnitude_pruned(layers[index].weight, data.draw(st.floats(0.0, 0.9)))
    inputs = torch.randn(6, *input_shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    acts = forward_all(modules, inputs)
    perturbed = forward_all(modules, inputs, {position: pruned})
    radius = _residual_output(modules[position], pruned, acts[position]).flatten(1).norm(dim=1)
    lipschitz = module_lipschitz_constants(model, input_shape)
    states, _ = propagate(modules, position + 1, acts, radius, lipschitz, flops_per_sample=math.inf)
    for where in range(position + 1, len(modules) + 1):
        tol = 1e-9 * (1 + perturbed[where].abs())
        assert torch.all(perturbed[where] >= states[where].lower - tol)
        assert torch.all(perturbed[where] <= states[where].upper + tol)
    out = states[len(modules)]
    labels = acts[-1].argmax(dim=1)
    certified = interval_certified_mask(out.lower, out.upper, labels)
    assert torch.all(perturbed[-1].argmax(dim=1)[certified] == labels[certified])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=random_networks())
def test_crown_boxes_do_not_depend_on_the_memory_chunking(network):
    model, input_shape = network
    modules, layers = check_network(model), prunable(model)
    position = modules.index(layers[0])
    pruned = magnitude_pruned(layers[0].weight, 0.5)
    inputs = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    acts = forward_all(modules, inputs)
    radius = _residual_output(modules[position], pruned, acts[position]).flatten(1).norm(dim=1)
    lipschitz = module_lipschitz_constants(model, input_shape)
    whole, _ = propagate(modules, position + 1, acts, radius, lipschitz, flops_per_sample=math.inf)
    saved = propagation.CROWN_MEMORY_BYTES
    propagation.CROWN_MEMORY_BYTES = 1  # one specification row per chunk
    try:
        chunked, _ = propagate(modules, position + 1, acts, radius, lipschitz, flops_per_sample=math.inf)
    finally:
        propagation.CROWN_MEMORY_BYTES = saved
    for where, state in whole.items():
        assert torch.allclose(state.upper, chunked[where].upper, rtol=1e-12, atol=1e-12)
        assert torch.allclose(state.lower, chunked[where].lower, rtol=1e-12, atol=1e-12)


def test_pruning_the_last_layer_gives_exact_per_sample_bound():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    inputs = torch.randn(20, 3, 4, dtype=torch.float64)
    pruned = magnitude_pruned(model[3].weight, 0.5)
    bounds = layer_bounds(model, 1, pruned, inputs)
    torch.testing.assert_close(bounds["per_sample"], bounds["measured"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bounds["crown"], bounds["measured"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bounds["jacobian_estimate"], bounds["measured"], rtol=1e-10, atol=1e-12)
    assert torch.all(bounds["batch_max"] >= bounds["measured"])


def test_identity_pruning_gives_zero_and_linear_tail_is_exact_for_crown():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 5), nn.Identity(), nn.Linear(5, 5), nn.Linear(5, 2)).eval()
    inputs = torch.randn(10, 5, dtype=torch.float64)
    unchanged = layer_bounds(model, 0, model[0].weight.detach().clone(), inputs)
    for value in unchanged.values():
        assert torch.all(value == 0)
    # no relu after layer 0: the tail is linear, so the ball bound is rho * ||W3 W2||_2
    bounds = layer_bounds(model, 0, magnitude_pruned(model[0].weight, 0.4), inputs)
    residual = model[0].weight.detach() - magnitude_pruned(model[0].weight, 0.4)
    rho = (inputs @ residual.double().T).norm(dim=1)
    chain = torch.linalg.matrix_norm((model[3].weight @ model[2].weight).double(), ord=2)
    torch.testing.assert_close(bounds["crown"], rho * chain, rtol=1e-8, atol=1e-12)
    assert torch.all(bounds["crown"] >= bounds["measured"])


def test_multi_layer_bounds_are_sound_and_reduce_to_single_layer():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    inputs = torch.randn(16, 1, 6, 6, dtype=torch.float64)
    layers = prunable(model)
    pruned = {i: magnitude_pruned(layer.weight, 0.6) for i, layer in enumerate(layers)}
    bounds = multi_layer_bounds(model, pruned, inputs)
    assert torch.all(bounds["per_sample"] >= bounds["measured"] * (1 - RELATIVE))
    assert torch.all(bounds["batch_max"] >= bounds["per_sample"] * (1 - RELATIVE))
    single = layer_bounds(model, 1, pruned[1], inputs)
    alone = multi_layer_bounds(model, {1: pruned[1]}, inputs)
    torch.testing.assert_close(alone["per_sample"], single["per_sample"])
    torch.testing.assert_close(alone["measured"], single["measured"])


def test_neyshabur_lemma2_holds_on_a_bias_free_relu_network():
    torch.manual_seed(3)
    widths = [6, 7, 5, 3]
    model = nn.Sequential(*[m for a, b in zip(widths, widths[1:])
                            for m in (nn.Linear(a, b, bias=False), nn.ReLU())][:-1]).eval()
    layers = prunable(model)
    depth = len(layers)
    norms = [torch.linalg.matrix_norm(l.weight.double(), ord=2).item() for l in layers]
    perturbations = [0.5 * n / depth * torch.nn.functional.normalize(torch.randn_like(l.weight).flatten(), dim=0)
                     .view_as(l.weight) / 1.0 for n, l in zip(norms, layers)]
    perturbations = [u * (0.5 * n / depth) / torch.linalg.matrix_norm(u.double(), ord=2).item()
                     for u, n in zip(perturbations, norms)]
    inputs = torch.randn(50, 6, dtype=torch.float64)
    changed = measured_perturbation(model, {i: l.weight.detach() + u for i, (l, u) in
                                            enumerate(zip(layers, perturbations))}, inputs)
    bound = neyshabur_lemma2_bound(norms, [0.5 * n / depth for n in norms], float(inputs.norm(dim=1).max()))
    assert float(changed.max()) <= bound
    with pytest.raises(TheoryError, match="Lemma 2 needs"):
        neyshabur_lemma2_bound(norms, [n for n in norms], 1.0)


def test_jacobian_estimate_is_first_order_accurate():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32, 4)).eval()
    inputs = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    weight = model[0].weight.detach()
    tiny = weight + 1e-6 * torch.randn_like(weight)
    estimate = jacobian_estimate(model, {0: tiny}, inputs)
    measured = measured_perturbation(model, {0: tiny}, inputs)
    torch.testing.assert_close(estimate, measured, rtol=1e-3, atol=1e-12)


def test_models_are_not_modified_and_bad_inputs_raise():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    before = [p.detach().clone() for p in model.parameters()]
    layer_bounds(model, 0, torch.zeros(3, 4), torch.randn(3, 4))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(TheoryError, match=r"shape \(4, 3\), expected \(3, 4\)"):
        layer_bounds(model, 0, torch.zeros(4, 3), torch.randn(3, 4))
    with pytest.raises(TheoryError, match=r"layer_index must be an int in \[0, 1\]"):
        layer_bounds(model, 2, torch.zeros(3, 4), torch.randn(3, 4))
    with pytest.raises(TheoryError, match="Sigmoid"):
        layer_bounds(nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), 0, torch.zeros(3, 4),
                     torch.randn(3, 4))
    with pytest.raises(TheoryError, match=r"shape \(3, 5\)"):
        layer_bounds(model, 0, torch.zeros(3, 4), torch.randn(3, 5))


@pytest.mark.slow
@pytest.mark.parametrize("layer_index", [0, 3, 6])
def test_cnn8_bounds_on_256_samples_are_sound(layer_index):
    from analysis.models import build_model

    model = build_model("cnn8", (1, 28, 28), 10, seed=0).eval()
    lipschitz = module_lipschitz_constants(model, (1, 28, 28))
    inputs = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    pruned = magnitude_pruned(prunable(model)[layer_index].weight, 0.2)
    bounds = layer_bounds(model, layer_index, pruned, inputs, lipschitz=lipschitz)
    assert all(value.shape == (256,) for value in bounds.values())
    assert torch.all(bounds["crown"] >= bounds["measured"] * (1 - 1e-4))  # float32 inputs: looser rounding
    assert torch.all(bounds["per_sample"] >= bounds["crown"])


def test_linear_on_a_4d_activation_is_rejected_naming_the_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(TheoryError, match=r"module 2 \(Linear\).*Flatten"):
        layer_bounds(model, 0, model[0].weight.detach(), torch.randn(3, 1, 6, 6))
    first = nn.Sequential(nn.Linear(6, 2))  # a 4-D input straight into a Linear
    with pytest.raises(TheoryError, match=r"module 0 \(Linear\) receives a 4-D activation"):
        layer_bounds(first, 0, first[0].weight.detach(), torch.randn(3, 1, 6, 6))


@pytest.mark.parametrize("where", ["weight", "bias"])
def test_non_finite_parameters_anywhere_are_named_before_any_linear_algebra(where):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        getattr(model[2], where)[0] = math.inf if where == "bias" else math.nan
    with pytest.raises(TheoryError, match=rf"module 2 \(Linear\): {where} contains NaN"):
        layer_bounds(model, 0, torch.zeros(3, 4), torch.randn(3, 4))
    with pytest.raises(TheoryError, match=rf"module 2 \(Linear\): {where}"):
        module_lipschitz_constants(model, (4,))


def test_non_finite_inputs_and_boolean_layer_index_raise():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    inputs = torch.randn(3, 4)
    inputs[1, 2] = math.nan
    with pytest.raises(TheoryError, match="inputs must be finite"):
        layer_bounds(model, 0, torch.zeros(3, 4), inputs)
    with pytest.raises(TheoryError, match="layer_index must be an int"):
        layer_bounds(model, True, torch.zeros(2, 3), torch.randn(3, 4))


@pytest.mark.parametrize("lipschitz,word", [([1.0, 1.0], r"one constant per module \(3\), got 2"),
                                            ([1.0, -1.0, 1.0], r"lipschitz\[1\] \(ReLU\)"),
                                            ([1.0, 1.0, 0.0], r"lipschitz\[2\] \(Linear\)"),
                                            ([math.nan, 1.0, 1.0], r"lipschitz\[0\]"),
                                            ([1.0, "a", 1.0], r"lipschitz\[1\]")])
def test_bad_lipschitz_constants_raise(lipschitz, word):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(TheoryError, match=word):
        layer_bounds(model, 0, torch.zeros(3, 4), torch.randn(3, 4), lipschitz=lipschitz)
    with pytest.raises(TheoryError, match=word):
        multi_layer_bounds(model, {0: torch.zeros(3, 4)}, torch.randn(3, 4), lipschitz=lipschitz)


def test_multi_layer_bounds_use_pruned_norms_even_when_given_unpruned_constants():
    # zeroing one entry of [[1, 1], [1, -1]] raises its norm from sqrt(2) to the golden ratio
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.2], [0.1, 1.0]]))
        model[1].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    pruned = {0: torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64),
              1: torch.tensor([[1.0, 1.0], [0.0, -1.0]], dtype=torch.float64)}
    assert torch.linalg.matrix_norm(pruned[1], ord=2) > torch.linalg.matrix_norm(model[1].weight, ord=2) + 0.2
    inputs = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    unpruned = module_lipschitz_constants(model, (2,))
    given = multi_layer_bounds(model, pruned, inputs, lipschitz=unpruned)
    computed = multi_layer_bounds(model, pruned, inputs)
    torch.testing.assert_close(given["per_sample"], computed["per_sample"])
    # per sample: ||R0 x|| * ||W1~|| + ||R1 W0 x||, with the pruned norm
    expected = ((inputs @ (model[0].weight - pruned[0]).T).norm(dim=1) * (1 + 5 ** 0.5) / 2
                + (inputs @ model[0].weight.T @ (model[1].weight - pruned[1]).T).norm(dim=1))
    torch.testing.assert_close(computed["per_sample"], expected.detach(), rtol=1e-9, atol=0)
    assert torch.all(computed["per_sample"] >= computed["measured"])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network=random_networks(), sparsity=st.floats(0.0, 0.95), data=st.data())
def test_multi_layer_bounds_are_sound_when_every_later_layer_is_pruned(network, sparsity, data):
    model, input_shape = network
    layers = prunable(model)
    first = data.draw(st.integers(0, len(layers) - 1))
    pruned = {i: magnitude_pruned(layers[i].weight, sparsity) for i in range(first, len(layers))}
    inputs = torch.randn(5, *input_shape, generator=torch.Generator().manual_seed(first), dtype=torch.float64)
    bounds = multi_layer_bounds(model, pruned, inputs)
    assert torch.all(bounds["per_sample"] >= bounds["measured"] * (1 - RELATIVE) - 1e-12)
    assert torch.all(bounds["batch_max"] >= bounds["per_sample"] * (1 - RELATIVE))
