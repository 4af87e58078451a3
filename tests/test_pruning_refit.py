"""Refit on a fixed support and threshold-and-refit; every method's solver on a given support."""
import pytest
import torch

from pruning import get_method, magnitude_mask, refit

from pruning_data import layer_data, relu_error

METHODS = ["threshold", "threshold-refit", "feta", "nettrim", "lobs", "lobs-exact"]


def test_linear_refit_is_the_least_squares_solution_per_row():
    layer, inputs, outputs = layer_data(n=150, d_in=10, d_out=4)
    mask = magnitude_mask(layer.weight, 0.6)
    result = refit(layer, mask, inputs, outputs, relu=False)
    x = torch.cat([inputs, torch.ones(150, 1)], 1).double()
    for row in range(4):
        kept = torch.cat([mask[row], torch.tensor([True])])
        solution = torch.linalg.lstsq(x[:, kept], outputs[:, row].double()[:, None]).solution[:, 0]
        got = torch.cat([result.weight[row], result.bias[row:row + 1]]).double()[kept]
        torch.testing.assert_close(got, solution, rtol=1e-3, atol=1e-4)
    assert torch.equal(result.mask, mask) and torch.all(result.weight[~mask] == 0)


def relu_aware_loss(inputs, outputs, weight, bias):
    p = torch.addmm(bias, inputs, weight.T)
    return float(torch.where(outputs > 0, p - outputs, p.clamp_min(0)).pow(2).sum())


def test_relu_aware_refit_lowers_its_loss_below_least_squares_and_converges():
    layer, inputs, outputs = layer_data(n=400, d_in=16, d_out=6, seed=3)
    mask = magnitude_mask(layer.weight, 0.75)
    plain = refit(layer, mask, inputs, outputs, relu=False)
    aware = refit(layer, mask, inputs, outputs, relu=True)
    assert aware.info["converged"] and aware.info["iterations"] > 0
    assert relu_aware_loss(inputs, outputs, aware.weight, aware.bias) < 0.95 * relu_aware_loss(
        inputs, outputs, plain.weight, plain.bias)
    assert relu_error(inputs, outputs, aware.weight, aware.bias) < relu_error(
        inputs, outputs, plain.weight, plain.bias)


def test_threshold_refit_keeps_the_threshold_support_and_beats_it():
    layer, inputs, outputs = layer_data(n=300, d_in=16, d_out=6)
    thresholded = get_method("threshold").prune(layer, inputs, outputs, 0.8)
    refitted = get_method("threshold-refit").prune(layer, inputs, outputs, 0.8)
    assert torch.equal(refitted.mask, thresholded.mask)
    assert relu_error(inputs, outputs, refitted.weight, refitted.bias) < 0.7 * relu_error(
        inputs, outputs, thresholded.weight, thresholded.bias)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_solves_on_a_given_support(name):
    layer, inputs, outputs = layer_data(n=200, d_in=12, d_out=5, seed=1)
    support = magnitude_mask(layer.weight, 0.7)
    result = get_method(name).prune(layer, inputs, outputs, 0.0, mask=support)
    assert torch.equal(result.mask, support)
    assert torch.all(result.weight[~support] == 0)
    assert result.info["sparsity"] >= 0.7 - 1e-9
    if name != "threshold":  # a solver on thresholding's support beats plain thresholding
        assert relu_error(inputs, outputs, result.weight, result.bias) < relu_error(
            inputs, outputs, layer.weight.detach() * support, layer.bias.detach())


def test_relu_aware_newton_refit_reaches_the_convex_optimum():
    cp = pytest.importorskip("cvxpy")
    layer, inputs, outputs = layer_data(n=120, d_in=8, d_out=3, seed=5)
    mask = magnitude_mask(layer.weight, 0.5)
    result = refit(layer, mask, inputs.double(), outputs.double(), relu=True, damping=0.0, tol=1e-12)
    assert result.info["converged"]
    x, z = inputs.double().numpy(), outputs.double().numpy()
    optimum = 0.0
    for row in range(3):
        kept = mask[row].numpy()
        w, b = cp.Variable(int(kept.sum())), cp.Variable()
        p = x[:, kept] @ w + b
        active = z[:, row] > 0
        loss = cp.sum_squares(p[active] - z[active, row]) + cp.sum_squares(cp.pos(p[~active]))
        problem = cp.Problem(cp.Minimize(loss / x.shape[0]))
        problem.solve()
        optimum += problem.value
    assert result.info["objective"] == pytest.approx(optimum, rel=1e-5)


@pytest.mark.parametrize("relu", [True, False])
def test_line_minimum_is_the_best_point_along_each_row(relu):
    from pruning.refit import _line_minimum

    generator = torch.Generator().manual_seed(7)
    p, dp, z = (torch.randn(500, 6, generator=generator, dtype=torch.float64) for _ in range(3))
    active = (z > 0) if relu else None
    t = _line_minimum(p, dp, z, active, rtol=1e-9)

    def loss(scale):
        q = p + scale * dp
        residual = q - z if active is None else torch.where(active, q - z, q.clamp_min(0))
        return residual.pow(2).sum(0)

    grid = torch.linspace(0, 3, 3001, dtype=torch.float64)[:, None] * t.clamp_min(0.1)
    best = torch.stack([loss(scale) for scale in grid]).min(0).values
    assert torch.all(t >= 0)
    assert torch.all(loss(t) <= best + 1e-9 * best.abs().clamp_min(1))
