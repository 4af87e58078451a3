"""Layer-wise pruning methods behind one interface and a registry, and network pruning."""
from . import feta, lobs, nettrim  # noqa: F401  (importing registers them; refit below registers its own)
from .base import (LayerPruner, PruneResult, PruningError, available_methods, check_sparsity,
                   count_to_prune, get_method, register)
from .capture import LayerActivations, capture_activations, capture_cascade
from .feta import FeTa, feta_objective, feta_solve
from .layers import PRUNABLE_TYPES, followed_by_relu, hidden_layers, is_prunable, prunable_layers
from .lobs import LOBS, LOBSExact, downdate_inverse, layer_hessian, obs_update
from .masks import apply_mask, layer_mask, make_permanent, weight_sparsity
from .network import PrunedNetwork, hidden_layer_names, last_hidden_representation, prune_network
from .nettrim import NetTrim, constraint_violation, nettrim_admm
from .refit import ThresholdRefit, refit
from .threshold import (HardThreshold, global_magnitude_masks, hard_threshold, magnitude_mask,
                        threshold_residual)

__all__ = [
    "LayerPruner", "PruneResult", "PruningError", "available_methods", "check_sparsity",
    "count_to_prune", "get_method", "register", "apply_mask", "layer_mask", "make_permanent",
    "weight_sparsity", "HardThreshold", "global_magnitude_masks", "hard_threshold",
    "magnitude_mask", "threshold_residual",
    "LayerActivations", "capture_activations", "capture_cascade",
    "PRUNABLE_TYPES", "followed_by_relu", "hidden_layers", "is_prunable", "prunable_layers",
    "PrunedNetwork", "hidden_layer_names", "last_hidden_representation", "prune_network",
    "FeTa", "feta_objective", "feta_solve",
    "LOBS", "LOBSExact", "downdate_inverse", "layer_hessian", "obs_update",
    "NetTrim", "constraint_violation", "nettrim_admm",
    "ThresholdRefit", "refit",
]
