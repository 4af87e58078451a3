"""Where the differential bound's looseness comes from, on one layer of the quick LeNet-5.

Prunes one prunable layer of the cached (or newly trained) quick-preset LeNet-5 by hard
thresholding and bounds ``max ||f~(x') - f(x')||_2`` over the eps-balls around the first test
images, with the default budgets and with larger ones, beside the default PGD attack and a stronger
one. Prints the median bound / attack per setting: if a larger budget or attack moves it, the budget
or the attack is the limit; if not, the relaxation is. Then it locates the relaxation's loss: at
every relu input it compares the unpruned activation's bounds (``differential_boxes``) with each
sampled unit's range found by PGD (a lower bound on the true range). Not a ratio benchmark, so
``make bench`` skips it.

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
from theory import check_network, differential_attack, differential_bounds, differential_boxes
from theory.differential import DEFAULT_FLOPS_PER_SAMPLE, ZONOTOPE_ELEMENTS, signed_gradient_ascent

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
    parser.add_argument("--units", type=int, default=64, help="units attacked per relu input")
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
    print_activation_looseness(model, pruned, x, args.eps, args.units)


def print_activation_looseness(model, pruned, x, eps: float, units: int) -> None:
    """Per relu input: median (bound width / attacked range) over sampled units, and the fraction of
    units the bounds leave unstable against the fraction the attack shows to be unstable."""
    modules = check_network(model)
    boxes = differential_boxes(model, pruned, x, eps)
    lo, hi = (x - eps).clamp_min(0), (x + eps).clamp_max(1)
    print("relu input | bound width / attacked range (median) | unstable by the bounds | unstable by the attack")
    for position in [p for p, module in enumerate(modules) if isinstance(module, torch.nn.ReLU)]:
        v_lo, v_hi = (boxes[position][key].flatten(1) for key in ("v_lo", "v_hi"))
        chosen = torch.linspace(0, v_lo.shape[1] - 1, min(units, v_lo.shape[1])).long()
        low, high = unit_ranges(torch.nn.Sequential(*modules[:position]), chosen, lo, hi, eps)
        width = (v_hi - v_lo)[:, chosen]
        ratio = (width / (high - low).clamp_min(1e-12)).quantile(0.5)
        print(f"module {position} | {ratio:.2f} | {((v_lo < 0) & (v_hi > 0))[:, chosen].double().mean():.2f} | "
              f"{((low < 0) & (high > 0)).double().mean():.2f}")


def unit_ranges(prefix: torch.nn.Module, units: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, eps: float,
                steps: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """Least and largest value (N, U) of each chosen unit of ``prefix`` found by signed-gradient steps in
    the box [lo, hi] from its centre: every unit, minimised and maximised, is one row of a batch."""
    count, rows = len(units), len(lo)
    sign = torch.tensor([-1.0, 1.0], dtype=lo.dtype).repeat_interleave(rows * count)
    index = units.repeat(2 * rows)
    low, high = (t.repeat_interleave(count, 0).repeat(2, *[1] * (t.ndim - 1)) for t in (lo, hi))
    best, _ = signed_gradient_ascent(lambda p: sign * prefix(p).flatten(1).gather(1, index[:, None]).squeeze(1),
                                     (low + high) / 2, low, high, eps, steps)
    least, largest = (sign * best).view(2, rows, count)
    return least, largest


if __name__ == "__main__":
    main()
