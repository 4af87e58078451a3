"""Result store: atomic writes, per-artefact locks, and tables saved with their config.

A file is written under a temporary name in its final folder and renamed into place, so
an interrupted run never leaves a half-written checkpoint or table. Temporary names carry
the writer's process id, so leftovers of a killed writer are recognised and removed by the
next run. A lock per artefact makes a concurrent run wait for the writer and reuse its
result instead of computing it twice.
"""
from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from .errors import WorkbenchError
from .hashing import jsonable, stable_hash

TEMP_PATTERN = re.compile(r"^\..+\.pid(\d+)\.[^.]+\.tmp$")


def config_dict(config: Any) -> dict:
    """A JSON-ready dict of a (nested) dataclass config."""
    return jsonable(config)


def config_hash(config: Any, length: int = 12) -> str:
    """Stable short hash of a dataclass config (its class name and all its fields)."""
    return stable_hash({"kind": type(config).__name__, "config": config}, length)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check it can be written, else a one-line WorkbenchError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
    except OSError as err:
        raise WorkbenchError(f"cannot write to directory {path}: {err.strerror or err}") from None
    return path


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files in ``folder`` whose writing process no longer runs; their count."""
    removed = 0
    for entry in folder.glob(".*.tmp"):
        match = TEMP_PATTERN.match(entry.name)
        if match and not _process_alive(int(match.group(1))):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it into place.

    The file gets the usual permissions (0666 less the umask). A full disk or another
    OS error becomes a one-line WorkbenchError naming ``path``; nothing is left behind.
    """
    ensure_writable_dir(path.parent)
    remove_stale_temporaries(path.parent)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())
        tmp.replace(path)
    except OSError as err:
        raise WorkbenchError(f"cannot write {path}: {_os_reason(err)}") from None
    except RuntimeError as err:  # torch.save reports a full disk as a RuntimeError
        if "unexpected pos" in str(err) or "write" in str(err).lower():
            raise WorkbenchError(f"cannot write {path}: write failed (disk full?)") from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _os_reason(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "no space left on device"
    return err.strerror or str(err)


@contextmanager
def artefact_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for the artefact at ``path`` (a ``.lock`` file beside it)."""
    from filelock import FileLock

    ensure_writable_dir(path.parent)
    with FileLock(str(path.parent / f".{path.name}.lock")):
        yield


def write_json(path: Path, value: Any) -> Path:
    text = json.dumps(jsonable(value), indent=2, sort_keys=True)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_torch(path: Path, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: Path) -> Any:
    import torch

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
        write_json(path.with_suffix(".json"), meta)
    return path


def load_table(path: Path) -> pd.DataFrame:
    """Read a stored Parquet table; a missing or corrupt file is a one-line WorkbenchError."""
    if not path.is_file():
        raise WorkbenchError(f"{path}: results table not found; run the experiment first")
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for truncated files
        raise WorkbenchError(f"{path}: unreadable table ({type(err).__name__}); delete it and rerun") from None
