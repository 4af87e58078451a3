"""Checks of loaded arrays; each failure is a one-line WorkbenchError naming the file (``where``)."""
from __future__ import annotations

import numpy as np

from ..errors import WorkbenchError


def check_labels(labels: np.ndarray, num_classes: int, where: str, every_class: bool = False) -> np.ndarray:
    """``labels`` as int64 after checking they are integers in [0, num_classes).

    With ``every_class`` (the training set) each class must occur at least once, so that the
    number of classes never depends on which labels happen to be present or corrupt.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise WorkbenchError(f"{where}: labels must be one-dimensional, got shape {labels.shape}")
    if labels.dtype.kind not in "iu" and labels.size:
        raise WorkbenchError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    outside = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if outside.size:
        first = outside[0]
        raise WorkbenchError(f"{where}: label {labels[first]} at index {first} is outside [0, {num_classes}) "
                             f"({outside.size} such label{'s' if outside.size > 1 else ''})")
    labels = labels.astype(np.int64)
    if every_class:
        missing = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
        if missing.size:
            raise WorkbenchError(f"{where}: no training example of class {', '.join(map(str, missing))}; "
                                 f"every class in [0, {num_classes}) must occur")
    return labels


def check_images(images: np.ndarray, where: str) -> None:
    """Integer images are finite by construction; floating ones must hold no NaN or infinity."""
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise WorkbenchError(f"{where}: images hold {int((~np.isfinite(images)).sum())} non-finite values")


def check_split(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                where: str) -> None:
    """One label per image in each split, and the same image shape in training and test."""
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(images) != len(labels):
            raise WorkbenchError(f"{where}: {split} split has {len(images)} images but {len(labels)} labels")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise WorkbenchError(f"{where}: training images have shape {x_train.shape[1:]} but test images "
                             f"{x_test.shape[1:]}")
