"""Pure calculators for pruning theory: norms, Lipschitz constants, perturbation bounds,
margin certificates and the Sokolic et al. generalization bound. No I/O, no training.

Entry points for the analysis side: ``layer_bounds`` (one pruned layer),
``multi_layer_bounds`` (several), ``certified_accuracy``.
"""
from .errors import TheoryError
from .generalization import (input_margin_lower_bound, log_complexity_ratio_after_shrink,
                             log_sokolic_complexity_term, pruned_output_margin, sokolic_generalization_bound)
from .lipschitz import (maxpool_lipschitz, maxpool_window_multiplicity, module_lipschitz_constants,
                        network_lipschitz, tail_lipschitz)
from .margin import accuracy, certified_accuracy, certified_mask, interval_certified_mask, logit_margin
from .network import check_network, forward_all, module_input_shapes
from .norms import (conv_norm_upper_bound, conv_operator_norm, frobenius_norm, layer_operator_norm,
                    residual_norms, spectral_norm)
from .perturbation import (jacobian_estimate, layer_bounds, measured_perturbation, multi_layer_bounds,
                           neyshabur_lemma2_bound, recursive_bound)
from .propagation import BallBox, crown_upper_bound, propagate

__all__ = [
    "TheoryError",
    "input_margin_lower_bound", "log_complexity_ratio_after_shrink", "log_sokolic_complexity_term",
    "pruned_output_margin", "sokolic_generalization_bound",
    "maxpool_lipschitz", "maxpool_window_multiplicity", "module_lipschitz_constants", "network_lipschitz",
    "tail_lipschitz",
    "accuracy", "certified_accuracy", "certified_mask", "interval_certified_mask", "logit_margin",
    "check_network", "forward_all", "module_input_shapes",
    "conv_norm_upper_bound", "conv_operator_norm", "frobenius_norm", "layer_operator_norm", "residual_norms",
    "spectral_norm",
    "jacobian_estimate", "layer_bounds", "measured_perturbation", "multi_layer_bounds", "neyshabur_lemma2_bound",
    "recursive_bound",
    "BallBox", "crown_upper_bound", "propagate",
]
