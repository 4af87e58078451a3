"""Certificates over the data distribution, from held-out samples, at confidence 1 - delta.

A per-sample bound on the samples it was measured on says nothing the measurement does not
(one forward pass gives the exact change). These certificates instead hold for the
DISTRIBUTION the held-out samples were drawn from. Each one promises, with probability at
least ``1 - delta`` over the draw of n i.i.d. samples that played no part in training, in
choosing the mask or in choosing delta:

* ``accuracy_lower_bound``: accuracy of the pruned network >= the value (Clopper-Pearson);
* ``disagreement_upper_bound``: P(pruned and unpruned predictions differ) <= the value
  (Clopper-Pearson);
* ``quantile_upper_bound``: the q-quantile of ``||f~(x) - f(x)||_2`` <= the value
  (order statistic, or DKW).

Each holds on its own at level 1 - delta; all of ``pruning_certificates`` hold together with
probability at least ``1 - 3 delta`` (union bound).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from scipy import stats
from torch import nn

from .errors import TheoryError
from .network import check_inputs, check_network, forward_all, pruned_by_position

QUANTILE_METHODS = ("order_statistic", "dkw")


def _check_probability(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value < 1.0:
        raise TheoryError(f"{name} must lie in (0, 1), got {value!r}")
    return value


def _samples(name: str, values: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise TheoryError(f"{name} must be a non-empty 1-D sequence of samples, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise TheoryError(f"{name} contains NaN or infinite values")
    return array


def _successes(name: str, outcomes: torch.Tensor | np.ndarray | Sequence[bool]) -> tuple[int, int]:
    array = _samples(name, outcomes)
    if not np.isin(array, (0.0, 1.0)).all():
        raise TheoryError(f"{name} must hold booleans (0 or 1) per sample")
    return int(array.sum()), array.size


def accuracy_lower_bound(correct: torch.Tensor | np.ndarray | Sequence[bool], delta: float = 0.05) -> float:
    """Clopper-Pearson lower confidence bound on the accuracy, from per-sample correctness on held-out data.

    With k correct of n: ``B^{-1}(delta; k, n - k + 1)`` (the delta-quantile of a Beta
    distribution), 0 when k = 0 (Clopper and Pearson, Biometrika 1934). Promise: P(accuracy >=
    value) >= 1 - delta over the draw of the n samples; exact (conservative) for every true
    accuracy, not asymptotic.
    """
    delta = _check_probability("delta", delta)
    k, n = _successes("correct", correct)
    return 0.0 if k == 0 else float(stats.beta.ppf(delta, k, n - k + 1))


def disagreement_upper_bound(disagree: torch.Tensor | np.ndarray | Sequence[bool], delta: float = 0.05) -> float:
    """Clopper-Pearson upper confidence bound on P(pruned prediction != unpruned prediction).

    With k disagreements of n: ``B^{-1}(1 - delta; k + 1, n - k)``, 1 when k = n. Promise:
    P(true disagreement rate <= value) >= 1 - delta over the draw of the n held-out samples.
    Needs no labels.
    """
    delta = _check_probability("delta", delta)
    k, n = _successes("disagree", disagree)
    return 1.0 if k == n else float(stats.beta.ppf(1.0 - delta, k + 1, n - k))


def order_statistic_rank(n: int, q: float, delta: float) -> int | None:
    """Smallest r with ``P(Binomial(n, q) >= r) <= delta`` (1-based), or None when even r = n fails."""
    tail = stats.binom.sf(np.arange(n), n, q)  # tail[r - 1] = P(Binomial >= r)
    ranks = np.nonzero(tail <= delta)[0]
    return int(ranks[0]) + 1 if ranks.size else None


def quantile_upper_bound(values: torch.Tensor | np.ndarray | Sequence[float], q: float, delta: float = 0.05,
                         method: str = "order_statistic") -> float:
    """Upper confidence bound on the q-quantile ``xi_q = inf{t : F(t) >= q}`` of the sampled distribution.

    * ``order_statistic``: ``X_(r)``, the r-th smallest sample, with r the smallest rank such
      that ``P(Binomial(n, q) >= r) <= delta``. ``X_(r) < xi_q`` needs r samples below
      ``xi_q``, each with probability ``F(xi_q-) <= q``, so it has probability at most delta,
      for any distribution (e.g. David and Nagaraja, Order Statistics, section 7.1).
    * ``dkw``: ``X_(ceil(n (q + eps)))`` with ``eps = sqrt(log(1/delta) / (2n))``, from the
      one-sided Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant (Ann. Probab.
      1990; valid for delta <= 1/2, above which the two-sided ``log(2/delta)`` is used):
      ``F >= F_n - eps`` everywhere with probability >= 1 - delta, so ``F(X_(r)) >= r/n - eps
      >= q``. Looser for one q, but the same event covers every q at once.

    Returns ``inf`` when n is too small for the requested q and delta (e.g. q = 0.95,
    delta = 0.05 needs n >= 59 for the order statistic).
    """
    q, delta = _check_probability("q", q), _check_probability("delta", delta)
    if method not in QUANTILE_METHODS:
        raise TheoryError(f"method must be one of {QUANTILE_METHODS}, got {method!r}")
    ordered = np.sort(_samples("values", values))
    n = ordered.size
    if method == "order_statistic":
        rank = order_statistic_rank(n, q, delta)
    else:
        level = q + math.sqrt(math.log((1.0 if delta <= 0.5 else 2.0) / delta) / (2.0 * n))
        rank = math.ceil(n * level) if level <= 1.0 else None  # rounding up is the safe side
    return math.inf if rank is None else float(ordered[rank - 1])


def pruning_certificates(model: nn.Sequential, pruned: Mapping[int, torch.Tensor], inputs: torch.Tensor,
                         labels: torch.Tensor, *, delta: float = 0.05, q: float = 0.95) -> dict[str, float]:
    """All three certificates for ``model`` with ``pruned`` (layer index -> weight) on HELD-OUT ``inputs``.

    Returns the empirical values beside the bounds: 'accuracy', 'accuracy_lower_bound',
    'disagreement', 'disagreement_upper_bound', 'quantile' (empirical q-quantile of
    ``||f~ - f||_2``), 'quantile_upper_bound' (order statistic), 'n', 'delta', 'q'.
    """
    delta, q = _check_probability("delta", delta), _check_probability("q", q)
    modules = check_network(model)
    inputs = check_inputs(modules, inputs)
    if not isinstance(labels, torch.Tensor) or labels.shape != inputs.shape[:1]:
        raise TheoryError(f"labels must be a tensor of shape ({inputs.shape[0]},)")
    weights = pruned_by_position(modules, pruned)
    original = forward_all(modules, inputs)[-1]
    changed = forward_all(modules, inputs, weights)[-1]
    correct = (changed.argmax(dim=1) == labels.to(changed.device)).cpu().numpy()
    disagree = (changed.argmax(dim=1) != original.argmax(dim=1)).cpu().numpy()
    distances = (changed - original).flatten(1).norm(dim=1).cpu().numpy()
    return {"accuracy": float(correct.mean()), "accuracy_lower_bound": accuracy_lower_bound(correct, delta),
            "disagreement": float(disagree.mean()),
            "disagreement_upper_bound": disagreement_upper_bound(disagree, delta),
            "quantile": float(np.quantile(distances, q)),
            "quantile_upper_bound": quantile_upper_bound(distances, q, delta),
            "n": float(len(distances)), "delta": float(delta), "q": float(q)}
