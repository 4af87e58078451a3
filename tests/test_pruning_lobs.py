"""L-OBS: the OBS update and the inverse downdate against independent numpy computations."""
import numpy as np
import pytest
import torch

from pruning import LOBS, LOBSExact, downdate_inverse, get_method, layer_hessian, obs_update

from pruning_data import layer_data


def test_single_removal_matches_constrained_quadratic_minimiser():
    _, inputs, _ = layer_data(n=80, d_in=7, d_out=3)
    hessian = layer_hessian(inputs.double(), damping=1e-3)
    inverse = torch.linalg.inv(hessian)
    row = torch.randn(8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    q = 4
    # Independent: minimise dw^T H dw s.t. dw_q = -w_q via the KKT system in numpy.
    h = hessian.numpy()
    kkt = np.zeros((9, 9))
    kkt[:8, :8], kkt[:8, 8], kkt[8, :8] = 2 * h, np.eye(8)[q], np.eye(8)[q]
    rhs = np.zeros(9)
    rhs[8] = -row[q].item()
    expected = np.linalg.solve(kkt, rhs)[:8]
    np.testing.assert_allclose(obs_update(row, inverse, q).numpy(), expected, rtol=1e-8, atol=1e-10)
    assert abs((row + obs_update(row, inverse, q))[q]) < 1e-12


def test_downdated_inverse_equals_fresh_inverse_of_reduced_hessian():
    _, inputs, _ = layer_data(n=80, d_in=7, d_out=3)
    hessian = layer_hessian(inputs.double(), damping=1e-3)
    inverse = torch.linalg.inv(hessian)
    kept = list(range(8))
    for q in (2, 5, 0):
        inverse = downdate_inverse(inverse, q)
        kept.remove(q)
        fresh = np.linalg.inv(hessian.numpy()[np.ix_(kept, kept)])
        np.testing.assert_allclose(inverse.numpy()[np.ix_(kept, kept)], fresh, rtol=1e-7, atol=1e-9)
        assert torch.all(inverse[q].abs() < 1e-9)
    batched = downdate_inverse(torch.stack([torch.linalg.inv(hessian)] * 2), torch.tensor([1, 6]))
    np.testing.assert_allclose(batched[1].numpy(), downdate_inverse(torch.linalg.inv(hessian), 6).numpy())


def test_exact_variant_is_the_reduced_least_squares_solution_per_row():
    """After greedy removal with downdating, each row's kept weights minimise the layer error."""
    layer, inputs, outputs = layer_data(n=150, d_in=10, d_out=4)
    result = LOBSExact(damping=0.0).prune(layer, inputs, outputs, 0.6, relu=False)
    x = torch.cat([inputs, torch.ones(150, 1)], 1).double()
    for row in range(4):
        kept = torch.cat([result.mask[row], torch.tensor([True])])
        solution = torch.linalg.lstsq(x[:, kept], outputs[:, row].double()[:, None]).solution[:, 0]
        got = torch.cat([result.weight[row], result.bias[row:row + 1]]).double()[kept]
        np.testing.assert_allclose(got.numpy(), solution.numpy(), rtol=1e-3, atol=1e-4)


def test_exact_variant_reconstructs_better_than_one_shot_variant():
    layer, inputs, outputs = layer_data(n=200, d_in=16, d_out=6)
    errors = [LOBS_cls().prune(layer, inputs, outputs, 0.8, relu=False).info["objective"]
              for LOBS_cls in (LOBS, LOBSExact)]
    assert errors[1] < errors[0]


def test_bias_entry_is_never_removed_even_when_cheapest():
    layer, inputs, outputs = layer_data(n=60, d_in=6, d_out=3)
    with torch.no_grad():
        layer.bias.fill_(1e-6)
    for name in ("lobs", "lobs-exact"):
        result = get_method(name).prune(layer, inputs, outputs, 0.9, relu=False)
        assert torch.all(result.bias != 0)
        assert int((~result.mask).sum()) == round(0.9 * 18)


def test_rejects_negative_damping():
    with pytest.raises(ValueError, match="damping"):
        LOBS(damping=-1.0)
