"""Every layer-wise method: same call, exact target sparsity, dense bias, clear errors."""
import math

import pytest
import torch
from torch import nn

import pruning
from pruning import PruningError, get_method

from pruning_data import layer_data

METHODS = ["threshold", "threshold-refit", "feta", "nettrim", "lobs", "lobs-exact"]
DATA_METHODS = METHODS[1:]


def make(name):
    return get_method(name)


def test_all_methods_are_registered():
    assert set(METHODS) <= set(pruning.available_methods())


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.83])
@pytest.mark.parametrize("relu", [True, False])
def test_hits_target_sparsity_and_keeps_bias_dense(name, sparsity, relu):
    layer, inputs, outputs = layer_data(n=120, d_in=12, d_out=5)
    result = make(name).prune(layer, inputs, outputs, sparsity, relu=relu)
    numel = layer.weight.numel()
    target = round(sparsity * numel)
    assert abs(int((~result.mask).sum()) - target) <= 1
    assert abs(int((result.weight == 0).sum()) - target) <= 1
    assert torch.all(result.weight[~result.mask] == 0)
    assert result.bias is not None and torch.all(result.bias != 0)
    assert result.weight.shape == layer.weight.shape and result.weight.dtype == layer.weight.dtype
    assert torch.isfinite(result.weight).all() and torch.isfinite(result.bias).all()
    assert "iterations" in result.info and result.info["converged"] is True
    assert result.info["sparsity"] == int((result.weight == 0).sum()) / numel
    if name != "threshold":  # thresholding uses no data, so it has no objective
        assert math.isfinite(result.info["objective"])
    assert result.info["wall_time_s"] >= 0 and result.info["method"] == name


@pytest.mark.parametrize("name", DATA_METHODS)
def test_rejects_bad_input_naming_the_layer(name):
    layer, inputs, outputs = layer_data(n=50, d_in=12, d_out=5)
    method = make(name)
    with pytest.raises(PruningError, match="'fc1'.*groups=2"):
        method.prune(nn.Conv2d(4, 4, 3, groups=2), torch.randn(5, 4, 8, 8), torch.randn(5, 4, 6, 6), 0.5,
                     layer_name="fc1")
    for sparsity in (1.0, -0.1, float("nan")):
        with pytest.raises(PruningError, match="sparsity"):
            method.prune(layer, inputs, outputs, sparsity, layer_name="fc1")
    with pytest.raises(PruningError, match="'fc1'.*in_features"):
        method.prune(layer, inputs[:, :-1], outputs, 0.5, layer_name="fc1")
    with pytest.raises(PruningError, match="'fc1'.*samples"):
        method.prune(layer, inputs[:-1], outputs, 0.5, layer_name="fc1")
    bad = inputs.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(PruningError, match="'fc1'.*NaN"):
        method.prune(layer, bad, outputs, 0.5, layer_name="fc1")
    with pytest.raises(PruningError, match="'fc1'.*needs layer inputs"):
        method.prune(layer, None, None, 0.5, layer_name="fc1")


@pytest.mark.parametrize("name", DATA_METHODS)
def test_data_methods_beat_thresholding_on_the_linear_reconstruction(name):
    layer, inputs, outputs = layer_data(n=200, d_in=16, d_out=6)
    error = {}
    for method in ("threshold", name):
        result = make(method).prune(layer, inputs, outputs, 0.75, relu=False)
        error[method] = float((torch.addmm(result.bias, inputs, result.weight.T) - outputs).norm())
    assert error[name] < 0.8 * error["threshold"]
