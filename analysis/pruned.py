"""``hardthresh prune``: one method on chosen layers of a trained network, saved under a name no other run shares.

Every argument is checked before any data is read or network trained. The output files
are named by a readable prefix and the hash of everything that made them (the network's
checkpoint key, method, sparsity, layers, samples and mode), so no run overwrites another's.
"""
from __future__ import annotations

import argparse
import json
import math

from .errors import WorkbenchError


def prune_options() -> tuple[tuple[str, dict], ...]:
    return (
        ("--method", dict(default="threshold", help="pruning method (see pruning.available_methods())")),
        ("--layers", dict(default="hidden", help="comma-separated layer names, or 'hidden' (every hidden "
                                                 "fully connected layer)")),
        ("--sparsity", dict(type=float, required=True, help="target sparsity in [0, 1)")),
        ("--samples", dict(type=int, default=10_000, help="training samples the method sees (>= 1)")),
        ("--parallel", dict(action="store_true", help="inputs from the unpruned network (default: cascade, "
                                                      "from the network pruned so far)")),
    )


def check_prune_arguments(args: argparse.Namespace) -> list[str] | None:
    """Check method, sparsity, samples and layer names; the explicit layer names (None = 'hidden')."""
    from pruning import available_methods, check_sparsity

    if args.method not in available_methods():
        raise WorkbenchError(f"--method: unknown method {args.method!r}; choose from {', '.join(available_methods())}")
    if math.isnan(args.sparsity):
        raise WorkbenchError("--sparsity must lie in [0, 1), got nan")
    check_sparsity(args.sparsity, "--sparsity")
    if args.samples < 1:
        raise WorkbenchError(f"--samples must be >= 1, got {args.samples}")
    if args.layers == "hidden":
        return None
    names = [part.strip() for part in args.layers.split(",")]
    if len(set(names)) != len(names) or "" in names:
        raise WorkbenchError(f"--layers: each layer name once, got {args.layers!r}")
    return names


def prune_command(args: argparse.Namespace, runtime) -> None:
    from .models import hidden_linear_names, layer_names
    from .presets import preset_training

    explicit = check_prune_arguments(args)
    config = preset_training(args.preset, args.model, args.dataset)
    known = layer_names(config)
    for name in explicit or ():
        if name not in known:
            raise WorkbenchError(f"--layers: no prunable layer {name!r}; this model has {', '.join(known)}")
    names = explicit or hidden_linear_names(config)
    if not names:
        raise WorkbenchError(f"--layers: model {args.model!r} has no hidden fully connected layer; name layers "
                             f"from {', '.join(known)}")
    for seed in args.seeds or (0,):
        print(json.dumps(prune_one(config, seed, names, args, runtime), indent=2, default=float))


def prune_one(config, seed: int, names: list[str], args: argparse.Namespace, runtime) -> dict:
    from pruning import make_permanent, prune_network

    from .hashing import stable_hash
    from .networks import trained_network, with_seed
    from .store import config_dict, ensure_writable_dir, save_torch, write_json
    from .training import evaluate

    trained = trained_network(with_seed(config, seed), runtime)
    device = runtime.torch_device()
    samples = trained.split.x_train[:args.samples].to(device)
    mode = "parallel" if args.parallel else "cascade"
    pruned = prune_network(trained.model, names, args.method, args.sparsity, samples, cascade=not args.parallel)
    x, y = trained.split.x_test.to(device), trained.split.y_test.to(device)
    made_by = {"network": trained.key, "method": args.method, "sparsity": args.sparsity, "layers": names,
               "samples": len(samples), "mode": mode}
    metrics = {**made_by, "seed": seed, "accuracy_before": evaluate(trained.model, x, y)["accuracy"],
               "accuracy_after": evaluate(pruned.model, x, y)["accuracy"],
               "pruning_time_s": pruned.pruning_time_s, "layer_info": pruned.infos,
               "train_config": config_dict(trained.config)}
    _check_finite(pruned.model, metrics)
    stem = (f"{config.model}-{config.data.label}-seed{seed}-{args.method}-s{args.sparsity:g}-"
            f"{stable_hash(made_by, 12)}")
    out = ensure_writable_dir(args.results / "pruned")
    model = make_permanent(pruned.model)
    metrics["checkpoint"] = str(out / f"{stem}.pt")
    save_torch(out / f"{stem}.pt", {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                    "metrics": metrics})
    write_json(out / f"{stem}.json", metrics)
    return metrics


def _check_finite(model, metrics: dict) -> None:
    import torch

    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WorkbenchError(f"{metrics['method']} produced non-finite values in {name}; nothing was saved")
