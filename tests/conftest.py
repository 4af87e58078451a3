import pytest
import torch

from analysis.data import load_dataset, split_train_val
from analysis.data.config import DataConfig
from analysis.runtime import Runtime
from analysis.training import TrainConfig


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)  # tests compare numbers; keep them independent of the core count
    yield


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Digests and downloads go to a temporary folder; Debian's Fashion-MNIST is still found in place."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HARDTHRESH_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    patch.setenv("NUMBA_CACHE_DIR", str(tmp_path_factory.mktemp("numba")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's 8x8 digits: real images, small enough for unit tests."""
    return split_train_val(load_dataset("digits"), val_size=200, seed=0)


DIGITS = DataConfig("digits", val_size=200)


@pytest.fixture
def tiny_config():
    return TrainConfig(data=DIGITS, model="fc", hidden=(32, 16), epochs=10, lr=3e-3, batch_size=64)


@pytest.fixture
def runtime(tmp_path):
    return Runtime(tmp_path / "cache", device="cpu", progress=False)


@pytest.fixture(scope="session")
def smoke_workspace(tmp_path_factory):
    """One `hardthresh reproduce --preset smoke` on Fashion-MNIST, shared by the end-to-end test and the
    notebooks (which then read its cache): (folder, completed process)."""
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("smoke")
    args = ["reproduce", "--preset", "smoke", "--results", str(folder / "results"), "--figures",
            str(folder / "figures"), "--device", "cpu", "--no-progress"]
    run = subprocess.run([sys.executable, "-m", "analysis.cli", *args], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=1800, cwd=folder)
    return folder, args, run
