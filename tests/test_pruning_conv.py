"""Conv2d layers as Linear maps on unfolded patches: exact 1x1 equivalence, stride, padding,
dilation honoured, patch sampling seeded, unsupported convolutions refused."""
import pytest
import torch
from torch import nn

from pruning import PruningError, get_method
from pruning.layerdata import layer_problem

from pruning_data import correlated_inputs

DATA_METHODS = ["threshold-refit", "feta", "nettrim", "lobs", "lobs-exact"]


def conv_data(conv: nn.Conv2d, n: int = 6, size: int = 7, seed: int = 0):
    flat = correlated_inputs(n * size * size, conv.in_channels, rank=3, seed=seed)
    inputs = flat.reshape(n, size, size, conv.in_channels).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return inputs, conv(inputs)


@pytest.mark.parametrize("name", DATA_METHODS)
def test_one_by_one_conv_gives_exactly_the_linear_result(name):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 4, 1)
    linear = nn.Linear(5, 4)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(4, 5))
        linear.bias.copy_(conv.bias)
    inputs, outputs = conv_data(conv)
    rows = inputs.permute(0, 2, 3, 1).reshape(-1, 5)
    targets = outputs.permute(0, 2, 3, 1).reshape(-1, 4)
    method = get_method(name)
    on_conv = method.prune(conv, inputs, outputs, 0.5)
    on_linear = method.prune(linear, rows, targets, 0.5)
    assert torch.equal(on_conv.weight.reshape(4, 5), on_linear.weight)
    assert torch.equal(on_conv.bias, on_linear.bias)
    assert torch.equal(on_conv.mask.reshape(4, 5), on_linear.mask)


@pytest.mark.parametrize("options", [dict(stride=2), dict(padding=1), dict(dilation=2, padding=2),
                                     dict(stride=(2, 1), padding=(1, 0))])
def test_unfolded_problem_reproduces_the_convolution(options):
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3, **options)
    inputs, outputs = conv_data(conv, n=3, size=9)
    problem = layer_problem(conv, inputs, outputs, relu=False, patch_rows=None)
    assert problem.inputs.shape == (outputs.numel() // 4, 27)
    torch.testing.assert_close(torch.addmm(problem.bias, problem.inputs, problem.weight.T), problem.outputs)


@pytest.mark.parametrize("name", ["threshold-refit", "feta", "lobs", "lobs-exact"])
def test_conv_pruning_beats_thresholding_with_padding_and_stride(name):
    # Net-Trim is left out: it minimises ||W||_1 at the eps its bisection finds, not the error.
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    inputs, outputs = conv_data(conv, n=8, size=8, seed=2)
    errors = {}
    for method in ("threshold", name):
        result = get_method(method).prune(conv, inputs, outputs, 0.6, relu=False)
        pruned = nn.functional.conv2d(inputs, result.weight, result.bias, stride=2, padding=1)
        errors[method] = float((pruned - outputs).norm())
        assert result.weight.shape == conv.weight.shape
        assert int((~result.mask).sum()) == round(0.6 * conv.weight.numel())
    assert errors[name] < errors["threshold"]


def test_patch_rows_are_subsampled_with_a_seed():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    inputs, outputs = conv_data(conv, n=4, size=6)
    first = layer_problem(conv, inputs, outputs, True, patch_rows=50, seed=3)
    again = layer_problem(conv, inputs, outputs, True, patch_rows=50, seed=3)
    other = layer_problem(conv, inputs, outputs, True, patch_rows=50, seed=4)
    assert first.inputs.shape == (50, 18)
    assert torch.equal(first.inputs, again.inputs) and not torch.equal(first.inputs, other.inputs)
    torch.testing.assert_close(torch.addmm(first.bias, first.inputs, first.weight.T), first.outputs)


def test_unsupported_convolutions_are_refused():
    inputs = torch.randn(2, 4, 6, 6)
    for conv, match in ((nn.Conv2d(4, 4, 3, groups=2), "groups=2"),
                        (nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "reflect")):
        outputs = conv(inputs).detach()
        with pytest.raises(PruningError, match=match):
            get_method("feta").prune(conv, inputs, outputs, 0.5, layer_name="c")
    conv = nn.Conv2d(4, 4, 3)
    with pytest.raises(PruningError, match=r"outputs of shape \(2, 4, 5, 5\)"):
        get_method("lobs").prune(conv, inputs, torch.randn(2, 4, 5, 5), 0.5)
