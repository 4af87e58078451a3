"""Figures and tables of the bounds experiment: bounds against depth in both modes, the depth profile's
factors, certificates, differential bounds against attacks, and pooled rank correlations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from ..designs import DIFFERENTIAL_SUMMARY
from ..experiments.bounds import tightness_summary
from .methods import write_markdown_table
from .style import apply_style, save_figure

FACTORS = ("measured", "residual", "gain", "tail_lipschitz", "looseness", "per_sample_bound")


def _network(table: pd.DataFrame) -> pd.Series:
    return table["model"] + " / " + table["dataset"]


def _by_depth(data: pd.DataFrame, y: str, hue: str, ylabel: str):
    """One log-scale panel per network and mode, ``y`` against the remaining depth, a line per ``hue``."""
    grid = sns.relplot(data=data, x="remaining_depth", y=y, hue=hue, style=hue, col="mode", row="network",
                       kind="line", markers=True, errorbar="sd", height=3.2, aspect=1.2,
                       facet_kws={"sharex": False, "sharey": False})
    grid.set(yscale="log")
    grid.set_titles("{row_name}, layer pruned {col_name}")
    grid.set_axis_labels("remaining depth after the pruned layer", ylabel)
    return grid


def bounds_vs_depth(table: pd.DataFrame, out_dir: Path, source: str, sparsity: float = 0.5) -> list[Path]:
    apply_style()
    chosen = table[np.isclose(table["sparsity"], sparsity)]
    measured = (chosen.drop_duplicates(["model", "dataset", "seed", "layer", "mode"])
                .assign(bound="measured", mean_bound=lambda d: d["mean_measured"]))
    data = pd.concat([chosen, measured], ignore_index=True).assign(network=lambda d: _network(d))
    grid = _by_depth(data, "mean_bound", "bound", "mean ||f~(x) - f(x)|| (log)")
    caption = (f"Bounds on the output perturbation from hard thresholding at sparsity {sparsity:g}, one layer "
               f"alone (left) or with every layer after it ('onward', the paper's claim 3; right), against the "
               f"depth remaining after it, beside the measured perturbation (mean over test samples; bands over "
               f"seeds). 'jacobian_estimate' is a first-order estimate, not a bound.")
    return save_figure(grid.figure, out_dir, "bounds_vs_depth", caption, source)


def profile_factors(table: pd.DataFrame, out_dir: Path, source: str, sparsity: float = 0.5) -> list[Path]:
    apply_style()
    chosen = table[np.isclose(table["sparsity"], sparsity)].assign(network=lambda d: _network(d))
    data = chosen.melt(id_vars=["network", "mode", "remaining_depth", "seed"], value_vars=list(FACTORS),
                       var_name="factor", value_name="value")
    grid = _by_depth(data, "value", "factor", "factor (log)")
    caption = (f"The depth profile at sparsity {sparsity:g}: measured change = residual ||R h|| x gain, and the "
               f"sound per-sample bound = measured x looseness; the tail Lipschitz product drives the bound. "
               f"Whichever factor rises with remaining depth carries the growth.")
    return save_figure(grid.figure, out_dir, "bounds_depth_profile", caption, source)


def differential_vs_attack(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    apply_style()
    data = table.assign(network=_network(table), eps255=lambda d: (d["eps"] * 255).round(2))
    grid = sns.catplot(data=data, x="remaining_depth", y="median_ratio_to_attack", hue="eps255", col="network",
                       kind="point", errorbar="sd", height=3.2, aspect=1.3, sharex=False, palette="crest")
    grid.set(yscale="log")
    grid.set_axis_labels("remaining depth after the pruned layer", "bound / attack (median, log)")
    grid.legend.set_title("eps x 255")
    caption = ("Differential bound on max ||f~(x') - f(x')|| over the l-infinity ball of radius eps, divided by "
               "the PGD attack's lower bound on the same ball (attack <= truth <= bound); one layer pruned, "
               "median over test samples.")
    return save_figure(grid.figure, out_dir, "bounds_differential", caption, source)


def markdown_tables(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    paths = [write_markdown_table(tightness_summary(tables["bounds"]), out_dir / "bounds_tightness.md",
                                  "Tightness of the bounds: median ratio bound/measured and violations")]
    if "bounds_certificates" in tables:
        columns = ["model", "mode", "layer", "sparsity", "accuracy", "accuracy_lower_bound", "disagreement",
                   "disagreement_upper_bound", "quantile", "quantile_upper_bound", "n"]
        summary = tables["bounds_certificates"].groupby(columns[:4])[columns[4:]].mean().reset_index()
        paths.append(write_markdown_table(summary, out_dir / "bounds_certificates.md",
                                          "Certificates on held-out samples (confidence 1 - delta each)"))
    if "bounds_differential" in tables:
        differential = tables["bounds_differential"]
        columns = [c for c in (*DIFFERENTIAL_SUMMARY, "violations") if c in differential.columns]
        summary = (differential.groupby(["model", "layer", "layer_type", "sparsity", "eps"])[columns]
                   .median().reset_index())
        paths.append(write_markdown_table(summary, out_dir / "bounds_differential.md", "Differential bound / attack, "
                                          "fraction certified and fraction refuted by PGD, per layer"))
    if "bounds_correlations" in tables:
        paths.append(write_markdown_table(tables["bounds_correlations"], out_dir / "bounds_correlations.md",
                                          "Rank correlation with the measured accuracy drop, pooled over layers "
                                          "and sparsities (95% bootstrap interval)"))
    return paths


def draw(tables: dict[str, pd.DataFrame], out_dir: Path, sources: dict[str, str]) -> list[Path]:
    paths = bounds_vs_depth(tables["bounds"], out_dir, sources["bounds"])
    if "bounds_depth_profile" in tables:
        paths += profile_factors(tables["bounds_depth_profile"], out_dir, sources["bounds_depth_profile"])
    if "bounds_differential" in tables:
        paths += differential_vs_attack(tables["bounds_differential"], out_dir, sources["bounds_differential"])
    return paths + markdown_tables(tables, out_dir)
