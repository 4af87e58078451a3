"""Exact kNN for many points: principal-component lower bounds prune the full-dimension work.

Rotate the centred points onto their principal axes (orthonormal, so distances are
unchanged) and keep the first ``p`` coordinates plus the norm of the rest,
``y_i = [z_i[:p], ||z_i[p:]||]``. By the reverse triangle inequality on the rest,

    ``||y_i - y_j||^2 = ||z_i[:p] - z_j[:p]||^2 + (||z_i[p:]|| - ||z_j[p:]||)^2 <= ||x_i - x_j||^2``,

a lower bound that costs ``p + 1`` instead of ``D`` dimensions per pair.

1. Order: k-means on ``y`` groups the points into clusters of about ``cluster_size``, each
   split again into blocks of about ``query_block``; the points are laid out in that order.
2. Upper bounds: over the points of its nearest ``upper_clusters`` clusters, each point's
   k-th smallest screened squared distance plus the float32 tolerance is an upper bound
   ``U_i`` on the squared distance to its k-th neighbour.
3. Screening: over pairs of row tiles (symmetric, so each product serves both tiles), every
   ``j`` whose screened lower bound is ``<= U_i`` (plus the tolerance) is kept as a candidate
   of ``i``; any other point is provably farther than ``i``'s k-th neighbour.
4. Exact step: per block of queries, the union of their candidates is filtered by a finer
   bound (``fine_dimensions`` coordinates), then screened in full dimension, and the k
   nearest chosen with the float64 check of ``screen.select_nearest``.

The result equals the brute-force search exactly; only the amount of work differs. Filtering
with a distance that lower-bounds the true one in a reduced space, so that nothing is wrongly
dismissed, is the "lower-bounding lemma" of Faloutsos, Ranganathan and Manolopoulos, "Fast
subsequence matching in time-series databases", SIGMOD 1994.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable, TypeVar

import torch

from .screen import ScreenedPoints, select_nearest

COVARIANCE_SAMPLE = 16384
SEED = 0
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Layout:
    """Sizes of the search; they change its speed, never its result (defaults tuned on
    Fashion-MNIST, 70,000 x 784, k = 20, on a 2-core CPU)."""

    coarse_dimensions: int = 128
    fine_dimensions: int = 256
    cluster_size: int = 256
    query_block: int = 48
    upper_clusters: int = 2
    tile_rows: int = 1024  # multiples of 8 take the fast path of entries_below
    kmeans_iterations: int = 3


DEFAULT_LAYOUT = Layout()


def use_bounded_search(n: int, dim: int, k: int, layout: Layout = DEFAULT_LAYOUT) -> bool:
    """Worth it only for many points in many dimensions with few neighbours each (on
    Fashion-MNIST it overtakes the brute-force search between 6,000 and 12,000 points)."""
    return n >= 8 * layout.tile_rows and dim > 2 * layout.fine_dimensions and k < layout.cluster_size // 4


class BoundedSearch:
    """The four steps above over float64 points ``x64`` (N, D), all on one device."""

    def __init__(self, x64: torch.Tensor, k: int, layout: Layout = DEFAULT_LAYOUT):
        self.k, self.n, self.layout = k, len(x64), layout
        centred = x64 - x64.mean(dim=0)
        coarse, fine = bound_coordinates(centred, layout.coarse_dimensions, layout.fine_dimensions)
        coarse32 = coarse.float()
        clusters = kmeans(coarse32, max(1, self.n // layout.cluster_size), layout.kmeans_iterations)
        self.order, self.clusters, self.block = _layout(coarse32, clusters, layout)
        self.full = ScreenedPoints(x64[self.order], labels=self.order)
        self.coarse = ScreenedPoints(coarse[self.order])
        self.fine = ScreenedPoints(fine[self.order])

    def run(self) -> torch.Tensor:
        """Indices ``(N, k)`` of every point's k nearest (order within a row unspecified)."""
        upper = self._upper_bounds()
        self.coarse_limit = _round_up(upper + self.coarse.tolerance.double())
        self.fine_limit = _round_up(upper + self.fine.tolerance.double())
        nearest = torch.empty(self.n, self.k, dtype=torch.int64, device=self.order.device)
        self._screen(nearest)
        result = torch.empty_like(nearest)
        result[self.order] = self.order[nearest]  # positions -> point indices
        return result

    def _upper_bounds(self) -> torch.Tensor:
        """``U_i`` from the points of the ``upper_clusters`` clusters nearest to ``i``'s."""
        centres = torch.stack([self.coarse.x32[r.start:r.stop].mean(dim=0) for r in self.clusters])
        by_distance = torch.cdist(centres, centres).argsort(dim=1).tolist()
        upper = torch.empty(self.n, dtype=torch.float64, device=self.order.device)
        for rows, bound in map_on_cores(self._upper_bound, list(zip(self.clusters, by_distance)),
                                        self.order.device):
            upper[rows] = bound
        return upper

    def _upper_bound(self, job: tuple[range, list[int]]) -> tuple[slice, torch.Tensor]:
        rows, by_distance = job
        chosen = by_distance[:self.layout.upper_clusters]
        while sum(len(self.clusters[c]) for c in chosen) <= self.k:  # rare: tiny clusters
            chosen = by_distance[:len(chosen) + 1]
        device = self.order.device
        pool = torch.cat([torch.arange(self.clusters[c].start, self.clusters[c].stop, device=device)
                          for c in chosen])
        queries = torch.arange(rows.start, rows.stop, device=device)
        screen = self.full.screen(queries, pool)
        screen[queries[:, None] == pool[None, :]] = float("inf")
        kth = torch.kthvalue(screen, self.k, dim=1).values.double()
        return slice(rows.start, rows.stop), kth + self.full.tolerance_against(queries, pool).double()

    def _screen(self, nearest: torch.Tensor) -> None:
        """Coarse bounds over all pairs of tiles; a row tile is complete, and goes on to the
        exact step, once every tile pair that holds it has been screened."""
        tile_rows = self.layout.tile_rows
        starts = list(range(0, self.n, tile_rows))
        pending: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {a: [] for a in starts}
        screen_buffer = self.coarse.left.new_empty(tile_rows * tile_rows)
        for number, a in enumerate(starts):
            tile_a = slice(a, min(a + tile_rows, self.n))
            for b in starts[number:]:
                tile_b = slice(b, min(b + tile_rows, self.n))
                shape = (tile_a.stop - a, tile_b.stop - b)
                screen = screen_buffer[:shape[0] * shape[1]].view(shape)
                torch.mm(self.coarse.left[tile_a], self.coarse.right[tile_b].T, out=screen)
                rows, cols = entries_below(screen, self.coarse_limit[tile_a], along_rows=True)
                pending[a].append((rows + a, cols + b))
                if b != a:
                    rows, cols = entries_below(screen, self.coarse_limit[tile_b], along_rows=False)
                    pending[b].append((cols + b, rows + a))
            rows, cols = (torch.cat(part) for part in zip(*pending.pop(a)))
            self._exact(tile_a, rows, cols, nearest)

    def _exact(self, tile: slice, rows: torch.Tensor, cols: torch.Tensor, nearest: torch.Tensor) -> None:
        """The k nearest of the tile's points, block by block, among their candidates."""
        blocks, block_sizes = torch.unique_consecutive(self.block[tile], return_counts=True)
        is_candidate = torch.zeros(len(blocks), self.n, dtype=torch.bool, device=rows.device)
        is_candidate[self.block[rows] - blocks[0], cols] = True  # a block's candidates, each once
        ends = list(accumulate(block_sizes.tolist(), initial=tile.start))
        jobs = list(zip(map(slice, ends, ends[1:]), is_candidate))
        for queries, found in map_on_cores(self._nearest_in_block, jobs, rows.device):
            nearest[queries] = found

    def _nearest_in_block(self, job: tuple[slice, torch.Tensor]) -> tuple[slice, torch.Tensor]:
        queries, is_candidate = job
        pool = torch.nonzero(is_candidate).flatten()
        passes = self.fine.screen(queries, pool) <= self.fine_limit[queries, None]
        rows = torch.arange(queries.start, queries.stop, device=pool.device)
        return queries, select_nearest(self.full, rows, pool[passes.any(dim=0)], self.k)


def map_on_cores(function: Callable[[T], R], jobs: list[T], device: torch.device) -> list[R]:
    """``[function(job) for job in jobs]``, on a multi-core CPU in one single-threaded worker
    per core: each job's many small operations are below torch's threshold for splitting an
    operation over cores, so the jobs themselves are spread (the results are the same).
    On a GPU (which jobs would only crowd) and on one core, the jobs run in turn."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or len(jobs) < 2:
        return [function(job) for job in jobs]
    try:
        with ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(function, jobs))
    finally:
        torch.set_num_threads(threads)  # the workers' setting is also the default of new threads


def _layout(points: torch.Tensor, clusters: torch.Tensor,
            layout: Layout) -> tuple[torch.Tensor, list[range], torch.Tensor]:
    """``order`` (position -> point) sorted by cluster, and within a cluster by sub-cluster
    of about ``query_block`` points; the positions of each cluster; the block number of every
    position."""
    members_of = [m for m in torch.argsort(clusters, stable=True).split(torch.bincount(clusters).tolist())
                  if len(m)]

    def sub_clusters(members: torch.Tensor) -> torch.Tensor:
        labels = kmeans(points[members], -(-len(members) // layout.query_block), layout.kmeans_iterations)
        return torch.unique(labels, return_inverse=True)[1]  # number the non-empty ones

    order, positions, block, n_blocks = [], [], [], 0
    for members, labels in zip(members_of, map_on_cores(sub_clusters, members_of, points.device)):
        order.append(members[torch.argsort(labels, stable=True)])
        start = positions[-1].stop if positions else 0
        positions.append(range(start, start + len(members)))
        block.append(labels.sort().values + n_blocks)
        n_blocks += int(labels.max()) + 1
    return torch.cat(order), positions, torch.cat(block)


def _round_up(limit: torch.Tensor) -> torch.Tensor:
    """float64 -> float32 without ever rounding down."""
    single = limit.float()
    return torch.nextafter(single, torch.full_like(single, float("inf")))


def entries_below(screen: torch.Tensor, limit: torch.Tensor, along_rows: bool,
                  group: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the (few) entries with ``screen[i, j] <= limit[i]``
    (``along_rows``) or ``screen[i, j] <= limit[j]``.

    First the minimum over groups of ``group`` entries (a reduction over a middle axis, which
    vectorises), then only the groups that pass are looked at entry by entry: about half the
    work of comparing every entry and collecting the hits with ``torch.nonzero``.
    """
    n_rows, n_cols = screen.shape
    if along_rows and n_cols % group == 0:
        width = n_cols // group  # group g holds columns g, g + width, g + 2 width, ...
        grouped = screen.view(n_rows, group, width)
        rows, classes = torch.nonzero(grouped.amin(dim=1) <= limit[:, None]).unbind(1)
        hit, member = torch.nonzero(grouped[rows, :, classes] <= limit[rows, None]).unbind(1)
        return rows[hit], classes[hit] + width * member
    if not along_rows and n_rows % group == 0:
        grouped = screen.view(n_rows // group, group, n_cols)  # groups of consecutive rows
        blocks, cols = torch.nonzero(grouped.amin(dim=1) <= limit[None, :]).unbind(1)
        hit, member = torch.nonzero(grouped[blocks, :, cols] <= limit[cols, None]).unbind(1)
        return blocks[hit] * group + member, cols[hit]
    mask = screen <= (limit[:, None] if along_rows else limit[None, :])
    return torch.nonzero(mask).unbind(1)


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


def kmeans(points: torch.Tensor, n_clusters: int, iterations: int) -> torch.Tensor:
    """Cluster label of every point (Lloyd's algorithm from a seeded random start). Only the
    speed of the search depends on the clusters, never its result."""
    generator = torch.Generator(device="cpu").manual_seed(SEED)
    start = torch.randperm(len(points), generator=generator)[:n_clusters].to(points.device)
    centres = points[start].clone()
    for _ in range(iterations):
        labels = _nearest_centre(points, centres)
        counts = torch.bincount(labels, minlength=n_clusters)
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        occupied = counts > 0
        centres[occupied] = sums[occupied] / counts[occupied, None].to(points.dtype)
    return _nearest_centre(points, centres)


def _nearest_centre(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """argmin over c of ``||c||^2 - 2 p.c``, which orders the centres as ``||p - c||^2`` does."""
    return torch.addmm((centres * centres).sum(dim=1), points, centres.T, alpha=-2).argmin(dim=1)
