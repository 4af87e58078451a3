"""Datasets as in-memory tensors: images (N, C, H, W) float32 in [0, 1], labels int64.

Every loaded dataset is checked (labels in [0, classes) with every class in training, finite
images, consistent splits) and carries ``digest``, a hash of the content of the files read
(``dataset_digest``), for cache keys that never mix data from two folders.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import WorkbenchError
from .checks import check_images, check_labels, check_split
from .digest import array_digest, file_stamp, files_digest
from .idx import read_idx, write_idx
from .sources import SOURCES, default_data_dir, is_system_folder, locate_files, read_files

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "digits")
DIGITS_CLASSES = 10


@dataclass(frozen=True)
class Dataset:
    """``num_classes``: the source's number of classes, each checked to occur in training;
    ``digest``: the provenance digest of the content (``dataset_digest``)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    digest: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class Split:
    """Training, validation and test tensors; the validation set comes out of the training set.

    ``num_classes`` is the dataset's (a training subset may miss a class); None for hand-built splits.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int | None = None


def _as_tensors(name: str, arrays, num_classes: int, digest: str) -> Dataset:
    x_train, y_train, x_test, y_test = arrays
    scale = 255.0 if x_train.dtype == np.uint8 else 1.0
    return Dataset(name,
                   torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32) / scale),
                   torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
                   torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32) / scale),
                   torch.from_numpy(np.asarray(y_test, dtype=np.int64)), num_classes, digest)


def _digits() -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits (1,797 images, shipped with the package): a tiny offline dataset."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], bunch.target[order]
    x_train, y_train, x_test, y_test = images[:1500], labels[:1500], images[1500:], labels[1500:]
    check_images(images, "sklearn digits")
    check_split(x_train, y_train, x_test, y_test, "sklearn digits")
    return (x_train, check_labels(y_train, DIGITS_CLASSES, "sklearn digits (train)", every_class=True),
            x_test, check_labels(y_test, DIGITS_CLASSES, "sklearn digits (test)"))


def _located_files(name: str, data_dir: str | Path | None, download: bool):
    if name not in DATASET_NAMES:
        raise WorkbenchError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    source = SOURCES[name]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    return source, locate_files(source, root, download)


def _files_digest(source, files: list[Path]) -> str:
    beside = not is_system_folder(source, files[0].parent)
    return files_digest(files, default_data_dir() / ".digests", beside=beside)


def dataset_digest(name: str, data_dir: str | Path | None = None, download: bool = True) -> str:
    """Provenance digest (16 hex digits) of the content of dataset ``name`` as ``load_dataset`` finds it.

    sha256 over the sha256 of each file read (the four IDX files, or the six CIFAR batches);
    for ``digits``, over the arrays. Each file's sha256 is cached beside it (``.hardthresh-digests.json``,
    keyed by size and mtime_ns), or under ``default_data_dir()/.digests/`` for system and read-only
    folders, or in memory; a later call costs a stat per file (see ``analysis.data.digest``).
    """
    if name == "digits":
        return array_digest(_digits())
    source, files = _located_files(name, data_dir, download)
    return _files_digest(source, files)


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Load and check dataset ``name`` (one of DATASET_NAMES), downloading it when allowed and missing."""
    if name == "digits":
        arrays = _digits()
        return _as_tensors(name, arrays, DIGITS_CLASSES, array_digest(arrays))
    source, files = _located_files(name, data_dir, download)
    stamps = [file_stamp(path) for path in files]
    digest = _files_digest(source, files)
    arrays = read_files(source, files)
    for path, stamp in zip(files, stamps):
        if file_stamp(path) != stamp:  # the digest must describe the bytes that were read
            raise WorkbenchError(f"{path}: changed while it was being read; run again")
    return _as_tensors(name, arrays, source.classes, digest)


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
                 dataset.y_train[val], dataset.x_test[test], dataset.y_test[test], dataset.num_classes)


__all__ = ["DATASET_NAMES", "Dataset", "Split", "load_dataset", "dataset_digest", "split_train_val",
           "read_idx", "write_idx", "default_data_dir"]
