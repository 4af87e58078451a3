import pytest
import torch

from analysis.data import load_dataset, split_train_val
from analysis.training import TrainConfig


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)  # tests compare numbers; keep them independent of the core count
    yield


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's 8x8 digits: real images, small enough for unit tests."""
    return split_train_val(load_dataset("digits"), val_size=200, seed=0)


@pytest.fixture
def tiny_config():
    return TrainConfig(dataset="digits", model="fc", hidden=(32, 16), epochs=10, lr=3e-3, batch_size=64,
                       val_size=200)
