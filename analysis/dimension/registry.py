"""Registry of intrinsic-dimension estimators by name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import DimensionError

Params = dict[str, Any]


@dataclass(frozen=True)
class Estimator:
    """An estimator is either ``fit(points, params) -> value`` or, for the kNN fast paths,
    ``local(points, params) -> per-point statistics`` plus ``combine(stats, params) -> value``
    (which lets the bootstrap resample points without recomputing neighbours).

    ``params`` always holds every key of ``defaults`` plus ``device`` and ``seed``.
    """

    name: str
    defaults: Params
    fit: Callable[[np.ndarray, Params], float] | None = None
    local: Callable[[np.ndarray, Params], np.ndarray] | None = None
    combine: Callable[[np.ndarray, Params], float] | None = None
    min_points: Callable[[Params], int] = field(default=lambda params: 3)

    @property
    def has_local(self) -> bool:
        return self.local is not None


_REGISTRY: dict[str, Estimator] = {}


def register_estimator(estimator: Estimator) -> Estimator:
    if estimator.name in _REGISTRY:
        raise DimensionError(f"estimator {estimator.name!r} is already registered")
    _REGISTRY[estimator.name] = estimator
    return estimator


def get_estimator(name: str) -> Estimator:
    key = name.lower()
    if key not in _REGISTRY:
        raise DimensionError(f"unknown estimator {name!r}: choose one of {sorted(_REGISTRY)}")
    return _REGISTRY[key]


def available_estimators() -> list[str]:
    return sorted(_REGISTRY)


def resolve_params(estimator: Estimator, params: Params) -> Params:
    """Defaults overridden by ``params``; unknown names are an error."""
    unknown = set(params) - set(estimator.defaults)
    if unknown:
        raise DimensionError(f"unknown parameter(s) {sorted(unknown)} for estimator "
                             f"{estimator.name!r}: allowed {sorted(estimator.defaults)}")
    return {**estimator.defaults, **params}
