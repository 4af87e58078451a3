"""Device choice: cuda, then mps, then cpu, unless the user names one."""
from __future__ import annotations

import torch

from .errors import WorkbenchError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(choice: str = "auto") -> torch.device:
    """The torch device for ``choice`` (one of DEVICE_CHOICES, or e.g. 'cuda:1')."""
    kind = choice.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise WorkbenchError(f"unknown device {choice!r}; choose from {', '.join(DEVICE_CHOICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise WorkbenchError("device 'cuda' requested but torch sees no CUDA GPU")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise WorkbenchError("device 'mps' requested but it is not available")
    return torch.device(choice)
