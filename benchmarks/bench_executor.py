"""Wall time of one small sweep in this process against a Dask LocalCluster of worker processes.

The sweep: the depth cells of a small fully connected net and the threshold/L-OBS methods cells,
on scikit-learn's digits, each executor with its own empty cache (so both train the networks).
Prints both times, their ratio, and whether the tables are identical.

    python benchmarks/bench_executor.py [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from analysis.data.config import DataConfig
from analysis.executor import DaskExecutor, SerialExecutor, run_sweep
from analysis.experiments import depth, methods
from analysis.runtime import Runtime
from analysis.training import TrainConfig


def sweeps() -> dict:
    network = TrainConfig(data=DataConfig("digits", val_size=200), model="fc", hidden=(64, 32), epochs=20, lr=3e-3,
                          batch_size=64)
    return {"depth": depth.Config(network, seeds=(0, 1, 2, 3), sparsities=(0.0, 0.5, 0.7, 0.9)),
            "methods": methods.Config((network,), methods=("threshold", "lobs"), seeds=(0, 1), sparsities=(0.5, 0.9),
                                      prune_samples=1000, retrain_sparsities=(), eval_size=200)}


def timed(executor, cache: Path) -> tuple[float, dict]:
    runtime = Runtime(cache, device="cpu", progress=False)
    start = time.perf_counter()
    tables = {name: run_sweep(name, config, runtime, executor) for name, config in sweeps().items()}
    return time.perf_counter() - start, tables


def one_thread() -> None:
    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        local_time, local = timed(SerialExecutor(), Path(folder) / "local")
        start = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                          silence_logs=50) as cluster, Client(cluster) as client:
            client.run(one_thread)
            startup = time.perf_counter() - start
            dask_time, remote = timed(DaskExecutor(client), Path(folder) / "dask")
    same = all(local[name][table].drop(columns=[c for c in local[name][table] if "time_s" in c or c.endswith("_s")])
               .equals(remote[name][table].drop(columns=[c for c in remote[name][table]
                                                          if "time_s" in c or c.endswith("_s")]))
               for name in local for table in local[name])
    cells = sum(len(load_cells) for load_cells in (depth.cells(sweeps()["depth"]), methods.cells(sweeps()["methods"])))
    print(f"{cells} cells, torch threads 1 per worker")
    print(f"this process:                       {local_time:7.1f} s")
    print(f"LocalCluster, {args.workers} worker processes:    {dask_time:7.1f} s (+ {startup:.1f} s start-up)")
    print(f"ratio local / cluster: {local_time / dask_time:.2f}; tables identical (timings aside): {same}")


if __name__ == "__main__":
    main()
