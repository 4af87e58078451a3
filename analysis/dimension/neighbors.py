"""Exact k-nearest neighbours in torch: float32 screening, float64 selection and distances.

Screening (float32): ``S_ij = ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j`` on centred data, as one
product ``[x_i, ||x_i||^2, 1] . [-2 x_j, 1, ||x_j||^2]`` per pair of row blocks (a <= b);
S is symmetric, so each block serves the rows of both blocks and the work is halved. Memory
is bounded by the block size; a running top-(k + margin) per row is merged block by block.
The float32 error of S is at most ``tol_i = 4 gamma (||x_i||^2 + max_j ||x_j||^2)``,
``gamma = (D + 2) u`` (Higham, "Accuracy and Stability of Numerical Algorithms", eq. 3.5).

Selection: if the (k+1)-th smallest S exceeds the k-th by more than ``2 tol_i``, the k
smallest are certainly the k nearest. Otherwise every j with ``S_ij <= S_(k) + 2 tol_i``
(a superset of the true k nearest: from the kept candidates, or by rescanning the row) is
ranked by float64 squared distance. The k winners' distances are then recomputed in
float64 as ``||x_i - x_j||`` and sorted. The result is exact up to ties (ties go to the
lower index).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from .checks import as_points, check_enough_points

DEFAULT_MEMORY_BYTES = 256 * 2**20
GATHER_BYTES = 32 * 2**20
CANDIDATE_MARGIN = 8
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
    screened distances. Duplicates are not removed here (they give zero distances);
    ``estimate_dimension`` removes them.
    """
    x64 = as_points(points)
    k = check_enough_points(len(x64), n_neighbors)
    dev = resolve_device(device)
    centered = torch.from_numpy(x64 - x64.mean(axis=0)).to(dev)  # centring shrinks the norms
    searcher = _ChunkedSearch(centered, k, memory_bytes)
    distances, indices = searcher.run()
    return distances.cpu().numpy(), indices.cpu().numpy()


class _ChunkedSearch:
    """Blocks of S over pairs of row blocks (a <= b): each product serves both blocks' rows,
    halving the float32 work; a running top-``m`` per row is merged block by block."""

    def __init__(self, x64: torch.Tensor, k: int, memory_bytes: int):
        self.x64, self.k = x64, k
        self.n = len(x64)
        self.n_kept = min(self.n - 1, k + CANDIDATE_MARGIN)
        self.block = max(1, min(self.n, BLOCK_ROWS, int((memory_bytes / 12) ** 0.5)))
        self.rescan_rows = max(1, memory_bytes // (12 * self.n))
        x32 = x64.float()
        sq32 = (x32 * x32).sum(dim=1, keepdim=True)
        ones = torch.ones_like(sq32)
        self.left = torch.cat([x32, sq32, ones], dim=1)  # S_ij = left_i . right_j
        self.right = torch.cat([-2 * x32, ones, sq32], dim=1)
        self.sq64 = (x64 * x64).sum(dim=1)
        gamma = (x64.shape[1] + 2) * torch.finfo(torch.float32).eps / 2
        self.tolerance = (4 * gamma * (self.sq64 + self.sq64.max()) + 1e-12).float()
        self.best = torch.full((self.n, self.n_kept), float("inf"), device=x64.device)
        self.best_idx = torch.zeros(self.n, self.n_kept, dtype=torch.int64, device=x64.device)

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = range(0, self.n, self.block)
        for a in starts:
            for b in starts:
                if b >= a:
                    self._screen_pair(a, b)
        return self._final_distances(self._select())

    def _screen_pair(self, a: int, b: int) -> None:
        rows_a, rows_b = slice(a, min(a + self.block, self.n)), slice(b, min(b + self.block, self.n))
        screen = self.left[rows_a] @ self.right[rows_b].T
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
        limit = self.best[:, self.k - 1] + 2 * self.tolerance
        undecided = self.best[:, self.k] <= limit
        from_kept = torch.nonzero(undecided & (self.best[:, -1] > limit)).flatten()
        if len(from_kept):
            result[from_kept] = self._rank(from_kept, self.best_idx[from_kept])[1][:, : self.k]
        rescan = torch.nonzero(undecided & (self.best[:, -1] <= limit)).flatten()
        for start in range(0, len(rescan), self.rescan_rows):
            rows = rescan[start:start + self.rescan_rows]
            result[rows] = self._rescan(rows, limit[rows])
        return result

    def _rescan(self, rows: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
        screen = self.left[rows] @ self.right.T
        screen[torch.arange(len(rows), device=screen.device), rows] = float("inf")
        n_possible = (screen <= limit[:, None]).sum(dim=1)
        result = torch.empty(len(rows), self.k, dtype=torch.int64, device=screen.device)
        everyone = torch.arange(len(rows), device=screen.device)
        for group in self._groups(everyone, n_possible):
            wide = torch.topk(screen[group], int(n_possible[group].max()), dim=1, largest=False).indices
            result[group] = self._rank(rows[group], wide)[1][:, : self.k]
        return result

    @staticmethod
    def _groups(failing: torch.Tensor, counts: torch.Tensor, size: int = 64):
        if len(failing) == 0:
            return ()
        ordered = failing[torch.argsort(counts[failing])]  # similar widths share a group
        return ordered.split(size)

    def _rank(self, rows: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidates sorted by float64 squared distance (ties: lower index first)."""
        cand, _ = cand.sort(dim=1)
        d2 = torch.empty(cand.shape, dtype=torch.float64, device=cand.device)
        block = max(1, GATHER_BYTES // (8 * cand.shape[1] * self.x64.shape[1]))
        for start in range(0, len(rows), block):
            r, c = rows[start:start + block], cand[start:start + block]
            dots = torch.bmm(self.x64[c], self.x64[r, :, None]).squeeze(2)
            d2[start:start + block] = self.sq64[r, None] + self.sq64[c] - 2 * dots
        d2, order = d2.sort(dim=1, stable=True)
        return d2, cand.gather(1, order)

    def _final_distances(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``||x_i - x_j||`` in float64 by differences, then a stable re-sort."""
        idx, _ = idx.sort(dim=1)  # so that equal distances keep the lower index first
        d2 = torch.empty(idx.shape, dtype=torch.float64, device=idx.device)
        with _one_cpu_thread():
            for start in range(0, self.n, 256):
                queries = self.x64[start:start + 256]
                for j in range(self.k):
                    diff = queries - self.x64[idx[start:start + 256, j]]
                    d2[start:start + 256, j] = torch.einsum("ij,ij->i", diff, diff)
        d2, order = d2.sort(dim=1, stable=True)
        return d2.sqrt(), idx.gather(1, order)


@contextmanager
def _one_cpu_thread():
    """Small per-block ops lose more to thread synchronisation than they gain on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
