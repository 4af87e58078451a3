"""Figures of the depth experiment (claim 3)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .style import apply_style, save_figure

FIXED_SPARSITIES = (0.5, 0.7, 0.9)


def accuracy_vs_sparsity(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    label = f"{table['model'].iloc[0]} on {table['dataset'].iloc[0]}"
    grid = sns.relplot(data=table, x="sparsity", y="accuracy", hue="remaining_depth", col="mode",
                       kind="line", marker="o", errorbar="sd", palette="viridis", height=3.4, aspect=1.2,
                       facet_kws={"sharey": True})
    grid.set_titles("layer pruned {col_name}")
    grid.set_axis_labels("sparsity", "test accuracy")
    grid.legend.set_title("remaining depth")
    grid.figure.suptitle(f"Hard thresholding, {label}", y=1.03)
    n_seeds = table["seed"].nunique()
    caption = (f"Test accuracy of {label} against the sparsity of hard thresholding, one line per pruned "
               f"layer (coloured by the depth remaining after it); left: the layer alone, right: the "
               f"layer and every layer after it. Bands: one standard deviation over {n_seeds} seed(s).")
    return save_figure(grid.figure, out_dir, "depth_accuracy_vs_sparsity", caption, source)


def degradation_vs_depth(table: pd.DataFrame, out_dir: Path, source: str,
                         sparsities: tuple[float, ...] = FIXED_SPARSITIES) -> list[Path]:
    apply_style()
    chosen = table[table["sparsity"].round(4).isin([round(s, 4) for s in sparsities])]
    if chosen.empty:
        chosen = table[table["sparsity"] == table["sparsity"].max()]
    label = f"{table['model'].iloc[0]} on {table['dataset'].iloc[0]}"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, mode in zip(axes, ("alone", "onward")):
        sns.pointplot(data=chosen[chosen["mode"] == mode], x="remaining_depth", y="accuracy_drop",
                      hue="sparsity", errorbar="sd", dodge=0.3, palette="crest", ax=ax, markersize=4)
        ax.set_title(f"layer pruned {mode}")
        ax.set_xlabel("remaining depth after the pruned layer")
        ax.set_ylabel("accuracy drop")
    fig.suptitle(f"Degradation against remaining depth, {label}", y=1.03)
    caption = (f"Accuracy drop of {label} at fixed sparsities against the number of weight layers "
               f"remaining after the pruned layer (error bars: one standard deviation over seeds).")
    return save_figure(fig, out_dir, "depth_degradation_vs_depth", caption, source)


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    table, source = tables["depth"], sources["depth"]
    return accuracy_vs_sparsity(table, out_dir, source) + degradation_vs_depth(table, out_dir, source)
