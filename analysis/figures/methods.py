"""Figures and the pruning-time table of the methods experiment (claims 1 and 2)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns

from ..store import atomic_write
from .style import apply_style, save_figure


def _network_label(table: pd.DataFrame) -> pd.Series:
    return table["model"] + " / " + table["dataset"]


def accuracy_vs_sparsity(table: pd.DataFrame, out_dir: Path, source: str, y: str = "accuracy") -> list[Path]:
    """One figure per network, one panel per target (its hidden layers alone where measured, then all together)."""
    names = {"accuracy": "test accuracy", "representation_change": "relative l2 change of last hidden layer"}
    stem = "methods_accuracy_vs_sparsity" if y == "accuracy" else "methods_representation_change"
    paths = []
    for (model, dataset), data in table.groupby(["model", "dataset"], sort=False):
        apply_style()
        grid = sns.relplot(data=data, x="sparsity", y=y, hue="method", style="method", col="target",
                           kind="line", markers=True, errorbar=("ci", 95), height=3.0, aspect=1.1,
                           facet_kws={"sharey": False})
        grid.set_titles(f"{model} / {dataset}, {{col_name}}")
        grid.set_axis_labels("sparsity", names[y])
        layers = max(data["layers"].unique(), key=len).replace(",", ", ")
        scope = "each hidden layer alone or all" if data["target"].nunique() > 1 else "all"
        caption = (f"{names[y].capitalize()} of {model} on {dataset} after pruning without retraining, per "
                   f"method, pruning {scope} of its hidden layers ({layers}) together. Bands: 95% "
                   f"interval of the mean over {data['seed'].nunique()} seed(s).")
        paths += save_figure(grid.figure, out_dir, f"{stem}_{model}", caption, source)
    return paths


def ablation_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy (and seeds) per network, sparsity, support and solver."""
    return (table.groupby(["model", "dataset", "sparsity", "support", "solver"])["accuracy"]
            .agg(["mean", "std", "count"]).reset_index()
            .rename(columns={"mean": "accuracy", "std": "accuracy_sd", "count": "seeds"}))


def retraining_curves(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    data = table.assign(network=_network_label(table))
    grid = sns.relplot(data=data, x="curve_time_s", y="curve_accuracy", hue="method", style="seed",
                       col="network", row="sparsity", kind="line", height=3.0, aspect=1.3,
                       facet_kws={"sharex": False, "sharey": False})
    for ax, ((sparsity, network), part) in zip(grid.axes.flat, data.groupby(["sparsity", "network"])):
        ax.axhline(part["base_accuracy"].mean(), color="grey", linestyle="--", linewidth=1)
    grid.set_titles("{col_name}, sparsity {row_name}")
    grid.set_axis_labels("wall time: pruning + retraining (s)", "test accuracy")
    caption = ("Test accuracy against wall time (pruning time, then retraining time) for each method; "
               "dashed: the unpruned network. Retraining stops once accuracy is within the tolerance.")
    return save_figure(grid.figure, out_dir, "methods_time_to_accuracy", caption, source)


def total_time(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    runs = table.drop_duplicates(["model", "dataset", "seed", "method", "sparsity"]).assign(
        network=lambda d: _network_label(d))
    long = runs.melt(id_vars=["network", "method", "seed", "sparsity"],
                     value_vars=["pruning_time_s", "retrain_time_s", "total_time_s"],
                     var_name="part", value_name="seconds")
    grid = sns.catplot(data=long, x="method", y="seconds", hue="part", col="network", kind="bar",
                       errorbar="sd", height=3.2, aspect=1.2, sharey=False)
    grid.set_axis_labels("method", "wall time (s)")
    caption = ("Pruning time, retraining time until test accuracy is within the tolerance of the unpruned "
               "network, and their total, per method (error bars: one standard deviation over seeds).")
    return save_figure(grid.figure, out_dir, "methods_total_time", caption, source)


def write_markdown_table(table: pd.DataFrame, path: Path, title: str, floatfmt: str = ".3g") -> Path:
    text = f"# {title}\n\nGenerated from the result tables; do not edit by hand.\n\n"
    text += table.to_markdown(index=False, floatfmt=floatfmt) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    paths = []
    if "methods_accuracy" in tables:
        table, source = tables["methods_accuracy"], sources["methods_accuracy"]
        paths += accuracy_vs_sparsity(table, out_dir, source)
        paths += accuracy_vs_sparsity(table, out_dir, source, y="representation_change")
    if "methods_retraining" in tables:
        table, source = tables["methods_retraining"], sources["methods_retraining"]
        paths += retraining_curves(table, out_dir, source) + total_time(table, out_dir, source)
    if "pruning_time" in tables:
        paths.append(write_markdown_table(tables["pruning_time"], out_dir / "pruning_time.md",
                                          "Pruning wall time per method and layer (seconds)"))
    if "methods_ablation" in tables:
        paths.append(write_markdown_table(ablation_table(tables["methods_ablation"]), out_dir / "methods_ablation.md",
                                          "Support choice against refit: accuracy with every hidden layer pruned"))
    return paths
