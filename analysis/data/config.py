"""What a network is trained on, as a frozen config whose hash is the data's provenance.

A ``DataConfig`` names the dataset and every option that changes the tensors a network
sees: the training subset, the validation split, a PCA projection, or the parameters of a
synthetic manifold task. ``data_key`` adds the digest of the dataset files actually read,
so two folders with different images never share a cached artefact.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import WorkbenchError
from ..hashing import stable_hash
from .synthetic import fit_pca, manifold_task

MANIFOLD = "manifold"


@dataclass(frozen=True)
class ManifoldSpec:
    """A classification task on a ``latent_dimension``-manifold in R^``ambient_dimension``."""

    latent_dimension: int
    ambient_dimension: int = 784
    n_train: int = 10_000
    n_test: int = 2_000
    num_classes: int = 10
    seed: int = 0
    label_frequency: float = 2.0  # labels' random-Fourier frequency: lower is smoother and easier
    centred_labels: bool = False  # subtract each label feature's mean (balanced classes at low frequency)


@dataclass(frozen=True)
class DataConfig:
    """A dataset and the options that change its tensors (all part of the provenance key)."""

    dataset: str = "fashion-mnist"
    train_size: int | None = None  # training subset after the validation split (None = all)
    val_size: int = 5000  # capped at a fifth of the training set
    pca_components: int | None = None  # reconstruct from the top-n principal components (grey first)
    manifold: ManifoldSpec | None = None  # only with dataset == "manifold"

    def __post_init__(self):
        from . import DATASET_NAMES

        if self.dataset not in DATASET_NAMES + (MANIFOLD,):
            raise WorkbenchError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASET_NAMES)}")
        if (self.dataset == MANIFOLD) != (self.manifold is not None):
            raise WorkbenchError("a ManifoldSpec goes with dataset 'manifold', and only with it")
        if self.train_size is not None and self.train_size < 1:
            raise WorkbenchError(f"train_size must be a positive integer or None, got {self.train_size!r}")
        if self.val_size < 0:
            raise WorkbenchError(f"val_size must be >= 0, got {self.val_size!r}")
        if self.pca_components is not None and self.pca_components < 1:
            raise WorkbenchError(f"pca_components must be >= 1, got {self.pca_components!r}")

    @property
    def label(self) -> str:
        """A short readable name, for file names and figure labels."""
        if self.manifold is not None:
            return f"manifold-k{self.manifold.latent_dimension}"
        return self.dataset + (f"-pca{self.pca_components}" if self.pca_components else "")


def manifold_data(latent_dimension: int, ambient_dimension: int, sizes: tuple[int, int], seed: int,
                  **labels) -> DataConfig:
    """The data config of a synthetic task on a k-manifold (``sizes`` = training and test points;
    ``labels``: ``label_frequency`` and ``centred_labels`` of ``ManifoldSpec``)."""
    n_train, n_test = sizes
    return DataConfig(MANIFOLD, manifold=ManifoldSpec(latent_dimension, ambient_dimension, n_train, n_test,
                                                      seed=seed, **labels))


# Names the code that generates manifold data: change it whenever that code changes what it draws.
GENERATOR_VERSION = "generated-v2 (validation points after the test points)"


def content_digest(data: DataConfig, data_dir: Path | None, download: bool) -> str:
    """Digest of the files behind ``data`` ('generated' for the synthetic manifold, built from the spec)."""
    from . import dataset_digest

    if data.manifold is not None:
        return GENERATOR_VERSION
    return dataset_digest(data.dataset, data_dir=data_dir, download=download)


def data_key(data: DataConfig, data_dir: Path | None = None, download: bool = True) -> str:
    """Provenance key of the tensors ``data`` describes: its options plus the content digest."""
    return stable_hash({"data": asdict(data), "content": content_digest(data, data_dir, download)})


_SPLITS: OrderedDict = OrderedDict()
_SPLITS_KEPT = 2  # a few hundred MB each for the full datasets


def load_split(data: DataConfig, data_dir: Path | None = None, download: bool = True):
    """Train/validation/test tensors for ``data``; the last few are kept in memory per process."""
    key = (data, None if data_dir is None else str(data_dir), download)
    if key not in _SPLITS:
        _SPLITS[key] = _build_split(data, data_dir, download)
        while len(_SPLITS) > _SPLITS_KEPT:
            _SPLITS.popitem(last=False)
    _SPLITS.move_to_end(key)
    return _SPLITS[key]


def _build_split(data: DataConfig, data_dir: Path | None, download: bool):
    from . import Split, load_dataset, split_train_val

    if data.manifold is not None:
        spec = data.manifold
        val_size = min(data.val_size, spec.n_train // 5)  # drawn after the test points, for early stopping
        task = manifold_task(spec.latent_dimension, spec.ambient_dimension, spec.num_classes,
                             n_train=spec.n_train, n_test=spec.n_test + val_size, seed=spec.seed,
                             label_frequency=spec.label_frequency, centred_labels=spec.centred_labels)
        test = slice(0, spec.n_test)
        val = slice(spec.n_test, None)
        return Split(task.x_train, task.y_train, task.x_test[val], task.y_test[val], task.x_test[test],
                     task.y_test[test], num_classes=spec.num_classes)
    dataset = load_dataset(data.dataset, data_dir=data_dir, download=download)
    val_size = min(data.val_size, len(dataset.x_train) // 5)
    split = split_train_val(dataset, val_size, seed=0, train_size=data.train_size)
    return pca_split(split, data.pca_components) if data.pca_components else split


def grey(x: torch.Tensor) -> torch.Tensor:
    """Colour images (N, 3, H, W) averaged to one channel; others unchanged."""
    return x.mean(dim=1, keepdim=True) if x.ndim == 4 and x.shape[1] == 3 else x


def pca_split(base, n_components: int):
    """Every part of ``base`` reconstructed from the top principal components of the (grey) training inputs."""
    from . import Split

    basis = fit_pca(grey(base.x_train), n_components)
    project = lambda x: basis.reconstruct(grey(x))  # noqa: E731
    return Split(project(base.x_train), base.y_train, project(base.x_val), base.y_val,
                 project(base.x_test), base.y_test, num_classes=base.num_classes)
