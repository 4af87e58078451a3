"""The exact kNN searches on Fashion-MNIST subsets, in the same process: brute force, and the
principal-component bounded search with and without its one-worker-per-core schedule.

    python benchmarks/bench_knn.py [--sizes 4000,8000,16000] [--k 20] [--repeats 3]
                                   [--device cpu|cuda] [--threads 2]

Prints, per size, the fastest of ``--repeats`` rounds of each search (float64 distances of the neighbours included),
the bounded search's speed-up over brute force, the schedule's speed-up over running its
steps in turn with all of torch's threads, and whether all results are identical (they must
be). ``knn.search.use_bounded_search`` is set from these numbers.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from analysis.data import load_dataset
from analysis.dimension.knn import resolve_device
from analysis.dimension.knn.bounded import DEFAULT_LAYOUT, BoundedSearch
from analysis.dimension.knn.brute import brute_force_knn
from analysis.dimension.knn.search import default_memory_bytes

IN_TURN = replace(DEFAULT_LAYOUT, spread_over_cores=False)


def timed(function):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,8000,16000", help="comma-separated subset sizes")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of all searches in turn; the fastest of each is shown")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    memory = default_memory_bytes(device)
    data = load_dataset("fashion-mnist")
    images = torch.cat([data.x_train, data.x_test]).reshape(-1, 784).double()
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
    searches = {
        "brute": lambda x: brute_force_knn(x, args.k, memory),
        "bounded": lambda x: BoundedSearch(x, args.k).run(),
        "in turn": lambda x: BoundedSearch(x, args.k, IN_TURN).run(),
    }
    print(f"device={device}, torch threads={torch.get_num_threads()}, k={args.k}")
    print(f"{'points':>7} {'brute (s)':>10} {'bounded (s)':>12} {'in turn (s)':>12} "
          f"{'bounded/brute':>14} {'workers':>8} {'same':>5}")
    for size in (int(s) for s in args.sizes.split(",")):
        points = images[order[:size]].to(device)
        rounds = [[timed(lambda: search(points)) for search in searches.values()]
                  for _ in range(args.repeats)]
        results = [result for one_round in rounds for result, _ in one_round]
        same = all(torch.equal(r[0], results[0][0]) and torch.equal(r[1], results[0][1]) for r in results)
        brute, bounded, in_turn = (min(column) for column in zip(*[[t for _, t in r] for r in rounds]))
        print(f"{size:7d} {brute:10.2f} {bounded:12.2f} {in_turn:12.2f} {brute / bounded:14.2f} "
              f"{in_turn / bounded:8.2f} {str(same):>5}")


if __name__ == "__main__":
    main()
