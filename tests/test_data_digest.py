"""Provenance digests: stable, content-only, cached beside the files (or elsewhere) so a later call costs a stat."""
import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

from analysis.data import dataset_digest, load_dataset, write_idx
from analysis.data import digest as digest_module
from analysis.data.download import new_file_mode
from analysis.data.sources import IDX_FILES, MNIST, SOURCES
from analysis.errors import WorkbenchError
from test_data import write_fake_idx_folder


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A data folder holding a 12 + 5 image 'mnist'; HARDTHRESH_DATA_DIR points into tmp_path."""
    monkeypatch.setitem(SOURCES, "mnist", replace(MNIST, expected_counts=(12, 5)))
    monkeypatch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path / "default"))
    monkeypatch.setattr(digest_module, "_IN_MEMORY", {})
    root = tmp_path / "A"
    write_fake_idx_folder(root / "mnist")
    return root


@pytest.fixture
def hash_reads(monkeypatch):
    """The files whose bytes the digest module reads, in order."""
    reads, original = [], digest_module._sha256_of_file
    monkeypatch.setattr(digest_module, "_sha256_of_file", lambda path: reads.append(path.name) or original(path))
    return reads


def _age(folder, seconds_ago=3600):
    """Set every file's mtime in the past, out of the racy window."""
    for path in folder.iterdir():
        stamp = path.stat().st_mtime_ns - seconds_ago * 10**9
        os.utime(path, ns=(stamp, stamp))


def test_digest_is_stable_and_the_second_call_reads_no_file(data_root, hash_reads):
    _age(data_root / "mnist")
    first = dataset_digest("mnist", data_root, download=False)
    assert len(first) == 16 and int(first, 16) >= 0
    assert sorted(hash_reads) == sorted(f"{stem}.gz" for stem in IDX_FILES)
    sidecar_path = data_root / "mnist" / digest_module.SIDECAR_NAME
    assert sidecar_path.stat().st_mode & 0o777 == new_file_mode()  # not mkstemp's 0o600
    sidecar = json.loads(sidecar_path.read_text())
    for stem in IDX_FILES:
        status = (data_root / "mnist" / f"{stem}.gz").stat()
        assert sidecar[f"{stem}.gz"]["size"] == status.st_size
        assert sidecar[f"{stem}.gz"]["mtime_ns"] == status.st_mtime_ns
    hash_reads.clear()
    assert dataset_digest("mnist", data_root, download=False) == first
    assert hash_reads == []
    assert load_dataset("mnist", data_root, download=False).digest == first
    assert hash_reads == []


def test_freshly_written_files_are_hashed_again_until_out_of_the_racy_window(data_root, hash_reads):
    first = dataset_digest("mnist", data_root, download=False)
    assert dataset_digest("mnist", data_root, download=False) == first
    assert len(hash_reads) == 8
    assert not (data_root / "mnist" / digest_module.SIDECAR_NAME).exists()


def test_digest_follows_content_not_folder(data_root, tmp_path):
    _age(data_root / "mnist")
    original = dataset_digest("mnist", data_root, download=False)
    copy = tmp_path / "B"
    shutil.copytree(data_root, copy)
    assert dataset_digest("mnist", copy, download=False) == original
    other = tmp_path / "C"
    write_fake_idx_folder(other / "mnist", seed=2)
    assert dataset_digest("mnist", other, download=False) != original

    labels_file = copy / "mnist" / "train-labels-idx1-ubyte.gz"
    write_idx(labels_file, np.roll(load_dataset("mnist", copy, download=False).y_train.numpy(), 1).astype(np.uint8))
    changed = dataset_digest("mnist", copy, download=False)
    assert changed != original
    assert load_dataset("mnist", copy, download=False).digest == changed
    assert dataset_digest("mnist", data_root, download=False) == original


def test_unwritable_folder_caches_under_the_default_data_dir(data_root, tmp_path, hash_reads):
    _age(data_root / "mnist")
    (data_root / "mnist" / digest_module.SIDECAR_NAME).mkdir()  # blocks the sidecar, as a read-only folder would
    first = dataset_digest("mnist", data_root, download=False)
    shared = list((tmp_path / "default" / ".digests").glob("*.json"))
    assert len(shared) == 1 and set(json.loads(shared[0].read_text())) == {f"{s}.gz" for s in IDX_FILES}
    hash_reads.clear()
    assert dataset_digest("mnist", data_root, download=False) == first and hash_reads == []


def test_nowhere_writable_caches_in_memory(data_root, tmp_path, hash_reads):
    _age(data_root / "mnist")
    (data_root / "mnist" / digest_module.SIDECAR_NAME).mkdir()
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / ".digests").write_text("a file where the cache folder would be")
    first = dataset_digest("mnist", data_root, download=False)
    hash_reads.clear()
    assert dataset_digest("mnist", data_root, download=False) == first and hash_reads == []
    assert len(digest_module._IN_MEMORY) == 4


def test_system_folders_are_never_written(tmp_path, monkeypatch, hash_reads):
    system = tmp_path / "usr-share"
    write_fake_idx_folder(system)
    _age(system)
    monkeypatch.setitem(SOURCES, "mnist", replace(MNIST, expected_counts=(12, 5), system_dirs=(str(system),)))
    monkeypatch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path / "default"))
    first = dataset_digest("mnist", tmp_path / "empty", download=False)
    assert not (system / digest_module.SIDECAR_NAME).exists()
    assert len(list((tmp_path / "default" / ".digests").glob("*.json"))) == 1
    hash_reads.clear()
    assert load_dataset("mnist", tmp_path / "empty", download=False).digest == first and hash_reads == []


def test_a_corrupt_sidecar_is_ignored_and_replaced(data_root):
    _age(data_root / "mnist")
    first = dataset_digest("mnist", data_root, download=False)
    sidecar = data_root / "mnist" / digest_module.SIDECAR_NAME
    sidecar.write_text('{"train-images-idx3-ubyte.gz": {"size": 1')
    assert dataset_digest("mnist", data_root, download=False) == first
    assert len(json.loads(sidecar.read_text())) == 4


def test_digits_digest_is_the_digest_of_its_arrays():
    digits = load_dataset("digits")
    assert digits.digest == dataset_digest("digits") == load_dataset("digits").digest
    arrays = [digits.x_train.numpy(), digits.y_train.numpy(), digits.x_test.numpy(), digits.y_test.numpy()]
    assert digest_module.array_digest(arrays) == digits.digest
    assert digest_module.array_digest(arrays[:1] + [arrays[1][::-1]] + arrays[2:]) != digits.digest


def test_a_file_rewritten_while_loading_is_an_error(data_root, monkeypatch):
    import analysis.data as data
    _age(data_root / "mnist")
    read = data.read_files

    def read_while_another_process_writes(source, files):
        arrays = read(source, files)
        write_fake_idx_folder(data_root / "mnist", seed=3)
        return arrays

    monkeypatch.setattr(data, "read_files", read_while_another_process_writes)
    with pytest.raises(WorkbenchError, match="train-images-idx3-ubyte.gz: changed while it was being read"):
        load_dataset("mnist", data_root, download=False)
