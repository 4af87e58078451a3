"""Layer-wise pruning methods behind one interface and a registry."""
from .base import (LayerPruner, PruneResult, PruningError, available_methods, check_sparsity,
                   count_to_prune, get_method, register)
from .masks import apply_mask, layer_mask, make_permanent, weight_sparsity
from . import feta  # noqa: F401  (registers "feta")
from .threshold import (HardThreshold, global_magnitude_masks, hard_threshold, magnitude_mask,
                        threshold_residual)

__all__ = [
    "LayerPruner", "PruneResult", "PruningError", "available_methods", "check_sparsity",
    "count_to_prune", "get_method", "register", "apply_mask", "layer_mask", "make_permanent",
    "weight_sparsity", "HardThreshold", "global_magnitude_masks", "hard_threshold",
    "magnitude_mask", "threshold_residual",
]
