"""Brute-force exact kNN: every pair screened in float32, tile of queries by tile of queries,
and each tile's k nearest chosen and measured in float64 by ``screening.select_nearest``."""
from __future__ import annotations

import torch

from .screening import ScreenedPoints, select_nearest

SCREEN_COPIES = 3  # the screened tile, its top-k and the selection's working copies, in float32


def brute_force_knn(x64: torch.Tensor, k: int, memory_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every point's k nearest among the others: float64 distances ``(N, k)``, increasing, and
    indices (ties: lower index first). A tile of queries holds as many rows as fit, with their
    screened distances to all N points, in about ``memory_bytes``."""
    n = len(x64)
    points = ScreenedPoints(x64)
    everyone = torch.arange(n, device=x64.device)
    tile_rows = max(1, min(n, memory_bytes // (4 * SCREEN_COPIES * n)))
    d2 = torch.empty(n, k, dtype=torch.float64, device=x64.device)
    indices = torch.empty(n, k, dtype=torch.int64, device=x64.device)
    for start in range(0, n, tile_rows):
        rows = slice(start, start + tile_rows)
        d2[rows], indices[rows] = select_nearest(points, everyone[rows], everyone, k)
    return d2.sqrt(), indices
