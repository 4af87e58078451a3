"""Provenance digests of a dataset's content, cached so that a later call costs a stat.

A dataset's digest is ``sha256("<file name> <sha256 of its bytes>\\n" for each file read)``, cut
to ``DIGEST_LENGTH`` hex digits; it depends on the bytes only, not on the folder they lie in.

Each file's sha256 is cached in a JSON sidecar keyed by file name, size and ``mtime_ns``:
``<folder>/.hardthresh-digests.json`` beside the files; where that cannot be written (a read-only
folder, or a system folder such as ``/usr/share/datasets`` that the caller asks us not to touch)
``<fallback_dir>/<sha256 of the folder's path>.json``; where neither can be written, in memory for
the life of the process. As in git's index, a file modified within ``RACY_WINDOW_NS`` of now is
hashed but not cached, since a second write within one timestamp tick could keep its mtime.
Known limit: a rewrite that keeps both the size and the mtime (``touch -r``) goes unnoticed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .download import new_file_mode

SIDECAR_NAME = ".hardthresh-digests.json"
DIGEST_LENGTH = 16
RACY_WINDOW_NS = 2_000_000_000
_IN_MEMORY: dict[tuple[str, int, int], str] = {}


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of ``path``: the key under which its sha256 is cached."""
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecars(folder: Path, fallback_dir: Path, beside: bool) -> list[Path]:
    shared = fallback_dir / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]}.json"
    return [folder / SIDECAR_NAME, shared] if beside else [shared]


def _read_sidecar(sidecar: Path) -> dict:
    try:
        entries = json.loads(sidecar.read_text())
    except (OSError, ValueError):  # missing or half-written by an old version: it is only a cache
        return {}
    return entries if isinstance(entries, dict) else {}


def _write_sidecar(sidecar: Path, name: str, entry: dict) -> None:
    """Merge ``entry`` into ``sidecar`` atomically (temporary file, then rename); raises OSError."""
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    entries = _read_sidecar(sidecar)
    entries[name] = entry
    handle, tmp_name = tempfile.mkstemp(dir=sidecar.parent, prefix=f".{sidecar.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(entries, out, indent=1, sort_keys=True)
        os.chmod(tmp_name, new_file_mode())
        os.replace(tmp_name, sidecar)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def _cached(path: Path, stamp: tuple[int, int], sidecars: list[Path]) -> str | None:
    for sidecar in sidecars:
        entry = _read_sidecar(sidecar).get(path.name)
        if isinstance(entry, dict) and (entry.get("size"), entry.get("mtime_ns")) == stamp:
            return entry.get("sha256")
    return _IN_MEMORY.get((str(path.resolve()), *stamp))


def _remember(path: Path, stamp: tuple[int, int], sha: str, sidecars: list[Path]) -> None:
    entry = {"size": stamp[0], "mtime_ns": stamp[1], "sha256": sha}
    for sidecar in sidecars:
        try:
            _write_sidecar(sidecar, path.name, entry)
            return
        except OSError:
            continue
    _IN_MEMORY[(str(path.resolve()), *stamp)] = sha


def file_sha256(path: Path, fallback_dir: Path, beside: bool = True) -> str:
    """sha256 of the bytes of ``path``, read once and then served from the cache (module docstring)."""
    stamp = file_stamp(path)
    sidecars = _sidecars(path.parent, fallback_dir, beside)
    sha = _cached(path, stamp, sidecars)
    if sha is None:
        sha = _sha256_of_file(path)
        if file_stamp(path) == stamp and time.time_ns() - stamp[1] >= RACY_WINDOW_NS:
            _remember(path, stamp, sha, sidecars)
    return sha


def files_digest(paths: Sequence[Path], fallback_dir: Path, beside: bool = True) -> str:
    """Digest of the files ``paths`` (in this order), each file's sha256 cached as above."""
    lines = "".join(f"{path.name} {file_sha256(path, fallback_dir, beside)}\n" for path in paths)
    return hashlib.sha256(lines.encode()).hexdigest()[:DIGEST_LENGTH]


def array_digest(arrays: Sequence[np.ndarray]) -> str:
    """Digest of in-memory arrays: sha256 over each array's dtype, shape and C-order bytes."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:DIGEST_LENGTH]
