"""Corrupt or inconsistent data files end in one WorkbenchError line naming the file, never a traceback."""
import gzip
import io
import pickle
import tarfile
from dataclasses import replace

import numpy as np
import pytest

from analysis.data import load_dataset, write_idx
from analysis.data.sources import CIFAR10, MNIST, SOURCES
from analysis.errors import WorkbenchError
from test_data import write_cifar_batch, write_fake_idx_folder

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    """A data folder with a small valid 'mnist' (12 training images of classes 0..9, 5 test images)."""
    monkeypatch.setitem(SOURCES, "mnist", replace(MNIST, expected_counts=(12, 5)))
    monkeypatch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path / "default"))
    arrays = write_fake_idx_folder(tmp_path / "mnist")
    return tmp_path, arrays


def _load_error(name, data_dir) -> str:
    with pytest.raises(WorkbenchError) as err:
        load_dataset(name, data_dir, download=False)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_valid_files_load_with_the_declared_classes(mnist_dir):
    root, arrays = mnist_dir
    dataset = load_dataset("mnist", root, download=False)
    assert dataset.num_classes == 10 and dataset.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(dataset.y_train.numpy(), arrays[1])


def test_training_label_200_names_the_value_and_file(mnist_dir):
    root, arrays = mnist_dir
    labels = arrays[1].copy()
    labels[7] = 200
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", labels)
    message = _load_error("mnist", root)
    assert "train-labels-idx1-ubyte.gz: label 200 at index 7 is outside [0, 10)" in message


def test_test_label_out_of_range_names_the_test_file(mnist_dir):
    root, arrays = mnist_dir
    write_idx(root / "mnist" / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 10, 11, 2], np.uint8))
    assert "t10k-labels-idx1-ubyte.gz: label 10 at index 2 is outside [0, 10) (2 such labels)" in _load_error("mnist", root)


def test_a_class_missing_from_training_fails(mnist_dir):
    root, arrays = mnist_dir
    labels = arrays[1].copy()
    labels[labels == 7] = 3
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", labels)
    assert "train-labels-idx1-ubyte.gz: no training example of class 7" in _load_error("mnist", root)


def test_float_labels_and_non_finite_images_fail(mnist_dir):
    root, arrays = mnist_dir
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", arrays[1].astype(np.float32))
    assert "train-labels-idx1-ubyte.gz: labels must be integers" in _load_error("mnist", root)
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", arrays[1])
    images = arrays[2].astype(np.float32) / 255
    images[1, 2, 3] = np.nan
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", images)
    assert "t10k-images-idx3-ubyte.gz: images hold 1 non-finite values" in _load_error("mnist", root)


def test_train_and_test_image_shapes_must_agree(mnist_dir):
    root, arrays = mnist_dir
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((5, 20, 20), np.uint8))
    assert "training images have shape (28, 28) but test images (20, 20)" in _load_error("mnist", root)


def test_corrupt_deflate_bytes_fail_in_one_line(mnist_dir):
    root, _ = mnist_dir
    path = root / "mnist" / "train-images-idx3-ubyte.gz"
    write_idx(path, np.tile(np.arange(28, dtype=np.uint8), (12, 28, 1)))  # compressible: Huffman-coded blocks
    raw = bytearray(path.read_bytes())
    raw[20:28] = b"\xff" * 8  # inside the deflate stream, past the 10-byte gzip header
    path.write_bytes(bytes(raw))
    message = _load_error("mnist", root)
    assert message.startswith(f"{path}: corrupt gzip stream (Error -3")


@pytest.mark.parametrize("cut", [1, 100])
def test_truncated_idx_files_fail_in_one_line(mnist_dir, cut):
    root, _ = mnist_dir
    compressed = root / "mnist" / "train-images-idx3-ubyte.gz"
    whole = compressed.read_bytes()
    compressed.write_bytes(whole[:-cut])
    assert _load_error("mnist", root).startswith(f"{compressed}: corrupt gzip stream")
    raw = root / "mnist" / "train-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress(whole)[:-cut])
    compressed.unlink()
    assert _load_error("mnist", root).startswith(f"{raw}: IDX header promises shape (12, 28, 28)")


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    """A data folder with a tiny 'cifar10' (4 images per batch) extracted in place."""
    monkeypatch.setitem(SOURCES, "cifar10", replace(CIFAR10, images_per_batch=4))
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for seed, name in enumerate(CIFAR_BATCHES):
        write_cifar_batch(folder / name, 4, seed)
    monkeypatch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path / "default"))
    return tmp_path, folder


def test_truncated_cifar_batch_fails_in_one_line(cifar_dir):
    root, folder = cifar_dir
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-50])
    assert _load_error("cifar10", root).startswith(f"{batch}: not a readable CIFAR-10 batch")


def test_cifar_label_200_and_missing_class(cifar_dir):
    root, folder = cifar_dir
    assert load_dataset("cifar10", root, download=False).num_classes == 10
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    batch[b"labels"][1] = 200
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch))
    assert f"{folder / 'data_batch_2'}: label 200 at index 1 is outside [0, 10)" in _load_error("cifar10", root)
    for name in CIFAR_BATCHES[:5]:
        batch = pickle.loads((folder / name).read_bytes())
        batch[b"labels"] = [min(label, 8) for label in batch[b"labels"]]
        (folder / name).write_bytes(pickle.dumps(batch))
    assert "data_batch_1..5: no training example of class 9" in _load_error("cifar10", root)


def _cifar_archive(path, members) -> bytes:
    """A gzipped tar with compressible members named ``cifar-10-batches-py/<name>``; returns its bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in members:
            payload = bytes(range(256)) * 200
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["deflate", "truncate"])
def test_corrupt_cifar_archive_fails_in_one_line_and_leaves_no_folder(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path / "default"))
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    raw = bytearray(_cifar_archive(archive, CIFAR_BATCHES))
    if damage == "deflate":
        raw[20:36] = b"\xff" * 16
    else:
        raw = raw[: len(raw) // 2]
    archive.write_bytes(bytes(raw))
    assert _load_error("cifar10", tmp_path).startswith(f"{archive}: cannot extract")
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]


def test_cifar_archive_without_every_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path / "default"))
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    _cifar_archive(archive, CIFAR_BATCHES[:2])
    assert _load_error("cifar10", tmp_path) == f"{archive}: archive lacks cifar-10-batches-py/" + ", ".join(CIFAR_BATCHES[2:])
