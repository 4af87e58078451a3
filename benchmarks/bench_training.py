"""Training throughput (samples/s) of the workbench trainer against a plain PyTorch loop.

Same model, same data, same optimiser, same process. The plain loop is the
textbook one: ``DataLoader(TensorDataset(x, y), shuffle=True)``. The trainer must
not be slower (ratio >= 1).

    python benchmarks/bench_training.py [--model fc] [--samples 20000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from analysis.data import load_dataset
from analysis.device import resolve_device
from analysis.models import build_model
from analysis.data.config import DataConfig
from analysis.presets import paper_training
from analysis.training import make_optimizer, train_steps


def plain_epoch(model, optimizer, loader, device) -> None:
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def best_throughputs(runs: dict, n: int, repeats: int, device) -> dict:
    """Best samples/s of each epoch function; repeats interleave the contenders so that
    drifts of the machine (clock, caches, other load) hit both alike."""
    for run_epoch in runs.values():
        run_epoch()  # warm-up
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run_epoch in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
            run_epoch()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - tic)
    return {name: n / min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fc", choices=("fc", "lenet5", "cnn8"))
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_dataset("fashion-mnist")
    x, y = data.x_train[:args.samples], data.y_train[:args.samples]
    config = paper_training(args.model, DataConfig("fashion-mnist"))
    model = build_model(args.model, data.input_shape, 10, hidden=config.hidden).to(device)
    optimizer = make_optimizer(model, config)
    xd, yd = x.to(device), y.to(device)
    loader = DataLoader(TensorDataset(x, y), batch_size=config.batch_size, shuffle=True)
    counter = iter(range(10**9))
    steps = -(-len(xd) // config.batch_size)
    speeds = best_throughputs({
        "trainer": lambda: train_steps(model, optimizer, xd, yd, config.batch_size, next(counter), steps),
        "plain": lambda: plain_epoch(model, optimizer, loader, device),
    }, len(x), args.repeats, device)
    ours, plain = speeds["trainer"], speeds["plain"]
    print(f"model {args.model}, {len(x)} Fashion-MNIST samples, batch {config.batch_size}, device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"trainer:    {ours:10.0f} samples/s")
    print(f"plain loop: {plain:10.0f} samples/s")
    print(f"ratio trainer/plain: {ours / plain:.2f}")


if __name__ == "__main__":
    main()
