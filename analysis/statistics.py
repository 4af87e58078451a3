"""Statistics of the dimension link: rank correlation with bootstrap intervals, and a regression."""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy.stats import spearmanr


def spearman_with_bootstrap(data: pd.DataFrame, x: str, y: str, group: str = "seed", n_boot: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> dict:
    """Spearman rho of ``x`` and ``y`` and a percentile bootstrap interval resampling ``group``s
    (whole seeds) with replacement, so that rows of one seed stay together."""
    rho = spearmanr(data[x], data[y]).statistic
    groups = [part for _, part in data.groupby(group)]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        sample = pd.concat([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        if sample[x].nunique() > 1 and sample[y].nunique() > 1:
            draws.append(spearmanr(sample[x], sample[y]).statistic)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail]) if draws else (np.nan, np.nan)
    return {"spearman": rho, "ci_low": low, "ci_high": high, "n": len(data), "n_groups": len(groups)}


def drop_regression(data: pd.DataFrame, dimension: str) -> dict:
    """OLS ``accuracy_drop ~ dimension + base_accuracy``: the dimension effect controlled for the
    unpruned accuracy, with its 95% interval and p-value (statsmodels)."""
    frame = data[["accuracy_drop", dimension, "base_accuracy"]].rename(columns={dimension: "dimension"})
    if frame["dimension"].nunique() < 2 or len(frame) < 4:
        return {"slope": np.nan, "slope_low": np.nan, "slope_high": np.nan, "p_value": np.nan, "r2": np.nan}
    fit = smf.ols("accuracy_drop ~ dimension + base_accuracy", data=frame).fit()
    low, high = fit.conf_int().loc["dimension"]
    return {"slope": fit.params["dimension"], "slope_low": low, "slope_high": high,
            "p_value": fit.pvalues["dimension"], "r2": fit.rsquared}


def layer_alone(table: pd.DataFrame, layer_index: int = 0) -> pd.DataFrame:
    """Rows where layer ``layer_index`` was thresholded alone."""
    return table[(table["mode"] == "alone") & (table["layer_index"] == layer_index)]


def link_statistics(table: pd.DataFrame, sparsities: tuple[float, ...] = (0.5, 0.7, 0.9),
                    layer_index: int = 0) -> pd.DataFrame:
    """For each experiment kind, dimension measure and fixed sparsity: the correlation of the
    accuracy drop (layer ``layer_index`` pruned alone) with the dimension, and the regression."""
    rows = []
    for kind, part in layer_alone(table, layer_index).groupby("kind"):
        measures = ["estimated_mle", "estimated_twonn"] + (["true_dimension"] if kind == "synthetic" else [])
        for sparsity in sparsities:
            at = part[np.isclose(part["sparsity"], sparsity)]
            if at.empty:
                continue
            for measure in measures:
                rows.append({"kind": kind, "sparsity": sparsity, "dimension": measure,
                             **spearman_with_bootstrap(at, measure, "accuracy_drop"),
                             **drop_regression(at, measure)})
    return pd.DataFrame(rows)
