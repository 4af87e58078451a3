"""Figures of the depth experiment (claim 3): thresholding over the whole grid, and the claim-3 table
(layer k alone / layers k and after at 70-95%, every method, mean and 95% interval over seeds)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .methods import write_markdown_table
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
                      hue="sparsity", errorbar="sd", dodge=0.3 if chosen["sparsity"].nunique() > 1 else False,
                      palette="crest", ax=ax, markersize=4)
        ax.set_title(f"layer pruned {mode}")
        ax.set_xlabel("remaining depth after the pruned layer")
        ax.set_ylabel("accuracy drop")
    fig.suptitle(f"Degradation against remaining depth, {label}", y=1.03)
    caption = (f"Accuracy drop of {label} at fixed sparsities against the number of weight layers "
               f"remaining after the pruned layer (error bars: one standard deviation over seeds).")
    return save_figure(fig, out_dir, "depth_degradation_vs_depth", caption, source)


def _label(table: pd.DataFrame) -> str:
    return f"{table['model'].iloc[0]} on {table['dataset'].iloc[0]}"


def _errorbars(ax, part: pd.DataFrame, x: np.ndarray, label: str, color, offset: float = 0.0) -> None:
    """Means with their interval as error bars (no bar where the interval is NaN: one seed)."""
    mean = part["accuracy_mean"].to_numpy()
    low = np.nan_to_num(mean - part["accuracy_low"].to_numpy())
    high = np.nan_to_num(part["accuracy_high"].to_numpy() - mean)
    ax.errorbar(x + offset, mean, yerr=[low, high], label=label, color=color, marker="o", markersize=3.5,
                capsize=2.5, linewidth=1.2)


def _methods(summary: pd.DataFrame) -> list[str]:
    """Thresholding first, then the other methods in table order."""
    found = list(dict.fromkeys(summary["method"]))
    return sorted(found, key=lambda method: method != "threshold")


def _layer_axis(ax, summary: pd.DataFrame) -> None:
    layers = summary.drop_duplicates("layer_index").sort_values("layer_index")
    ax.set_xticks(layers["layer_index"] + 1)
    ax.set_xticklabels([f"{k + 1}\n({d})" for k, d in zip(layers["layer_index"], layers["remaining_depth"])])
    ax.set_xlabel("layer k (remaining depth)")
    ax.set_ylim(-0.02, 1.02)


def claim3_accuracy(summary: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    """One row of panels per method, one column per mode; a line per sparsity against the layer."""
    apply_style()
    methods = _methods(summary)
    sparsities = sorted(summary["sparsity"].unique())
    colors = sns.color_palette("crest", len(sparsities))
    fig, axes = plt.subplots(len(methods), 2, figsize=(9, 3.2 * len(methods)), sharey=True, squeeze=False)
    for row, method in enumerate(methods):
        for col, mode in enumerate(("alone", "onward")):
            ax = axes[row][col]
            part = summary[(summary["method"] == method) & (summary["mode"] == mode)]
            for color, sparsity in zip(colors, sparsities):
                at = part[part["sparsity"] == sparsity].sort_values("layer_index")
                _errorbars(ax, at, at["layer_index"].to_numpy() + 1.0, f"{sparsity:.0%}", color)
            ax.axhline(part["base_accuracy"].mean(), color="grey", linestyle="--", linewidth=1)
            ax.set_title(f"{method}: layer k {'alone' if mode == 'alone' else 'and every layer after it'}")
            _layer_axis(ax, part)
            ax.set_ylabel("test accuracy")
    axes[0][1].legend(title="sparsity", fontsize="small")
    n_seeds = int(summary["n_seeds"].max())
    fig.suptitle(f"Pruning without retraining across depth, {_label(summary)}", y=1.01)
    fig.tight_layout()
    caption = (f"Test accuracy of {_label(summary)} when hidden layer k is pruned alone (left) and together "
               f"with every hidden layer after it (right), at {', '.join(f'{s:.0%}' for s in sparsities)} "
               f"sparsity, without retraining; one row per method ({', '.join(methods)}). Points: mean over "
               f"{n_seeds} seed(s); bars: 95% Student-t interval over seeds, clipped to [0, 1]; dashed: unpruned "
               f"accuracy.")
    return save_figure(fig, out_dir, "depth_claim3_accuracy", caption, source)


def claim3_methods(summary: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    """Methods side by side: one row of panels per mode, one column per sparsity."""
    apply_style()
    methods = _methods(summary)
    sparsities = sorted(summary["sparsity"].unique())
    colors = sns.color_palette("colorblind", len(methods))
    fig, axes = plt.subplots(2, len(sparsities), figsize=(max(3.3 * len(sparsities), 6.0), 6.2), sharey=True,
                             squeeze=False)
    for row, mode in enumerate(("alone", "onward")):
        for col, sparsity in enumerate(sparsities):
            ax = axes[row][col]
            part = summary[(summary["mode"] == mode) & (summary["sparsity"] == sparsity)]
            for shift, (color, method) in enumerate(zip(colors, methods)):
                at = part[part["method"] == method].sort_values("layer_index")
                offset = 0.12 * (shift - (len(methods) - 1) / 2)
                _errorbars(ax, at, at["layer_index"].to_numpy() + 1.0, method, color, offset)
            ax.set_title(f"{sparsity:.0%}, layer k {mode}")
            _layer_axis(ax, part)
            ax.set_ylabel("test accuracy")
    axes[0][-1].legend(title="method", fontsize="small")
    fig.suptitle(f"Smart pruning against thresholding across depth, {_label(summary)}", y=1.01)
    fig.tight_layout()
    caption = (f"Test accuracy of {_label(summary)} without retraining when hidden layer k is pruned alone "
               f"(top) or with every hidden layer after it (bottom), per method, at each claim-3 sparsity. "
               f"Points: mean over seeds; bars: 95% Student-t interval over seeds, clipped to [0, 1].")
    return save_figure(fig, out_dir, "depth_claim3_methods", caption, source)


def claim3_markdown(summary: pd.DataFrame, out_dir: Path) -> Path:
    """The paper's layout: a row per method and layer, a column per sparsity and mode, "mean [low, high]"."""
    def cell(row) -> str:
        if np.isnan(row["accuracy_low"]):
            return f"{row['accuracy_mean']:.3f}"
        return f"{row['accuracy_mean']:.3f} [{row['accuracy_low']:.3f}, {row['accuracy_high']:.3f}]"

    rank = {method: position for position, method in enumerate(_methods(summary))}
    frame = (summary.assign(value=summary.apply(cell, axis=1), rank=summary["method"].map(rank),
                            column=[f"{s:.0%} {m}" for s, m in zip(summary["sparsity"], summary["mode"])])
             .sort_values(["rank", "layer_index"], kind="stable"))
    wide = frame.pivot_table(index=["method", "layer_index", "layer", "remaining_depth"], columns="column",
                             values="value", aggfunc="first", sort=False)
    order = [f"{s:.0%} {m}" for s in sorted(summary["sparsity"].unique()) for m in ("alone", "onward")]
    wide = wide[[c for c in order if c in wide.columns]].reset_index()
    wide.insert(1, "k", wide.pop("layer_index") + 1)
    return write_markdown_table(wide, out_dir / "depth_claim3.md",
                                f"Claim 3: test accuracy (mean [95% interval] over {int(summary['n_seeds'].max())} "
                                f"seed(s)) of {_label(summary)}, layer k pruned alone or with every layer after it")


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    paths = []
    if "depth" in tables:
        table, source = tables["depth"], sources["depth"]
        paths += accuracy_vs_sparsity(table, out_dir, source) + degradation_vs_depth(table, out_dir, source)
    if "depth_claim3" in tables:
        summary, source = tables["depth_claim3"], sources["depth_claim3"]
        paths += claim3_accuracy(summary, out_dir, source) + [claim3_markdown(summary, out_dir)]
        if summary["method"].nunique() > 1:
            paths += claim3_methods(summary, out_dir, source)
    return paths
