"""The public exact kNN: checks, device, scaling, and the choice of search.

Both searches return every point's k nearest with float64 distances ``||x_i - x_j||``
measured by differences, ties going to the lower index: the result does not depend on the
search, the device or the number of cores, only the time does.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import DimensionError
from ..points import as_points, check_enough_points
from .bounded import DEFAULT_LAYOUT, BoundedSearch, Layout
from .brute import brute_force_knn

SEARCHES = ("auto", "brute", "bounded")
CPU_MEMORY_BYTES = 256 * 2**20
DEVICE_MEMORY_SHARE = 4  # on a GPU, a tile of screened distances may use 1/4 of the free memory
# On a CPU, from benchmarks/bench_knn.py (Fashion-MNIST, k = 20, 2 shared cores), brute force's
# time over the bounded search's: 0.3-0.6 at 2,000-3,000 points, 1.1-1.2 at 4,000-6,000 (within
# the noise), 2.2-2.3 at 8,000 and 16,000.
BOUNDED_FROM_POINTS = 8192


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) means CUDA when available, else CPU. 'mps' runs on the CPU: MPS has no
    float64, which the distance check needs (so ``analysis.device.resolve_device`` does not fit)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DimensionError(f"device={device!r} unknown: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "mps":
        return torch.device("cpu")
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            raise DimensionError(f"device={device!r} not available: torch sees {count} CUDA GPU(s)")
        return resolved
    if resolved.type != "cpu":
        raise DimensionError(f"device={device!r} unsupported: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return resolved


def use_bounded_search(n: int, dim: int, k: int, device: torch.device,
                       layout: Layout = DEFAULT_LAYOUT) -> bool:
    """On a CPU, for many points in many dimensions with few neighbours each; never on a GPU,
    where screening every pair in large tiles is cheap and the bounded search's many small
    steps are not."""
    return (device.type == "cpu" and n >= BOUNDED_FROM_POINTS and dim > 2 * layout.fine_dimensions
            and k < layout.cluster_size // 4)


def knn(points: np.ndarray | torch.Tensor, n_neighbors: int, device: str | torch.device | None = "auto",
        memory_bytes: int | None = None, search: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean kNN of every point among the others (self excluded).

    Returns ``(distances, indices)``, both ``(N, n_neighbors)`` numpy arrays sorted by
    increasing distance (ties: lower index first), like
    ``sklearn.neighbors.NearestNeighbors().kneighbors()``. ``memory_bytes`` bounds a tile of
    the brute-force search (default 256 MiB on a CPU, a quarter of the free GPU memory);
    ``search`` forces 'brute' or 'bounded' (default: ``use_bounded_search``). Duplicates are
    not removed here (they give zero distances); ``estimate_dimension`` removes them.

    The points are scaled by a power of two (exact) so that their largest magnitude is about 1:
    float64 differences and float32 screening neither overflow nor underflow for any finite input.
    """
    if search not in SEARCHES:
        raise DimensionError(f"search={search!r} unknown: choose one of {SEARCHES}")
    x64 = as_points(points)
    k = check_enough_points(len(x64), n_neighbors)
    dev = resolve_device(device)
    exponent = int(np.frexp(np.abs(x64).max())[1])
    x = torch.from_numpy(np.ldexp(x64, -exponent) if exponent else x64).to(dev)
    if search == "bounded" or (search == "auto" and use_bounded_search(*x.shape, k, dev)):
        distances, indices = BoundedSearch(x, k).run()
    else:
        distances, indices = brute_force_knn(x, k, memory_bytes or default_memory_bytes(dev))
    return np.ldexp(distances.cpu().numpy(), exponent), indices.cpu().numpy()


def default_memory_bytes(device: torch.device) -> int:
    """The default bound on a brute-force tile of screened distances."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // DEVICE_MEMORY_SHARE
    return CPU_MEMORY_BYTES
