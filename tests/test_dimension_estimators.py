"""Estimators on data of known dimension, agreement with skdim, duplicates and bad input."""
import math

import numpy as np
import pytest
import skdim

from analysis.dimension import (DimensionError, available_estimators, check_estimation,
                                estimate_by_class, estimate_dimension, estimates_table,
                                registered_estimators, remove_duplicates)


def flat_subspace(n: int, k: int, ambient: int, seed: int = 0) -> np.ndarray:
    """Uniform points of a k-cube placed in a random k-dim subspace of R^ambient."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(ambient, k)))
    return rng.random((n, k)) @ basis.T


def sphere(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Uniform points on the unit sphere S^k in R^(k+1)."""
    z = np.random.default_rng(seed).normal(size=(n, k + 1))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def subspace5():
    return flat_subspace(2000, 5, 30)


@pytest.mark.parametrize("method", ["mle", "twonn"])
@pytest.mark.parametrize("data, true_dim", [("subspace", 5), ("sphere", 4)])
def test_knn_estimators_recover_known_dimension(method, data, true_dim, subspace5):
    x = subspace5 if data == "subspace" else sphere(2000, 4)
    estimate = estimate_dimension(x, method)
    # kNN estimators are biased low by the cube's boundary; 12% covers both data sets
    assert estimate.value == pytest.approx(true_dim, rel=0.12)
    assert estimate.n_points == 2000 and estimate.n_duplicates == 0


SLOW = pytest.mark.slow  # numba compiles DANCo's and FisherS's kernels on first use (~8 s each)


@pytest.mark.parametrize("method, tolerance", [("lpca", 0.0), ("corrint", 0.15), ("ess", 0.15),
                                               pytest.param("danco", 0.15, marks=SLOW),
                                               pytest.param("fishers", 0.15, marks=SLOW)])
def test_skdim_estimators_recover_subspace_dimension(method, tolerance):
    x = flat_subspace(400, 4, 12, seed=1)
    assert estimate_dimension(x, method).value == pytest.approx(4, rel=tolerance, abs=1e-9)


@pytest.mark.slow
def test_danco_calibration_is_bounded_by_max_dimension():
    # 300 points of a 40-dim cube: DANCo's calibration must stop at max_dimension=8
    x = np.random.default_rng(0).random((300, 40))
    estimate = estimate_dimension(x, "danco", max_dimension=8, ver="DANCo")
    assert 1 <= estimate.value <= 9


@pytest.mark.parametrize("params", [{}, {"n_neighbors": 10, "unbiased": True}, {"comb": "mean"},
                                    {"comb": "median", "n_neighbors": 5}])
def test_fast_mle_equals_skdim(params, subspace5):
    reference = skdim.id.MLE(unbiased=params.get("unbiased", False)).fit(
        subspace5, n_neighbors=params.get("n_neighbors", 20), comb=params.get("comb", "mle")).dimension_
    assert estimate_dimension(subspace5, "mle", **params).value == pytest.approx(reference, rel=1e-9)
    assert estimate_dimension(subspace5, "skdim-mle", **params).value == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("params", [{}, {"discard_fraction": 0.02}, {"fit": "mle"},
                                    {"fit": "mle", "discard_fraction": 0.0}])
def test_fast_twonn_equals_skdim(params):
    x = sphere(1500, 6, seed=3)
    reference = skdim.id.TwoNN(discard_fraction=params.get("discard_fraction", 0.1),
                               method=params.get("fit", "linear")).fit(x).dimension_
    assert estimate_dimension(x, "twonn", **params).value == pytest.approx(reference, rel=1e-9)
    assert estimate_dimension(x, "skdim-twonn", **params).value == pytest.approx(reference, rel=1e-9)


def test_twonn_linear_fit_without_discarding_is_finite():
    # skdim's linear fit fails here (-log(1 - N/N) is infinite); ours leaves that point out
    value = estimate_dimension(sphere(1500, 6, seed=3), "twonn", discard_fraction=0.0).value
    assert value == pytest.approx(6, rel=0.15)


def test_duplicates_removed_and_counted(subspace5):
    x = subspace5[:500]
    with_duplicates = np.concatenate([x, x[:120], x[:30]])
    for method in ("mle", "twonn", "corrint"):
        plain = estimate_dimension(x, method)
        doubled = estimate_dimension(with_duplicates, method)
        assert doubled.n_duplicates == 150 and doubled.n_points == 500
        assert doubled.value == pytest.approx(plain.value, rel=1e-12)
    # the trap duplicates set: skdim's own MLE on the raw data collapses towards 0
    assert skdim.id.MLE().fit(with_duplicates).dimension_ < 0.5 * plain.value


def test_bootstrap_interval_brackets_estimate_and_is_deterministic(subspace5):
    for method in ("mle", "twonn", "lpca"):
        first = estimate_dimension(subspace5[:800], method, n_bootstrap=30, seed=7)
        again = estimate_dimension(subspace5[:800], method, n_bootstrap=30, seed=7)
        assert first.ci_low <= first.value <= first.ci_high
        assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    mle = estimate_dimension(subspace5[:800], "mle", n_bootstrap=30, seed=7)
    assert mle.ci_high - mle.ci_low > 0


def test_estimate_by_class_has_one_row_per_class_and_method(subspace5):
    labels = np.repeat([0, 1], 1000)
    table = estimate_by_class(subspace5, labels, methods=("mle", "twonn"))
    assert len(table) == 6 and set(table["group"]) == {0, 1, "all"}
    assert (table.loc[table["group"] != "all", "n_points"] == 1000).all()
    assert table["value"].between(4, 6).all()


def test_nan_estimate_reported_not_raised():
    # equispaced points: r2 / r1 = 1 everywhere inside, so TwoNN's slope is 0 / 0
    grid = np.zeros((50, 3))
    grid[:, 0] = np.arange(50.0)
    estimate = estimate_dimension(grid, "twonn")
    assert math.isnan(estimate.value) and "nan" in estimate.note


def test_registry_lists_every_method():
    assert {"mle", "twonn", "lpca", "corrint", "danco", "ess", "fishers"} <= set(available_estimators())


@pytest.mark.parametrize("points, method, params, message", [
    (np.ones((40, 5)), "mle", {}, "distinct points"),
    (np.random.default_rng(0).random((10, 3)), "mle", {}, "at least 21 distinct"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"n_neighbors": 1}, "n_neighbors=1"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"n_neighbors": 0}, "n_neighbors=0"),
    (np.random.default_rng(0).random((50, 3)), "twonn", {"discard_fraction": 1.5}, "discard_fraction"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"k": 3}, "unknown parameter"),
    (np.random.default_rng(0).random((50, 3)), "nope", {}, "unknown estimator"),
    (np.full((50, 3), np.nan), "mle", {}, "NaN"),
    (np.random.default_rng(0).random(50), "mle", {}, "2-D"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"n_bootstrap": -1}, "n_bootstrap"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"confidence": 1.5}, "confidence"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"seed": -1}, "seed=-1"),
    (np.random.default_rng(0).random((50, 3)), "mle", {"n_neighbors": "many"}, "n_neighbors"),
])
def test_bad_input_is_a_clear_error(points, method, params, message):
    with pytest.raises(DimensionError, match=message):
        estimate_dimension(points, method, **params)


def test_remove_duplicates_keeps_first_occurrences_in_order():
    x = np.array([[1.0, 2.0], [0.0, -0.0], [1.0, 2.0], [0.0, 0.0], [3.0, 1.0]])
    unique, removed = remove_duplicates(x)
    assert removed == 2
    np.testing.assert_array_equal(unique, x[[0, 1, 4]])


@pytest.mark.parametrize("rows", [21, 27, 33])
def test_small_points_files_keep_their_bootstrap_or_fail_before_any_work(rows, monkeypatch):
    x = flat_subspace(rows, 3, 8, seed=rows)
    # per-point statistics are resampled: any size the estimate accepts is fine
    for method in ("mle", "twonn"):
        estimate = estimate_dimension(x, method, n_bootstrap=10)
        assert estimate.ci_low <= estimate.value <= estimate.ci_high
    # 'ess' is refitted on each resample, which holds too few distinct points for k = 20
    searches = []
    real_knn = registered_estimators.knn
    monkeypatch.setattr(registered_estimators, "knn",
                        lambda *args, **kwargs: searches.append(1) or real_knn(*args, **kwargs))
    with pytest.raises(DimensionError, match="n_bootstrap=10 too many for 'ess' on .* pts.npy"):
        check_estimation(x, ("mle", "ess"), n_bootstrap=10, data_name="points in pts.npy")
    with pytest.raises(DimensionError, match="use n_bootstrap=0 or more points"):
        estimates_table([("all", x)], ("mle", "ess"), n_bootstrap=10)
    assert searches == []  # nothing ran before the refusal
    assert math.isfinite(estimate_dimension(x, "ess").value)
