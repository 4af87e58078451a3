"""Figures of the tightness report (issue: bounds against measurement over the remaining depth)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from ..experiments.bounds import tightness_summary
from .methods import write_markdown_table
from .style import apply_style, save_figure


def bounds_vs_depth(table: pd.DataFrame, out_dir: Path, source: str, sparsity: float = 0.5) -> list[Path]:
    apply_style()
    chosen = table[np.isclose(table["sparsity"], sparsity) & (table["mode"] == "alone")]
    measured = (chosen.drop_duplicates(["model", "dataset", "seed", "layer"])
                .assign(bound="measured", mean_bound=lambda d: d["mean_measured"]))
    data = pd.concat([chosen, measured], ignore_index=True)
    data["network"] = data["model"] + " / " + data["dataset"]
    grid = sns.relplot(data=data, x="remaining_depth", y="mean_bound", hue="bound", style="bound",
                       col="network", kind="line", markers=True, errorbar="sd", height=3.4, aspect=1.2,
                       facet_kws={"sharex": False})
    grid.set(yscale="log")
    grid.set_axis_labels("remaining depth after the pruned layer", "mean ||f~(x) - f(x)|| (log)")
    caption = (f"Bounds on the output perturbation from hard thresholding one layer at sparsity {sparsity:g} "
               f"against the depth remaining after it, beside the measured perturbation (mean over test "
               f"samples; bands over seeds). 'jacobian_estimate' is a first-order estimate, not a bound.")
    return save_figure(grid.figure, out_dir, "bounds_vs_depth", caption, source)


def tightness_table(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    summary = tightness_summary(table)
    return [write_markdown_table(summary, out_dir / "bounds_tightness.md",
                                 "Tightness of the bounds: median ratio bound/measured, layer ranking, "
                                 "certified accuracy")]


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    table, source = tables["bounds"], sources["bounds"]
    return bounds_vs_depth(table, out_dir, source) + tightness_table(table, out_dir, source)
