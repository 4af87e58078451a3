"""Content-addressed result store: configs hash to names, every write is atomic.

A file is written under a temporary name in its final folder and renamed into
place, so an interrupted run never leaves a half-written checkpoint or table.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from .errors import WorkbenchError

STORE_VERSION = 1


def config_dict(config: Any) -> dict:
    """A JSON-ready dict of a (nested) dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str))


def config_hash(config: Any, length: int = 12) -> str:
    """Stable short hash of a dataclass config (its class name and all its fields)."""
    payload = json.dumps({"kind": type(config).__name__, "version": STORE_VERSION,
                          "config": config_dict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check it can be written, else a one-line WorkbenchError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe.", delete=True)
        probe.close()
    except OSError as err:
        raise WorkbenchError(f"cannot write to directory {path}: {err.strerror or err}") from None
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place."""
    ensure_writable_dir(path.parent)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_torch(path: Path, obj: Any) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a corrupt cache entry is reported, never silently reused
        raise WorkbenchError(f"{path}: unreadable cache entry ({type(err).__name__}); delete it") from None


def save_table(path: Path, table: pd.DataFrame, config: Any | None = None) -> Path:
    """Write ``table`` as Parquet with its config (JSON) in the file's metadata and beside it."""
    meta = {} if config is None else {"config": config_dict(config), "config_hash": config_hash(config)}
    table = table.copy()
    table.attrs = meta
    atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    if meta:
        atomic_write(path.with_suffix(".json"),
                     lambda tmp: tmp.write_text(json.dumps(meta, indent=2, sort_keys=True)))
    return path


def load_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise WorkbenchError(f"{path}: results table not found; run the experiment first")
    return pd.read_parquet(path)
