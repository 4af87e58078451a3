"""Claim 4's designs: difficulty-controlled synthetic labels, the per-k calibration, the regression table."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.data.config import MANIFOLD, DataConfig, ManifoldSpec, data_key
from analysis.data.synthetic import manifold_task
from analysis.errors import WorkbenchError
from analysis.experiments import dimension_link
from analysis.experiments.dimension_link import Calibration, Config, calibrate, network, regression_table
from analysis.figures.dimension_link import draw
from analysis.networks import trained_network
from analysis.presets import sparsity_grid
from analysis.statistics import ols


def _majority(labels: torch.Tensor) -> float:
    return torch.bincount(labels, minlength=10).max().item() / len(labels)


def test_centred_labels_stay_balanced_where_plain_ones_collapse():
    for seed in range(3):
        plain = manifold_task(16, 200, n_train=3000, n_test=10, label_frequency=0.05, seed=seed)
        centred = manifold_task(16, 200, n_train=3000, n_test=10, label_frequency=0.05, centred_labels=True,
                                seed=seed)
        assert _majority(plain.y_train) > 0.5  # the class with the largest constant term takes over
        assert _majority(centred.y_train) < 0.2 and len(set(centred.y_train.tolist())) == 10
        assert torch.equal(plain.x_train, centred.x_train)  # only the labels change


def test_default_labels_are_unchanged_and_frequency_sets_difficulty():
    default = manifold_task(3, 64, n_train=500, n_test=200, seed=2)
    explicit = manifold_task(3, 64, n_train=500, n_test=200, seed=2, label_frequency=2.0, centred_labels=False)
    assert all(torch.equal(a, b) for a, b in zip(default, explicit))
    accuracy = []
    for frequency in (0.25, 1.0, 4.0):  # 1-NN accuracy: smoother labels are easier to learn from samples
        task = manifold_task(6, 100, n_train=2000, n_test=500, seed=0, label_frequency=frequency,
                             centred_labels=True)
        nearest = torch.cdist(task.x_test, task.x_train).argmin(dim=1)
        accuracy.append((task.y_train[nearest] == task.y_test).float().mean().item())
    assert accuracy[0] > accuracy[1] > accuracy[2] + 0.3
    with pytest.raises(WorkbenchError, match="label_frequency"):
        manifold_task(2, 64, label_frequency=0.0)
    with pytest.raises(WorkbenchError, match="centred_labels"):
        manifold_task(2, 64, manifold="sphere", centred_labels=True)


def test_label_options_are_part_of_the_data_key():
    base = DataConfig(MANIFOLD, manifold=ManifoldSpec(4))
    keys = {data_key(base), data_key(replace(base, manifold=replace(base.manifold, label_frequency=0.5))),
            data_key(replace(base, manifold=replace(base.manifold, centred_labels=True)))}
    assert len(keys) == 3


def _tiny(tiny_config, **options) -> Config:
    synthetic = replace(tiny_config, data=DataConfig(MANIFOLD, manifold=ManifoldSpec(2)), epochs=15)
    return Config(tiny_config, (5,), synthetic, (2, 8), ambient_dimension=64, synthetic_sizes=(1500, 500),
                  seeds=(0,), sparsities=(0.0, 0.5), **options)


def test_bisection_keeps_the_tried_frequency_closest_to_the_target(tiny_config, runtime, monkeypatch):
    calls = []

    def accuracy(config, k, frequency, runtime):  # a known decreasing curve: target 0.5 at f = 1
        calls.append(frequency)
        return 1 / (1 + frequency)

    monkeypatch.setattr(dimension_link, "_trained_accuracy", accuracy)
    config = _tiny(tiny_config, calibration=Calibration(0.5, (-6.0, 4.0), steps=7))
    found = calibrate(config, 2, runtime)
    assert len(calls) == 7 and calls[0] == 0.5  # first try: the middle of the log2 bounds
    assert abs(math.log2(found["label_frequency"])) <= 10 / 2 ** 7 * 2
    assert found["calibration_accuracy"] == pytest.approx(1 / (1 + found["label_frequency"]))
    assert min(abs(a - 0.5) for _, a in found["trials"]) == abs(found["calibration_accuracy"] - 0.5)
    assert calibrate(config, 2, runtime)["label_frequency"] == found["label_frequency"] and len(calls) == 7  # cached
    other = calibrate(replace(config, calibration=Calibration(0.6, steps=7)), 2, runtime)
    assert len(calls) == 14 and other["label_frequency"] < found["label_frequency"]  # an easier target: new run


def test_calibration_matches_the_unpruned_accuracy_across_k(tiny_config, runtime):
    """With one labelling, k = 8 is learned far worse than k = 2; calibrated, both near the target."""
    fixed, calibrated = _tiny(tiny_config, calibration=None), _tiny(tiny_config, calibration=Calibration(0.7, steps=5))
    accuracy = {}
    for name, config in (("fixed", fixed), ("calibrated", calibrated)):
        for k in (2, 8):
            train, labels = network(config, "synthetic", k, 0, runtime)
            accuracy[name, k] = trained_network(train, runtime).metrics["test_accuracy"]
            if name == "calibrated":
                assert train.data.manifold.centred_labels and train.data.manifold.label_frequency == \
                    labels["label_frequency"]
    assert accuracy["fixed", 2] - accuracy["fixed", 8] > 0.3
    assert abs(accuracy["calibrated", 2] - accuracy["calibrated", 8]) < 0.12  # 0.79 and 0.77 here
    assert all(abs(accuracy["calibrated", k] - 0.7) < 0.15 for k in (2, 8))  # calibrated on another seed


def test_ols_matches_the_textbook_formulas():
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=40), rng.normal(size=40)
    y = 1 + 0.5 * x - 0.2 * z + rng.normal(size=40) * 0.3
    fit = ols(y, {"x": x, "z": z}).set_index("term")
    design = np.column_stack([np.ones(40), x, z])
    coef = np.linalg.inv(design.T @ design) @ design.T @ y
    sigma2 = ((y - design @ coef) ** 2).sum() / 37
    se = np.sqrt(np.diag(np.linalg.inv(design.T @ design)) * sigma2)
    assert np.allclose(fit["coef"], coef) and np.allclose(fit["std_err"], se)
    assert np.allclose(fit["ci_high"] - fit["coef"], 2.026192 * se, rtol=1e-5)  # t_{37, 0.975}
    residual = y - design @ coef
    assert fit["r2"].iloc[0] == pytest.approx(1 - residual @ residual / ((y - y.mean()) ** 2).sum())
    assert ols(y, {"x": x, "constant": np.ones(40)})["coef"].isna().all()  # rank-deficient: no answer
    with pytest.raises(WorkbenchError, match="confidence"):
        ols(y, {"x": x}, confidence=1.5)


def _rows(seeds: int = 8) -> pd.DataFrame:
    """A dimension_link table with a planted effect: the drop rises with k (0.01 per unit) and falls
    with the unpruned accuracy, which itself falls with k: the confound of the fixed labelling."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in range(seeds):
        for k in (2, 4, 8, 16, 32):
            base = 0.95 - 0.01 * k + rng.normal(0, 0.05)
            drop = 0.01 * k + 1.0 * (base - 0.6) + rng.normal(0, 0.01)
            for mode in ("alone", "onward"):
                rows.append({"kind": "synthetic", "level": k, "seed": seed, "sparsity": 0.9, "mode": mode,
                             "layer_index": 0, "true_dimension": float(k), "estimated_mle": 0.9 * k,
                             "estimated_twonn": np.nan, "base_accuracy": base, "accuracy_drop": drop})
    return pd.DataFrame(rows)


def test_regression_table_recovers_the_slope_only_with_the_covariate():
    table = regression_table(_rows())
    slope = table[(table["measure"] == "true_dimension") & (table["term"] == "dimension")].set_index("model")
    controlled = slope.loc["drop ~ dimension + base_accuracy"]
    assert controlled["ci_low"] < 0.01 < controlled["ci_high"] and controlled["n"] == 40
    naive = slope.loc["drop ~ dimension"]
    assert naive["ci_high"] < 0.005  # the confound hides the effect without the covariate
    covariate = table[(table["term"] == "base_accuracy") & (table["measure"] == "true_dimension")]
    assert covariate["ci_low"].iloc[0] < 1.0 < covariate["ci_high"].iloc[0]
    assert table[table["measure"] == "estimated_twonn"]["coef"].isna().all()  # no estimate, no fit
    assert set(table["kind"]) == {"synthetic"} and (table["sparsity"] == 0.9).all()


def test_figures_and_markdown_from_a_table(tmp_path, monkeypatch):
    import analysis.statistics as statistics

    fast = statistics.spearman_with_bootstrap
    monkeypatch.setattr(statistics, "spearman_with_bootstrap", lambda *a, **k: fast(*a, **{**k, "n_boot": 50}))
    rows = _rows(3)
    rows = pd.concat([rows, rows.assign(kind="pca", true_dimension=np.nan, n_components=rows["level"] * 10,
                                        level=rows["level"] * 10)], ignore_index=True)
    rows = pd.concat([rows, rows.assign(sparsity=0.5, accuracy_drop=rows["accuracy_drop"] / 2)], ignore_index=True)
    rows["calibration_accuracy"] = np.where(rows["kind"] == "synthetic", 0.85, np.nan)
    paths = draw({"dimension_link": rows, "dimension_link_regression": regression_table(rows)}, tmp_path,
                 {"dimension_link": "dimension_link.parquet", "dimension_link_regression": "regression.parquet"})
    names = {p.name for p in paths}
    assert {"dimension_drop_vs_level.png", "dimension_drop_vs_dimension.png", "dimension_link_regression.md"} <= names
    assert all(p.stat().st_size > 500 for p in paths)
    assert "base_accuracy" in (tmp_path / "dimension_link_regression.md").read_text()


def test_presets_follow_the_paper_design():
    quick, paper = dimension_link.preset("quick", "fashion-mnist"), dimension_link.preset("paper", "cifar10")
    assert quick.pca_network.model == "lenet5" and paper.pca_network.model == "cnn8"
    assert quick.pca_components == paper.pca_components == tuple(range(50, 351, 50))
    assert quick.synthetic_network.epochs > quick.pca_network.epochs  # low k needs more than the recipe's 30
    assert quick.sparsities == sparsity_grid() and len(quick.sparsities) == 20 and quick.seeds == (0, 1, 2)
    assert len(paper.sparsities) == 50 and max(paper.sparsities) == 0.95 and len(paper.seeds) == 10
    assert quick.calibration is not None and paper.calibration == quick.calibration


def test_bad_options_are_one_line_errors():
    with pytest.raises(WorkbenchError, match="target_accuracy"):
        Calibration(1.0)
    with pytest.raises(WorkbenchError, match="log2_bounds"):
        Calibration(log2_bounds=(2.0, 1.0))
    with pytest.raises(WorkbenchError, match="steps"):
        Calibration(steps=0)
    with pytest.raises(WorkbenchError, match="estimate_bootstrap"):
        Config(estimate_bootstrap=-1)
