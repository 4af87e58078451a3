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
    apply_style()
    data = table.assign(network=_network_label(table))
    grid = sns.relplot(data=data, x="sparsity", y=y, hue="method", style="method", col="target",
                       row="network", kind="line", markers=True, errorbar="sd", height=3.0, aspect=1.1,
                       facet_kws={"sharey": False})
    grid.set_titles("{row_name}, {col_name}")
    names = {"accuracy": "test accuracy", "representation_change": "relative l2 change of last hidden layer"}
    grid.set_axis_labels("sparsity", names[y])
    caption = (f"{names[y].capitalize()} after pruning without retraining, per method, pruning each hidden "
               f"fully connected layer alone or all of them together. Bands: one standard deviation over "
               f"{table['seed'].nunique()} seed(s).")
    name = "methods_accuracy_vs_sparsity" if y == "accuracy" else "methods_representation_change"
    return save_figure(grid.figure, out_dir, name, caption, source)


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
    return paths
