"""Net-Trim ADMM against a direct convex solve (cvxpy) on tiny instances."""
import math

import cvxpy as cp
import numpy as np
import pytest
import torch

from pruning import NetTrim, constraint_violation, nettrim_admm

from pruning_data import layer_data


def cvxpy_nettrim(inputs, target, eps, relu):
    x, y = inputs.numpy(), target.numpy()
    weight, bias = cp.Variable((y.shape[1], x.shape[1])), cp.Variable(y.shape[1])
    z = x @ weight.T + np.ones((x.shape[0], 1)) @ bias[None, :]
    radius = eps * np.linalg.norm(y)
    if relu:
        active = y > 0
        constraints = [cp.norm(cp.multiply(active, z - y), "fro") <= radius,
                       cp.multiply(~active, z) <= 0]
    else:
        constraints = [cp.norm(z - y, "fro") <= radius]
    problem = cp.Problem(cp.Minimize(cp.sum(cp.abs(weight))), constraints)
    problem.solve()
    return problem.value


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_admm_reaches_the_convex_optimum(relu, eps):
    layer, inputs, outputs = layer_data(n=40, d_in=6, d_out=3, seed=3)
    inputs, outputs = inputs.double(), outputs.double()
    target = outputs.clamp_min(0) if relu else outputs
    result = nettrim_admm(inputs, target, eps, relu=relu, max_iterations=20000, tol=1e-9)
    optimum = cvxpy_nettrim(inputs, target, eps, relu)
    assert result.objective == pytest.approx(optimum, rel=1e-3)
    assert result.violation < 1e-4
    assert constraint_violation(inputs, target, result.weight, result.bias, eps, relu) < 1e-4


def test_larger_eps_gives_sparser_solution():
    layer, inputs, outputs = layer_data(n=60, d_in=8, d_out=3, seed=1)
    target = outputs.double().clamp_min(0)
    norms = [nettrim_admm(inputs.double(), target, eps, max_iterations=3000, tol=1e-6).objective
             for eps in (0.02, 0.1, 0.4)]
    assert norms[0] > norms[1] > norms[2]


def test_refit_keeps_the_support_and_stays_near_feasible():
    layer, inputs, outputs = layer_data(n=200, d_in=16, d_out=6)
    result = NetTrim().prune(layer, inputs, outputs, 0.7)
    assert result.info["converged"]
    assert torch.all(result.weight[~result.mask] == 0)
    assert 0 < result.info["eps"] < 1
    assert result.info["violation"] < 0.05


@pytest.mark.parametrize("scale", [1e-2, 1e2])
def test_rho_rebalancing_recovers_from_a_badly_scaled_penalty(scale):
    layer, inputs, outputs = layer_data(n=300, d_in=12, d_out=5, seed=2)
    target = outputs.double().clamp_min(0)
    inputs, start = inputs.double(), (layer.weight.detach().double(), layer.bias.detach().double())
    rho = 5 / float(start[0].abs().mean())
    reference = nettrim_admm(inputs, target, 0.2, rho=rho, tol=1e-6, start=start)
    scaled = nettrim_admm(inputs, target, 0.2, rho=rho * scale, tol=1e-4, max_iterations=3000, start=start)
    assert reference.converged and scaled.converged
    assert abs(math.log(scaled.state[5] / rho)) < abs(math.log(scale)) / 2  # moved towards balance
    assert scaled.objective == pytest.approx(reference.objective, rel=1e-2)


def test_search_reaches_the_target_within_its_slack():
    layer, inputs, outputs = layer_data(n=300, d_in=16, d_out=6, seed=5)
    method = NetTrim()
    result = method.prune(layer, inputs, outputs, 0.75)
    keep = int(result.mask.sum())
    assert result.info["converged"]
    assert keep == round(0.25 * result.weight.numel())
    # the convex solution at the chosen eps already has about the target count of non-zeros
    chosen = nettrim_admm(inputs, outputs.clamp_min(0), result.info["eps"], rho=result.info["rho"],
                          start=(layer.weight.detach(), layer.bias.detach()))
    assert (1 - 2 * method.slack) * keep <= int(torch.count_nonzero(chosen.weight)) <= keep * (1 + method.slack)
