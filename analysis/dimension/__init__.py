"""Intrinsic dimension: exact torch kNN, estimators behind one interface, bootstrap
intervals, validation on skdim's benchmark manifolds, and synthetic tasks of known dimension."""
from .checks import DimensionError, remove_duplicates
from .estimators import DimensionEstimate, estimate_by_class, estimate_dimension, estimates_table
from .neighbors import knn
from .registry import available_estimators, get_estimator
from .synthetic import SyntheticTask, fit_pca, manifold_task, pca_project
from .validation import benchmark_manifolds, validation_table

__all__ = [
    "DimensionError", "DimensionEstimate", "SyntheticTask", "available_estimators",
    "benchmark_manifolds", "estimate_by_class", "estimate_dimension", "estimates_table", "fit_pca",
    "get_estimator", "knn", "manifold_task", "pca_project", "remove_duplicates", "validation_table",
]
