"""Intrinsic dimension of the datasets, and validation of the estimators on known manifolds."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import load_dataset
from ..dimension import estimate_by_class, estimate_dimension
from ..dimension.validation import validation_table
from ..errors import WorkbenchError

# MLE with k = 20 neighbours, Pope et al., "The intrinsic dimension of images and its impact on
# learning", ICLR 2021 (rounded values quoted in GUIDE section 2).
PUBLISHED_MLE_K20 = {"mnist": 13.0, "cifar10": 26.0}
ESTIMATORS = ("mle", "twonn", "lpca", "corrint", "danco", "ess", "fishers")


@dataclass(frozen=True)
class DatasetDimensionConfig:
    datasets: tuple[str, ...] = ("fashion-mnist", "mnist", "cifar10")
    samples: int | None = None  # points per dataset, train and test pooled (None = all)
    mle_neighbors: tuple[int, ...] = (3, 5, 10, 20)
    per_class: bool = True
    n_bootstrap: int = 20
    seed: int = 0


@dataclass(frozen=True)
class ValidationConfig:
    n_points: int = 1000
    seed: int = 0
    methods: tuple[str, ...] = ESTIMATORS


def dataset_points(name: str, data_dir: Path | None, download: bool, samples: int | None, seed: int):
    data = load_dataset(name, data_dir=data_dir, download=download)
    x = torch.cat([data.x_train, data.x_test]).reshape(-1, int(np.prod(data.input_shape)))
    y = torch.cat([data.y_train, data.y_test])
    if samples is not None and samples < len(x):
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:samples]
        x, y = x[keep], y[keep]
    return x, y


def dataset_dimensions(config: DatasetDimensionConfig, data_dir: Path | None = None, download: bool = True,
                       log=print) -> pd.DataFrame:
    """MLE at each k and TwoNN per dataset (and per class), with bootstrap intervals.

    Only the first dataset may be downloaded; the others are used where they are on disk and
    skipped with a message otherwise.
    """
    frames = []
    for position, name in enumerate(config.datasets):
        try:
            x, y = dataset_points(name, data_dir, download and position == 0, config.samples, config.seed)
        except WorkbenchError as err:
            log(f"dimension: skipping {name}: {err}")
            continue
        for k in config.mle_neighbors:
            frames.append(_table(x, y, "mle", config, n_neighbors=k).assign(dataset=name, k=k))
        frames.append(_table(x, y, "twonn", config).assign(dataset=name, k=np.nan))
    if not frames:
        raise WorkbenchError("no dataset available for the dimension estimates")
    table = pd.concat(frames, ignore_index=True)
    table["group"] = table["group"].astype(str)  # class labels and "all" in one column
    published = table["dataset"].map(PUBLISHED_MLE_K20)
    table["published_mle_k20"] = np.where((table["method"] == "mle") & (table["k"] == 20)
                                          & (table["group"] == "all"), published, np.nan)
    return table


def _table(x, y, method: str, config: DatasetDimensionConfig, **params) -> pd.DataFrame:
    options = dict(n_bootstrap=config.n_bootstrap, seed=config.seed, **params)
    if config.per_class:
        return estimate_by_class(x, y, (method,), **options)
    row = estimate_dimension(x, method, **options)
    return pd.DataFrame([{"group": "all", **row.__dict__, "params": repr(row.params)}])


def points_dimensions(points: np.ndarray, n_bootstrap: int = 10, seed: int = 0) -> pd.DataFrame:
    """Every estimator on one array of points, with bootstrap intervals."""
    rows = []
    for method in ESTIMATORS:
        estimate = estimate_dimension(points, method, n_bootstrap=n_bootstrap, seed=seed)
        rows.append({**estimate.__dict__, "params": repr(estimate.params)})
    return pd.DataFrame(rows)


def run_validation(config: ValidationConfig) -> pd.DataFrame:
    return validation_table(config.methods, n_points=config.n_points, seed=config.seed)
