"""Time and test accuracy (no retraining) of every layer-wise method at 90% sparsity.

Fashion-MNIST 784-100-100-10 fc net (relu, dropout 0.2, Adam 1e-3, batch 300, 10 epochs,
seed 0; trained here and cached under ``--cache``), its first hidden layer pruned with all
60,000 training images as the layer data. FeTa runs twice: the old fixed schedule (30 DCA
rounds at lam and 30 refit rounds, 100 FISTA iterations each, no tolerance) and the new
default (each phase until the relative objective change is below ``tol``).

    python benchmarks/bench_pruning.py [--sparsity 0.9] [--threads 2] [--cache DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from analysis.data import load_dataset
from pruning import get_method

OLD_FETA = dict(tol=0.0, max_rounds=30, lasso_iterations=100, lasso_tol=0.0)
RUNS = [("threshold", {}), ("feta (old schedule)", OLD_FETA), ("feta", {}), ("nettrim", {}), ("lobs", {}),
        ("lobs-exact", {}), ("threshold-refit", {})]


def fc_net() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Dropout(0.2), nn.Linear(100, 100),
                         nn.ReLU(), nn.Dropout(0.2), nn.Linear(100, 10))


def trained_net(data, cache: Path) -> nn.Sequential:
    """The seeded 10-epoch network, loaded from ``cache`` when it is there."""
    path = cache / "bench_pruning_fc.pt"
    model = fc_net()
    if path.exists():
        model.load_state_dict(torch.load(path))
        return model.eval()
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        model.train()
        for batch in torch.randperm(len(data.x_train), generator=generator).split(300):
            optimizer.zero_grad()
            F.cross_entropy(model(data.x_train[batch]), data.y_train[batch]).backward()
            optimizer.step()
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hardthresh-bench")
    parser.add_argument("--methods", default=",".join(name for name, _ in RUNS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist")
    model = trained_net(data, args.cache)
    layer = model[1]
    inputs = data.x_train.reshape(len(data.x_train), -1)
    with torch.no_grad():
        outputs = layer(inputs)
    print(f"784-100-100-10 on Fashion-MNIST, first hidden layer, {len(inputs)} samples, sparsity "
          f"{args.sparsity}, {args.threads} threads; unpruned test accuracy "
          f"{accuracy(model, data.x_test, data.y_test):.4f}")
    print(f"{'method':<22}{'time (s)':>10}{'accuracy':>10}{'converged':>11}{'iterations':>12}{'objective':>12}")
    wanted = args.methods.split(",")
    for label, options in RUNS:
        if label not in wanted:
            continue
        start = time.perf_counter()
        result = get_method(label.split(" ")[0], **options).prune(layer, inputs, outputs, args.sparsity)
        seconds = time.perf_counter() - start
        original = (layer.weight.detach().clone(), layer.bias.detach().clone())
        with torch.no_grad():
            layer.weight.copy_(result.weight)
            layer.bias.copy_(result.bias)
        score = accuracy(model, data.x_test, data.y_test)
        with torch.no_grad():
            layer.weight.copy_(original[0])
            layer.bias.copy_(original[1])
        info = result.info
        objective = f"{info['objective']:.4g}" if "objective" in info else "-"
        print(f"{label:<22}{seconds:>10.2f}{score:>10.4f}{str(info['converged']):>11}"
              f"{info['iterations']:>12}{objective:>12}", flush=True)


if __name__ == "__main__":
    main()
