"""The two exact kNN searches on Fashion-MNIST subsets: the principal-component bounded
search against the brute-force float32 screening, in the same process (CPU).

    python benchmarks/bench_knn.py [--sizes 6000,12000,24000] [--k 20]

Prints, per size: time of each search (with the float64 distances of the neighbours found),
the speed ratio, and whether neighbours and distances are identical (they must be). ``knn``
switches to the bounded search from 8,192 points on.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from analysis.data import load_dataset
from analysis.dimension.bounded import BoundedSearch
from analysis.dimension.neighbors import DEFAULT_MEMORY_BYTES, _ChunkedSearch, final_distances


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="6000,12000,24000", help="comma-separated subset sizes")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist")
    images = torch.cat([data.x_train, data.x_test]).reshape(-1, 784).double()
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    print(f"{'points':>7} {'bounded (s)':>12} {'brute (s)':>10} {'ratio':>6} {'same':>5}")
    for size in (int(s) for s in args.sizes.split(",")):
        points = images[order[:size]]
        bounded, bounded_time = timed(lambda: BoundedSearch(points, args.k).run())
        brute, brute_time = timed(lambda: final_distances(
            points, _ChunkedSearch(points, args.k, DEFAULT_MEMORY_BYTES).run()))
        same = torch.equal(bounded[1], brute[1]) and torch.equal(bounded[0], brute[0])
        print(f"{size:7d} {bounded_time:12.2f} {brute_time:10.2f} {brute_time / bounded_time:6.2f} {str(same):>5}")


if __name__ == "__main__":
    main()
