"""Time, convergence and test accuracy (no retraining) of the layer-wise methods at 90% sparsity.

The converged Fashion-MNIST 784-100-100-10 fc net (``analysis.training.fit``: Adam 1e-3, batch
300, at most 30 epochs, early stopping with patience 3 on the 5,000 validation images; trained
once and cached under ``--cache``), each hidden layer pruned alone with all 55,000 training
images as its data, the rest of the net unchanged. FeTa runs twice on the first layer: the
solver before issue 14 (``benchmarks/feta_before.py``, its defaults) and today's default.
Every method runs with its default options; "converged" is the method's own report.

    python benchmarks/bench_pruning.py [--sparsity 0.9] [--threads 2] [--cache DIR]
        [--methods feta-before,feta,nettrim,lobs,threshold-refit] [--layers 1,2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feta_before import FeTaBefore  # noqa: E402

from analysis.data.config import DataConfig, load_split  # noqa: E402
from analysis.training import TrainConfig, build_model, fit, num_classes  # noqa: E402
from pruning import get_method  # noqa: E402

CONFIG = TrainConfig(data=DataConfig("fashion-mnist"), model="fc", epochs=30, patience=3)
METHODS = ("threshold", "feta-before", "feta", "nettrim", "lobs", "threshold-refit")
LAYERS = {1: 1, 2: 4}  # hidden layer -> index in the Sequential


def converged_net(split, cache: Path) -> tuple[nn.Sequential, str]:
    """The early-stopped network of ``CONFIG``, from ``cache`` when it is there."""
    path = cache / "bench_pruning_fc_converged.pt"
    model = build_model(CONFIG.model, tuple(split.x_train.shape[1:]), num_classes(split), seed=CONFIG.seed,
                        hidden=CONFIG.hidden)
    if path.exists():
        model.load_state_dict(torch.load(path))
        return model.eval(), "cached"
    model, metrics = fit(CONFIG, split, torch.device("cpu"), progress=False)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return model.eval(), f"trained {metrics['epochs_trained']} epochs in {metrics['train_time_s']:.0f} s"


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def method(name: str):
    return FeTaBefore() if name == "feta-before" else get_method(name)


def run(model: nn.Sequential, index: int, name: str, inputs, outputs, sparsity: float, split) -> str:
    layer = model[index]
    start, cpu = time.perf_counter(), time.process_time()
    result = method(name).prune(layer, inputs, outputs, sparsity)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    original = (layer.weight.detach().clone(), layer.bias.detach().clone())
    with torch.no_grad():
        layer.weight.copy_(result.weight)
        layer.bias.copy_(result.bias)
    score = accuracy(model, split.x_test, split.y_test)
    with torch.no_grad():
        layer.weight.copy_(original[0])
        layer.bias.copy_(original[1])
    info = result.info
    objective = f"{info['objective']:.4g}" if "objective" in info else "-"
    lam = f"  lam {info['lam']:.4g}, {info['nonzeros_at_lam']} non-zeros" if "nonzeros_at_lam" in info else ""
    return (f"{name:<17}{seconds:>9.2f}{cpu:>9.2f}{score:>10.4f}{str(info['converged']):>11}"
            f"{info['iterations']:>12}{objective:>12}{lam}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hardthresh-bench")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--layers", default="1,2")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_split(CONFIG.data)
    model, how = converged_net(split, args.cache)
    x = split.x_train.reshape(len(split.x_train), -1)
    print(f"784-100-100-10 on Fashion-MNIST ({how}); unpruned test accuracy "
          f"{accuracy(model, split.x_test, split.y_test):.4f}; {len(x)} samples, sparsity {args.sparsity}, "
          f"{args.threads} threads; wall and process CPU seconds")
    wanted = args.methods.split(",")
    for hidden in map(int, args.layers.split(",")):
        index = LAYERS[hidden]
        with torch.no_grad():
            inputs = model[:index](x)
            outputs = model[index](inputs)
        print(f"\nhidden layer {hidden} ({model[index].in_features} -> {model[index].out_features})")
        print(f"{'method':<17}{'wall s':>9}{'cpu s':>9}{'accuracy':>10}{'converged':>11}{'iterations':>12}"
              f"{'objective':>12}")
        for name in METHODS:
            if name in wanted and not (name == "feta-before" and hidden != 1):
                print(run(model, index, name, inputs, outputs, args.sparsity, split), flush=True)


if __name__ == "__main__":
    main()
