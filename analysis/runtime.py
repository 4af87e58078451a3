"""Where and how cells run: cache folder, device choice and data location, shipped to every worker.

A ``Runtime`` holds only plain values, so it pickles to local processes and Dask workers
alike; the device is resolved on the worker, so a cell that trains uses the worker's GPU
when it has one (``device='auto'``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .device import resolve_device


@dataclass(frozen=True)
class Runtime:
    cache: Path
    device: str = "auto"
    data_dir: Path | None = None
    download: bool = True
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "cache", Path(self.cache))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)
