"""Runs an experiment's cells anywhere: in this process, in local worker processes, or on Dask.

``run_sweep`` is the same for every experiment and every executor: it skips cells whose
rows are cached, submits the rest, shows cells done, running, cached and failed, and stores
each finished cell at once (atomically, under a lock), so a killed sweep restarted later
repeats no finished cell and loses none. A failed cell is reported with its error and does
not stop the others; the tables are assembled only when every cell has its rows.

Cell folders: ``CACHE/cells/<experiment>/<hash of config without grid axes + data provenance>/
<hash of the cell's coordinates>/`` with ``config.json`` and ``rows.parquet``.
"""
from __future__ import annotations

import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from tqdm.auto import tqdm

from .contract import Cell, cell_key, data_configs, identity
from .errors import WorkbenchError
from .hashing import stable_hash
from .runtime import Runtime
from .store import artefact_lock, atomic_write, load_table, write_json

ROWS = "rows.parquet"
Task = tuple[Cell, Path]


class CellsFailed(WorkbenchError):
    """Some cells raised; the others are stored and a rerun computes only the failed ones."""


def sweep_folder(config: Any, experiment: str, runtime: Runtime) -> Path:
    from .data.config import data_key
    from .experiments import load

    provenance = {data.label: data_key(data, runtime.data_dir, runtime.download)
                  for data in dict.fromkeys(data_configs(config))}
    payload = {"experiment": experiment, "config": identity(config), "data": provenance}
    revision = getattr(load(experiment), "REVISION", 0)
    if revision:  # absent while 0, so bumping one experiment keeps every other cache valid
        payload["revision"] = revision
    folder = runtime.cache / "cells" / experiment / stable_hash(payload)
    if not (folder / "sweep.json").is_file():
        write_json(folder / "sweep.json", payload)
    return folder


def compute_cell(cell: Cell, folder: Path, runtime: Runtime) -> tuple[str, str]:
    """Compute and store one cell unless it is stored already: ('computed'|'cached'|'failed', message)."""
    from .experiments import load

    path = folder / ROWS
    try:
        with artefact_lock(path):
            if path.is_file():
                return "cached", ""
            rows = load(cell.experiment).compute(cell, runtime)
            table = pd.DataFrame([{**cell.coordinates, **row} for row in rows])
            write_json(folder / "config.json", {"experiment": cell.experiment, "config": identity(cell.config),
                                                "coordinates": cell.coordinates})
            atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
        return "computed", ""
    except KeyboardInterrupt:
        raise
    except Exception as err:  # reported with the cell; the other cells go on
        last = traceback.extract_tb(err.__traceback__)[-1]
        return "failed", f"{type(err).__name__}: {err} ({Path(last.filename).name}:{last.lineno})"


class SerialExecutor:
    """Every cell in this process, one after the other."""

    workers = 1

    def run(self, tasks: list[Task], runtime: Runtime) -> Iterator[tuple[Task, tuple[str, str]]]:
        for task in tasks:
            yield task, compute_cell(*task, runtime)


def _single_threaded_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """Cells in ``workers`` local processes (spawned), the CPU cores shared among them."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, tasks: list[Task], runtime: Runtime) -> Iterator[tuple[Task, tuple[str, str]]]:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        quiet = replace(runtime, progress=False)
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                 initializer=_single_threaded_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(compute_cell, *task, quiet): task for task in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()


class DaskExecutor:
    """Cells on a Dask distributed cluster (``distributed.Client`` address, or a Client)."""

    def __init__(self, address: Any):
        from distributed import Client

        self.client = address if isinstance(address, Client) else _connect(address)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(self, tasks: list[Task], runtime: Runtime) -> Iterator[tuple[Task, tuple[str, str]]]:
        from distributed import as_completed as dask_completed

        quiet = replace(runtime, progress=False)
        futures = {self.client.submit(compute_cell, *task, quiet, pure=False): task for task in tasks}
        for future in dask_completed(futures):
            yield futures[future], future.result()


def _connect(address: str):
    from distributed import Client

    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError) as err:
        raise WorkbenchError(f"--scheduler: cannot reach a Dask scheduler at {address!r}: {err}") from None


def make_executor(workers: int = 1, scheduler: Any = None):
    """Dask when a scheduler is given, else local processes (``workers`` > 1) or this process."""
    if scheduler is not None:
        return DaskExecutor(scheduler)
    if workers < 1:
        raise WorkbenchError(f"--workers must be >= 1, got {workers}")
    return SerialExecutor() if workers == 1 else ProcessExecutor(workers)


def run_sweep(experiment: str, config: Any, runtime: Runtime, executor=None,
              describe: str | None = None) -> dict[str, pd.DataFrame]:
    """Every cell of ``config`` computed or read from the cache; the experiment's tables."""
    from .experiments import load

    module = load(experiment)
    cells = module.cells(config)
    folder = sweep_folder(config, experiment, runtime)
    revisions = getattr(module, "COORDINATE_REVISIONS", None)
    tasks = [(cell, folder / cell_key(cell, revisions)) for cell in cells]
    pending = [task for task in tasks if not (task[1] / ROWS).is_file()]
    failures = _run_pending(pending, len(tasks), runtime, executor or SerialExecutor(), describe or experiment)
    if failures:
        lines = "; ".join(f"{cell.coordinates}: {message}" for cell, message in failures[:3])
        raise CellsFailed(f"{len(failures)} of {len(tasks)} {experiment} cells failed ({lines}); the other "
                          "cells are cached, rerun to retry the failed ones")
    rows = pd.concat([load_table(path / ROWS) for _, path in tasks], ignore_index=True) if tasks \
        else pd.DataFrame()
    return module.tables(config, rows)


def _run_pending(pending: list[Task], total: int, runtime: Runtime, executor, describe: str) -> list:
    counts = {"computed": 0, "cached": total - len(pending), "failed": 0}
    failures = []
    with tqdm(total=total, initial=counts["cached"], desc=describe, unit="cell", dynamic_ncols=True,
              disable=not runtime.progress) as bar:
        bar.set_postfix(_status(counts, len(pending), executor.workers))
        for (cell, _), (status, message) in executor.run(pending, runtime):
            counts[status] += 1
            if status == "failed":
                failures.append((cell, message))
                bar.write(f"{describe}: cell {cell.coordinates} failed: {message}")
            bar.set_postfix(_status(counts, len(pending), executor.workers), refresh=False)
            bar.update(1)
    return failures


def _status(counts: dict, pending: int, workers: int) -> dict:
    finished = counts["computed"] + counts["failed"]
    return {"done": counts["computed"], "running": min(workers, pending - finished),
            "cached": counts["cached"], "failed": counts["failed"]}

