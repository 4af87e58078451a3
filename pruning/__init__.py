"""Layer-wise pruning methods behind one interface and a registry."""
from . import feta, lobs, nettrim  # noqa: F401  (importing registers "feta", "lobs", "lobs-exact", "nettrim")
from .base import (LayerPruner, PruneResult, PruningError, available_methods, check_sparsity,
                   count_to_prune, get_method, register)
from .capture import LayerActivations, capture_activations, capture_cascade
from .feta import FeTa, feta_objective, feta_solve
from .lobs import LOBS, LOBSExact, downdate_inverse, layer_hessian, obs_update
from .masks import apply_mask, layer_mask, make_permanent, weight_sparsity
from .nettrim import NetTrim, constraint_violation, nettrim_admm
from .threshold import (HardThreshold, global_magnitude_masks, hard_threshold, magnitude_mask,
                        threshold_residual)

__all__ = [
    "LayerPruner", "PruneResult", "PruningError", "available_methods", "check_sparsity",
    "count_to_prune", "get_method", "register", "apply_mask", "layer_mask", "make_permanent",
    "weight_sparsity", "HardThreshold", "global_magnitude_masks", "hard_threshold",
    "magnitude_mask", "threshold_residual",
    "LayerActivations", "capture_activations", "capture_cascade",
    "FeTa", "feta_objective", "feta_solve",
    "LOBS", "LOBSExact", "downdate_inverse", "layer_hessian", "obs_update",
    "NetTrim", "constraint_violation", "nettrim_admm",
]
