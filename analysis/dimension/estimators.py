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

from . import registered_estimators  # noqa: F401  (registers the estimators)
from .bootstrap import (bootstrap_values, check_confidence, check_n_bootstrap, check_resample_sizes,
                        check_seed, draw_resamples, percentile_interval)
from .errors import DimensionError
from .knn import resolve_device
from .points import as_points, remove_duplicates
from .registry import Estimator, Params, get_estimator, resolve_params


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
                       device: str | torch.device | None = "auto", data_name: str = "points",
                       **params: Any) -> DimensionEstimate:
    """Intrinsic dimension of ``points`` (N, ...) by the registered ``method``.

    ``params`` are the estimator's own (see ``get_estimator(method).defaults``);
    ``n_bootstrap > 0`` adds a percentile bootstrap interval at level ``confidence``;
    ``device`` runs the kNN ('auto': CUDA when available). Every check (``data_name`` names
    the points in its message) happens before any work.
    """
    return _run(_prepare(points, method, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed,
                         device=device, data_name=data_name, **params))


@dataclass(frozen=True)
class _Request:
    """A checked estimation: the estimator, the distinct points and the bootstrap draws."""

    estimator: Estimator
    points: np.ndarray
    n_duplicates: int
    params: Params
    draws: list[np.ndarray]
    confidence: float


def _prepare(points, method: str = "mle", *, n_bootstrap: int = 0, confidence: float = 0.95,
             seed: int = 0, device: str | torch.device | None = "auto", data_name: str = "points",
             **params: Any) -> _Request:
    """Every check of ``estimate_dimension`` (same arguments), before any work."""
    estimator = get_estimator(method)
    resolved = {**resolve_params(estimator, params), "device": resolve_device(device),
                "seed": check_seed(seed)}
    check_confidence(confidence)
    n_bootstrap = check_n_bootstrap(n_bootstrap)
    try:
        needed = int(estimator.min_points(resolved))
    except (TypeError, ValueError):
        raise DimensionError(f"parameters {params} of {estimator.name!r} are not numbers where "
                             f"numbers are needed: defaults are {estimator.defaults}") from None
    unique, n_duplicates = remove_duplicates(as_points(points, data_name))
    _check_point_count(unique.shape, n_duplicates, needed, estimator.name, data_name)
    draws = draw_resamples(len(unique), n_bootstrap, seed)
    check_resample_sizes(estimator, draws, resolved, data_name)
    return _Request(estimator, unique, n_duplicates, resolved, draws, confidence)


def _run(request: _Request) -> DimensionEstimate:
    start = time.perf_counter()
    estimator, unique = request.estimator, request.points
    value, note, local_stats = _evaluate(estimator, unique, request.params)
    low, high = math.nan, math.nan
    if request.draws:
        values = bootstrap_values(estimator, unique, request.params, request.draws, local_stats)
        low, high = percentile_interval(values, request.confidence)
    return DimensionEstimate(
        method=estimator.name, value=value, ci_low=low, ci_high=high, n_points=len(unique),
        n_duplicates=request.n_duplicates, ambient_dimension=unique.shape[1],
        params={k: v for k, v in request.params.items() if k != "device"},
        seconds=time.perf_counter() - start, note=note)


def check_estimation(points: np.ndarray | torch.Tensor, methods: Sequence[str], **options: Any) -> None:
    """Every check of ``estimate_dimension(points, method, **options)`` for each of ``methods``,
    and none of the work: for a run that estimates them one at a time, so that it fails before
    any estimate rather than after some."""
    for method in methods:
        _prepare(points, method, **options)


def estimate_by_class(points: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                      methods: Sequence[str] = ("mle", "twonn"), *, include_all: bool = True,
                      **options: Any) -> pd.DataFrame:
    """Tidy table of estimates per class (and for the whole data set as group 'all').

    Columns: group, method, value, ci_low, ci_high, n_points, n_duplicates, ... ;
    ``options`` go to ``estimate_dimension`` (e.g. n_bootstrap, seed, n_neighbors).
    """
    x = as_points(points, options.get("data_name", "points"))
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.shape != (len(x),):
        raise DimensionError(f"labels must have shape ({len(x)},) to match points, got {y.shape}")
    groups: list[tuple[Any, np.ndarray]] = [(c, x[y == c]) for c in np.unique(y)]
    if include_all:
        groups.append(("all", x))
    return estimates_table(((g, data) for g, data in groups), methods, **options)


def estimates_table(groups: Iterable[tuple[Any, np.ndarray]], methods: Sequence[str],
                    **options: Any) -> pd.DataFrame:
    """One row per (group, method): ``estimate_dimension`` on each group's points. Every
    (group, method) is checked before any is estimated."""
    requests = [(group, _prepare(data, method, **options)) for group, data in groups for method in methods]
    rows = []
    for group, request in requests:
        row = asdict(_run(request))
        row["params"] = repr(row["params"])
        rows.append({"group": group, **row})
    return pd.DataFrame(rows)


def _check_point_count(shape: tuple[int, int], n_duplicates: int, needed: int, estimator: str,
                       data_name: str) -> None:
    n_unique, n_features = shape
    if n_unique >= needed:
        return
    hint = (f"; rows are points: with {n_features} features per point, was the array transposed?"
            if n_features > needed > n_unique + n_duplicates else "")
    raise DimensionError(f"{estimator} needs at least {needed} distinct points, {data_name} has "
                         f"{n_unique} ({n_duplicates} duplicates removed){hint}")


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
