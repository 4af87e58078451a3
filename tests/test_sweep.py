"""The executor: cache identity per cell, failures, a killed sweep, and Dask against local processes."""
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pandas as pd
import pytest

from analysis.executor import CellsFailed, ProcessExecutor, run_sweep, sweep_folder
from analysis.experiments import depth, methods

SMOKE_DEPTH = ["depth", "--preset", "smoke", "--dataset", "digits", "--device", "cpu", "--no-progress"]


def cell_files(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("rows.parquet")}


@pytest.fixture
def depth_config(tiny_config):
    return depth.Config(tiny_config, seeds=(0,), sparsities=(0.0, 0.7))


def test_adding_seeds_and_sparsities_reuses_every_finished_cell(depth_config, runtime):
    first = run_sweep("depth", depth_config, runtime)["depth"]
    folder = sweep_folder(depth_config, "depth", runtime)
    before = cell_files(folder)
    assert len(before) == 2 * 2  # layers x sparsities
    wider = replace(depth_config, seeds=(0, 1), sparsities=(0.0, 0.7, 0.9))
    assert sweep_folder(wider, "depth", runtime) == folder
    table = run_sweep("depth", wider, runtime)["depth"]
    after = cell_files(folder)
    assert len(after) == 2 * 2 * 3
    assert {p: after[p] for p in before} == before  # not one finished cell recomputed
    old = table[table["seed"].eq(0) & table["sparsity"].isin([0.0, 0.7])].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, first)


def test_other_identity_gives_other_cells(depth_config, runtime):
    other = replace(depth_config, eval_size=100)
    assert sweep_folder(other, "depth", runtime) != sweep_folder(depth_config, "depth", runtime)
    run_sweep("depth", depth_config, runtime)
    config_json = next(sweep_folder(depth_config, "depth", runtime).rglob("config.json")).read_text()
    assert '"coordinates"' in config_json and '"eval_size"' in config_json


def test_a_revision_bump_leaves_the_cells_stored_before_it(depth_config, runtime, monkeypatch):
    from analysis.experiments import depth

    before = sweep_folder(depth_config, "depth", runtime)
    monkeypatch.setattr(depth, "REVISION", depth.REVISION + 1)
    assert sweep_folder(depth_config, "depth", runtime) != before


def test_a_coordinate_revision_recomputes_only_the_cells_of_that_value(tiny_config, runtime, monkeypatch):
    config = methods.Config((tiny_config,), methods=("threshold", "lobs"), seeds=(0,), sparsities=(0.5,),
                            prune_samples=200, retrain_sparsities=(), eval_size=100)
    first = run_sweep("methods", config, runtime)["methods_accuracy"]
    folder = sweep_folder(config, "methods", runtime)
    before = cell_files(folder)
    monkeypatch.setattr(methods, "COORDINATE_REVISIONS", {"method": {"lobs": 1}})
    assert sweep_folder(config, "methods", runtime) == folder
    again = run_sweep("methods", config, runtime)["methods_accuracy"]
    after = cell_files(folder)
    assert {p: after[p] for p in before} == before and len(after) == len(before) + 3  # lobs: 2 layers + together
    fresh = {p.parent.name for p in set(after) - set(before)}
    assert {pd.read_parquet(p)["method"].iloc[0] for p in after if p.parent.name in fresh} == {"lobs"}
    columns = ["method", "target", "accuracy"]
    pd.testing.assert_frame_equal(again[columns], first[columns])  # the same code: the same numbers


def test_a_failed_cell_is_reported_and_the_others_are_kept(tiny_config, runtime):
    config = methods.Config((tiny_config,), methods=("threshold", "feta"), seeds=(0,), sparsities=(0.5,),
                            prune_samples=1, retrain_sparsities=(), eval_size=100)
    with pytest.raises(CellsFailed, match=r"3 of 6 methods cells failed.*degenerate inputs"):
        run_sweep("methods", config, runtime)
    stored = pd.concat(pd.read_parquet(p) for p in sweep_folder(config, "methods", runtime).rglob("rows.parquet"))
    assert set(stored["method"]) == {"threshold"} and len(stored) == 3  # two layers alone and together


def test_local_processes_give_the_serial_tables(depth_config, runtime, tmp_path):
    serial = run_sweep("depth", depth_config, runtime)["depth"]
    other = replace(runtime, cache=tmp_path / "other")
    parallel = run_sweep("depth", depth_config, other, ProcessExecutor(2))["depth"]
    pd.testing.assert_frame_equal(serial, parallel)


def test_killed_sweep_resumes_with_every_cell_once(tmp_path):
    results = tmp_path / "results"
    process = subprocess.Popen([sys.executable, "-m", "analysis.cli", *SMOKE_DEPTH, "--results", str(results)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(list(results.rglob("rows.parquet"))) < 5 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = cell_files(results / "cache" / "cells")
    assert 5 <= len(done) < 2 * 8 * 3
    resumed = subprocess.run([sys.executable, "-m", "analysis.cli", *SMOKE_DEPTH, "--results", str(results)],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    table = pd.read_parquet(results / "depth.parquet")
    assert not table.duplicated(["seed", "layer", "sparsity", "mode"]).any()
    assert len(table) == 2 * 8 * 3 * 2  # seeds x hidden layers x sparsities x modes
    assert {p: cell_files(results / "cache" / "cells")[p] for p in done} == done
    assert not list(results.rglob("*.tmp"))


def test_dask_local_cluster_gives_the_local_tables(depth_config, tiny_config, runtime, tmp_path):
    distributed = pytest.importorskip("distributed")
    method_config = methods.Config((tiny_config,), methods=("threshold", "lobs"), seeds=(0,), sparsities=(0.5,),
                                   prune_samples=500, retrain_sparsities=(), eval_size=200)
    local = {name: run_sweep(name, config, runtime)
             for name, config in (("depth", depth_config), ("methods", method_config))}
    other = replace(runtime, cache=tmp_path / "dask-cache")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        client.run(_one_thread)
        from analysis.executor import DaskExecutor

        executor = DaskExecutor(client)
        remote = {name: run_sweep(name, config, other, executor)
                  for name, config in (("depth", depth_config), ("methods", method_config))}
    for name in local:
        for table in local[name]:
            frame = local[name][table]
            columns = [c for c in frame.columns if not c.endswith("time_s") and c not in ("median_s", "min_s", "max_s")]
            pd.testing.assert_frame_equal(frame[columns], remote[name][table][columns])


def _one_thread():
    import torch

    torch.set_num_threads(1)
