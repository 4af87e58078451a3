"""Figures and the statistics table of the dimension-link experiment (claim 4)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns

from ..statistics import layer_alone, link_statistics
from .methods import write_markdown_table
from .style import apply_style, save_figure

LINK_SPARSITIES = (0.5, 0.7, 0.9)


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


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    table, source = tables["dimension_link"], sources["dimension_link"]
    return drop_vs_sparsity(table, out_dir, source) + drop_vs_dimension(table, out_dir, source) \
        + link_table(table, out_dir, source)
