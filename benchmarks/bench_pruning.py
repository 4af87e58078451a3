"""Wall time and accuracy of each layer-wise method at 90% sparsity, against hard thresholding.

Fashion-MNIST 784-100-100-10 network, first hidden layer, all 60,000 training images as
the layer data, CPU by default. Prints, per method: wall time of the method, test accuracy
left without retraining, and the time ratio to hard thresholding measured in the same process.
Net-Trim runs with the quick preset's iteration budget (``CHEAP_NETTRIM``); its defaults take
about 12 minutes on 60,000 samples on 2 cores.

    python benchmarks/bench_pruning.py [--sparsity 0.9] [--methods threshold,feta,nettrim,lobs]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from analysis.data import load_dataset
from analysis.device import resolve_device
from analysis.layerwise import prune_network
from analysis.presets import CHEAP_NETTRIM, paper_training
from analysis.training import evaluate, train_or_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--methods", default="threshold,feta,nettrim,lobs,lobs-exact")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", type=Path, default=Path("results/cache"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    trained = train_or_load(paper_training("fc", "fashion-mnist", epochs=10), args.cache, device)
    data = load_dataset("fashion-mnist")
    samples = data.x_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    layer = [n for n, m in trained.model.named_modules() if isinstance(m, torch.nn.Linear)][0]
    base = evaluate(trained.model, x_test, y_test)["accuracy"]
    print(f"784-100-100-10 on Fashion-MNIST, layer {layer!r}, {len(samples)} samples, sparsity "
          f"{args.sparsity}, device {device}, {torch.get_num_threads()} threads; unpruned accuracy {base:.4f}")
    reference = None
    print(f"{'method':<12}{'time (s)':>10}{'accuracy':>10}{'ratio to threshold':>20}")
    for method in args.methods.split(","):
        options = CHEAP_NETTRIM if method == "nettrim" else {}
        pruned = prune_network(trained.model, [layer], method, args.sparsity, samples, **options)
        seconds = pruned.pruning_time_s
        reference = seconds if method == "threshold" else reference
        accuracy = evaluate(pruned.model, x_test, y_test)["accuracy"]
        ratio = f"{seconds / reference:.1f}" if reference else "-"
        print(f"{method:<12}{seconds:>10.3f}{accuracy:>10.4f}{ratio:>20}")


if __name__ == "__main__":
    main()
