"""Figure and table of the generalization experiment: the bound against k and sparsity beside the measured drop."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .methods import write_markdown_table
from .style import apply_style, save_figure


def bound_vs_dimension(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    data = table[table["margin"] == "quantile"].replace([np.inf], np.nan)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    sns.lineplot(data=data, x="k", y="bound_after", hue="sparsity", marker="o", errorbar="sd", palette="crest",
                 ax=axes[0])
    axes[0].set(yscale="log", xlabel="estimated intrinsic dimension k (MLE)",
                ylabel="generalization bound after pruning (log)")
    sns.lineplot(data=data, x="k", y="accuracy_drop", hue="sparsity", marker="o", errorbar="sd", palette="crest",
                 ax=axes[1])
    axes[1].set(xlabel="estimated intrinsic dimension k (MLE)", ylabel="measured accuracy drop")
    within = table[table["margin"] == "min"]
    finite = int(np.isfinite(within["bound_after"]).sum())
    caption = (f"Left: the Sokolic et al. bound after thresholding the first layer, against the estimated "
               f"dimension of the training data, per sparsity, with a low quantile of the input margins (the "
               f"config's 'quantile'; outside the theorem, which needs the minimum margin: finite in "
               f"{finite} of {len(within)} cells). Right: the measured accuracy drop. Bands over seeds.")
    return save_figure(fig, out_dir, "generalization_bound_vs_dimension", caption, source)


def summary_table(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    columns = ["true_dimension", "k", "k_low", "k_high", "covering_constant", "margin_before", "margin_after",
               "bound_before", "bound_after", "accuracy_drop"]
    summary = table.groupby(["margin", "sparsity", "true_dimension"])[columns[1:]].mean().reset_index()
    return [write_markdown_table(summary, out_dir / "generalization.md",
                                 "Generalization bound before and after thresholding the first layer "
                                 "(mean over seeds)")]


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    table, source = tables["generalization"], sources["generalization"]
    return bound_vs_dimension(table, out_dir, source) + summary_table(table, out_dir)
