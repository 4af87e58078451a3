"""The depth experiment's cells on a tiny model, and resuming an interrupted run."""
import pandas as pd
import pytest
import torch

from analysis.executor import run_cells
from analysis.experiments.depth import DepthConfig, depth_cell, run_depth
from analysis.training import fit
from pruning import PruningError

CPU = torch.device("cpu")


def test_depth_cell_rows(tiny_config, digits_split):
    model, _ = fit(tiny_config, digits_split, CPU, progress=False)
    config = DepthConfig(tiny_config, sparsities=(0.0, 0.5, 0.9))
    x, y = digits_split.x_test, digits_split.y_test
    first = pd.DataFrame(depth_cell(model, 0, config, x, y))
    assert len(first) == 2 * 3
    dense = first[first["sparsity"] == 0.0]
    assert (dense["mean_perturbation"] == 0).all() and (dense["accuracy_drop"] == 0).all()
    onward = first[first["mode"] == "onward"]
    alone = first[first["mode"] == "alone"]
    assert (onward["layers_pruned"] == 2).all() and (alone["layers_pruned"] == 1).all()
    assert (first["remaining_depth"] == 2).all()
    assert onward["mean_perturbation"].iloc[-1] > alone["mean_perturbation"].iloc[-1] > 0
    last = pd.DataFrame(depth_cell(model, 1, config, x, y))  # the last hidden layer: both modes coincide
    a, b = last[last["mode"] == "alone"], last[last["mode"] == "onward"]
    assert a["accuracy"].tolist() == b["accuracy"].tolist()


def test_depth_config_rejects_bad_sparsity(tiny_config):
    with pytest.raises(PruningError, match="sparsity must lie in"):
        DepthConfig(tiny_config, sparsities=(0.5, 1.0))


def test_run_depth_is_deterministic_and_resumes(tiny_config, tmp_path):
    config = DepthConfig(tiny_config, seeds=(0, 1), sparsities=(0.0, 0.8))
    table = run_depth(config, tmp_path, CPU, progress=False)
    assert len(table) == 2 * 2 * 2 * 2  # seeds x layers x modes x sparsities
    again = run_depth(config, tmp_path / "fresh", CPU, progress=False)
    pd.testing.assert_frame_equal(table, again)


def test_interrupted_cells_resume_without_redoing_finished_ones(tmp_path, tiny_config):
    config = DepthConfig(tiny_config)
    cells = [{"i": i} for i in range(5)]
    calls = []

    def flaky(cell):
        calls.append(cell["i"])
        if cell["i"] == 3 and len(calls) == 4:
            raise KeyboardInterrupt
        return [{"value": cell["i"] * 10}]

    with pytest.raises(KeyboardInterrupt):
        run_cells(config, cells, flaky, tmp_path)
    assert calls == [0, 1, 2, 3]
    table = run_cells(config, cells, flaky, tmp_path)
    assert calls == [0, 1, 2, 3, 3, 4]
    assert table["value"].tolist() == [0, 10, 20, 30, 40]
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temporary leftovers
