"""Exact k-nearest neighbours in torch: float32 screening, float64 selection and distances.

Screening (float32, one matrix product per chunk of query rows, so memory stays bounded):
``S_ij = ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j`` on centred data, computed as the single
product ``[x_i, 1] . [-2 x_j, ||x_j||^2]`` plus the row constant ``||x_i||^2`` (which does
not change a row's ranking). Its float32 error is at most ``tol_i = 4 gamma (||x_i||^2 +
max_j ||x_j||^2)``, ``gamma = (D + 2) u`` (Higham, "Accuracy and Stability of Numerical
Algorithms", eq. 3.5).

Selection: if the (k+1)-th smallest S exceeds the k-th by more than ``2 tol_i``, the k
smallest are certainly the k nearest. Otherwise every j with ``S_ij <= S_(k) + 2 tol_i``
(a superset of the true k nearest) is ranked by float64 squared distance. The k winners'
distances are then recomputed in float64 as ``||x_i - x_j||`` and sorted. The result is
exact up to ties (ties go to the lower index).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from .checks import as_points, check_enough_points

DEFAULT_MEMORY_BYTES = 256 * 2**20
GATHER_BYTES = 32 * 2**20


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) means CUDA when available, else CPU."""
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
    def __init__(self, x64: torch.Tensor, k: int, memory_bytes: int):
        self.x64, self.k = x64, k
        self.n = len(x64)
        self.n_candidates = min(self.n - 1, k + 1)
        self.rows_per_chunk = max(1, memory_bytes // (3 * 4 * self.n))
        x32 = x64.float()
        self.sq32 = (x32 * x32).sum(dim=1)
        ones = torch.ones(self.n, 1, dtype=x32.dtype, device=x32.device)
        self.left = torch.cat([x32, ones], dim=1)
        self.right = torch.cat([-2 * x32, self.sq32[:, None]], dim=1)
        self.sq64 = (x64 * x64).sum(dim=1)
        gamma = (x64.shape[1] + 2) * torch.finfo(torch.float32).eps / 2
        self.tolerance = 4 * gamma * (self.sq64 + self.sq64.max()) + 1e-12

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.empty(self.n, self.k, dtype=torch.int64, device=self.x64.device)
        for start in range(0, self.n, self.rows_per_chunk):
            rows = torch.arange(start, min(start + self.rows_per_chunk, self.n), device=self.x64.device)
            idx[rows] = self._search(rows)
        return self._final_distances(idx)

    def _search(self, rows: torch.Tensor) -> torch.Tensor:
        screen = self.left[rows] @ self.right.T  # S_ij - ||x_i||^2
        screen[torch.arange(len(rows), device=screen.device), rows] = float("inf")  # exclude self
        screened, cand = torch.topk(screen, self.n_candidates, dim=1, largest=False)
        if self.n_candidates == self.k:  # k = N - 1: every other point is a neighbour
            return cand
        # every j whose true distance can be <= the k-th candidate's has S_ij <= limit_i
        limit = screened[:, self.k - 1] + 2 * self.tolerance[rows].float()
        undecided = torch.nonzero(screened[:, self.k] <= limit).flatten()
        result = cand[:, : self.k]
        n_possible = torch.zeros(len(rows), dtype=torch.int64, device=screen.device)
        n_possible[undecided] = (screen[undecided] <= limit[undecided, None]).sum(dim=1)
        for group in self._groups(undecided, n_possible):
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
