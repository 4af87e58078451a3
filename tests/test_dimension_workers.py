"""The CPU work-sharing of the bounded kNN search: jobs keep their order, and the row schedule
finishes a tile only after every row above it is screened."""
import random
import threading

import pytest
import torch

from analysis.dimension.knn.workers import RowSchedule, map_on_cores


def test_map_on_cores_keeps_order_and_the_thread_setting():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen = map_on_cores(lambda job: (job, torch.get_num_threads()), list(range(20)), torch.device("cpu"))
        assert [job for job, _ in seen] == list(range(20))
        assert {workers for _, workers in seen} == {1}  # each worker runs single-threaded
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def run_workers(schedule: RowSchedule, n_workers: int, fail_at: int | None = None) -> list[tuple]:
    events, lock = [], threading.Lock()
    rng = random.Random(0)

    def work() -> None:
        while (task := schedule.next_task()) is not None:
            kind, tile = task
            if kind == "screen" and tile == fail_at:
                schedule.fail()
                return
            with lock:
                events.append(("start", kind, tile))
                pause = rng.random() / 1000
            threading.Event().wait(pause)
            with lock:
                events.append(("end", kind, tile))
            if kind == "screen":
                schedule.screened_row(tile)

    workers = [threading.Thread(target=work) for _ in range(n_workers)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
        assert not worker.is_alive()
    return events


@pytest.mark.parametrize("n_workers", [1, 3])
def test_row_schedule_finishes_each_tile_once_after_the_rows_above(n_workers):
    n_tiles = 12
    events = run_workers(RowSchedule(n_tiles), n_workers)
    finished = [tile for step, kind, tile in events if step == "start" and kind == "finish"]
    assert sorted(finished) == list(range(n_tiles))
    for tile in range(n_tiles):
        start = events.index(("start", "finish", tile))
        ended = {t for step, kind, t in events[:start] if step == "end" and kind == "screen"}
        assert set(range(tile + 1)) <= ended


def test_row_schedule_stops_every_worker_when_one_fails():
    events = run_workers(RowSchedule(12), 3, fail_at=4)
    assert ("start", "finish", 11) not in events  # the others stopped instead of waiting
