"""The principal-component bounded kNN search: its bounds hold and its result is the brute-force one."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from analysis.dimension import knn
from analysis.dimension.knn.bounded import BoundedSearch, Layout, bound_coordinates
from analysis.dimension.knn.search import BOUNDED_FROM_POINTS, use_bounded_search

SMALL = Layout(coarse_dimensions=4, fine_dimensions=12, cluster_size=64, query_block=8,
               upper_blocks=4, tile_rows=128, kmeans_iterations=2)


def reference_knn(x: np.ndarray, k: int):
    """Float64 differences; ties go to the lower index (stable sort)."""
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d2, np.inf)
    indices = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d2, indices, axis=1)), indices


def bounded_knn(x: np.ndarray, k: int, layout: Layout = SMALL):
    points = torch.from_numpy(x)
    distances, indices = BoundedSearch(points, k, layout).run()
    return distances.numpy(), indices.numpy()


def manifold(n: int, dim: int, latent: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.tanh(rng.normal(size=(n, latent)) @ rng.normal(size=(latent, dim)))


@pytest.mark.parametrize("x, k", [
    (manifold(700, 40, 5, 0), 10),                      # curved 5-dimensional manifold
    (np.random.default_rng(1).integers(0, 3, (600, 30)).astype(float), 6),  # ties everywhere
    (np.random.default_rng(2).random((500, 24)) + 1e3, 4),  # float32 cancels badly
])
def test_matches_brute_force(x, k):
    distances, indices = bounded_knn(x, k)
    ref_distances, ref_indices = reference_knn(x, k)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(distances, ref_distances, rtol=0, atol=1e-9)


def test_duplicates_and_tile_sizes_off_the_fast_path():
    x = manifold(400, 32, 3, 3)
    x = np.concatenate([x, x[:50]])  # zero distances
    layout = Layout(coarse_dimensions=3, fine_dimensions=8, cluster_size=50, query_block=7,
                    upper_blocks=1, tile_rows=100, kmeans_iterations=1)
    distances, indices = bounded_knn(x, 3, layout)
    ref_distances, ref_indices = reference_knn(x, 3)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(distances, ref_distances, rtol=0, atol=1e-9)


def test_one_core_and_several_cores_agree():
    x = torch.from_numpy(manifold(600, 40, 4, 5))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = BoundedSearch(x, 5, SMALL).run()
        torch.set_num_threads(2)
        spread = BoundedSearch(x, 5, SMALL).run()
        in_turn = BoundedSearch(x, 5, replace(SMALL, spread_over_cores=False)).run()
    finally:
        torch.set_num_threads(threads)
    for other in (spread, in_turn):
        assert torch.equal(alone[0], other[0]) and torch.equal(alone[1], other[1])


def test_bound_coordinates_never_exceed_the_distance():
    x = torch.from_numpy(manifold(300, 50, 8, 4))
    x = x - x.mean(dim=0)
    true = torch.cdist(x, x) ** 2
    for y in bound_coordinates(x, 2, 10, 49):
        assert y.shape[1] in (3, 11, 50)
        # float64 rounding of the rotation: far inside the float32 screening tolerance
        assert (torch.cdist(y, y) ** 2 <= true * (1 + 1e-9) + 1e-9).all()
        assert torch.allclose(y.norm(dim=1), x.norm(dim=1))


def test_the_switch_depends_on_size_and_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    n, dim, k = BOUNDED_FROM_POINTS, 520, 5
    assert use_bounded_search(n, dim, k, cpu)
    assert not use_bounded_search(n - 1, dim, k, cpu) and not use_bounded_search(n, 512, k, cpu)
    assert not use_bounded_search(10 * n, dim, k, cuda)  # brute force in large tiles on a GPU


def test_knn_uses_the_bounded_search_for_large_inputs():
    n, dim, k = BOUNDED_FROM_POINTS, 520, 5
    x = manifold(n, dim, 12, 5)
    distances, indices = knn(x, k, device="cpu")
    xt = torch.from_numpy(x)
    d2 = (xt * xt).sum(1)[:, None] + (xt * xt).sum(1)[None, :] - 2 * xt @ xt.T
    d2.fill_diagonal_(float("inf"))
    ref = torch.topk(d2, k, dim=1, largest=False)
    np.testing.assert_array_equal(indices, ref.indices.numpy())
    np.testing.assert_allclose(distances, ref.values.clamp(min=0).sqrt().numpy(), rtol=0, atol=1e-6)
