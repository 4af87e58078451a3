"""FeTa: monotone Newton steps, exact sparsity, and a better relu reconstruction than thresholding."""
import torch

from pruning import FeTa, feta_objective, feta_solve, get_method
from pruning.feta import curvature_bound, softplus_t

from pruning_data import layer_data, relu_error


def test_softplus_and_its_curvature_bound():
    z = torch.linspace(-3, 3, 601, dtype=torch.float64)
    torch.testing.assert_close(softplus_t(z, 10.0), torch.log1p(torch.exp(10 * z)) / 10)
    z.requires_grad_(True)
    slope = softplus_t(z, 10.0) * torch.sigmoid(10 * z)
    (second,) = torch.autograd.grad(slope.sum(), z)
    bound = curvature_bound()
    assert 1.0 < bound < 1.1
    # d/dz [s_t(z) s_t'(z)] = sigmoid(w)^2 + softplus(w) sigmoid(w)(1 - sigmoid(w)), w = t z: t cancels.
    assert bound - 1e-3 <= float(second.max()) <= bound + 1e-9


def test_dc_objective_never_increases_over_newton_steps():
    layer, inputs, outputs = layer_data(n=200, d_in=12, d_out=5, seed=2)
    target = outputs.clamp_min(0)
    for lam in (1e-3, 1e-2):
        _, _, history = feta_solve(inputs, target, layer.weight.detach(), layer.bias.detach(), lam,
                                   iterations=6)
        assert len(history) == 7
        for before, after in zip(history, history[1:]):
            assert after <= before * (1 + 1e-5)
        assert history[-1] < history[0]


def test_solution_is_sparse_at_large_lam_and_matches_its_objective():
    layer, inputs, outputs = layer_data(n=200, d_in=12, d_out=5, seed=2)
    target = outputs.clamp_min(0)
    weight, bias, history = feta_solve(inputs, target, layer.weight.detach(), layer.bias.detach(),
                                       0.05, iterations=10)
    assert int((weight == 0).sum()) > 10
    assert abs(history[-1] - feta_objective(inputs, target, weight, bias, 0.05)) < 1e-4


def test_exact_zeros_at_requested_sparsity_with_fixed_lam_too():
    layer, inputs, outputs = layer_data(n=300, d_in=16, d_out=6)
    for method in (FeTa(), FeTa(lam=1e-3)):
        result = method.prune(layer, inputs, outputs, 0.8)
        assert int((result.weight == 0).sum()) == round(0.8 * 96)
        assert torch.equal(result.weight != 0, result.mask)


def test_beats_thresholding_in_relu_reconstruction_at_high_sparsity():
    layer, inputs, outputs = layer_data(n=400, d_in=20, d_out=8, seed=4)
    errors = {}
    for name in ("threshold", "feta"):
        result = get_method(name).prune(layer, inputs, outputs, 0.85)
        errors[name] = relu_error(inputs, outputs, result.weight, result.bias)
    assert errors["feta"] < 0.7 * errors["threshold"]


def test_subsample_stages_are_used_on_large_inputs_and_are_seeded():
    layer, inputs, outputs = layer_data(n=900, d_in=16, d_out=6)
    options = dict(search_samples=200)
    first = FeTa(**options).prune(layer, inputs, outputs, 0.75)
    second = FeTa(**options).prune(layer, inputs, outputs, 0.75)
    torch.testing.assert_close(first.weight, second.weight)
    assert int((~first.mask).sum()) == 72
    threshold = get_method("threshold").prune(layer, inputs, outputs, 0.75)
    assert relu_error(inputs, outputs, first.weight, first.bias) < relu_error(
        inputs, outputs, threshold.weight, threshold.bias)


def test_the_kept_weights_are_fetas_own_choice():
    # lam is searched until the solution at lam has about the target's non-zeros, so the final
    # projection chooses among FeTa's non-zeros rather than filling the support with thresholding's
    # order among its zeros (before, 25% of this support came from that order); with and without
    # the subsampled search phase.
    layer, inputs, outputs = layer_data(n=900, d_in=40, d_out=12, seed=3)
    for options in ({}, {"search_samples": 300}):
        result = FeTa(**options).prune(layer, inputs, outputs, 0.8)
        keep = int(result.mask.sum())
        assert abs(result.info["nonzeros_at_lam"] - keep) <= 0.1 * keep, (options, result.info)
        assert result.info["converged"]


def test_coordinate_descent_solves_the_lasso_model():
    from pruning.feta import _model_descent
    gen = torch.Generator().manual_seed(6)
    a = torch.randn(4, 9, 30, generator=gen, dtype=torch.float64)
    gram = a @ a.transpose(1, 2) / 30
    gradient = torch.randn(4, 9, generator=gen, dtype=torch.float64)
    start = torch.randn(4, 9, generator=gen, dtype=torch.float64)
    penalty = torch.ones(4, 9, dtype=torch.float64)
    penalty[:, -1] = 0.0
    valid = torch.ones(4, 9, dtype=torch.float64)
    ridged = gram.diagonal(dim1=1, dim2=2) + 0.05  # the model's H: gram with this diagonal
    # a hole, as RowGrams leaves one: invalid slot, zero Gram line, gradient, start and penalty
    valid[1, 3] = gram[1, 3] = gram[1, :, 3] = gradient[1, 3] = start[1, 3] = penalty[1, 3] = 0.0
    ridged[1, 3] = 1.0
    lam = 0.3
    v = _model_descent(gram, ridged, gradient, start, penalty, lam, valid, 2000, 1e-12)
    assert float(v[1, 3]) == 0.0
    # KKT: model gradient + lam p sign(v) = 0 where v != 0, |model gradient| <= lam p where v = 0
    hessian = gram + torch.diag_embed(torch.full((4, 9), 0.05, dtype=torch.float64))
    slope = gradient + torch.einsum("bij,bj->bi", hessian, v - start)
    nonzero = (v != 0) & (valid > 0)
    torch.testing.assert_close(slope[nonzero], -lam * penalty[nonzero] * v[nonzero].sign(), atol=1e-7, rtol=0)
    zero = (v == 0) & (valid > 0)
    assert bool((slope[zero].abs() <= lam * penalty[zero] + 1e-7).all())
    assert int(zero.sum()) > 0


def test_feta_reports_its_objective_and_converges_on_large_and_output_layers():
    layer, inputs, outputs = layer_data(n=600, d_in=20, d_out=8, seed=7)
    for relu in (True, False):
        result = FeTa(search_samples=300).prune(layer, inputs, outputs, 0.7, relu=relu)
        info = result.info
        assert info["converged"] and info["iterations"] == info["rounds"] + info["refit_rounds"]
        target = outputs.clamp_min(0) if relu else outputs
        if relu:
            expected = feta_objective(inputs, target, result.weight, result.bias, 0.0)
        else:
            expected = float((torch.addmm(result.bias, inputs, result.weight.T) - target).pow(2).sum(1).mean())
        assert abs(info["objective"] - expected) < 1e-4 * max(1.0, expected)
