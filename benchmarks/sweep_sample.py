"""Time one network's part of a preset's methods sweep, for one seed (a sample of `make reproduce`).

Runs ``run_sweep("methods", ...)`` on the preset's first network (the fc net) and one seed with an
empty cache under ``--cache``, then prints the wall time, the pruning time per method and the cell
counts of every experiment in the preset. Not a ratio benchmark, so ``make bench`` skips it.

    python benchmarks/sweep_sample.py [--preset quick] [--seed 0] [--cache DIR] [--methods threshold,nettrim]
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from analysis.executor import run_sweep
from analysis.experiments import load
from analysis.runtime import Runtime

EXPERIMENTS = ("methods", "depth", "bounds", "dimension", "dimension_link", "generalization")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.mkdtemp(prefix="sweep-sample-")))
    parser.add_argument("--methods", help="comma-separated subset of the preset's methods (default: all)")
    args = parser.parse_args()
    counts = {name: len(load(name).cells(load(name).preset(args.preset, "fashion-mnist"))) for name in EXPERIMENTS}
    print(f"cells in the {args.preset} preset: {counts} ({sum(counts.values())} in all)")
    methods = load("methods")
    config = methods.preset(args.preset, "fashion-mnist", seeds=(args.seed,))
    config = dataclasses.replace(config, networks=config.networks[:1])
    if args.methods:
        config = dataclasses.replace(config, methods=tuple(args.methods.split(",")))
    start = time.perf_counter()
    tables = run_sweep("methods", config, Runtime(cache=args.cache, device="cpu"))
    print(f"{len(methods.cells(config))} methods cells, fc net, seed {args.seed}: "
          f"{time.perf_counter() - start:.0f} s wall")
    accuracy = tables["methods_accuracy"]
    print(accuracy.groupby("method").agg(seconds=("pruning_time_s", "sum"), median=("pruning_time_s", "median"),
                                         converged=("converged", "mean")).round(2).to_string())
    together = accuracy[accuracy["target"] == methods.TOGETHER]
    print(f"test accuracy without retraining, {methods.TOGETHER} layers pruned (rows: sparsity)")
    print(together.pivot_table(index="sparsity", columns="method", values="accuracy").round(3).to_string())
    ablation = tables["methods_ablation"]
    if len(ablation):
        print("ablation, the same layers: test accuracy by support (rows) and solver (columns)")
        print(ablation.pivot_table(index=["sparsity", "support"], columns="solver", values="accuracy").round(3)
              .to_string())


if __name__ == "__main__":
    main()
