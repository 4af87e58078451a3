"""Malformed input to every registered method: PruningError or a correct finite result."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from pruning import PruningError, available_methods, get_method

from pruning_data import layer_data

KINDS = ["nan", "inf", "weight_nan", "bias_inf", "empty", "one_dim", "wrong_features", "wrong_samples",
         "complex", "integer", "numpy", "huge_dimension", "few_samples", "duplicates", "all_zero",
         "huge_values", "conv_wrong_size"]


def malformed(kind: str, n: int, seed: int):
    """A layer and its (inputs, outputs) spoiled in the way ``kind`` says."""
    layer, inputs, outputs = layer_data(n=max(n, 3), d_in=6, d_out=3, seed=seed)
    if kind in ("nan", "inf"):
        inputs[seed % len(inputs), seed % 6] = float(kind)
    elif kind == "weight_nan":
        with torch.no_grad():
            layer.weight[0, seed % 6] = float("nan")
    elif kind == "bias_inf":
        with torch.no_grad():
            layer.bias[seed % 3] = float("inf")
    elif kind == "empty":
        inputs, outputs = inputs[:0], outputs[:0]
    elif kind == "one_dim":
        inputs = inputs[:, 0]
    elif kind == "wrong_features":
        inputs = torch.cat([inputs, inputs[:, :1]], 1)
    elif kind == "wrong_samples":
        outputs = outputs[:-1]
    elif kind == "complex":
        inputs = inputs.to(torch.complex64)
    elif kind == "integer":
        inputs = inputs.round().long()
    elif kind == "numpy":
        inputs = inputs.numpy()
    elif kind == "huge_dimension":
        layer = nn.Linear(400, 2)
        inputs = torch.randn(n, 400, generator=torch.Generator().manual_seed(seed))
        outputs = layer(inputs).detach()
    elif kind == "few_samples":
        inputs, outputs = inputs[:n % 3 + 1], outputs[:n % 3 + 1]
    elif kind == "duplicates":
        inputs, outputs = inputs[:1].repeat(n, 1), outputs[:1].repeat(n, 1)
    elif kind == "all_zero":
        inputs = torch.zeros_like(inputs)
    elif kind == "huge_values":
        inputs = inputs * 1e30
    elif kind == "conv_wrong_size":
        layer = nn.Conv2d(2, 3, 3)
        inputs, outputs = torch.randn(n, 2, 6, 6), torch.randn(n, 3, 5, 5)
    return layer, inputs, outputs


@pytest.mark.parametrize("name", available_methods())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 40), seed=st.integers(0, 5),
       sparsity=st.sampled_from([0.0, 0.5, 0.9, 0.9996]))
def test_refuses_or_returns_a_correct_finite_result(name, kind, n, seed, sparsity):
    layer, inputs, outputs = malformed(kind, n, seed)
    try:
        result = get_method(name, max_iterations=2000) if name in ("nettrim", "threshold-refit") \
            else get_method(name)
        result = result.prune(layer, inputs, outputs, sparsity, layer_name="fc")
    except PruningError as error:
        assert "'fc'" in str(error)
        return
    assert torch.isfinite(result.weight).all() and torch.isfinite(result.bias).all()
    assert result.weight.shape == layer.weight.shape
    zeros = int((result.weight == 0).sum())
    assert result.info["sparsity"] == zeros / layer.weight.numel()
    assert zeros >= round(sparsity * layer.weight.numel())
    assert torch.all(result.weight[~result.mask] == 0)


@pytest.mark.parametrize("name", sorted(set(available_methods()) - {"threshold"}))
@pytest.mark.parametrize("kind", ["empty", "few_samples", "duplicates", "all_zero", "weight_nan", "nan",
                                  "complex", "numpy"])
def test_degenerate_and_non_finite_batches_are_refused(name, kind):
    layer, inputs, outputs = malformed(kind, n=3 if kind == "few_samples" else 30, seed=1)  # 1 sample
    with pytest.raises(PruningError, match="'fc'"):
        get_method(name).prune(layer, inputs, outputs, 0.5, layer_name="fc")


def test_feta_at_extreme_sparsity_keeps_only_the_bias():
    layer, inputs, outputs = layer_data(n=200, d_in=50, d_out=20)
    result = get_method("feta").prune(layer, inputs, outputs, 0.9996)
    assert int((result.weight != 0).sum()) == 0 and result.info["sparsity"] == 1.0
    assert torch.isfinite(result.bias).all()
