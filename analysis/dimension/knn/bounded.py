"""Exact kNN for many points: principal-component lower bounds prune the full-dimension work.

Rotate the centred points onto their principal axes (orthonormal, so distances are
unchanged) and keep the first ``p`` coordinates plus the norm of the rest,
``y_i = [z_i[:p], ||z_i[p:]||]``. By the reverse triangle inequality on the rest,

    ``||y_i - y_j||^2 = ||z_i[:p] - z_j[:p]||^2 + (||z_i[p:]|| - ||z_j[p:]||)^2 <= ||x_i - x_j||^2``,

a lower bound that costs ``p + 1`` instead of ``D`` dimensions per pair.

1. Order: k-means on ``y`` groups the points into clusters of about ``cluster_size``, each
   split again into blocks of about ``query_block``; the points are laid out in that order.
2. Upper bounds: over the points of the ``upper_blocks`` blocks whose centres are nearest to
   that of its own block, each point's k-th smallest screened squared distance plus the
   float32 tolerance is an upper bound ``U_i`` on the squared distance to its k-th neighbour.
3. Screening: over pairs of row tiles (symmetric, so each product serves both tiles), every
   ``j`` whose screened lower bound is ``<= U_i`` (plus the tolerance) is kept as a candidate
   of ``i``; any other point is provably farther than ``i``'s k-th neighbour.
4. Exact step: per block of queries, the union of their candidates is filtered by a finer
   bound (``fine_dimensions`` coordinates), then screened in full dimension, and the k
   nearest chosen and measured in float64 by ``screening.select_nearest``.

The result equals the brute-force search exactly; only the amount of work differs. Filtering
with a distance that lower-bounds the true one in a reduced space, so that nothing is wrongly
dismissed, is the "lower-bounding lemma" of Faloutsos, Ranganathan and Manolopoulos, "Fast
subsequence matching in time-series databases", SIGMOD 1994.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import accumulate

import torch

from .clusters import SEED, order_by_clusters
from .screening import ScreenedPoints, select_nearest
from .tiles import entries_within
from .workers import RowSchedule, map_on_cores

COVARIANCE_SAMPLE = 16384


@dataclass(frozen=True)
class Layout:
    """Sizes of the search; they change its speed, never its result (defaults tuned on
    Fashion-MNIST, 70,000 x 784, k = 20, on a 2-core CPU)."""

    coarse_dimensions: int = 128
    fine_dimensions: int = 256
    cluster_size: int = 256
    query_block: int = 48
    upper_blocks: int = 10
    tile_rows: int = 1024  # on a GPU, multiples of 8 take the fast path of entries_below
    kmeans_iterations: int = 3
    spread_over_cores: bool = True  # on a multi-core CPU, one single-threaded worker per core


DEFAULT_LAYOUT = Layout()


class BoundedSearch:
    """The four steps above over float64 points ``x64`` (N, D), all on one device."""

    def __init__(self, x64: torch.Tensor, k: int, layout: Layout = DEFAULT_LAYOUT):
        self.k, self.n, self.layout = k, len(x64), layout
        centred = x64 - x64.mean(dim=0)
        coarse, fine = bound_coordinates(centred, layout.coarse_dimensions, layout.fine_dimensions)
        self.order, self.block = order_by_clusters(coarse.float(), max(1, self.n // layout.cluster_size),
                                                   layout.query_block, layout.kmeans_iterations,
                                                   layout.spread_over_cores)
        self.full = ScreenedPoints(x64[self.order], labels=self.order)
        self.coarse = ScreenedPoints(coarse[self.order])
        self.fine = ScreenedPoints(fine[self.order])

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every point's k nearest: float64 distances ``(N, k)``, increasing, and indices
        (ties: lower index first)."""
        upper = self._upper_bounds()
        self.coarse_limit = _round_up(upper + self.coarse.tolerance.double())
        self.fine_limit = _round_up(upper + self.fine.tolerance.double())
        d2 = torch.empty(self.n, self.k, dtype=torch.float64, device=self.order.device)
        nearest = torch.empty(self.n, self.k, dtype=torch.int64, device=self.order.device)
        self._screen(d2, nearest)
        distances, indices = torch.empty_like(d2), torch.empty_like(nearest)
        distances[self.order], indices[self.order] = d2.sqrt(), nearest  # positions -> points
        return distances, indices

    def _upper_bounds(self) -> torch.Tensor:
        """``U_i`` from the points of the ``upper_blocks`` blocks whose centres are nearest
        to that of ``i``'s block (its own first)."""
        sizes = torch.bincount(self.block)
        ends = list(accumulate(sizes.tolist(), initial=0))
        blocks = [range(start, stop) for start, stop in zip(ends, ends[1:])]
        points = self.coarse.x32
        centres = torch.zeros(len(blocks), points.shape[1], device=points.device)
        centres = centres.index_add_(0, self.block, points) / sizes[:, None]
        distances = torch.cdist(centres, centres)
        distances.fill_diagonal_(-1.0)  # own block first, whatever cdist's rounding
        enough = -(-(self.k + 1) // int(sizes.min()))  # blocks that surely hold k points besides i
        nearest = distances.topk(min(len(blocks), max(self.layout.upper_blocks, enough)), largest=False)
        jobs = [[blocks[b] for b in by_distance] for by_distance in nearest.indices.tolist()]
        upper = torch.empty(self.n, dtype=torch.float64, device=points.device)
        spread = self.layout.spread_over_cores
        for queries, bound in map_on_cores(self._upper_bound, jobs, points.device, spread):
            upper[queries] = bound
        return upper

    def _upper_bound(self, by_distance: list[range]) -> tuple[slice, torch.Tensor]:
        own = slice(by_distance[0].start, by_distance[0].stop)
        count = self.layout.upper_blocks
        while sum(map(len, by_distance[:count])) <= self.k:  # rare: tiny blocks
            count += 1
        right = torch.cat([self.full.right[r.start:r.stop] for r in by_distance[:count]])
        screen = self.full.left[own] @ right.T
        screen[:, :len(by_distance[0])].fill_diagonal_(float("inf"))  # self
        kth = torch.kthvalue(screen, self.k, dim=1).values.double()
        return own, kth + self.full.tolerance[own].double()

    def _screen(self, d2: torch.Tensor, nearest: torch.Tensor) -> None:
        """Coarse bounds over all pairs of tiles, a row of pairs at a time; a row tile is
        complete, and goes on to the exact step, once every row above it is screened. Each
        worker takes whichever task is ready, so screening and exact steps overlap."""
        starts = range(0, self.n, self.layout.tile_rows)
        self.tiles = [slice(a, min(a + self.layout.tile_rows, self.n)) for a in starts]
        self.pending: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in self.tiles]
        schedule = RowSchedule(len(self.tiles))
        workers = torch.get_num_threads() if self.layout.spread_over_cores else 1
        map_on_cores(lambda _: self._work(schedule, d2, nearest), list(range(workers)), self.order.device)

    def _work(self, schedule: RowSchedule, d2: torch.Tensor, nearest: torch.Tensor) -> None:
        """One worker: tasks from ``schedule`` until there are none left."""
        try:
            while (task := schedule.next_task()) is not None:
                kind, tile = task
                if kind == "screen":
                    self._screen_row(tile, schedule.lock)
                    schedule.screened_row(tile)
                else:
                    self._exact(tile, d2, nearest)
        except BaseException:
            schedule.fail()
            raise

    def _screen_row(self, number: int, lock: threading.Condition) -> None:
        """Candidates from the pairs of tile ``number`` with itself and every later tile."""
        tile_a = self.tiles[number]
        buffer = self.coarse.left.new_empty(self.layout.tile_rows ** 2)
        found = []
        for other, tile_b in enumerate(self.tiles[number:], start=number):
            shape = (tile_a.stop - tile_a.start, tile_b.stop - tile_b.start)
            screen = buffer[:shape[0] * shape[1]].view(shape)
            torch.mm(self.coarse.left[tile_a], self.coarse.right[tile_b].T, out=screen)
            by_row, by_col = entries_within(screen, self.coarse_limit[tile_a],
                                            None if other == number else self.coarse_limit[tile_b])
            found.append((number, by_row[0] + tile_a.start, by_row[1] + tile_b.start))
            if by_col is not None:
                found.append((other, by_col[1] + tile_b.start, by_col[0] + tile_a.start))
        with lock:
            for tile, rows, cols in found:
                self.pending[tile].append((rows, cols))

    def _exact(self, number: int, d2: torch.Tensor, nearest: torch.Tensor) -> None:
        """The k nearest of the tile's points, block by block, among their candidates."""
        tile = self.tiles[number]
        rows, cols = (torch.cat(part) for part in zip(*self.pending[number]))
        self.pending[number] = []
        blocks, block_sizes = torch.unique_consecutive(self.block[tile], return_counts=True)
        is_candidate = torch.zeros(len(blocks), self.n, dtype=torch.bool, device=rows.device)
        is_candidate[self.block[rows] - blocks[0], cols] = True  # a block's candidates, each once
        ends = list(accumulate(block_sizes.tolist(), initial=tile.start))
        for queries, candidates in zip(map(slice, ends, ends[1:]), is_candidate):
            d2[queries], nearest[queries] = self._nearest_in_block(queries, candidates)

    def _nearest_in_block(self, queries: slice, is_candidate: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        pool = torch.nonzero(is_candidate).flatten()
        passes = self.fine.screen(queries, pool) <= self.fine_limit[queries, None]
        rows = torch.arange(queries.start, queries.stop, device=pool.device)
        return select_nearest(self.full, rows, pool[passes.any(dim=0)], self.k)



def _round_up(limit: torch.Tensor) -> torch.Tensor:
    """float64 -> float32 without ever rounding down."""
    single = limit.float()
    return torch.nextafter(single, torch.full_like(single, float("inf")))


def bound_coordinates(x64: torch.Tensor, *dimensions: int) -> list[torch.Tensor]:
    """``[z[:p], ||z[p:]||]`` for each ``p``, with ``z`` the principal-axis coordinates of the
    centred ``x64``.

    Only the top axes are needed: ``||z[p:]||^2 = ||x||^2 - ||z[:p]||^2``. The axes come from a
    sample's covariance; any orthonormal basis gives a valid bound, a good one a tight one.
    """
    generator = torch.Generator(device="cpu").manual_seed(SEED)
    sample = torch.randperm(len(x64), generator=generator)[:COVARIANCE_SAMPLE].to(x64.device)
    x32 = x64[sample].float()
    _, vectors = torch.linalg.eigh((x32.T @ x32).double())
    head = x64 @ vectors[:, -max(dimensions):].flip(1)
    squares = x64.pow(2).sum(dim=1)
    levels = []
    for p in dimensions:
        rest = (squares - head[:, :p].pow(2).sum(dim=1)).clamp(min=0).sqrt()
        levels.append(torch.cat([head[:, :p], rest[:, None]], dim=1))
    return levels
