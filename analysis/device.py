"""Device choice: cuda, then mps, then cpu, unless the user names one."""
from __future__ import annotations

import re

import torch

from .errors import WorkbenchError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_PATTERN = re.compile(r"^(auto|cpu|cuda|mps)(?::(\d+))?$")


def check_device_name(choice: str) -> str:
    """``choice`` if it is one of DEVICE_CHOICES, optionally with ':index' (e.g. 'cuda:1')."""
    match = _PATTERN.match(choice)
    if not match or (match.group(2) is not None and match.group(1) == "auto"):
        raise WorkbenchError(f"--device: unknown device {choice!r}; choose from {', '.join(DEVICE_CHOICES)} "
                             "(cuda and mps may take an index, e.g. cuda:1)")
    return choice


def resolve_device(choice: str = "auto") -> torch.device:
    """The torch device for ``choice`` (one of DEVICE_CHOICES, or e.g. 'cuda:1')."""
    kind = check_device_name(choice).split(":")[0]
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise WorkbenchError("--device: 'cuda' requested but torch sees no CUDA GPU")
        index = torch.device(choice).index
        if index is not None and index >= torch.cuda.device_count():
            raise WorkbenchError(f"--device: {choice!r} but only {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise WorkbenchError("--device: 'mps' requested but it is not available")
    return torch.device(choice)
