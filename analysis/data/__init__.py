"""Datasets as in-memory tensors: images (N, C, H, W) float32 in [0, 1], labels int64."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import WorkbenchError
from .idx import read_idx, write_idx
from .sources import SOURCES, CifarSource, default_data_dir, load_cifar_dataset, load_idx_dataset

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "digits")


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.y_train.max().item()) + 1


@dataclass(frozen=True)
class Split:
    """Training, validation and test tensors; the validation set comes out of the training set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _as_tensors(name: str, arrays) -> Dataset:
    x_train, y_train, x_test, y_test = arrays
    scale = 255.0 if x_train.dtype == np.uint8 else 1.0
    return Dataset(name,
                   torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32) / scale),
                   torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
                   torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32) / scale),
                   torch.from_numpy(np.asarray(y_test, dtype=np.int64)))


def _digits() -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits (1,797 images, shipped with the package): a tiny offline dataset."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], bunch.target[order]
    return images[:1500], labels[:1500], images[1500:], labels[1500:]


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Load dataset ``name`` (one of DATASET_NAMES), downloading it when allowed and missing."""
    if name not in DATASET_NAMES:
        raise WorkbenchError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    if name == "digits":
        return _as_tensors(name, _digits())
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    source = SOURCES[name]
    loader = load_cifar_dataset if isinstance(source, CifarSource) else load_idx_dataset
    return _as_tensors(name, loader(source, root, download))


def split_train_val(dataset: Dataset, val_size: int, seed: int = 0, train_size: int | None = None,
                    test_size: int | None = None) -> Split:
    """Seeded split of the training set into train and validation, optionally subsampled."""
    n = len(dataset.x_train)
    if not 0 <= val_size < n:
        raise WorkbenchError(f"val_size must lie in [0, {n}), got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    if train_size is not None:
        train = train[:train_size]
    test = slice(None) if test_size is None else slice(0, test_size)
    return Split(dataset.x_train[train], dataset.y_train[train], dataset.x_train[val],
                 dataset.y_train[val], dataset.x_test[test], dataset.y_test[test])


__all__ = ["DATASET_NAMES", "Dataset", "Split", "load_dataset", "split_train_val", "read_idx",
           "write_idx", "default_data_dir"]
