"""Every experiment's cells and tables on digits-sized configs (the contract of ``analysis.contract``)."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.data.config import MANIFOLD, DataConfig, ManifoldSpec
from analysis.errors import WorkbenchError
from analysis.executor import run_sweep, sweep_folder
from analysis.experiments import depth, dimension, dimension_link, experiment_modules, load, methods, bounds
from analysis.training import fit
from pruning import PruningError

CPU = torch.device("cpu")


@pytest.fixture
def cnn_config(tiny_config):
    return replace(tiny_config, model="cnn8", hidden=None, optimizer="sgd", lr=0.02, epochs=3)


def test_every_module_follows_the_contract():
    for name in experiment_modules():
        module = load(name)
        for attribute in ("Config", "preset", "cells", "compute", "tables", "TABLES"):
            assert hasattr(module, attribute), f"{name} lacks {attribute}"
        assert isinstance(module.Config.GRID, tuple)
        config = module.preset("smoke", "digits", (0,))
        assert module.cells(config) and all(cell.experiment == name for cell in module.cells(config))


def test_depth_rows(tiny_config, digits_split):
    model, _ = fit(tiny_config, digits_split, CPU, progress=False)
    config = depth.Config(tiny_config, sparsities=(0.0, 0.9))
    x, y = digits_split.x_test, digits_split.y_test
    dense = pd.DataFrame(depth.depth_rows(model, 0, 0.0, config, x, y))
    assert (dense["mean_perturbation"] == 0).all() and (dense["accuracy_drop"] == 0).all()
    first = pd.DataFrame(depth.depth_rows(model, 0, 0.9, config, x, y, model_key="k"))
    onward, alone = first[first["mode"] == "onward"], first[first["mode"] == "alone"]
    assert onward["layers_pruned"].item() == 2 and alone["layers_pruned"].item() == 1
    assert (first["remaining_depth"] == 2).all()
    assert onward["mean_perturbation"].item() > alone["mean_perturbation"].item() > 0
    again = pd.DataFrame(depth.depth_rows(model, 0, 0.9, config, x, y, model_key="k"))  # from the memo
    pd.testing.assert_frame_equal(first, again)
    last = pd.DataFrame(depth.depth_rows(model, 1, 0.9, config, x, y))  # last hidden layer: both modes coincide
    assert last["accuracy"].nunique() == 1


def test_depth_sweep_is_deterministic(cnn_config, runtime, tmp_path):
    config = depth.Config(cnn_config, seeds=(0, 1), sparsities=(0.0, 0.8), eval_size=200)
    table = run_sweep("depth", config, runtime)["depth"]
    assert len(table) == 2 * 8 * 2 * 2  # seeds x hidden layers x sparsities x modes
    assert table.groupby("layer")["remaining_depth"].first().sort_values().tolist() == list(range(1, 9))
    again = run_sweep("depth", config, replace(runtime, cache=tmp_path / "fresh"))["depth"]
    pd.testing.assert_frame_equal(table, again)


def test_configs_reject_bad_grids(tiny_config):
    with pytest.raises(PruningError, match="sparsity must lie in"):
        depth.Config(tiny_config, sparsities=(0.5, 1.0))
    with pytest.raises(WorkbenchError, match="seeds: 0 is given twice"):
        depth.Config(tiny_config, seeds=(0, 0))
    with pytest.raises(WorkbenchError, match="unknown pruning method"):
        methods.Config((tiny_config,), methods=("magic",))
    with pytest.raises(WorkbenchError, match=r"differential_models \['cnn8'\] are not among the networks \['fc'\]"):
        bounds.Config((tiny_config,), differential_models=("cnn8",))


def test_methods_tables(tiny_config, runtime):
    config = methods.Config((tiny_config,), methods=("threshold", "lobs"), seeds=(0,), sparsities=(0.5, 0.9),
                            prune_samples=500, eval_size=200, retrain_sparsities=(0.9,), ablation_sparsities=(0.9,),
                            retrain=methods.RetrainConfig(max_epochs=2, tolerance=0.01, eval_every=5))
    tables = run_sweep("methods", config, runtime)
    accuracy, retraining, timing = tables["methods_accuracy"], tables["methods_retraining"], tables["pruning_time"]
    assert len(accuracy) == 2 * 3 * 2  # methods x targets x sparsities
    assert set(accuracy["target"]) == {"hidden 1", "hidden 2", methods.TOGETHER}
    together = accuracy[accuracy["target"] == methods.TOGETHER].set_index(["method", "sparsity"])
    assert (together["accuracy"] <= together["base_accuracy"] + 0.02).all()
    assert together.loc[("lobs", 0.9), "accuracy"] > together.loc[("threshold", 0.9), "accuracy"]
    assert (accuracy["representation_change"] > 0).all()
    assert set(retraining["method"]) == {"threshold", "lobs"} and (retraining["sparsity"] == 0.9).all()
    for _, curve in retraining.groupby("method"):
        assert curve["curve_step"].iloc[0] == 0 and curve["curve_time_s"].is_monotonic_increasing
    assert set(timing["layer"]) == {"hidden 1", "hidden 2", methods.TOGETHER} and (timing["count"] == 2).all()
    ablation = tables["methods_ablation"].set_index(["support", "solver"])["accuracy"]
    assert sorted(ablation.index) == [("lobs", "lobs"), ("lobs", "refit"), ("threshold", "lobs"),
                                      ("threshold", "none")]
    assert ablation[("lobs", "lobs")] == together.loc[("lobs", 0.9), "accuracy"]
    assert ablation[("threshold", "none")] == together.loc[("threshold", 0.9), "accuracy"]
    assert ablation[("threshold", "lobs")] > ablation[("threshold", "none")]


def test_methods_alone_is_a_grid_axis(tiny_config, runtime):
    """Pruning the layers alone adds cells; the cells pruning them together are the same, cached once."""
    together = methods.Config((tiny_config,), methods=("threshold",), sparsities=(0.9,), alone=False)
    both = replace(together, alone=True)
    assert [cell.coordinates["target"] for cell in methods.cells(together)] == [methods.TOGETHER]
    assert len(methods.cells(both)) == 3
    assert sweep_folder(together, "methods", runtime) == sweep_folder(both, "methods", runtime)
    assert {cell.key for cell in methods.cells(together)} < {cell.key for cell in methods.cells(both)}


@pytest.mark.parametrize("module", [depth, methods])
def test_a_methods_subset_shares_the_full_runs_cells(module, runtime):
    name = module.__name__.rsplit(".", 1)[1]
    full = module.preset("smoke", "digits", (0,))
    subset = module.preset("smoke", "digits", (0,), methods=("threshold",))
    assert subset.methods == ("threshold",) and full.methods != subset.methods
    assert sweep_folder(subset, name, runtime) == sweep_folder(full, name, runtime)
    assert {cell.key for cell in module.cells(subset)} < {cell.key for cell in module.cells(full)}


def test_methods_prune_conv_layers_alone_and_together(cnn_config, runtime):
    lenet = replace(cnn_config, model="lenet5", data=DataConfig("fashion-mnist", train_size=600, val_size=100),
                    epochs=2)
    config = methods.Config((lenet,), methods=("threshold", "lobs"), sparsities=(0.8,), prune_samples=300,
                            eval_size=200, retrain_sparsities=())
    accuracy = run_sweep("methods", config, runtime)["methods_accuracy"]
    assert set(accuracy["layers"]) == {"0", "3", "7", "0,3,7"}
    together = accuracy[accuracy["target"] == methods.TOGETHER].set_index("method")["accuracy"]
    assert together["lobs"] > together["threshold"]


def test_bounds_table(cnn_config, runtime):
    config = bounds.Config((cnn_config,), seeds=(0,), sparsities=(0.5,), eval_size=16, certificate_size=200,
                           eps_values=(0.0, 1 / 255), differential_size=4)
    tables = run_sweep("bounds", config, runtime)
    table = tables["bounds"]
    sound = table[~table["is_estimate"]]
    assert (sound["violations"] == 0).all() and (sound["median_ratio"] >= 1 - 1e-9).all()
    assert set(table["mode"]) == {"alone", "onward"} and table["layer_index"].nunique() == 9
    profile = tables["bounds_depth_profile"]
    assert len(profile) == 2 * 9 and (profile["per_sample_bound"] >= profile["measured"] * (1 - 1e-9)).all()
    certificates = tables["bounds_certificates"]
    assert (certificates["accuracy_lower_bound"] <= certificates["accuracy"]).all()
    assert (certificates["quantile_upper_bound"] >= certificates["quantile"]).all()
    differential = tables["bounds_differential"]
    assert (differential["violations"] == 0).all() and len(differential) == 9 * 2
    at_zero = differential[differential["eps"] == 0.0]
    assert np.allclose(at_zero["mean_bound"], at_zero["mean_measured"], rtol=1e-6)
    # at eps 0 the certificate is exact: every sample is certified or refuted (the pruned class differs)
    assert np.allclose(at_zero["certified_fraction"] + at_zero["refuted_fraction"], 1)
    assert (differential["certified_fraction"] + differential["refuted_fraction"] <= 1 + 1e-12).all()
    assert set(tables["bounds_correlations"]["against"]) >= {"depth_profile.per_sample_bound",
                                                            "certificates.quantile_upper_bound"}


def test_bounds_without_differential_cells_leave_that_table_empty(tiny_config, runtime):
    config = bounds.Config((tiny_config,), sparsities=(0.5,), eval_size=8, certificate_size=50,
                           differential_sparsities=())
    tables = run_sweep("bounds", config, runtime)
    assert tables["bounds_differential"].empty and len(tables["bounds"]) > 0


def test_bounds_differential_cells_only_on_the_chosen_networks(tiny_config, cnn_config):
    config = bounds.Config((tiny_config, cnn_config), differential_models=("fc",))
    differential = [cell for cell in bounds.cells(config) if cell["kind"] == "differential"]
    assert {cell["network"] for cell in differential} == {0} and len(differential) == 3 * 4  # layers x eps
    assert {cell["network"] for cell in bounds.cells(config) if cell["kind"] == "layer"} == {0, 1}


def test_dimension_tables(runtime, tmp_path):
    config = dimension.Config(("digits",), samples=None, mle_neighbors=(5, 10), per_class=False, n_bootstrap=5,
                              estimators=("mle", "twonn"), validation_points=200)
    tables = run_sweep("dimension", config, runtime)
    data = tables["dimension_datasets"]
    assert set(zip(data["method"], data["k"].fillna(0))) == {("mle", 5), ("mle", 10), ("twonn", 0)}
    assert ((data["value"] > 3) & (data["value"] < 40)).all() and (data["ci_low"] <= data["ci_high"]).all()
    validation = tables["dimension_validation"]
    assert set(validation["estimator"]) == {"mle", "twonn"} and validation["manifold"].nunique() == 24
    points = tmp_path / "points.npy"
    rng = np.random.default_rng(0)
    np.save(points, rng.standard_normal((400, 3)) @ rng.standard_normal((3, 20)))
    on_file = run_sweep("dimension", dimension.preset("smoke", "digits", points=points, bootstrap=0), runtime)
    estimates = on_file["dimension_points"].set_index("method")["value"]
    assert abs(estimates["mle"] - 3) < 0.6 and abs(estimates["twonn"] - 3) < 0.6


def test_dimension_link_table(tiny_config, runtime):
    synthetic = replace(tiny_config, data=DataConfig(MANIFOLD, manifold=ManifoldSpec(2)))
    config = dimension_link.Config(tiny_config, (5, 40), synthetic, (2, 6), synthetic_sizes=(800, 300),
                                   seeds=(0,), sparsities=(0.0, 0.8), eval_size=300, estimate_samples=500,
                                   estimate_bootstrap=3, calibration=dimension_link.Calibration(steps=2))
    tables = run_sweep("dimension_link", config, runtime)
    table = tables["dimension_link"]
    assert len(table) == 4 * 2 * 2  # levels x sparsities x modes, first layer only
    assert (table["layer_index"] == 0).all() and set(table["mode"]) == {"alone", "onward"}
    synthetic_rows = table[table["kind"] == "synthetic"]
    assert (synthetic_rows["true_dimension"] == synthetic_rows["level"]).all()
    assert (synthetic_rows["label_frequency"] > 0).all() and synthetic_rows["calibration_accuracy"].between(0, 1).all()
    estimated = synthetic_rows.groupby("level")["estimated_mle"].first()
    assert estimated[2] < estimated[6]
    assert (table["estimated_mle_low"] <= table["estimated_mle_high"]).all()
    pca = table[table["kind"] == "pca"]
    assert (pca["n_components"] == pca["level"]).all() and pca["label_frequency"].isna().all()
    pca_dimension = pca.groupby("level")["estimated_mle"].first()
    assert pca_dimension[5] < pca_dimension[40]
    assert (table[table["sparsity"] == 0.0]["accuracy_drop"] == 0).all()
    regression = tables["dimension_link_regression"]
    assert set(regression["kind"]) == {"pca", "synthetic"} and (regression["sparsity"] == 0.8).all()
    assert set(regression["term"]) == {"intercept", "dimension", "base_accuracy"}
    assert regression["n"].eq(2).all()  # two networks per kind: too few points for intervals, so NaN
    assert regression["coef"].isna().all()


def test_generalization_table(tiny_config, runtime):
    from analysis.experiments import generalization

    network = replace(tiny_config, data=DataConfig(MANIFOLD, manifold=ManifoldSpec(2)))
    config = generalization.Config(network, (2, 6), synthetic_sizes=(800, 300), seeds=(0,), sparsities=(0.0, 0.9),
                                   estimate_samples=500, n_bootstrap=3, covering_samples=300)
    table = run_sweep("generalization", config, runtime)["generalization"]
    assert len(table) == 2 * 2 * 2  # dimensions x sparsities x margin kinds
    assert (table["k_low"] <= table["k"]).all() and (table["k"] <= table["k_high"]).all()
    quantile = table[table["margin"] == "quantile"].set_index(["level", "sparsity"])
    assert (quantile["bound_before"] > 0).all() and (quantile["covering_constant"] > 0).all()
    assert quantile.loc[(6, 0.0), "bound_before"] > quantile.loc[(2, 0.0), "bound_before"]
    dense = table[table["sparsity"] == 0.0]
    assert (dense["margin_before"] == dense["margin_after"]).all() and (dense["accuracy_drop"] == 0).all()
