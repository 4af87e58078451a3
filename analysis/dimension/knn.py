"""Exact k-nearest neighbours in torch: float32 screening, float64 distances.

Squared distances are screened in float32 with ``||a||^2 + ||b||^2 - 2 a.b`` (one matrix
product per chunk of query rows, so memory stays bounded). The ``k + margin`` best
candidates are then re-measured in float64 as ``||a - b||`` and re-sorted. A row is accepted
only if its k-th float64 distance cannot be beaten by any point outside the candidate set,
given Higham's bound on the float32 error of the screening (|err| <= gamma_D (|a|^2 + |b|^2),
gamma_D = D u / (1 - D u), "Accuracy and Stability of Numerical Algorithms", eq. 3.5);
rows that fail are screened again in float64. The result is exact up to ties.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from .checks import as_points, check_enough_points

DEFAULT_MEMORY_BYTES = 256 * 2**20
CANDIDATE_MARGIN = 8
EXACT_BLOCK_ROWS = 256


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
    Distances are float64 and computed as ``||x_i - x_j||`` for the selected pairs.
    Duplicates are not removed here (they give zero distances); see ``estimate_dimension``.
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
        self.x64 = x64
        self.k = k
        self.n, self.dim = x64.shape
        self.n_candidates = min(self.n - 1, k + CANDIDATE_MARGIN)
        self.rows_per_chunk = max(1, memory_bytes // (3 * 4 * self.n))
        self.x32 = x64.float()
        self.sq32 = (self.x32 * self.x32).sum(dim=1)
        self.sq64 = (x64 * x64).sum(dim=1)

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        dist = torch.empty(self.n, self.k, dtype=torch.float64, device=self.x64.device)
        idx = torch.empty(self.n, self.k, dtype=torch.int64, device=self.x64.device)
        for start in range(0, self.n, self.rows_per_chunk):
            rows = torch.arange(start, min(start + self.rows_per_chunk, self.n), device=self.x64.device)
            d, i, ok = self._search(rows, self.x32, self.sq32, torch.float32)
            if not ok.all():
                d[~ok], i[~ok], _ = self._search(rows[~ok], self.x64, self.sq64, torch.float64)
            dist[rows], idx[rows] = d, i
        return dist.sqrt(), idx

    def _search(self, rows, x, sq, dtype):
        """Screen ``rows`` in ``dtype``; return exact squared distances, indices, acceptance."""
        d2 = torch.addmm(sq[rows, None] + sq[None, :], x[rows], x.T, alpha=-2.0)
        d2[torch.arange(len(rows), device=d2.device), rows] = float("inf")  # exclude self
        screened, cand = torch.topk(d2, self.n_candidates, dim=1, largest=False, sorted=True)
        cand, _ = cand.sort(dim=1)  # so ties in the stable sort below go to the lower index
        exact = self._exact_sq_distances(rows, cand)
        exact, order = exact.sort(dim=1, stable=True)
        cand = cand.gather(1, order)
        ok = self._accepted(rows, exact, screened, dtype)
        return exact[:, : self.k], cand[:, : self.k], ok

    def _exact_sq_distances(self, rows, cand):
        """``||x_i - x_j||^2`` in float64 for every candidate, in cache-sized blocks of rows."""
        exact = torch.empty(cand.shape, dtype=torch.float64, device=cand.device)
        with _one_cpu_thread():
            self._fill_exact(exact, rows, cand)
        return exact

    def _fill_exact(self, exact, rows, cand):
        for start in range(0, len(rows), EXACT_BLOCK_ROWS):
            block = slice(start, start + EXACT_BLOCK_ROWS)
            queries = self.x64[rows[block]]
            for j in range(cand.shape[1]):
                diff = queries - self.x64[cand[block, j]]
                exact[block, j] = torch.einsum("ij,ij->i", diff, diff)

    def _accepted(self, rows, exact, screened, dtype):
        if self.n_candidates == self.n - 1:
            return torch.ones(len(rows), dtype=torch.bool, device=exact.device)
        unit = torch.finfo(dtype).eps / 2
        gamma = self.dim * unit / (1 - self.dim * unit)
        tolerance = gamma * (self.sq64[rows] + self.sq64.max()) * 2
        return exact[:, self.k - 1] <= screened[:, -1].double() - tolerance


@contextmanager
def _one_cpu_thread():
    """Small per-block ops lose more to thread synchronisation than they gain on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
