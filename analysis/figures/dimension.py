"""Figures and tables of the dimension experiment: estimator validation and dataset dimensions."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .methods import write_markdown_table
from .style import apply_style, save_figure

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


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    paths = []
    if "dimension_validation" in tables:
        table, source = tables["dimension_validation"], sources["dimension_validation"]
        paths += estimator_validation(table, out_dir, source) + validation_errors(table, out_dir, source)
    if "dimension_datasets" in tables:
        paths += dataset_table(tables["dimension_datasets"], out_dir, sources["dimension_datasets"])
    if "dimension_points" in tables:
        cols = ["method", "value", "ci_low", "ci_high", "n_points", "n_duplicates"]
        paths.append(write_markdown_table(tables["dimension_points"][cols], out_dir / "dimension_points.md",
                                          "Intrinsic dimension of the points file, every estimator"))
    return paths
