"""Intrinsic dimension of Fashion-MNIST: this project's torch-kNN MLE and TwoNN against
scikit-dimension called directly, on the same distinct images in the same process.

    python benchmarks/bench_dimension.py            # all 70,000 images (slow: skdim's TwoNN
                                                    # sorts every row of the distance matrix)
    python benchmarks/bench_dimension.py --n 10000  # a seeded random subset

Prints time and estimate of each, the speed ratio and the relative difference.
Target: ratio >= 5 with estimates equal to within 1%.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import skdim
import torch
from threadpoolctl import threadpool_limits

from analysis.data import load_dataset
from analysis.dimension import estimate_dimension, remove_duplicates


def fashion_mnist_images() -> np.ndarray:
    """All 70,000 images as float64 (N, 784) in [0, 1]."""
    data = load_dataset("fashion-mnist")
    return torch.cat([data.x_train, data.x_test]).reshape(-1, 784).double().numpy()


def timed(function):
    start = time.perf_counter()
    value = float(function())
    return value, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="random subset size (default: all)")
    parser.add_argument("--k", type=int, default=20, help="MLE neighbours")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where our kNN runs (skdim: always the CPU)")
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads for torch and for numpy/scipy BLAS, the same for both sides")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    images = fashion_mnist_images()
    if args.n is not None and args.n < len(images):
        images = images[np.random.default_rng(args.seed).choice(len(images), args.n, replace=False)]
    points, n_duplicates = remove_duplicates(images)
    print(f"Fashion-MNIST: {len(points)} distinct images of {len(images)} ({n_duplicates} duplicates "
          f"removed), 784 dims, torch threads={torch.get_num_threads()}, device={args.device}")

    cases = {
        f"MLE k={args.k}": (
            lambda: estimate_dimension(points, "mle", n_neighbors=args.k, device=args.device).value,
            lambda: skdim.id.MLE().fit(points, n_neighbors=args.k).dimension_),
        "TwoNN": (lambda: estimate_dimension(points, "twonn", device=args.device).value,
                  lambda: skdim.id.TwoNN().fit(points).dimension_),
    }
    print(f"{'estimator':<10} {'ours (s)':>9} {'skdim (s)':>10} {'ratio':>7} {'ours':>8} {'skdim':>8} "
          f"{'rel diff':>9}")
    for name, (ours, theirs) in cases.items():
        ours_value, ours_time = timed(ours)
        skdim_value, skdim_time = timed(theirs)
        print(f"{name:<10} {ours_time:9.2f} {skdim_time:10.2f} {skdim_time / ours_time:7.1f} "
              f"{ours_value:8.3f} {skdim_value:8.3f} {abs(ours_value - skdim_value) / skdim_value:9.2e}")


if __name__ == "__main__":
    main()
