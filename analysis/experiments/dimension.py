"""Intrinsic dimension of a dataset (or of a points file), and every estimator validated on known manifolds.

Grid: (dataset x MLE neighbours, plus TwoNN) and (estimator on the benchmark manifolds);
with ``--points FILE``, one cell per estimator on that file. Tables: ``dimension_datasets``,
``dimension_validation`` (or ``dimension_points``).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from ..contract import Cell, check_unique
from ..data import load_dataset
from ..dimension import estimate_by_class, estimate_dimension
from ..dimension.validation import validation_table
from ..errors import WorkbenchError
from ..presets import pick
from ..runtime import Runtime

# MLE with k = 20 neighbours, Pope et al., "The intrinsic dimension of images and its impact on
# learning", ICLR 2021 (rounded values quoted in GUIDE section 2).
PUBLISHED_MLE_K20 = {"mnist": 13.0, "cifar10": 26.0}
ESTIMATORS = ("mle", "twonn", "lpca", "corrint", "danco", "ess", "fishers")
TABLES = ("dimension_datasets", "dimension_validation", "dimension_points")
OPTIONS = (
    ("--points", dict(type=Path, default=None, help="a .npy, .npz or .csv file of points (N, D) to estimate")),
    ("--bootstrap", dict(type=int, default=None, help="bootstrap resamples for the intervals (default: preset)")),
)


@dataclass(frozen=True)
class PointsFile:
    """A user's file of points; its content digest is part of the cache key."""

    path: str
    digest: str


@dataclass(frozen=True)
class Config:
    GRID: ClassVar[tuple[str, ...]] = ("datasets", "mle_neighbors", "estimators")

    datasets: tuple[str, ...] = ("fashion-mnist",)
    samples: int | None = None  # points per dataset, train and test pooled (None = all)
    mle_neighbors: tuple[int, ...] = (3, 5, 10, 20)
    per_class: bool = True
    n_bootstrap: int = 20
    seed: int = 0
    estimators: tuple[str, ...] = ESTIMATORS  # validated on the benchmark manifolds (and run on points)
    validation_points: int = 1000
    points: PointsFile | None = None

    def __post_init__(self):
        check_unique("datasets", self.datasets)
        check_unique("mle_neighbors", self.mle_neighbors)
        check_unique("estimators", self.estimators)
        if self.n_bootstrap < 0:
            raise WorkbenchError(f"--bootstrap must be >= 0, got {self.n_bootstrap}")
        if self.samples is not None and self.samples < 2:
            raise WorkbenchError(f"samples must be >= 2 or None, got {self.samples}")
        if min(self.mle_neighbors, default=2) < 2:
            raise WorkbenchError(f"mle_neighbors must be >= 2, got {self.mle_neighbors}")


def preset(name: str, dataset: str, seeds: tuple[int, ...] | None = None, points: Path | None = None,
           bootstrap: int | None = None) -> Config:
    config = pick(
        name,
        smoke=lambda: Config((dataset,), samples=2000, mle_neighbors=(5, 20), per_class=False, n_bootstrap=20,
                             estimators=("mle", "twonn", "lpca"), validation_points=200),
        quick=lambda: Config((dataset,), samples=10_000, n_bootstrap=10, validation_points=500),
        paper=lambda: Config((dataset,), samples=None, n_bootstrap=20, validation_points=2000))
    changes = {"seed": (seeds or (config.seed,))[0]}
    if bootstrap is not None:
        changes["n_bootstrap"] = bootstrap
    if points is not None:
        changes.update(estimators=ESTIMATORS, n_bootstrap=10 if bootstrap is None else bootstrap)
        changes["points"] = points_file(points, changes["n_bootstrap"], changes["seed"])
    return replace(config, **changes)


def points_file(path: Path, n_bootstrap: int, seed: int) -> PointsFile:
    """Read the file and run every estimator's checks now, before any work; record its digest."""
    from ..dimension import check_estimation
    from ..dimension.points import read_points

    check_estimation(read_points(path), ESTIMATORS, n_bootstrap=n_bootstrap, seed=seed, data_name=str(path))
    return PointsFile(str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()[:16])


def cells(config: Config) -> list[Cell]:
    if config.points is not None:
        return [Cell.make("dimension", config, kind="points", method=method) for method in config.estimators]
    found = [Cell.make("dimension", config, kind="validation", method=method) for method in config.estimators]
    for dataset in config.datasets:
        found += [Cell.make("dimension", config, kind="dataset", dataset=dataset, method="mle", k=k)
                  for k in config.mle_neighbors]
        found.append(Cell.make("dimension", config, kind="dataset", dataset=dataset, method="twonn", k=0))
    return found


def compute(cell: Cell, runtime: Runtime) -> list[dict]:
    config: Config = cell.config
    if cell["kind"] == "validation":
        table = validation_table((cell["method"],), n_points=config.validation_points, seed=config.seed,
                                 device=runtime.device)
        return table.to_dict("records")
    if cell["kind"] == "points":
        from ..dimension.points import read_points

        estimate = estimate_dimension(read_points(Path(config.points.path)), cell["method"],
                                      n_bootstrap=config.n_bootstrap, seed=config.seed, device=runtime.device)
        return [{**asdict(estimate), "params": repr(estimate.params)}]
    x, y = dataset_points(cell["dataset"], runtime, config.samples, config.seed)
    params = {"n_neighbors": cell["k"]} if cell["method"] == "mle" else {}
    options = dict(n_bootstrap=config.n_bootstrap, seed=config.seed, device=runtime.device, **params)
    if config.per_class:
        table = estimate_by_class(x, y, (cell["method"],), **options)
    else:
        estimate = estimate_dimension(x, cell["method"], **options)
        table = pd.DataFrame([{"group": "all", **asdict(estimate), "params": repr(estimate.params)}])
    table["group"] = table["group"].astype(str)  # class labels and "all" in one column
    return table.drop(columns=["method"]).to_dict("records")


def dataset_points(name: str, runtime: Runtime, samples: int | None, seed: int):
    data = load_dataset(name, data_dir=runtime.data_dir, download=runtime.download)
    x = torch.cat([data.x_train, data.x_test]).reshape(-1, int(np.prod(data.input_shape)))
    y = torch.cat([data.y_train, data.y_test])
    if samples is not None and samples < len(x):
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:samples]
        x, y = x[keep], y[keep]
    return x, y


def tables(config: Config, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if config.points is not None:
        return {"dimension_points": rows.drop(columns=["kind"])}
    validation = rows[rows["kind"] == "validation"].dropna(axis=1, how="all")
    datasets = rows[rows["kind"] == "dataset"].dropna(axis=1, how="all").copy()
    datasets["k"] = datasets["k"].where(datasets["method"] == "mle", np.nan)
    published = datasets["dataset"].map(PUBLISHED_MLE_K20)
    datasets["published_mle_k20"] = np.where((datasets["method"] == "mle") & (datasets["k"] == 20)
                                             & (datasets["group"] == "all"), published, np.nan)
    return {"dimension_validation": validation.drop(columns=["kind", "method"]).reset_index(drop=True),
            "dimension_datasets": datasets.drop(columns=["kind"]).reset_index(drop=True)}
