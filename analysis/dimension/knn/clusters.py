"""Ordering points by k-means clusters for the bounded kNN search: points near each other get
near positions, so that tiles of positions are compact and their bounds tight. Only the speed
of the search depends on the clusters, never its result."""
from __future__ import annotations

import torch

from .workers import map_on_cores

SEED = 0


def order_by_clusters(points: torch.Tensor, n_clusters: int, block_size: int, iterations: int,
                      spread_over_cores: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``order`` (position -> point) sorted by cluster, and within a cluster by block, a
    sub-cluster of about ``block_size`` points; the block number of every position."""
    clusters = kmeans(points, n_clusters, iterations)
    members_of = [m for m in torch.argsort(clusters, stable=True).split(torch.bincount(clusters).tolist())
                  if len(m)]

    def sub_clusters(members: torch.Tensor) -> torch.Tensor:
        labels = kmeans(points[members], -(-len(members) // block_size), iterations)
        return torch.unique(labels, return_inverse=True)[1]  # number the non-empty ones

    order, block, n_blocks = [], [], 0
    sub = map_on_cores(sub_clusters, members_of, points.device, spread_over_cores)
    for members, labels in zip(members_of, sub):
        order.append(members[torch.argsort(labels, stable=True)])
        block.append(labels.sort().values + n_blocks)
        n_blocks += int(labels.max()) + 1
    return torch.cat(order), torch.cat(block)


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
