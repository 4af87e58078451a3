"""The torch kNN against a brute-force float64 reference (scipy cdist)."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from analysis.dimension import DimensionError, knn
from analysis.dimension.knn import resolve_device


def reference_knn(x: np.ndarray, k: int):
    distances = cdist(x, x)
    np.fill_diagonal(distances, np.inf)
    indices = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, indices, axis=1), indices


@pytest.mark.parametrize("n, dim, k", [(300, 3, 1), (500, 40, 10), (200, 784, 25)])
def test_knn_matches_cdist(n, dim, k):
    x = np.random.default_rng(n + dim).random((n, dim))
    distances, indices = knn(x, k, device="cpu")
    ref_distances, ref_indices = reference_knn(x, k)
    assert distances.shape == indices.shape == (n, k)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(distances, ref_distances, rtol=0, atol=1e-6)


def test_small_chunks_and_far_offset_give_same_result():
    # a large common offset makes float32 ||a||^2 + ||b||^2 - 2ab cancel badly; the float64
    # re-check must still give exact neighbours
    x = np.random.default_rng(1).random((400, 20)) + 1e3
    distances, indices = knn(x, 5, device="cpu", memory_bytes=4 * 400 * 3 * 7)
    ref_distances, ref_indices = reference_knn(x, 5)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(distances, ref_distances, rtol=0, atol=1e-6)


def test_close_pairs_are_resolved_exactly():
    # pairs of points 1e-4 apart on a grid: float32 alone cannot rank these distances
    rng = np.random.default_rng(2)
    base = rng.random((150, 10)) * 10
    x = np.concatenate([base, base + rng.normal(scale=1e-4, size=base.shape)])
    distances, indices = knn(x, 3, device="cpu")
    ref_distances, ref_indices = reference_knn(x, 3)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(distances, ref_distances, rtol=0, atol=1e-9)


def test_self_is_excluded_and_torch_input_accepted():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    _, indices = knn(x, 49)
    assert not (indices == np.arange(50)[:, None]).any()
    assert all(len(set(row)) == 49 for row in indices)


@pytest.mark.parametrize("k", [0, 10, -1, 2.5])
def test_k_out_of_range(k):
    with pytest.raises(DimensionError, match="n_neighbors"):
        knn(np.random.default_rng(0).random((10, 3)), k)


def test_nan_input_rejected():
    x = np.random.default_rng(0).random((10, 3))
    x[4, 1] = np.nan
    with pytest.raises(DimensionError, match="NaN"):
        knn(x, 2)


@pytest.mark.parametrize("cluster_size", [8, 40])
def test_rows_float32_cannot_decide_are_ranked_in_float64(cluster_size):
    # tight clusters far apart: float32 error (~|x|^2 * 1e-6) exceeds every within-cluster
    # distance, so float32 cannot tell the k nearest; with 8 per cluster the kept candidates
    # hold every possible neighbour, with 40 the rows are rescanned
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(20, 5)) * 1e3
    x = (centers[:, None, :] + rng.normal(scale=1e-2, size=(20, cluster_size, 5))).reshape(-1, 5)
    distances, indices = knn(x, 3, device="cpu")
    ref_distances, ref_indices = reference_knn(x, 3)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(distances, ref_distances, rtol=0, atol=1e-9)


@pytest.mark.parametrize("exponent", [-1000, -600, 600, 1000])
def test_any_finite_scale_gives_the_same_neighbours(exponent):
    # unscaled, squared differences of such points would underflow to 0 or overflow to inf
    x = np.random.default_rng(4).random((200, 6))
    distances, indices = knn(x, 4, device="cpu")
    scaled_distances, scaled_indices = knn(np.ldexp(x, exponent), 4, device="cpu")
    np.testing.assert_array_equal(scaled_indices, indices)
    np.testing.assert_array_equal(scaled_distances, np.ldexp(distances, exponent))


def test_both_searches_and_every_tile_size_agree():
    x = np.random.default_rng(5).normal(size=(300, 12))
    expected = knn(x, 6, device="cpu", search="brute")
    for search, memory in [("brute", 1), ("brute", 4 * 3 * 300 * 37), ("bounded", None)]:
        found = knn(x, 6, device="cpu", search=search, memory_bytes=memory)
        np.testing.assert_array_equal(found[1], expected[1])
        np.testing.assert_array_equal(found[0], expected[0])


@pytest.mark.parametrize("device, search, message", [("cpu:junk", "auto", "device='cpu:junk' unknown"),
                                                     ("cpu", "fastest", "search='fastest' unknown")])
def test_bad_device_or_search(device, search, message):
    with pytest.raises(DimensionError, match=message):
        knn(np.random.default_rng(0).random((10, 3)), 2, device=device, search=search)


def test_mps_runs_on_the_cpu():
    assert resolve_device("mps") == torch.device("cpu")  # MPS has no float64
