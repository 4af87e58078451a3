"""Synthetic manifold tasks, PCA projection and the benchmark-manifold validation table."""
import numpy as np
import pytest
import torch

from analysis.dimension import estimate_dimension
from analysis.errors import WorkbenchError
from analysis.data.synthetic import fit_pca, manifold_task, pca_project
from analysis.dimension.validation import validation_table


def test_task_shapes_types_and_determinism():
    task = manifold_task(3, ambient_dimension=64, num_classes=5, n_train=300, n_test=100, seed=4)
    again = manifold_task(3, ambient_dimension=64, num_classes=5, n_train=300, n_test=100, seed=4)
    other = manifold_task(3, ambient_dimension=64, num_classes=5, n_train=300, n_test=100, seed=5)
    assert task.x_train.shape == (300, 64) and task.x_test.shape == (100, 64)
    assert task.x_train.dtype == torch.float32 and task.y_train.dtype == torch.int64
    assert set(task.y_train.tolist()) <= set(range(5)) and len(set(task.y_train.tolist())) >= 4
    for a, b in zip(task, again):
        assert torch.equal(a, b)
    assert not torch.equal(task.x_train, other.x_train)
    x_train, y_train, x_test, y_test = task  # unpacks as the brief's 4-tuple
    assert torch.isfinite(x_train).all()


@pytest.mark.parametrize("manifold, k", [("cube", 2), ("cube", 6), ("sphere", 3), ("sphere", 6)])
def test_task_has_the_stated_intrinsic_dimension(manifold, k):
    task = manifold_task(k, ambient_dimension=200, n_train=2000, n_test=10, manifold=manifold, seed=0)
    assert task.x_train.shape == (2000, 200)
    # MLE is biased low at the cube's faces; 15% covers k <= 6 at this N
    assert estimate_dimension(task.x_train, "mle").value == pytest.approx(k, rel=0.15)
    assert estimate_dimension(task.x_train, "twonn").value == pytest.approx(k, rel=0.15)


def test_embedding_is_nonlinear():
    # a linear embedding of the k-cube would have exactly k nonzero principal variances
    task = manifold_task(3, ambient_dimension=100, n_train=1000, n_test=10, curvature=1.0)
    variances = torch.linalg.svdvals(task.x_train - task.x_train.mean(0)) ** 2
    assert (variances[3:] / variances.sum()).sum() > 0.05


def test_train_and_test_share_labelling():
    task = manifold_task(2, ambient_dimension=40, num_classes=3, n_train=1000, n_test=500, seed=1)
    nearest = torch.cdist(task.x_test, task.x_train).argmin(dim=1)
    agreement = (task.y_train[nearest] == task.y_test).float().mean()
    assert agreement > 0.9  # smooth labels: 1-NN on a 2-manifold is almost always right


@pytest.mark.parametrize("kwargs, message", [({"latent_dimension": 0}, "latent_dimension"),
                                            ({"latent_dimension": 30, "ambient_dimension": 40}, "ambient"),
                                            ({"latent_dimension": 2, "num_classes": 1}, "num_classes"),
                                            ({"latent_dimension": 2, "manifold": "torus"}, "manifold")])
def test_task_bad_arguments(kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        manifold_task(**kwargs)


def test_pca_project_keeps_shape_and_matches_numpy_svd():
    gen = torch.Generator().manual_seed(0)
    x_train = torch.randn(200, 1, 6, 6, generator=gen) @ torch.randn(6, 6, generator=gen)
    x_test = torch.randn(50, 1, 6, 6, generator=gen)
    projected = pca_project(x_test, 5, fit_on=x_train)
    assert projected.shape == x_test.shape and projected.dtype == x_test.dtype
    flat = x_train.reshape(200, -1).double().numpy()
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    expected = (x_test.reshape(50, -1).double().numpy() - mean) @ vt[:5].T @ vt[:5] + mean
    np.testing.assert_allclose(projected.reshape(50, -1).numpy(), expected, atol=1e-5)
    full = pca_project(x_train, 36)
    torch.testing.assert_close(full, x_train, atol=1e-4, rtol=0)


def test_pca_bad_component_count():
    with pytest.raises(WorkbenchError, match="n_components"):
        fit_pca(torch.zeros(10, 4), 5)


def test_validation_table_is_tidy_and_correct():
    table = validation_table(methods=("mle", "twonn"), n_points=400,
                             manifolds=("M1_Sphere", "M2_Affine_3to5", "M7_Roll"))
    assert list(table.columns[:6]) == ["manifold", "true_dimension", "ambient_dimension", "estimator",
                                       "estimate", "relative_error"]
    assert len(table) == 6
    sphere = table[table.manifold == "M1_Sphere"]
    assert (sphere.true_dimension == 10).all() and (sphere.ambient_dimension == 11).all()
    np.testing.assert_allclose(table.relative_error, (table.estimate - table.true_dimension)
                               / table.true_dimension)
    low_dim = table[table.manifold != "M1_Sphere"]
    assert (low_dim.relative_error.abs() < 0.25).all()  # TwoNN at N=400 is noisy (~10% sd)
    again = validation_table(methods=("mle",), n_points=400, manifolds=("M7_Roll",))
    assert again.estimate.iloc[0] == table[(table.manifold == "M7_Roll") & (table.estimator == "mle")
                                           ].estimate.iloc[0]
