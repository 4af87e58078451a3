"""Claim 3's design: every hidden layer of the depth network pruned alone and onward at fixed
sparsities, by thresholding and by the smart methods (conv layers through their patches)."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import t as student_t

from analysis.data.config import DataConfig
from analysis.errors import WorkbenchError
from analysis.executor import run_sweep
from analysis.experiments import depth
from analysis.figures.depth import draw
from analysis.models import layer_names
from analysis.networks import trained_network
from analysis.runtime import Runtime
from analysis.training import TrainConfig, predict
from pruning import prune_network

CNN = TrainConfig(data=DataConfig("digits", val_size=200), model="cnn8-narrow", optimizer="sgd", lr=0.02, epochs=3,
                  batch_size=64)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One cnn8-narrow-on-digits sweep, two seeds: thresholding at 0 and 90%, L-OBS at 90% (the claim sparsity)."""
    torch.set_num_threads(1)
    runtime = Runtime(tmp_path_factory.mktemp("cache"), device="cpu", progress=False)
    config = depth.Config(CNN, seeds=(0, 1), sparsities=(0.0, 0.9), eval_size=300, methods=("threshold", "lobs"),
                          claim_sparsities=(0.9,), prune_samples=300)
    return config, runtime, run_sweep("depth", config, runtime)


def test_threshold_runs_its_grid_and_smart_methods_only_the_claim_sparsities(tiny_config):
    config = depth.Config(tiny_config, sparsities=(0.0, 0.5, 0.9), methods=("threshold", "feta"),
                          claim_sparsities=(0.5, 0.9))
    grid = {(c["method"], c["sparsity"]) for c in depth.cells(config)}
    assert grid == {("threshold", 0.0), ("threshold", 0.5), ("threshold", 0.9), ("feta", 0.5), ("feta", 0.9)}
    assert len(depth.cells(config)) == 5 * 2  # (method, sparsity) pairs x hidden layers of the 32-16 net


def test_config_rejects_bad_methods_and_samples(tiny_config):
    with pytest.raises(WorkbenchError, match="unknown pruning method"):
        depth.Config(tiny_config, methods=("threshold", "magic"))
    with pytest.raises(WorkbenchError, match="prune_samples must be >= 1"):
        depth.Config(tiny_config, prune_samples=0)
    with pytest.raises(WorkbenchError, match="claim_sparsities: 0.9 is given twice"):
        depth.Config(tiny_config, claim_sparsities=(0.9, 0.9))


def test_presets_follow_the_claim3_design():
    smoke, quick, paper = (depth.preset(p, "fashion-mnist") for p in ("smoke", "quick", "paper"))
    smart = [m for m in smoke.methods if m != "threshold"]
    assert len(smart) <= 1 and len(smoke.claim_sparsities) == 1  # CI: one smart method at one sparsity
    for config in (quick, paper):
        assert {"feta", "lobs"} <= set(config.methods) and config.claim_sparsities == (0.7, 0.8, 0.9, 0.95)
        assert set(config.claim_sparsities) <= set(config.sparsities)
    # the layers come from the preset's network, whatever its name
    assert {c["layer"] for c in depth.cells(quick)} == set(layer_names(quick.train)[:-1])


def test_alone_is_the_first_layer_of_the_onward_prune(sweep):
    """The alone row reuses the onward prune's first layer: the same network as pruning that layer alone."""
    config, runtime, _ = sweep
    trained = trained_network(replace(CNN, seed=0), runtime)
    x, y = trained.split.x_test[:300], trained.split.y_test[:300]
    samples = trained.split.x_train[:300]
    names = layer_names(CNN)[:-1]
    rows = pd.DataFrame(depth.method_rows(trained.model, 2, "lobs", 0.9, config, x, y, samples))
    direct = prune_network(trained.model, [names[2]], "lobs", 0.9, samples)
    reference = predict(trained.model, x)
    expected = (predict(direct.model, x).argmax(1) == y).float().mean().item()
    alone, onward = rows.set_index("mode").loc["alone"], rows.set_index("mode").loc["onward"]
    assert alone["accuracy"] == expected and alone["layers_pruned"] == 1 and onward["layers_pruned"] == len(names) - 2
    assert alone["mean_perturbation"] == pytest.approx((predict(direct.model, x) - reference).norm(dim=1).mean().item())
    assert onward["pruning_time_s"] > alone["pruning_time_s"] > 0 and rows["converged"].all()
    # the last hidden layer of a network loaded from its checkpoint (a pruned layer's weight is then a
    # non-leaf tensor, which must not be deep-copied)
    last = pd.DataFrame(depth.method_rows(trained.model, len(names) - 1, "lobs", 0.9, config, x, y, samples))
    assert last["accuracy"].nunique() == 1 and (last["layers_pruned"] == 1).all()


def test_tables_split_thresholding_grid_from_the_claim3_rows(sweep):
    _, _, tables = sweep
    n_layers = len(layer_names(CNN)) - 1
    grid, rows = tables["depth"], tables["depth_methods"]
    assert set(grid["method"]) == {"threshold"} and len(grid) == 2 * n_layers * 2 * 2  # seeds x layers x s x modes
    assert (grid[grid["sparsity"] == 0.0]["accuracy_drop"] == 0).all()
    assert set(rows["method"]) == {"threshold", "lobs"} and (rows["sparsity"] == 0.9).all()
    assert len(rows) == 2 * 2 * n_layers * 2  # seeds x methods x layers x modes
    lobs = rows[rows["method"] == "lobs"]
    assert (lobs["prune_samples"] == 300).all() and (lobs["pruning_time_s"] > 0).all()
    last = lobs[lobs["layer_index"] == n_layers - 1].pivot_table(index="seed", columns="mode", values="accuracy")
    assert (last["alone"] == last["onward"]).all()  # the last hidden layer: alone and onward coincide
    # threshold rows at the claim sparsity are the same measurements in both tables
    both = grid[grid["sparsity"] == 0.9].merge(rows[rows["method"] == "threshold"], on=["seed", "layer", "mode"])
    assert (both["accuracy_x"] == both["accuracy_y"]).all()
    # L-OBS compensates the removed weights: pruning onward, it keeps more accuracy than thresholding
    onward = rows[rows["mode"] == "onward"].groupby("method")["accuracy"].mean()
    assert onward["lobs"] > onward["threshold"] + 0.05


def test_claim3_summary_gives_mean_and_t_interval_over_seeds(sweep):
    _, _, tables = sweep
    summary, rows = tables["depth_claim3"], tables["depth_methods"]
    assert len(summary) == 2 * (len(layer_names(CNN)) - 1) * 2 and (summary["n_seeds"] == 2).all()
    one = summary[(summary["method"] == "lobs") & (summary["layer_index"] == 1) & (summary["mode"] == "onward")]
    values = rows[(rows["method"] == "lobs") & (rows["layer_index"] == 1) & (rows["mode"] == "onward")]["accuracy"]
    half = student_t.ppf(0.975, 1) * values.std(ddof=1) / np.sqrt(2)
    assert one["accuracy_mean"].item() == pytest.approx(values.mean())
    assert one["accuracy_low"].item() == pytest.approx(max(values.mean() - half, 0.0))  # clipped to [0, 1]
    assert one["accuracy_high"].item() == pytest.approx(min(values.mean() + half, 1.0))
    assert (summary["accuracy_low"] >= 0).all() and (summary["accuracy_high"] <= 1).all()
    assert list(summary["method"].drop_duplicates()) == ["threshold", "lobs"]  # thresholding first
    assert np.allclose(summary["drop_mean"], summary["base_accuracy"] - summary["accuracy_mean"])
    assert summary.loc[summary["method"] == "threshold", "pruning_time_s"].isna().all()
    assert (summary.loc[summary["method"] == "lobs", "converged"] == 1.0).all()


def test_figures_and_markdown_table(sweep, tmp_path):
    _, _, tables = sweep
    paths = draw(tables, tmp_path, {name: f"{name}.parquet" for name in tables})
    names = {p.name for p in paths}
    assert {"depth_claim3_accuracy.png", "depth_claim3_methods.png", "depth_claim3.md",
            "depth_accuracy_vs_sparsity.png"} <= names
    assert all(p.stat().st_size > 500 for p in paths)
    text = (tmp_path / "depth_claim3.md").read_text()
    assert "90% alone" in text and "90% onward" in text and text.count("[") >= 2 * 8 * 2
