"""prune_network on a small conv + fc net trained on scikit-learn digits: cascade against
parallel, masks that survive retraining, conv layers pruned, bad layer lists refused."""
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from pruning import (PruningError, hidden_layer_names, last_hidden_representation, layer_mask,
                     prune_network)


@pytest.fixture(scope="module")
def digits_net():
    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16
    y = torch.tensor(labels)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(54, 16), nn.ReLU(), nn.Linear(16, 10))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(3):
        for batch in torch.randperm(len(x), generator=torch.Generator().manual_seed(1)).split(100):
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval(), x[:400], y[:400]


def test_layer_names_helpers(digits_net):
    model, x, _ = digits_net
    assert hidden_layer_names(model) == ["0", "2", "5"]
    assert hidden_layer_names(model, types=(nn.Linear,)) == ["5"]
    torch.testing.assert_close(last_hidden_representation(model, x, batch_size=64), torch.relu(model[:6](x)))


def test_cascade_differs_from_parallel_after_the_first_layer(digits_net):
    model, x, _ = digits_net
    names = ["0", "2", "5"]
    cascade = prune_network(model, names, "lobs", 0.6, x, cascade=True)
    parallel = prune_network(model, names, "lobs", 0.6, x, cascade=False)
    assert torch.equal(cascade.model[0].weight, parallel.model[0].weight)
    for name in ("2", "5"):
        layer = dict(cascade.model.named_modules())[name]
        other = dict(parallel.model.named_modules())[name]
        assert not torch.equal(layer.weight, other.weight)
    for mode in (True, False):
        thresholded = prune_network(model, names, "threshold", 0.6, x, cascade=mode)
        if mode:
            reference = thresholded
    for name in names:
        assert torch.equal(dict(thresholded.model.named_modules())[name].weight,
                           dict(reference.model.named_modules())[name].weight)
    assert cascade.pruning_time_s > 0 and set(cascade.masks) == set(names)


@pytest.mark.slow
def test_conv_layers_are_pruned_to_the_target(digits_net):
    model, x, y = digits_net
    for method in ("feta", "threshold-refit"):
        pruned = prune_network(model, ["0", "2"], method, 0.5, x)
        for name in ("0", "2"):
            layer = dict(pruned.model.named_modules())[name]
            assert abs(float((layer.weight == 0).float().mean()) - 0.5) < 0.02
            assert pruned.infos[name]["converged"]
        accuracy = float((pruned.model(x).argmax(1) == y).float().mean())
        assert accuracy > 0.5, method


def test_masks_hold_through_retraining(digits_net):
    model, x, y = digits_net
    pruned = prune_network(model, ["2", "5"], "threshold-refit", 0.7, x)
    net = pruned.model.train()
    before = {name: dict(net.named_modules())[name].weight.detach().clone() for name in ("2", "5")}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        F.cross_entropy(net(x), y).backward()
        optimizer.step()
    for name in ("2", "5"):
        layer = dict(net.named_modules())[name]
        mask = pruned.masks[name]
        assert torch.equal(layer_mask(layer), mask)
        assert torch.all(layer.weight[~mask] == 0)
        assert not torch.equal(layer.weight[mask], before[name][mask])  # kept weights did train


def test_bad_layer_lists(digits_net):
    model, x, _ = digits_net
    with pytest.raises(PruningError, match="'2' given more than once"):
        prune_network(model, ["2", "5", "2"], "threshold", 0.5, x)
    with pytest.raises(PruningError, match="ReLU"):
        prune_network(model, ["1"], "threshold", 0.5, x)
    with pytest.raises(PruningError, match="needs samples"):
        prune_network(model, ["2"], "feta", 0.5)
