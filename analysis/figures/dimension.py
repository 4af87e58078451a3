"""Figures of the intrinsic-dimension experiments (claim 4)."""
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


def estimator_validation(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sns.stripplot(data=table, x="true_dimension", y="estimate", hue="estimator", dodge=True, size=4,
                  native_scale=True, ax=ax, alpha=0.8)
    top = float(np.nanmax(table["true_dimension"]))
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="truth")
    ax.set(xlabel="true intrinsic dimension", ylabel="estimate", ylim=(0, max(top * 1.6, 5)))
    ax.legend(fontsize=7, ncol=2)
    caption = ("Each estimator on scikit-dimension's benchmark manifolds against the true dimension "
               "(dashed: estimate = truth); fixed seed, "
               f"{len(table['manifold'].unique())} manifolds.")
    return save_figure(fig, out_dir, "dimension_estimator_validation", caption, source)


def validation_errors(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    summary = (table.assign(abs_relative_error=table["relative_error"].abs())
               .groupby("estimator")["abs_relative_error"].agg(["median", "mean", "max"]).reset_index())
    return [write_markdown_table(summary, out_dir / "dimension_validation.md",
                                 "Estimator validation: absolute relative error on the benchmark manifolds")]


def dataset_table(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    whole = table[table["group"] == "all"]
    cols = ["dataset", "method", "k", "value", "ci_low", "ci_high", "n_points", "n_duplicates", "published_mle_k20"]
    return [write_markdown_table(whole[cols], out_dir / "dimension_datasets.md",
                                 "Intrinsic dimension of the datasets (whole dataset; per class in the table)")]


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


def drop_vs_dimension(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    data = layer_alone(table)
    data = data[data["sparsity"].round(4).isin(LINK_SPARSITIES)]
    grid = sns.lmplot(data=data, x="estimated_mle", y="accuracy_drop", hue="sparsity", col="kind",
                      height=3.4, aspect=1.2, ci=95, n_boot=500, seed=0, facet_kws={"sharex": False,
                                                                                  "sharey": False})
    grid.set_axis_labels("estimated intrinsic dimension (MLE, k=20)", "accuracy drop")
    caption = ("Accuracy drop from hard thresholding the first layer at fixed sparsities against the "
               "estimated intrinsic dimension of the training inputs; lines: least squares with 95% "
               "bootstrap bands. Statistics in dimension_link.md.")
    return save_figure(grid.figure, out_dir, "dimension_drop_vs_dimension", caption, source)


def link_table(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    return [write_markdown_table(link_statistics(table, LINK_SPARSITIES), out_dir / "dimension_link.md",
                                 "Link between dimension and robustness: Spearman rho (bootstrap over seeds) "
                                 "and OLS accuracy_drop ~ dimension + base_accuracy")]
