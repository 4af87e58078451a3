"""Pure calculators for pruning theory: certified norms, Lipschitz constants, perturbation bounds,
the depth profile, margin and distribution-level certificates, and the Sokolic et al.
generalization bound with its covering constant. No I/O, no training.

Three ways in: ``layer_bounds`` / ``multi_layer_bounds`` (per layer, per sample),
``depth_profile`` (error against remaining depth, split into residual x gain x looseness) and
``pruning_certificates`` (held-out samples, confidence 1 - delta).
"""
from .certificates import (accuracy_lower_bound, disagreement_upper_bound, order_statistic_rank,
                           pruning_certificates, quantile_upper_bound)
from .correlation import pooled_rank_correlation
from .covering import CoveringNumbers, covering_constant, covering_numbers
from .depth import depth_profile
from .differential import certificate_attack, differential_attack, differential_bounds, differential_boxes
from .errors import TheoryError
from .generalization import (input_margin_lower_bound, log_complexity_ratio_after_shrink,
                             log_sokolic_complexity_term, pruned_generalization_bounds, pruned_output_margin,
                             sokolic_generalization_bound)
from .lipschitz import (maxpool_lipschitz, maxpool_window_multiplicity, module_lipschitz_constants,
                        network_lipschitz, tail_lipschitz)
from .margin import accuracy, certified_accuracy, certified_mask, interval_certified_mask, logit_margin
from .network import check_network, forward_all, module_input_shapes
from .norms import (circular_conv_norm, conv_norm_upper_bound, conv_operator_norm, conv_operator_norm_estimate,
                    dense_conv_norm, frobenius_norm, layer_operator_norm, residual_norms, spectral_norm)
from .perturbation import (jacobian_estimate, layer_bounds, measured_perturbation, multi_layer_bounds,
                           neyshabur_lemma2_bound, recursive_bound)
from .propagation import BallBox, crown_upper_bound, propagate

__all__ = [
    "accuracy_lower_bound", "disagreement_upper_bound", "order_statistic_rank", "pruning_certificates",
    "quantile_upper_bound",
    "pooled_rank_correlation",
    "CoveringNumbers", "covering_constant", "covering_numbers",
    "certificate_attack", "depth_profile", "differential_attack", "differential_bounds", "differential_boxes",
    "TheoryError",
    "input_margin_lower_bound", "log_complexity_ratio_after_shrink", "log_sokolic_complexity_term",
    "pruned_generalization_bounds", "pruned_output_margin", "sokolic_generalization_bound",
    "maxpool_lipschitz", "maxpool_window_multiplicity", "module_lipschitz_constants", "network_lipschitz",
    "tail_lipschitz",
    "accuracy", "certified_accuracy", "certified_mask", "interval_certified_mask", "logit_margin",
    "check_network", "forward_all", "module_input_shapes",
    "circular_conv_norm", "conv_norm_upper_bound", "conv_operator_norm", "conv_operator_norm_estimate",
    "dense_conv_norm", "frobenius_norm", "layer_operator_norm", "residual_norms", "spectral_norm",
    "jacobian_estimate", "layer_bounds", "measured_perturbation", "multi_layer_bounds", "neyshabur_lemma2_bound",
    "recursive_bound",
    "BallBox", "crown_upper_bound", "propagate",
]
