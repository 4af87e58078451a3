"""Small deterministic layers and data shared by the tests/test_pruning_*.py files."""
from __future__ import annotations

import torch
from torch import nn


def correlated_inputs(n: int, d_in: int, rank: int = 4, noise: float = 0.2, seed: int = 0) -> torch.Tensor:
    """Inputs on a noisy low-rank subspace (like pixels: strongly correlated features)."""
    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, rank, generator=gen)
    mixing = torch.randn(rank, d_in, generator=gen)
    return latent @ mixing + noise * torch.randn(n, d_in, generator=gen) + 0.5


def relu_layer(d_in: int = 16, d_out: int = 6, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(d_in, d_out)
    with torch.no_grad():
        layer.weight.normal_(0, 1 / d_in ** 0.5)
        layer.bias.normal_(0, 0.1)
    return layer


def layer_data(n: int = 300, d_in: int = 16, d_out: int = 6, seed: int = 0):
    """A relu layer with correlated inputs ``X`` and its pre-activations ``Z``."""
    layer = relu_layer(d_in, d_out, seed)
    inputs = correlated_inputs(n, d_in, seed=seed)
    with torch.no_grad():
        outputs = layer(inputs)
    return layer, inputs, outputs


def relu_error(inputs, outputs, weight, bias) -> float:
    """``||relu(X W'^T + b') - relu(Z)||_F``."""
    return float((torch.relu(torch.addmm(bias, inputs, weight.T)) - torch.relu(outputs)).norm())
