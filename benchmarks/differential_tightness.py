"""Where the differential bound's looseness comes from, on one layer of the quick LeNet-5.

Prunes one prunable layer of the cached (or newly trained) quick-preset LeNet-5 by hard
thresholding and bounds ``max ||f~(x') - f(x')||_2`` over the eps-balls around the first test
images, with the default budgets and with larger ones, beside the default PGD attack and a stronger
one. Prints the median bound / attack per setting: if a larger budget or attack moves it, the budget
or the attack is the limit; if not, the relaxation is. Not a ratio benchmark, so ``make bench``
skips it.

    python benchmarks/differential_tightness.py [--layer 2] [--samples 8] [--cache results/cache]
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from analysis.networks import trained_network
from analysis.presets import preset_training
from analysis.runtime import Runtime
from pruning import hard_threshold
from pruning.layers import prunable_layers
from theory import differential_attack, differential_bounds
from theory.differential import DEFAULT_FLOPS_PER_SAMPLE, ZONOTOPE_ELEMENTS

BOUND_SETTINGS = {
    "default budgets": {},
    "4x zonotope elements": {"zonotope_elements": 4 * ZONOTOPE_ELEMENTS},
    "50x back-substitution flops": {"flops_per_sample": 50 * DEFAULT_FLOPS_PER_SAMPLE},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=int, default=2, help="prunable layer index (LeNet-5: 0-3)")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--eps", type=float, default=1 / 255)
    parser.add_argument("--samples", type=int, default=8, help="first test images")
    parser.add_argument("--cache", type=Path, default=Path("results/cache"))
    args = parser.parse_args()
    trained = trained_network(preset_training("quick", "lenet5", "fashion-mnist"),
                              Runtime(cache=args.cache, device="cpu", progress=False))
    model = copy.deepcopy(trained.model).double().eval()
    x = trained.split.x_test[:args.samples].double().cpu()
    name, layer = prunable_layers(model)[args.layer]
    pruned = {args.layer: hard_threshold(layer.weight.detach(), args.sparsity)}
    print(f"LeNet-5 (test accuracy {trained.metrics['test_accuracy']:.3f}), layer {name} at {args.sparsity:.0%}, "
          f"eps {args.eps:.4g}, {len(x)} images")
    attacks = {"default attack (4 x 40 steps)": differential_attack(model, pruned, x, args.eps),
               "strong attack (20 x 200 steps)": differential_attack(model, pruned, x, args.eps, steps=200,
                                                                     restarts=20)}
    for label, attack in attacks.items():
        print(f"{label}: mean {attack.mean():.4f}")
    attack = torch.maximum(*attacks.values())
    for label, options in BOUND_SETTINGS.items():
        start = time.perf_counter()
        bound = differential_bounds(model, pruned, x, args.eps, **options)["bound"]
        ratio = bound / attack
        print(f"{label}: median bound / attack {ratio.quantile(0.5):.3f} (per image "
              f"{', '.join(f'{r:.2f}' for r in ratio.tolist())}), {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
