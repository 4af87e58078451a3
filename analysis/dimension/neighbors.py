"""Exact k-nearest neighbours in torch: float32 screening, float64 selection and distances.

Two searches give the same answer (``screen`` holds the shared error bound and check):

* brute force (``_ChunkedSearch``): every pair is screened in float32 as one product per
  pair of row blocks (a <= b; S is symmetric, so each block serves the rows of both blocks
  and the work is halved); a running top-(k + margin) per row is merged block by block,
  and memory is bounded by the block size;
* for many points in many dimensions (``bounded.use_bounded_search``), principal-component
  lower bounds rule out almost all pairs before any full-dimension work (``bounded``).

Selection: if the (k+1)-th smallest screened value exceeds the k-th by more than twice the
tolerance, the k smallest are certainly the k nearest. Otherwise every j with
``S_ij <= S_(k) + 2 tol_i`` (a superset of the true k nearest: from the kept candidates, or
by rescanning the row) is ranked by float64 squared distance. The k winners' distances are
then recomputed in float64 as ``||x_i - x_j||`` and sorted. The result is exact up to ties
(ties go to the lower index).
"""
from __future__ import annotations

import numpy as np
import torch

from .bounded import BoundedSearch, use_bounded_search
from .checks import as_points, check_enough_points
from .screen import CANDIDATE_MARGIN, ScreenedPoints, rank_by_float64, squared_distances

DEFAULT_MEMORY_BYTES = 256 * 2**20
BLOCK_ROWS = 1024  # small enough that diagonal blocks (no halving) are a small share


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) means CUDA when available, else CPU: never MPS, which lacks the float64
    the distance re-check needs (so ``analysis.device.resolve_device`` does not fit here)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def knn(points: np.ndarray | torch.Tensor, n_neighbors: int, device: str | torch.device = "auto",
        memory_bytes: int = DEFAULT_MEMORY_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean kNN of every point among the others (self excluded).

    Returns ``(distances, indices)``, both ``(N, n_neighbors)`` numpy arrays sorted by
    increasing distance, like ``sklearn.neighbors.NearestNeighbors().kneighbors()``.
    Distances are float64 ``||x_i - x_j||``. ``memory_bytes`` bounds the float32 block of
    screened distances of the brute-force search. Duplicates are not removed here (they give
    zero distances); ``estimate_dimension`` removes them.
    """
    x64 = as_points(points)
    k = check_enough_points(len(x64), n_neighbors)
    dev = resolve_device(device)
    x = torch.from_numpy(x64).to(dev)
    if use_bounded_search(*x.shape, k):
        distances, indices = BoundedSearch(x, k).run()
    else:
        distances, indices = final_distances(x, _ChunkedSearch(x, k, memory_bytes).run())
    return distances.cpu().numpy(), indices.cpu().numpy()


class _ChunkedSearch:
    """Blocks of S over pairs of row blocks (a <= b): each product serves both blocks' rows,
    halving the float32 work; a running top-``m`` per row is merged block by block."""

    def __init__(self, x64: torch.Tensor, k: int, memory_bytes: int):
        self.points = ScreenedPoints(x64)
        self.k, self.n = k, len(x64)
        self.n_kept = min(self.n - 1, k + CANDIDATE_MARGIN)
        self.block = max(1, min(self.n, BLOCK_ROWS, int((memory_bytes / 12) ** 0.5)))
        self.rescan_rows = max(1, memory_bytes // (12 * self.n))
        self.best = torch.full((self.n, self.n_kept), float("inf"), device=x64.device)
        self.best_idx = torch.zeros(self.n, self.n_kept, dtype=torch.int64, device=x64.device)

    def run(self) -> torch.Tensor:
        """Indices ``(N, k)`` of every point's k nearest (order within a row unspecified)."""
        starts = range(0, self.n, self.block)
        for a in starts:
            for b in starts:
                if b >= a:
                    self._screen_pair(a, b)
        return self._select()

    def _screen_pair(self, a: int, b: int) -> None:
        rows_a, rows_b = slice(a, min(a + self.block, self.n)), slice(b, min(b + self.block, self.n))
        screen = self.points.screen(rows_a, rows_b)
        if a == b:
            screen.fill_diagonal_(float("inf"))  # exclude self
        self._merge(rows_a, screen, b)
        if a != b:
            self._merge(rows_b, screen.T, a)

    def _merge(self, rows: slice, screen: torch.Tensor, column_offset: int) -> None:
        values, idx = torch.topk(screen, min(self.n_kept, screen.shape[1]), dim=1, largest=False)
        values = torch.cat([self.best[rows], values], dim=1)
        idx = torch.cat([self.best_idx[rows], idx + column_offset], dim=1)
        self.best[rows], order = torch.topk(values, self.n_kept, dim=1, largest=False)
        self.best_idx[rows] = idx.gather(1, order)

    def _select(self) -> torch.Tensor:
        """The k nearest of every row, from the kept candidates or, rarely, a full rescan."""
        result = self.best_idx[:, : self.k].clone()
        if self.n_kept == self.k:  # k = N - 1: every other point is a neighbour
            return result
        # every j whose true distance can be <= the k-th candidate's has S_ij <= limit_i
        limit = self.best[:, self.k - 1] + 2 * self.points.tolerance
        undecided = self.best[:, self.k] <= limit
        from_kept = torch.nonzero(undecided & (self.best[:, -1] > limit)).flatten()
        if len(from_kept):
            ranked = rank_by_float64(self.points, from_kept, self.best_idx[from_kept])[1]
            result[from_kept] = ranked[:, : self.k]
        rescan = torch.nonzero(undecided & (self.best[:, -1] <= limit)).flatten()
        for start in range(0, len(rescan), self.rescan_rows):
            rows = rescan[start:start + self.rescan_rows]
            result[rows] = self._rescan(rows, limit[rows])
        return result

    def _rescan(self, rows: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
        screen = self.points.screen(rows, slice(None))
        screen[torch.arange(len(rows), device=screen.device), rows] = float("inf")
        n_possible = (screen <= limit[:, None]).sum(dim=1)
        result = torch.empty(len(rows), self.k, dtype=torch.int64, device=screen.device)
        everyone = torch.arange(len(rows), device=screen.device)
        for group in self._groups(everyone, n_possible):
            wide = torch.topk(screen[group], int(n_possible[group].max()), dim=1, largest=False).indices
            result[group] = rank_by_float64(self.points, rows[group], wide)[1][:, : self.k]
        return result

    @staticmethod
    def _groups(failing: torch.Tensor, counts: torch.Tensor, size: int = 64):
        if len(failing) == 0:
            return ()
        ordered = failing[torch.argsort(counts[failing])]  # similar widths share a group
        return ordered.split(size)


def final_distances(x64: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``||x_i - x_j||`` in float64 by differences for each row's neighbours ``idx``, sorted
    by distance (ties: lower index first)."""
    idx, _ = idx.sort(dim=1)  # so that equal distances keep the lower index first
    rows = torch.arange(len(x64), device=idx.device)
    d2, order = squared_distances(x64, rows, idx).sort(dim=1, stable=True)
    return d2.sqrt(), idx.gather(1, order)
