"""Figures and the statistics tables of the dimension-link experiment (claim 4)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..statistics import layer_alone, link_statistics
from .methods import write_markdown_table
from .style import apply_style, save_figure

LINK_SPARSITIES = (0.5, 0.7, 0.9)
LEVEL_NAMES = {"pca": "principal components n", "synthetic": "latent dimension k"}


def chosen_sparsities(table: pd.DataFrame, targets: tuple[float, ...] = LINK_SPARSITIES) -> list[float]:
    """The grid's sparsity nearest to each target (the paper's grid of 50 levels has no 0.5 itself)."""
    grid = np.unique(table["sparsity"].to_numpy(dtype=float))
    grid = grid[grid > 0]
    return sorted({float(grid[np.abs(grid - target).argmin()]) for target in targets}) if len(grid) else []


def at_sparsities(table: pd.DataFrame, sparsities: list[float]) -> pd.DataFrame:
    return table[np.isclose(table["sparsity"].to_numpy(dtype=float)[:, None], sparsities).any(axis=1)] \
        if sparsities else table.iloc[:0]


def drop_vs_sparsity(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    data = layer_alone(table)
    grid = sns.relplot(data=data, x="sparsity", y="accuracy_drop", hue="level", col="kind", kind="line",
                       marker="o", errorbar="sd", palette="viridis", height=3.4, aspect=1.2,
                       facet_kws={"sharey": False})
    grid.set_titles("{col_name}")
    grid.legend.set_title("n components / k")
    grid.set_axis_labels("sparsity of the first layer", "accuracy drop")
    caption = ("Accuracy drop from hard thresholding the first layer against sparsity, one line per dimension "
               "level (PCA components, or the latent dimension k of the synthetic manifold); bands: one "
               "standard deviation over seeds.")
    return save_figure(grid.figure, out_dir, "dimension_drop_vs_sparsity", caption, source)


def drop_vs_level(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    """Top: the drop at fixed sparsities against n (PCA) and k (synthetic); bottom: the unpruned accuracy."""
    apply_style()
    data = layer_alone(table)
    kinds = [kind for kind in LEVEL_NAMES if kind in set(data["kind"])]
    fig, axes = plt.subplots(2, len(kinds), figsize=(4.6 * len(kinds), 6.4), squeeze=False, sharex="col")
    dropped = at_sparsities(data, chosen_sparsities(data))
    for column, kind in enumerate(kinds):
        top, bottom = axes[0, column], axes[1, column]
        sns.lineplot(data=dropped[dropped["kind"] == kind], x="level", y="accuracy_drop", hue="sparsity",
                     marker="o", errorbar=("ci", 95), n_boot=1000, seed=0, palette="viridis", ax=top)
        base = data[(data["kind"] == kind)].drop_duplicates(["level", "seed"])
        sns.lineplot(data=base, x="level", y="base_accuracy", marker="o", errorbar=("ci", 95), n_boot=1000,
                     seed=0, color="k", ax=bottom, label="unpruned")
        if kind == "synthetic" and base["calibration_accuracy"].notna().any():
            sns.lineplot(data=base, x="level", y="calibration_accuracy", marker="s", linestyle="--",
                         errorbar=None, color="grey", ax=bottom, label="calibration task")
        if kind == "synthetic":
            top.set_xscale("log", base=2)
        top.set_title(kind)
        top.set_ylabel("accuracy drop (first layer)" if column == 0 else "")  # one label per row: no overlap
        bottom.set_ylabel("unpruned test accuracy" if column == 0 else "")
        bottom.set_xlabel(LEVEL_NAMES[kind])
    caption = ("Top: accuracy drop from hard thresholding the first layer at fixed sparsities against the number "
               "of principal components n (PCA) and the latent dimension k (synthetic). Bottom: the unpruned "
               "accuracy of the same networks; the synthetic tasks' label frequency is calibrated per k so "
               "that it matches (dashed: the calibration network). Bands: 95% bootstrap intervals over seeds.")
    return save_figure(fig, out_dir, "dimension_drop_vs_level", caption, source)


def drop_vs_dimension(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    data = layer_alone(table)
    data = at_sparsities(data, chosen_sparsities(data))
    grid = sns.lmplot(data=data, x="estimated_mle", y="accuracy_drop", hue="sparsity", col="kind",
                      height=3.4, aspect=1.2, ci=95, n_boot=500, seed=0, facet_kws={"sharex": False,
                                                                                  "sharey": False})
    grid.set_axis_labels("estimated intrinsic dimension (MLE, k=20)", "accuracy drop")
    caption = ("Accuracy drop from hard thresholding the first layer at fixed sparsities against the "
               "estimated intrinsic dimension of the training inputs; lines: least squares with 95% "
               "bootstrap bands. Statistics in dimension_link.md and dimension_link_regression.md.")
    return save_figure(grid.figure, out_dir, "dimension_drop_vs_dimension", caption, source)


def link_table(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    sparsities = tuple(chosen_sparsities(layer_alone(table)))
    return [write_markdown_table(link_statistics(table, sparsities), out_dir / "dimension_link.md",
                                 "Link between dimension and robustness: Spearman rho (bootstrap over seeds) "
                                 "and OLS accuracy_drop ~ dimension + base_accuracy")]


def regression_markdown(regression: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The dimension and unpruned-accuracy terms of both models at the chosen sparsities."""
    shown = at_sparsities(regression, chosen_sparsities(regression))
    shown = shown[shown["term"] != "intercept"]
    columns = ["kind", "sparsity", "measure", "model", "term", "coef", "ci_low", "ci_high", "p_value", "n", "r2"]
    return [write_markdown_table(shown[columns], out_dir / "dimension_link_regression.md",
                                 "Regression of the accuracy drop (first layer alone) on the dimension, without "
                                 "and with the unpruned accuracy as covariate (coefficients, 95% intervals)")]


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    paths = []
    if "dimension_link" in tables:
        table, source = tables["dimension_link"], sources["dimension_link"]
        paths += drop_vs_sparsity(table, out_dir, source) + drop_vs_level(table, out_dir, source) \
            + drop_vs_dimension(table, out_dir, source) + link_table(table, out_dir, source)
    if "dimension_link_regression" in tables and len(tables["dimension_link_regression"]):
        paths += regression_markdown(tables["dimension_link_regression"], out_dir)
    return paths
