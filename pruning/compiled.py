"""``compiled``: ``numba.njit`` cached on disk in the user's cache folder, for the few loops torch
cannot batch (FeTa's coordinate descent here, the kNN tile scan in ``analysis.dimension``)."""
from __future__ import annotations

import os
from pathlib import Path

import numba


def numba_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hardthresh/numba`` (default ``~/.cache/hardthresh/numba``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hardthresh" / "numba"


def compiled(function):
    """``numba.njit(nogil=True)`` cached in ``NUMBA_CACHE_DIR`` or ``numba_cache_dir()``, uncached
    when that folder cannot be written (numba picks the folder when it decorates)."""
    previous = numba.config.CACHE_DIR
    folder = previous or str(numba_cache_dir())
    try:
        os.makedirs(folder, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        return numba.njit(nogil=True)(function)
    numba.config.CACHE_DIR = folder
    try:
        return numba.njit(nogil=True, cache=True)(function)
    finally:
        numba.config.CACHE_DIR = previous
