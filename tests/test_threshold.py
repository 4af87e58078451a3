"""Hard thresholding: exact sparsity with ties, layer-wise against global, biases untouched."""
import pytest
import torch
from torch import nn

from pruning import (PruningError, get_method, global_magnitude_masks, hard_threshold, magnitude_mask,
                     threshold_residual)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.75, 0.95])
def test_exact_sparsity_with_ties(sparsity):
    weight = torch.ones(10, 10)  # every entry tied
    weight[0, :5] = 0.0
    mask = magnitude_mask(weight, sparsity)
    assert (~mask).sum().item() == round(sparsity * 100)
    if sparsity >= 0.05:
        assert not mask[0, :5].any()  # existing zeros go first


def test_threshold_keeps_the_largest_magnitudes():
    weight = torch.tensor([[-5.0, 0.1], [0.2, 3.0]])
    pruned = hard_threshold(weight, 0.5)
    assert torch.equal(pruned, torch.tensor([[-5.0, 0.0], [0.0, 3.0]]))
    assert torch.equal(pruned + threshold_residual(weight, 0.5), weight)


def test_global_differs_from_layerwise_and_hits_the_overall_target():
    small, large = torch.full((4, 4), 0.01), torch.arange(1.0, 17.0).reshape(4, 4)
    masks = global_magnitude_masks([small, large], 0.5)
    assert not masks[0].any() and masks[1].all()  # one threshold: the small layer goes entirely
    assert sum((~m).sum().item() for m in masks) == 16
    layerwise = [magnitude_mask(w, 0.5) for w in (small, large)]
    assert all((~m).sum().item() == 8 for m in layerwise)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_out_of_range(bad):
    with pytest.raises(PruningError, match=r"sparsity must lie in \[0, 1\)"):
        magnitude_mask(torch.ones(3, 3), bad)


def test_threshold_method_leaves_bias_and_supports_conv():
    for layer in (nn.Linear(20, 7), nn.Conv2d(3, 4, 3)):
        result = get_method("threshold").prune(layer, None, None, 0.6)
        assert torch.equal(result.bias, layer.bias.detach())
        assert abs(result.sparsity - 0.6) <= 1 / layer.weight.numel()
        assert torch.equal(result.weight, layer.weight.detach() * result.mask)


def test_unknown_method():
    with pytest.raises(PruningError, match="unknown pruning method 'magic'"):
        get_method("magic")
