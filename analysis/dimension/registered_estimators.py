"""The registered estimators: fast torch-kNN MLE and TwoNN, and scikit-dimension wrappers.

Names: 'mle', 'twonn' (fast paths), 'skdim-mle', 'skdim-twonn' (skdim's code fed with the
torch neighbours), 'lpca', 'corrint', 'danco', 'ess', 'fishers' (skdim 0.5 estimators).
Every estimator sees distinct points only (``estimate_dimension`` removes duplicates).
"""
from __future__ import annotations

import numpy as np
import skdim

from .distance_estimators import combine_mle, combine_twonn, mle_local, twonn_ratios
from .knn import knn
from .registry import Estimator, Params, register_estimator

DANCO_FIT_TABLE = {"k": 10, "min_points": 20, "max_points": 5000, "max_dimension": 100}


def _mle_local(points: np.ndarray, p: Params) -> np.ndarray:
    distances, _ = knn(points, p["n_neighbors"], device=p["device"])
    return mle_local(distances, p["n_neighbors"], p["unbiased"])


def _twonn_local(points: np.ndarray, p: Params) -> np.ndarray:
    distances, _ = knn(points, 2, device=p["device"])
    return twonn_ratios(distances)


def _skdim_mle(points: np.ndarray, p: Params) -> float:
    """skdim.id.MLE on precomputed torch neighbours (``fit(X, precomputed_knn_arrays=)``)."""
    arrays = knn(points, p["n_neighbors"], device=p["device"])
    estimator = skdim.id.MLE(unbiased=p["unbiased"])
    return estimator.fit(points, precomputed_knn_arrays=arrays, n_neighbors=p["n_neighbors"],
                         comb=p["comb"]).dimension_


def _skdim_twonn(points: np.ndarray, p: Params) -> float:
    """skdim.id.TwoNN(dist=True) fed with the torch (r1, r2) distances."""
    distances, _ = knn(points, 2, device=p["device"])
    estimator = skdim.id.TwoNN(discard_fraction=p["discard_fraction"], dist=True, method=p["fit"])
    return estimator.fit(distances).dimension_


def _lpca(points: np.ndarray, p: Params) -> float:
    """Fukunaga-Olsen PCA rule by default: eigenvalues above alphaFO x the largest (skdim.id.lPCA)."""
    return skdim.id.lPCA(ver=p["ver"], alphaFO=p["alphaFO"], random_state=p["seed"]).fit(points).dimension_


def _corrint(points: np.ndarray, p: Params) -> float:
    """Grassberger-Procaccia correlation dimension: slope of log C(r) between the k1-th and
    k2-th neighbour radii (skdim.id.CorrInt)."""
    return skdim.id.CorrInt(k1=p["k1"], k2=p["k2"]).fit(points).dimension_


def danco_settings(n_points: int, ambient: int, p: Params) -> tuple[str, int]:
    """The DANCo version and calibration bound D actually used.

    D = min(ambient dimension, max_dimension) bounds the calibration loop (one simulated
    hyperball per candidate dimension), so DANCo terminates in bounded time. 'auto' picks
    'DANCoFit' (skdim's precomputed calibration table) when it applies, else 'DANCo'.
    """
    bound = int(min(ambient, p["max_dimension"]))
    if p["ver"] != "auto":
        return p["ver"], bound
    table = DANCO_FIT_TABLE
    fits = (p["k"] == table["k"] and table["min_points"] <= n_points <= table["max_points"]
            and bound <= table["max_dimension"])
    return ("DANCoFit" if fits else "DANCo"), bound


def _danco(points: np.ndarray, p: Params) -> float:
    """DANCo (Ceruti et al., Pattern Recognition 2014): the dimension whose simulated
    hyperball statistics (MIND_ML estimate, von Mises angle concentration) are closest in KL
    divergence to the data's (skdim.id.DANCo)."""
    version, bound = danco_settings(len(points), points.shape[1], p)
    estimator = skdim.id.DANCo(k=p["k"], D=bound, ver=version, random_state=p["seed"])
    return estimator.fit(points).dimension_


def _ess(points: np.ndarray, p: Params) -> float:
    """Expected Simplex Skewness (Johnsson, Soneson, Fontes, IEEE TPAMI 2015), averaged over
    kNN neighbourhoods from the torch kNN (skdim.id.ESS)."""
    arrays = knn(points, p["n_neighbors"], device=p["device"])
    estimator = skdim.id.ESS(ver=p["ver"], random_state=p["seed"])
    return estimator.fit(points, precomputed_knn_arrays=arrays, n_neighbors=p["n_neighbors"]).dimension_


def _fishers(points: np.ndarray, p: Params) -> float:
    """Fisher separability dimension (Albergante, Bac, Zinovyev, IJCNN 2019; skdim.id.FisherS)."""
    estimator = skdim.id.FisherS(conditional_number=p["conditional_number"], limit_maxdim=p["limit_maxdim"])
    return estimator.fit(points).dimension_


def _neighbors_plus_one(p: Params) -> int:
    return p["n_neighbors"] + 1


MLE_DEFAULTS = {"n_neighbors": 20, "unbiased": False, "comb": "mle"}
TWONN_DEFAULTS = {"discard_fraction": 0.1, "fit": "linear"}

register_estimator(Estimator(
    "mle", MLE_DEFAULTS, local=_mle_local,
    combine=lambda stats, p: combine_mle(stats, p["comb"]), min_points=_neighbors_plus_one))
register_estimator(Estimator(
    "twonn", TWONN_DEFAULTS, local=_twonn_local,
    combine=lambda stats, p: combine_twonn(stats, p["discard_fraction"], p["fit"])))
register_estimator(Estimator("skdim-mle", MLE_DEFAULTS, fit=_skdim_mle, min_points=_neighbors_plus_one))
register_estimator(Estimator("skdim-twonn", TWONN_DEFAULTS, fit=_skdim_twonn))
register_estimator(Estimator("lpca", {"ver": "FO", "alphaFO": 0.05}, fit=_lpca, min_points=lambda p: 2))
register_estimator(Estimator("corrint", {"k1": 10, "k2": 20}, fit=_corrint,
                             min_points=lambda p: p["k2"] + 1))
register_estimator(Estimator("danco", {"k": 10, "max_dimension": 50, "ver": "auto"}, fit=_danco,
                             min_points=lambda p: p["k"] + 2))
register_estimator(Estimator("ess", {"n_neighbors": 20, "ver": "a"}, fit=_ess,
                             min_points=_neighbors_plus_one))
register_estimator(Estimator("fishers", {"conditional_number": 10, "limit_maxdim": False}, fit=_fishers,
                             min_points=lambda p: 2))
