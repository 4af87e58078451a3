"""Presets build every experiment's config, and the dimension-link statistics recover known effects."""
import numpy as np
import pandas as pd
import pytest

from analysis.errors import WorkbenchError
from analysis.experiments import experiment_modules, load
from analysis.presets import PRESETS, check_preset, pick, preset_training, sparsity_grid
from analysis.statistics import drop_regression, link_statistics, spearman_with_bootstrap


def test_every_preset_builds_every_experiment():
    for name in experiment_modules():
        module = load(name)
        sizes = {preset: len(module.cells(module.preset(preset, "fashion-mnist"))) for preset in PRESETS}
        assert sizes["smoke"] <= sizes["quick"] <= sizes["paper"], (name, sizes)


def test_training_presets_and_the_ladder():
    smoke, quick, paper = (preset_training(p, "fc", "fashion-mnist") for p in ("smoke", "quick", "paper"))
    assert smoke.data.train_size == 1000 and smoke.patience is None
    assert quick == paper and paper.data.train_size is None  # the default run trains the paper's networks
    assert paper.optimizer == "adam" and paper.batch_size == 300 and paper.hidden == (100, 100)
    assert paper.patience and paper.lr_decay == pytest.approx(paper.lr / paper.epochs)
    cnn = preset_training("paper", "cnn8", "cifar10")
    assert cnn.optimizer == "sgd" and cnn.model == "cnn8" and cnn.patience
    assert preset_training("quick", "cnn8", "cifar10").model == "cnn8-narrow"
    assert pick("quick", smoke=lambda: 1, quick=lambda: 2, paper=lambda: 3) == 2
    assert sparsity_grid(0.25, 0.75) == (0.0, 0.25, 0.5, 0.75)
    with pytest.raises(WorkbenchError, match="unknown preset 'huge'"):
        check_preset("huge")


def _link_table(slope: float, seeds: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        for k in (2, 4, 8, 16, 32):
            base = 0.85 + rng.normal(0, 0.03)  # unrelated to k: the regression must find the slope alone
            rows.append({"kind": "synthetic", "mode": "alone", "layer_index": 0, "sparsity": 0.9, "seed": seed,
                         "true_dimension": float(k), "estimated_mle": k * 1.1, "estimated_twonn": k * 0.9,
                         "base_accuracy": base, "accuracy_drop": slope * k + rng.normal(0, 0.02)})
    return pd.DataFrame(rows)


def test_statistics_find_a_planted_slope_and_no_slope():
    planted = _link_table(0.01)
    fit = drop_regression(planted, "true_dimension")
    assert fit["slope_low"] < 0.01 < fit["slope_high"] and fit["p_value"] < 1e-3
    correlation = spearman_with_bootstrap(planted, "true_dimension", "accuracy_drop")
    assert correlation["spearman"] > 0.8 and correlation["ci_low"] > 0.5 and correlation["n_groups"] == 6
    flat = link_statistics(_link_table(0.0))
    assert set(flat["dimension"]) == {"estimated_mle", "estimated_twonn", "true_dimension"}
    assert (flat["p_value"] > 0.01).all() and (flat["ci_low"] < 0).all()
