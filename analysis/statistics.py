"""Statistics of the dimension link: rank correlation with bootstrap intervals, and a regression."""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import spearmanr
from scipy.stats import t as student_t

from .errors import WorkbenchError


def spearman_with_bootstrap(data: pd.DataFrame, x: str, y: str, group: str = "seed", n_boot: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> dict:
    """Spearman rho of ``x`` and ``y`` and a percentile bootstrap interval resampling ``group``s
    (whole seeds) with replacement, so that rows of one seed stay together."""
    rho = spearmanr(data[x], data[y]).statistic
    xs, ys = data[x].to_numpy(float), data[y].to_numpy(float)
    groups = [np.asarray(rows) for rows in data.groupby(group).indices.values()]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        rows = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        if np.ptp(xs[rows]) > 0 and np.ptp(ys[rows]) > 0:
            draws.append(spearmanr(xs[rows], ys[rows]).statistic)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail]) if draws else (np.nan, np.nan)
    return {"spearman": rho, "ci_low": low, "ci_high": high, "n": len(data), "n_groups": len(groups)}


OLS_COLUMNS = ("term", "coef", "std_err", "ci_low", "ci_high", "p_value", "n", "r2")


def ols(y, columns: dict[str, object], confidence: float = 0.95) -> pd.DataFrame:
    """OLS of ``y`` on an intercept and ``columns`` (name -> values), by statsmodels: one row per term
    with its coefficient, standard error, ``confidence`` interval (Student t, homoscedastic errors) and
    p-value, plus n and R^2. Rows with a non-finite value are left out. A rank-deficient design (a
    constant or collinear covariate) or one without residual degrees of freedom gives NaN throughout
    rather than an arbitrary minimum-norm solution."""
    if not 0 < confidence < 1:
        raise WorkbenchError(f"confidence must lie in (0, 1), got {confidence!r}")
    names = ["intercept", *columns]
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float),
                          **{name: np.asarray(v, dtype=float) for name, v in columns.items()}})
    frame = frame[np.isfinite(frame.to_numpy()).all(axis=1)]
    design = np.column_stack([np.ones(len(frame)), frame[list(columns)].to_numpy()])
    n, p = design.shape
    if n <= p or np.linalg.matrix_rank(design) < p:
        stats = np.full((p, 5), np.nan)
        r2 = np.nan
    else:
        fit = sm.OLS(frame["y"].to_numpy(), design).fit()
        interval = fit.conf_int(alpha=1 - confidence)
        stats = np.column_stack([fit.params, fit.bse, interval[:, 0], interval[:, 1], fit.pvalues])
        r2 = fit.rsquared
    table = pd.DataFrame(stats, columns=list(OLS_COLUMNS[1:6]))
    table.insert(0, "term", names)
    table["n"], table["r2"] = n, r2
    return table


def drop_regression(data: pd.DataFrame, dimension: str) -> dict:
    """OLS ``accuracy_drop ~ dimension + base_accuracy``: the dimension effect controlled for the
    unpruned accuracy, with its 95% interval and p-value."""
    fit = ols(data["accuracy_drop"], {"dimension": data[dimension], "base_accuracy": data["base_accuracy"]})
    row = fit.set_index("term").loc["dimension"]
    return {"slope": row["coef"], "slope_low": row["ci_low"], "slope_high": row["ci_high"],
            "p_value": row["p_value"], "r2": row["r2"]}


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


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Mean of ``values`` (one per seed) and its Student-t interval: (mean, low, high, n).
    With fewer than two values the interval is (nan, nan)."""
    values = np.asarray(pd.Series(values).dropna(), dtype=float)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(values.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(student_t.ppf((1 + confidence) / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n
