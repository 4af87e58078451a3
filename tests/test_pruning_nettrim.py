"""Net-Trim ADMM against a direct convex solve (cvxpy) on tiny instances."""
import math

import cvxpy as cp
import numpy as np
import pytest
import torch

from pruning import NetTrim, constraint_violation, magnitude_mask, nettrim_admm
from pruning.layerdata import layer_problem
from pruning.nettrim import _relative_error, fixed_support_eps
from pruning.refit import refit_problem

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


def smallest_feasible_error(problem, mask) -> float:
    """``min ||(p - y)_Omega|| / ||y||`` over points on ``mask`` with ``p <= 0`` off Omega: a QP per row (cvxpy)."""
    x, y = problem.inputs.double().numpy(), problem.target.double().numpy()
    total = 0.0
    for row in range(y.shape[1]):
        columns, active = np.nonzero(mask[row].numpy())[0], y[:, row] > 0
        weight, bias = cp.Variable(len(columns)), cp.Variable()
        p = x[:, columns] @ weight + bias
        qp = cp.Problem(cp.Minimize(cp.sum_squares(p[active] - y[active, row])), [p[~active] <= 0])
        qp.solve(solver=cp.CLARABEL)
        total += qp.value
    return math.sqrt(total) / float(np.linalg.norm(y))


@pytest.mark.parametrize("d_in, d_out, sparsity", [(16, 6, 0.75), (32, 8, 0.9)])
def test_fixed_support_eps_is_feasible_where_twice_the_refit_error_is_not(d_in, d_out, sparsity):
    """The relu-aware refit only penalises ``p > 0`` off Omega, so twice its error can lie below the smallest
    error that meets Net-Trim's sign constraint: there ADMM has no feasible point and runs into its cap."""
    layer, inputs, outputs = layer_data(n=300, d_in=d_in, d_out=d_out, seed=1)
    problem = layer_problem(layer, inputs, outputs, relu=True)
    mask = magnitude_mask(problem.weight, sparsity)
    fit = refit_problem(problem, mask)
    smallest = smallest_feasible_error(problem, mask)
    assert 2 * _relative_error(inputs, problem.target, fit.weight, fit.bias, True) < smallest  # the old eps
    penalised = refit_problem(problem, mask, sign_weight=1e4)
    lower = _relative_error(inputs, problem.target, penalised.weight, penalised.bias, True)
    assert lower <= smallest * (1 + 1e-4) and lower > 0.95 * smallest  # the penalty's error bounds it from below
    eps = fixed_support_eps(problem, mask)
    assert 1.1 * smallest <= eps * (1 + 1e-4) < 1.2 * smallest
    result = NetTrim().prune(layer, inputs, outputs, sparsity, mask=mask)
    assert result.info["converged"] and result.info["eps"] == eps and result.info["violation"] < 1e-2
    assert torch.equal(result.mask, mask)
