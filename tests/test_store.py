"""The result store: atomic writes, clear errors for full disks and corrupt tables, leftovers, locks."""
import errno
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from analysis.errors import WorkbenchError
from analysis.store import atomic_write, load_table, remove_stale_temporaries, save_table


def test_full_disk_is_one_clear_error_and_leaves_nothing(tmp_path):
    def fill_the_disk(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WorkbenchError, match=r"cannot write .*out.bin: no space left on device"):
        atomic_write(tmp_path / "out.bin", fill_the_disk)
    assert list(tmp_path.iterdir()) == []


def test_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_table(tmp_path / "t.parquet", pd.DataFrame({"a": [1]}))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_truncated_table_is_reported(tmp_path):
    path = save_table(tmp_path / "t.parquet", pd.DataFrame({"a": range(100)}))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(WorkbenchError, match="unreadable table"):
        load_table(path)


def test_leftovers_of_a_killed_writer_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".t.parquet.pid{dead.stdout.strip()}.abc123.tmp"
    leftover.write_bytes(b"half")
    live = tmp_path / f".u.parquet.pid{os.getpid()}.abc123.tmp"
    live.write_bytes(b"being written")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not leftover.exists() and live.exists()


def test_two_concurrent_runs_train_once_and_agree(tmp_path):
    args = [sys.executable, "-m", "analysis.cli", "train", "--preset", "smoke", "--dataset", "digits", "--model", "fc",
            "--results", str(tmp_path), "--device", "cpu", "--no-progress"]
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    metrics = [json.loads(out)["metrics"] for out, _ in outputs]
    assert metrics[0] == metrics[1]  # the second waited and loaded the first's checkpoint (same train time)
    assert len(list((tmp_path / "cache" / "models").glob("*.pt"))) == 1
