"""Runs a grid of experiment cells, each cached on disk, so an interrupted run resumes.

A cell is any JSON-serialisable dict of coordinates; ``compute(cell)`` returns the
rows it measured. Finished cells are stored one Parquet file each, named by the
hash of the experiment's config and the cell, and are never recomputed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
from tqdm.auto import tqdm

from .store import atomic_write, config_hash


def cell_key(cell: dict) -> str:
    return hashlib.sha256(json.dumps(cell, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_cells(config: Any, cells: Iterable[dict], compute: Callable[[dict], list[dict]],
              cache_dir: Path, description: str = "cells", progress: bool = True) -> pd.DataFrame:
    """Compute every cell not yet cached under ``cache_dir``; return all rows as one table."""
    folder = cache_dir / "cells" / f"{type(config).__name__.lower()}-{config_hash(config)}"
    cells = list(cells)
    frames = []
    done = 0
    with tqdm(total=len(cells), desc=description, unit="cell", dynamic_ncols=True, disable=not progress) as bar:
        for cell in cells:
            path = folder / f"{cell_key(cell)}.parquet"
            if path.is_file():
                done += 1
            else:
                rows = pd.DataFrame([{**cell, **row} for row in compute(cell)])
                atomic_write(path, lambda tmp: rows.to_parquet(tmp, index=False))
            frames.append(pd.read_parquet(path))
            bar.update(1)
            bar.set_postfix(cached=done)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
