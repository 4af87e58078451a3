"""Intrinsic dimension: reading and checking points, an exact torch kNN (``knn``), estimators
behind one interface, bootstrap intervals, validation on skdim's benchmark manifolds."""
from .errors import DimensionError
from .estimators import (DimensionEstimate, check_estimation, estimate_by_class, estimate_dimension,
                         estimates_table)
from .knn import knn
from .points import as_points, read_points, remove_duplicates
from .registry import available_estimators, get_estimator
from .validation import benchmark_manifolds, validation_table

__all__ = [
    "DimensionError", "DimensionEstimate", "as_points", "available_estimators", "check_estimation",
    "benchmark_manifolds", "estimate_by_class", "estimate_dimension", "estimates_table",
    "get_estimator", "knn", "read_points", "remove_duplicates", "validation_table",
]
