"""Reader for CIFAR-10's python batches (``cifar-10-batches-py``)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from .checks import check_labels

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGES_PER_BATCH = 10_000
PIXELS = 3 * 32 * 32
CLASSES = 10


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global except the few numpy needs to rebuild arrays."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path, num_classes: int = CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 in [0, num_classes) of one batch file."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: file not found")
    try:
        with path.open("rb") as handle:
            batch = _NumpyOnlyUnpickler(handle, encoding="bytes").load()
    except Exception as err:  # pickle raises many types on corrupt input
        reason = " ".join(str(err).split())
        raise WorkbenchError(f"{path}: not a readable CIFAR-10 batch ({type(err).__name__}: {reason})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise WorkbenchError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels'")
    images, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != PIXELS or images.shape[0] != len(labels):
        raise WorkbenchError(f"{path}: expected uint8 data of shape (N, {PIXELS}) with N labels, got "
                             f"{images.dtype} {images.shape} and {labels.shape}")
    return images.reshape(-1, 3, 32, 32), check_labels(labels, num_classes, str(path))


def read_cifar10(folder: str | Path, expected_per_batch: int = IMAGES_PER_BATCH, num_classes: int = CLASSES):
    """(x_train, y_train, x_test, y_test) from a ``cifar-10-batches-py`` folder, every class in training."""
    folder = Path(folder)
    parts = [read_cifar_batch(folder / name, num_classes) for name in TRAIN_BATCHES + (TEST_BATCH,)]
    for name, (images, _) in zip(TRAIN_BATCHES + (TEST_BATCH,), parts):
        if images.shape[0] != expected_per_batch:
            raise WorkbenchError(f"{folder / name}: expected {expected_per_batch} images, "
                                 f"found {images.shape[0]}")
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = check_labels(np.concatenate([p[1] for p in parts[:-1]]), num_classes,
                           f"{folder}/data_batch_1..5", every_class=True)
    return x_train, y_train, parts[-1][0], parts[-1][1]
