"""Activation capture: hooks reproduce each layer's forward; batching changes nothing."""
import pytest
import torch
from torch import nn

from pruning import PruningError, capture_activations, capture_cascade


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3))


def test_inputs_and_outputs_reproduce_each_layer():
    model = small_model()
    samples = torch.randn(50, 3, 4)
    acts = capture_activations(model, ["1", model[4], "6"], samples, batch_size=7)
    assert list(acts) == ["1", "4", "6"]
    for name, (inputs, outputs) in acts.items():
        layer = dict(model.named_modules())[name]
        assert inputs.shape[0] == 50
        torch.testing.assert_close(outputs, layer(inputs))
    # Eval mode: dropout is off, so layer 4 sees relu of layer 1's outputs.
    torch.testing.assert_close(acts["4"].inputs, torch.relu(acts["1"].outputs))
    assert model.training


def test_batched_equals_unbatched_and_accepts_loaders():
    model = small_model()
    samples = torch.randn(40, 12)
    whole = capture_activations(model, ["4"], samples, batch_size=1000)["4"]
    batched = capture_activations(model, ["4"], samples, batch_size=6)["4"]
    loader = [(samples[i:i + 9], torch.zeros(9)) for i in range(0, 40, 9)]
    from_loader = capture_activations(model, ["4"], loader)["4"]
    for got in (batched, from_loader):
        torch.testing.assert_close(got.inputs, whole.inputs)
        torch.testing.assert_close(got.outputs, whole.outputs)


def test_cascade_takes_inputs_from_the_pruned_network():
    original = small_model()
    pruned = small_model()
    with torch.no_grad():
        pruned[1].weight[:, :6] = 0
    samples = torch.randn(30, 12)
    inputs, outputs = capture_cascade(original, pruned, "4", samples, batch_size=8)
    torch.testing.assert_close(inputs, torch.relu(pruned[1](samples)))
    torch.testing.assert_close(outputs, original[4](torch.relu(original[1](samples))))


def test_bad_layers_raise():
    model = small_model()
    with pytest.raises(PruningError, match="'9'"):
        capture_activations(model, ["9"], torch.randn(4, 12))
    with pytest.raises(PruningError, match="ReLU"):
        capture_activations(model, ["2"], torch.randn(4, 12))
    with pytest.raises(PruningError, match="not a module"):
        capture_activations(model, [nn.Linear(2, 2)], torch.randn(4, 12))
