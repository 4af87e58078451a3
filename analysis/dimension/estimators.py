"""One interface to every intrinsic-dimension estimator: ``estimate_dimension``.

    >>> estimate_dimension(x, "mle", n_neighbors=20, n_bootstrap=200)
    DimensionEstimate(method='mle', value=..., ci_low=..., ci_high=..., ...)

Duplicates are removed first and counted. An estimator that fails numerically or returns a
non-finite value gives ``value=nan`` with the reason in ``note``; bad input raises
``DimensionError``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from . import methods  # noqa: F401  (registers the estimators)
from .bootstrap import bootstrap_values, check_confidence, percentile_interval
from .checks import DimensionError, as_points, remove_duplicates
from .registry import Params, get_estimator, resolve_params


@dataclass(frozen=True)
class DimensionEstimate:
    """An estimate on the distinct points of a data set; ``ci_*`` are NaN without bootstrap."""

    method: str
    value: float
    ci_low: float
    ci_high: float
    n_points: int
    n_duplicates: int
    ambient_dimension: int
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = math.nan
    note: str = ""


def estimate_dimension(points: np.ndarray | torch.Tensor, method: str = "mle", *,
                       n_bootstrap: int = 0, confidence: float = 0.95, seed: int = 0,
                       device: str = "auto", **params: Any) -> DimensionEstimate:
    """Intrinsic dimension of ``points`` (N, ...) by the registered ``method``.

    ``params`` are the estimator's own (see ``get_estimator(method).defaults``);
    ``n_bootstrap > 0`` adds a percentile bootstrap interval at level ``confidence``.
    """
    estimator = get_estimator(method)
    resolved = {**resolve_params(estimator, params), "device": device, "seed": seed}
    check_confidence(confidence)
    if n_bootstrap < 0:
        raise DimensionError(f"n_bootstrap={n_bootstrap} out of range: must be >= 0")
    unique, n_duplicates = remove_duplicates(as_points(points))
    _check_point_count(len(unique), n_duplicates, estimator.min_points(resolved), estimator.name)
    start = time.perf_counter()
    value, note, local_stats = _evaluate(estimator, unique, resolved)
    low, high = math.nan, math.nan
    if n_bootstrap > 0:
        values = bootstrap_values(estimator, unique, resolved, n_bootstrap, seed, local_stats)
        low, high = percentile_interval(values, confidence)
    return DimensionEstimate(
        method=estimator.name, value=value, ci_low=low, ci_high=high, n_points=len(unique),
        n_duplicates=n_duplicates, ambient_dimension=unique.shape[1],
        params={k: v for k, v in resolved.items() if k != "device"},
        seconds=time.perf_counter() - start, note=note)


def estimate_by_class(points: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                      methods: Sequence[str] = ("mle", "twonn"), *, include_all: bool = True,
                      **options: Any) -> pd.DataFrame:
    """Tidy table of estimates per class (and for the whole data set as group 'all').

    Columns: group, method, value, ci_low, ci_high, n_points, n_duplicates, ... ;
    ``options`` go to ``estimate_dimension`` (e.g. n_bootstrap, seed, n_neighbors).
    """
    x = as_points(points)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.shape != (len(x),):
        raise DimensionError(f"labels must have shape ({len(x)},) to match points, got {y.shape}")
    groups: list[tuple[Any, np.ndarray]] = [(c, x[y == c]) for c in np.unique(y)]
    if include_all:
        groups.append(("all", x))
    return estimates_table(((g, data) for g, data in groups), methods, **options)


def estimates_table(groups: Iterable[tuple[Any, np.ndarray]], methods: Sequence[str],
                    **options: Any) -> pd.DataFrame:
    """One row per (group, method): ``estimate_dimension`` on each group's points."""
    rows = []
    for group, data in groups:
        for method in methods:
            row = asdict(estimate_dimension(data, method, **options))
            row["params"] = repr(row["params"])
            rows.append({"group": group, **row})
    return pd.DataFrame(rows)


def _check_point_count(n_unique: int, n_duplicates: int, needed: int, name: str) -> None:
    if n_unique < needed:
        raise DimensionError(f"{name} needs at least {needed} distinct points, got {n_unique} "
                             f"({n_duplicates} duplicates removed)")


def _evaluate(estimator, points: np.ndarray, params: Params) -> tuple[float, str, np.ndarray | None]:
    """(value or NaN, reason for NaN, per-point statistics of a kNN fast path or None)."""
    local_stats = None
    try:
        if estimator.has_local:
            local_stats = estimator.local(points, params)
            value = estimator.combine(local_stats, params)
        else:
            value = estimator.fit(points, params)
        value = float(np.asarray(value).squeeze())
    except DimensionError:
        raise
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError) as error:
        return math.nan, f"{type(error).__name__}: {error}".splitlines()[0], local_stats
    if not math.isfinite(value):
        return math.nan, f"estimator returned {value}", local_stats
    return value, "", local_stats
