"""Lipschitz constants: max-pooling multiplicity against brute force, network products."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from theory import (TheoryError, maxpool_lipschitz, maxpool_window_multiplicity, module_lipschitz_constants,
                    network_lipschitz, tail_lipschitz)


def brute_force_multiplicity(kernel, stride, padding, dilation, height, width):
    """Count, for every pixel, the windows whose max changes when only that pixel is raised."""
    base = torch.zeros(1, 1, height, width)
    pooled = F.max_pool2d(base, kernel, stride, padding, dilation)
    counts = []
    for i in range(height * width):
        spike = base.clone().view(-1)
        spike[i] = 1.0
        counts.append(int((F.max_pool2d(spike.view(1, 1, height, width), kernel, stride, padding, dilation)
                           != pooled).sum()))
    return max(counts)


@pytest.mark.parametrize("kernel,stride,padding,dilation,size", [
    (2, 2, 0, 1, (6, 6)), (3, 3, 0, 1, (7, 8)), (3, 1, 0, 1, (6, 6)), (3, 2, 1, 1, (7, 7)),
    (2, 1, 0, 1, (5, 4)), (3, 2, 0, 2, (9, 9)), ((3, 2), (1, 2), (1, 0), 1, (6, 6)),
])
def test_maxpool_multiplicity_matches_brute_force(kernel, stride, padding, dilation, size):
    expected = brute_force_multiplicity(kernel, stride, padding, dilation, *size)
    assert maxpool_window_multiplicity(kernel, stride, padding, dilation, size) == expected


@pytest.mark.parametrize("kernel,stride,size", [(2, 2, (6, 6)), (3, 1, (6, 6)), (3, 2, (7, 7))])
def test_maxpool_lipschitz_is_attained_and_never_exceeded(kernel, stride, size):
    pool = nn.MaxPool2d(kernel, stride)
    constant = maxpool_lipschitz(pool, (1, *size))
    if kernel == stride:
        assert constant == 1.0
    # attained by a single spike on a zero image at the most shared pixel
    best = 0.0
    for i in range(size[0] * size[1]):
        spike = torch.zeros(size[0] * size[1])
        spike[i] = 1.0
        best = max(best, float(pool(spike.view(1, 1, *size)).norm()))
    assert best == pytest.approx(constant)
    # and no random pair of inputs does better
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, *size, generator=generator)
    y = x + 0.1 * torch.randn(500, 1, *size, generator=generator)
    ratios = (pool(x) - pool(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert float(ratios.max()) <= constant + 1e-6


def test_network_lipschitz_bounds_observed_ratios():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 1), nn.Flatten(),
                          nn.Linear(3 * 6 * 6, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3)).eval()
    constants = module_lipschitz_constants(model, (1, 8, 8))
    assert constants[1] == 1.0 and constants[2] == pytest.approx(3.0)  # 3x3 windows, stride 1
    bound = network_lipschitz(model, (1, 8, 8))
    assert bound == pytest.approx(math.prod(constants))
    x = torch.randn(300, 1, 8, 8)
    y = x + 0.01 * torch.randn(300, 1, 8, 8)
    with torch.no_grad():
        ratios = (model(x) - model(y)).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert float(ratios.max()) <= bound
    assert tail_lipschitz(model, 0, (1, 8, 8), constants) == pytest.approx(math.prod(constants[1:]))
    assert tail_lipschitz(model, 2, (1, 8, 8), constants) == 1.0


def test_unsupported_module_is_named():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2))
    with pytest.raises(TheoryError, match=r"module 1 \(Tanh\)"):
        module_lipschitz_constants(model, (3,))
