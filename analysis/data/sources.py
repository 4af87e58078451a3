"""Where each dataset comes from: local folders first, then a checksummed download.

Search order for dataset ``name``: ``<data_dir>/<name>/``, then system folders
(Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``).
``data_dir`` defaults to ``$HARDTHRESH_DATA_DIR`` or ``~/.cache/hardthresh/data``;
``$HARDTHRESH_MIRROR`` (a base URL) replaces the official download locations.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkbenchError
from .checks import check_images, check_labels, check_split
from .cifar import IMAGES_PER_BATCH, TEST_BATCH, TRAIN_BATCHES, read_cifar10
from .download import download
from .idx import read_idx

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxSource:
    name: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]  # of the official .gz files
    system_dirs: tuple[str, ...] = ()
    expected_counts: tuple[int, int] = (60_000, 10_000)
    classes: int = 10


@dataclass(frozen=True)
class CifarSource:
    name: str
    mirrors: tuple[str, ...]
    archive: str
    md5: str
    folder: str = "cifar-10-batches-py"
    classes: int = 10
    images_per_batch: int = IMAGES_PER_BATCH


FASHION_MNIST = IdxSource(
    "fashion-mnist",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
     "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    {"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
     "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
     "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"},
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)
MNIST = IdxSource(
    "mnist",
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    {"train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
     "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
     "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c"},
)
CIFAR10 = CifarSource("cifar10", ("https://www.cs.toronto.edu/~kriz/",),
                      "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")

SOURCES = {s.name: s for s in (FASHION_MNIST, MNIST, CIFAR10)}


def default_data_dir() -> Path:
    return Path(os.environ.get("HARDTHRESH_DATA_DIR", Path.home() / ".cache" / "hardthresh" / "data"))


def _mirrors(source) -> list[str]:
    override = os.environ.get("HARDTHRESH_MIRROR")
    return [override.rstrip("/") + "/"] if override else list(source.mirrors)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _idx_folder(source: IdxSource, data_dir: Path, allow_download: bool) -> Path:
    folders = [data_dir / source.name] + [Path(d) for d in source.system_dirs]
    for folder in folders:
        if all(_find_idx(folder, stem) for stem in IDX_FILES):
            return folder
    target = data_dir / source.name
    if not allow_download:
        raise WorkbenchError(_missing_idx_message(source, target))
    for stem in IDX_FILES:
        if _find_idx(target, stem) is None:
            urls = [m + f"{stem}.gz" for m in _mirrors(source)]
            try:
                download(urls, target / f"{stem}.gz", source.md5[stem])
            except WorkbenchError as err:
                raise WorkbenchError(f"{err}. {_missing_idx_message(source, target)}") from None
    return target


def _missing_idx_message(source: IdxSource, target: Path) -> str:
    files = ", ".join(f"{s}.gz" for s in IDX_FILES)
    return (f"dataset {source.name!r} not found: put {files} in {target} "
            f"(or set HARDTHRESH_DATA_DIR, or allow the download)")


def idx_files(source: IdxSource, data_dir: Path, allow_download: bool) -> list[Path]:
    """The four IDX files of ``source`` (in IDX_FILES order), downloaded when allowed and missing."""
    folder = _idx_folder(source, data_dir, allow_download)
    return [_find_idx(folder, stem) for stem in IDX_FILES]


def read_idx_files(source: IdxSource, files: list[Path]):
    """(x_train, y_train, x_test, y_test) from the four IDX files, checked (see ``checks``)."""
    x_train, y_train, x_test, y_test = (read_idx(path) for path in files)
    folder = files[0].parent
    for images, labels, expected, split in ((x_train, y_train, source.expected_counts[0], "train"),
                                            (x_test, y_test, source.expected_counts[1], "test")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or len(images) != expected:
            raise WorkbenchError(f"{folder}: {source.name} {split} split has images {images.shape} and "
                                 f"labels {labels.shape}, expected {expected} of each")
    check_images(x_train, str(files[0]))
    check_images(x_test, str(files[2]))
    y_train = check_labels(y_train, source.classes, str(files[1]), every_class=True)
    y_test = check_labels(y_test, source.classes, str(files[3]))
    check_split(x_train, y_train, x_test, y_test, str(folder))
    return x_train[:, None], y_train, x_test[:, None], y_test


def cifar_files(source: CifarSource, data_dir: Path, allow_download: bool) -> list[Path]:
    """The six CIFAR batch files, extracted from the archive (downloaded when allowed) if missing."""
    folder = data_dir / source.name / source.folder
    files = [folder / name for name in TRAIN_BATCHES + (TEST_BATCH,)]
    if not all(path.is_file() for path in files):
        archive = data_dir / source.name / source.archive
        if not archive.is_file():
            message = (f"dataset {source.name!r} not found: put {source.archive} (or its extracted "
                       f"{source.folder}/ folder) in {data_dir / source.name}")
            if not allow_download:
                raise WorkbenchError(message)
            try:
                download([m + source.archive for m in _mirrors(source)], archive, source.md5)
            except WorkbenchError as err:
                raise WorkbenchError(f"{err}. {message}") from None
        _extract(archive, data_dir / source.name, source.folder)
        missing = [path.name for path in files if not path.is_file()]
        if missing:
            raise WorkbenchError(f"{archive}: archive lacks {source.folder}/{', '.join(missing)}")
    return files


def read_cifar_files(source: CifarSource, files: list[Path]):
    return read_cifar10(files[0].parent, source.images_per_batch, source.classes)


def locate_files(source: IdxSource | CifarSource, data_dir: Path, allow_download: bool) -> list[Path]:
    """Every file that loading ``source`` reads, in a fixed order."""
    locate = cifar_files if isinstance(source, CifarSource) else idx_files
    return locate(source, data_dir, allow_download)


def read_files(source: IdxSource | CifarSource, files: list[Path]):
    """(x_train, y_train, x_test, y_test) as checked numpy arrays from ``locate_files``' files."""
    read = read_cifar_files if isinstance(source, CifarSource) else read_idx_files
    return read(source, files)


def is_system_folder(source: IdxSource | CifarSource, folder: Path) -> bool:
    """Whether ``folder`` is one of the source's system folders, which the workbench never writes to."""
    return any(folder == Path(d) for d in getattr(source, "system_dirs", ()))


def _extract(archive: Path, destination: Path, folder: str) -> None:
    tmp = destination / f".{folder}.partial"
    shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted extraction
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        if not (tmp / folder).is_dir():
            raise WorkbenchError(f"{archive}: archive has no {folder}/ folder")
        shutil.rmtree(destination / folder, ignore_errors=True)  # an incomplete earlier copy
        (tmp / folder).replace(destination / folder)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        reason = " ".join(str(err).split())
        raise WorkbenchError(f"{archive}: cannot extract ({type(err).__name__}: {reason})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
