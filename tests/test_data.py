"""IDX and CIFAR readers, dataset sources, downloads and the seeded split, on small synthetic files."""
import functools
import gzip
import http.server
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.data import Dataset, load_dataset, read_idx, split_train_val, write_idx
from analysis.data.cifar import read_cifar10, read_cifar_batch
from analysis.data.download import download, md5sum, new_file_mode
from analysis.data.sources import IDX_FILES, IdxSource, locate_files, read_files
from analysis.errors import WorkbenchError


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    array = (np.random.default_rng(0).normal(size=(5, 3, 4)) * 50).astype(dtype)
    write_idx(tmp_path / name, array)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_idx_truncated_file_is_rejected(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((4, 2, 2), np.uint8))
    raw = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "a.idx").write_bytes(raw[:-3])
    with pytest.raises(WorkbenchError, match="promises shape"):
        read_idx(tmp_path / "a.idx")


def test_idx_bad_magic_and_corrupt_gzip(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(WorkbenchError, match="bad magic"):
        read_idx(tmp_path / "bad.idx")
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")
    (tmp_path / "cut.idx.gz").write_bytes(good[:-6])
    with pytest.raises(WorkbenchError, match="corrupt gzip"):
        read_idx(tmp_path / "cut.idx.gz")


def write_fake_idx_folder(folder: Path, n_train=12, n_test=5, seed=1):
    """The four IDX files of a small MNIST-like dataset; every class 0..9 occurs in training."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8)]
    for stem, array in zip(IDX_FILES, arrays):
        write_idx(folder / f"{stem}.gz", array)
    return arrays


def load_idx_dataset(source, data_dir, allow_download):
    return read_files(source, locate_files(source, data_dir, allow_download))


def test_idx_dataset_counts_are_validated(tmp_path):
    arrays = write_fake_idx_folder(tmp_path / "toy")
    source = IdxSource("toy", (), {}, expected_counts=(12, 5))
    x_train, y_train, x_test, _ = load_idx_dataset(source, tmp_path, allow_download=False)
    assert x_train.shape == (12, 1, 28, 28) and x_test.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(y_train, arrays[1])
    with pytest.raises(WorkbenchError, match="expected 60000"):
        load_idx_dataset(IdxSource("toy", (), {}), tmp_path, allow_download=False)


def test_missing_dataset_offline_names_files_and_folder(tmp_path):
    with pytest.raises(WorkbenchError) as err:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "mnist") in message and "train-images-idx3-ubyte.gz" in message


def test_unknown_dataset():
    with pytest.raises(WorkbenchError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def write_cifar_batch(path: Path, n: int, seed: int):
    """A CIFAR-10 batch of ``n`` random images; labels cycle through 0..9 across batches of seeds 0, 1, ..."""
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [(n * seed + i) % 10 for i in range(n)]}
    path.write_bytes(pickle.dumps(batch))
    return batch


def test_cifar_batches(tmp_path):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = [write_cifar_batch(tmp_path / name, 4, i) for i, name in enumerate(names)]
    x_train, y_train, x_test, y_test = read_cifar10(tmp_path, expected_per_batch=4)
    assert x_train.shape == (20, 3, 32, 32) and x_test.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(x_train[0].reshape(-1), batches[0][b"data"][0])
    np.testing.assert_array_equal(y_test, batches[-1][b"labels"])
    with pytest.raises(WorkbenchError, match="expected 10000 images"):
        read_cifar10(tmp_path)


def test_cifar_corrupt_and_hostile_batches(tmp_path):
    (tmp_path / "cut").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})[:-10])
    with pytest.raises(WorkbenchError, match="not a readable CIFAR-10 batch"):
        read_cifar_batch(tmp_path / "cut")
    (tmp_path / "evil").write_bytes(pickle.dumps(print))
    with pytest.raises(WorkbenchError, match="not allowed"):
        read_cifar_batch(tmp_path / "evil")
    (tmp_path / "shape").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(WorkbenchError, match="expected uint8 data of shape"):
        read_cifar_batch(tmp_path / "shape")


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_verifies_checksum_and_leaves_nothing_on_mismatch(http_root, tmp_path):
    root, url = http_root
    (root / "file.bin").write_bytes(b"payload" * 100)
    good = md5sum(root / "file.bin")
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(WorkbenchError, match="checksum"):
        download([url + "file.bin"], target, "0" * 32)
    assert list(target.parent.iterdir()) == []
    with pytest.raises(WorkbenchError, match="could not download"):
        download([url + "missing.bin"], target, good)
    assert download([url + "missing.bin", url + "file.bin"], target, good).read_bytes() == b"payload" * 100


def test_dataset_download_from_a_mirror(http_root, tmp_path, monkeypatch):
    root, url = http_root
    write_fake_idx_folder(root, n_train=60_000 // 1000, n_test=10)
    checksums = {stem: md5sum(root / f"{stem}.gz") for stem in IDX_FILES}
    monkeypatch.setenv("HARDTHRESH_MIRROR", url)
    source = IdxSource("toy", ("http://unused.invalid/",), checksums, expected_counts=(60, 10))
    x_train, *_ = load_idx_dataset(source, tmp_path / "data", allow_download=True)
    assert x_train.shape == (60, 1, 28, 28)
    assert sorted(p.name for p in (tmp_path / "data" / "toy").iterdir()) == sorted(f"{s}.gz" for s in IDX_FILES)
    assert all(p.stat().st_mode & 0o777 == new_file_mode() for p in (tmp_path / "data" / "toy").iterdir())


def test_split_is_seeded_and_disjoint():
    dataset = Dataset("toy", torch.arange(100.0)[:, None], torch.arange(100) % 10, torch.zeros(5, 1), torch.zeros(5),
                      num_classes=10, digest="toy")
    a, b = split_train_val(dataset, 20, seed=3), split_train_val(dataset, 20, seed=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    assert set(a.x_train[:, 0].tolist()).isdisjoint(a.x_val[:, 0].tolist())
    assert len(a.x_train) == 80 and len(split_train_val(dataset, 20, seed=3, train_size=30).x_train) == 30
    assert split_train_val(dataset, 20, seed=3, train_size=3).num_classes == 10
    assert not torch.equal(split_train_val(dataset, 20, seed=4).x_val, a.x_val)


def test_digits_dataset_is_available_offline():
    digits = load_dataset("digits")
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert set(digits.y_train.tolist()) == set(range(10))
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
