"""Classification tasks on manifolds of known intrinsic dimension, and PCA projection.

A task draws latent points z on a k-dimensional manifold (the cube [-1, 1]^k or the unit
sphere S^k in R^(k+1)), embeds them smoothly into R^D and labels them by a fixed random
smooth function of z. k varies while N, D and the number of classes C stay fixed.

Embedding: ``x = Q_lin z + a Q_nl sin(W z + b) / sqrt(m)`` with ``[Q_lin, Q_nl]`` a
``D x (k' + m)`` matrix of orthonormal columns (k' = k for the cube, k + 1 for the sphere).
Its Jacobian projected on ``Q_lin`` is the identity, so the map is an injective immersion:
the image is a k-dimensional manifold, curved by the sine features.
Labels: ``y = argmax_c sum_j V_cj cos(U_j . z + c_j)``, an argmax of C smooth random
(random-Fourier-feature) functions of the latent coordinates, ``U ~ N(0, f^2 I)`` with the
label frequency ``f`` (default 2): smaller f, smoother labels, an easier task. With
``centred_labels`` each feature's mean over the latent distribution is subtracted first
(for the cube ``E cos(u.z + c) = cos(c) prod_i sin(u_i)/u_i``), so that at small f the classes
stay balanced instead of collapsing onto the class with the largest constant term.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..errors import WorkbenchError

MANIFOLDS = ("cube", "sphere")
NONLINEAR_FEATURES = 16
LABEL_FEATURES = 64


class SyntheticTask(NamedTuple):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def manifold_task(latent_dimension: int, ambient_dimension: int = 784, num_classes: int = 10,
                  n_train: int = 10000, n_test: int = 2000, manifold: str = "cube",
                  curvature: float = 0.5, seed: int = 0, label_frequency: float = 2.0,
                  centred_labels: bool = False) -> SyntheticTask:
    """Deterministic (from ``seed``) task on a k-manifold in R^D; x float32 (N, D), y int64.

    The embedding and labelling depend on (seed, k, D, C, manifold, label options) only, so train and
    test share them; features are scaled by one constant so that E||x||^2 / D = 1 on train.
    """
    _check_task(latent_dimension, ambient_dimension, num_classes, n_train, n_test, manifold)
    _check_labels(label_frequency, centred_labels, manifold)
    gen = torch.Generator().manual_seed(seed)
    coords = latent_dimension + (manifold == "sphere")
    embed = _random_embedding(coords, ambient_dimension, curvature, gen)
    label = _random_labeller(coords, num_classes, gen, label_frequency, centred_labels)
    z_train, z_test = (_sample_latent(n, latent_dimension, manifold, gen) for n in (n_train, n_test))
    x_train, x_test = embed(z_train), embed(z_test)
    scale = x_train.pow(2).sum(dim=1).mean().div(ambient_dimension).sqrt()
    return SyntheticTask((x_train / scale).float(), label(z_train), (x_test / scale).float(), label(z_test))


def _check_task(k: int, d: int, c: int, n_train: int, n_test: int, manifold: str) -> None:
    if manifold not in MANIFOLDS:
        raise WorkbenchError(f"manifold={manifold!r} unknown: choose one of {MANIFOLDS}")
    needed = k + (manifold == "sphere") + NONLINEAR_FEATURES
    if k < 1 or d < needed:
        raise WorkbenchError(f"latent_dimension={k} out of range for ambient_dimension={d}: need "
                             f"1 <= k and k{' + 1' if manifold == 'sphere' else ''} + "
                             f"{NONLINEAR_FEATURES} <= ambient_dimension")
    if c < 2:
        raise WorkbenchError(f"num_classes={c} out of range: must be >= 2")
    if n_train < 1 or n_test < 1:
        raise WorkbenchError(f"n_train={n_train}, n_test={n_test} out of range: must be >= 1")


def _check_labels(frequency: float, centred: bool, manifold: str) -> None:
    if not (math.isfinite(frequency) and frequency > 0):
        raise WorkbenchError(f"label_frequency={frequency!r} out of range: must be a positive number")
    if centred and manifold != "cube":
        raise WorkbenchError(f"centred_labels is implemented for manifold='cube' only, got {manifold!r}")


def _sample_latent(n: int, k: int, manifold: str, gen: torch.Generator) -> torch.Tensor:
    if manifold == "cube":
        return torch.rand(n, k, generator=gen, dtype=torch.float64) * 2 - 1
    z = torch.randn(n, k + 1, generator=gen, dtype=torch.float64)
    return z / z.norm(dim=1, keepdim=True)  # uniform on S^k (Muller 1959)


def _random_embedding(coords: int, ambient: int, curvature: float, gen: torch.Generator):
    gaussian = torch.randn(ambient, coords + NONLINEAR_FEATURES, generator=gen, dtype=torch.float64)
    basis, _ = torch.linalg.qr(gaussian)
    linear, nonlinear = basis[:, :coords], basis[:, coords:]
    freqs = torch.randn(NONLINEAR_FEATURES, coords, generator=gen, dtype=torch.float64) * 2
    phases = torch.rand(NONLINEAR_FEATURES, generator=gen, dtype=torch.float64) * 2 * math.pi
    amplitude = curvature / math.sqrt(NONLINEAR_FEATURES)
    return lambda z: z @ linear.T + amplitude * torch.sin(z @ freqs.T + phases) @ nonlinear.T


def _random_labeller(coords: int, num_classes: int, gen: torch.Generator, frequency: float = 2.0,
                     centred: bool = False):
    freqs = torch.randn(LABEL_FEATURES, coords, generator=gen, dtype=torch.float64) * frequency
    phases = torch.rand(LABEL_FEATURES, generator=gen, dtype=torch.float64) * 2 * math.pi
    weights = torch.randn(num_classes, LABEL_FEATURES, generator=gen, dtype=torch.float64)
    # E over z ~ U[-1, 1]^k of cos(u.z + c) = cos(c) prod_i sinc(u_i / pi) (torch's sinc is normalised)
    mean = torch.cos(phases) * torch.special.sinc(freqs / math.pi).prod(dim=1) if centred else 0.0
    return lambda z: ((torch.cos(z @ freqs.T + phases) - mean) @ weights.T).argmax(dim=1)


class PCABasis(NamedTuple):
    """Mean and top principal directions (columns, float64) of a training set."""
    mean: torch.Tensor
    components: torch.Tensor

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` (N, ...) on the components and map back; same shape and dtype."""
        flat = x.reshape(len(x), -1).double() - self.mean
        if flat.shape[1] != len(self.mean):
            raise WorkbenchError(f"x has {flat.shape[1]} features per sample, the PCA basis "
                                 f"was fitted on {len(self.mean)}")
        projected = flat @ self.components @ self.components.T + self.mean
        return projected.to(x.dtype).reshape(x.shape)


def fit_pca(x_train: torch.Tensor, n_components: int) -> PCABasis:
    """Top ``n_components`` eigenvectors of the training covariance (float64, torch.linalg.eigh)."""
    flat = x_train.reshape(len(x_train), -1).double()
    features = flat.shape[1]
    if not 1 <= n_components <= features:
        raise WorkbenchError(f"n_components={n_components} out of range: must lie in [1, {features}]")
    mean = flat.mean(dim=0)
    centered = flat - mean
    _, vectors = torch.linalg.eigh(centered.T @ centered)
    return PCABasis(mean, vectors[:, -n_components:].flip(1))


def pca_project(x: torch.Tensor, n_components: int, fit_on: torch.Tensor | None = None) -> torch.Tensor:
    """Reconstruct ``x`` from its top-n principal components, fitted on ``fit_on`` (the
    training set; default ``x`` itself). Shape and dtype are kept (e.g. (N, 1, 32, 32))."""
    return fit_pca(x if fit_on is None else fit_on, n_components).reconstruct(x)
