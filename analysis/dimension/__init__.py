"""Intrinsic dimension: exact torch kNN, estimators behind one interface, bootstrap
intervals, validation on skdim's benchmark manifolds, and synthetic tasks of known dimension."""
from .checks import DimensionError, remove_duplicates
from .estimators import DimensionEstimate, estimate_by_class, estimate_dimension, estimates_table
from .knn import knn
from .registry import available_estimators, get_estimator

__all__ = [
    "DimensionError", "DimensionEstimate", "available_estimators", "estimate_by_class",
    "estimate_dimension", "estimates_table", "get_estimator", "knn", "remove_duplicates",
]
