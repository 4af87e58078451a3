"""Spreading the bounded kNN search over the cores of a CPU: single-threaded workers, one per
core. The search is many operations too small for torch to split over cores, so the work
itself is split; the results do not depend on how.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def map_on_cores(function: Callable[[T], R], jobs: list[T], device: torch.device,
                 spread: bool = True) -> list[R]:
    """``[function(job) for job in jobs]``, on a multi-core CPU in one single-threaded worker
    per core. On a GPU (which jobs would only crowd), on one core and when not ``spread``, the
    jobs run in turn (each with all of torch's threads)."""
    threads = torch.get_num_threads()
    if not spread or device.type != "cpu" or threads < 2 or len(jobs) < 2:
        return [function(job) for job in jobs]
    try:
        with ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(function, jobs))
    finally:
        torch.set_num_threads(threads)  # the workers' setting is also the default of new threads


class RowSchedule:
    """Tasks over the rows of a triangle of tile pairs, for any number of workers:
    ``("screen", t)`` for each row tile in order, and ``("finish", t)`` once rows ``0..t``
    are all screened (tile ``t`` meets its candidates in its own row and in every row above).
    Finishing comes first when both are ready, so that candidates do not pile up."""

    def __init__(self, n_tiles: int):
        self.n_tiles = n_tiles
        self.next_screen = self.next_finish = self.screened_prefix = 0
        self.screened = [False] * n_tiles
        self.failed = False
        self.lock = threading.Condition()  # also guards the results the workers share

    def next_task(self) -> tuple[str, int] | None:
        """The next task, waiting while none is ready; None when all are handed out."""
        with self.lock:
            while not self.failed:
                if self.next_finish < self.screened_prefix:
                    self.next_finish += 1
                    return "finish", self.next_finish - 1
                if self.next_screen < self.n_tiles:
                    self.next_screen += 1
                    return "screen", self.next_screen - 1
                if self.next_finish == self.n_tiles:
                    return None
                self.lock.wait()
            return None

    def screened_row(self, tile: int) -> None:
        with self.lock:
            self.screened[tile] = True
            while self.screened_prefix < self.n_tiles and self.screened[self.screened_prefix]:
                self.screened_prefix += 1
            self.lock.notify_all()

    def fail(self) -> None:
        """Stop handing out tasks (a worker failed), so that no other worker waits forever."""
        with self.lock:
            self.failed = True
            self.lock.notify_all()
