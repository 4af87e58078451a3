"""Sub-commands of ``hardthresh``: each turns parsed arguments into a stored table or figures."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import presets
from .device import resolve_device
from .errors import WorkbenchError
from .experiments.bounds import run_bounds
from .experiments.depth import run_depth
from .experiments.dimension_estimates import dataset_dimensions, points_dimensions, run_validation
from .experiments.dimension_link import run_dimension_link
from .experiments.methods import pruning_time_table, run_methods
from .figures import bounds as bounds_figures
from .figures import depth as depth_figures
from .figures import dimension as dimension_figures
from .figures import methods as methods_figures
from .layerwise import hidden_linear_names, prune_network
from .models import MODEL_NAMES, prunable_layers
from .store import config_dict, ensure_writable_dir, load_table, save_table, save_torch, atomic_write
from .training import evaluate, train_or_load

DEPTH_TABLE = "depth.parquet"
METHODS_TABLE = "methods_accuracy.parquet"
RETRAIN_TABLE = "methods_retraining.parquet"
PRUNING_TIME_TABLE = "pruning_time.parquet"
BOUNDS_TABLE = "bounds.parquet"
VALIDATION_TABLE = "dimension_validation.parquet"
DATASET_DIMENSION_TABLE = "dimension_datasets.parquet"
POINTS_DIMENSION_TABLE = "dimension_points.parquet"
LINK_TABLE = "dimension_link.parquet"


@dataclass
class Context:
    preset: str
    dataset: str
    device: torch.device
    seeds: tuple[int, ...] | None
    results: Path
    cache: Path
    figures: Path
    data_dir: Path | None
    download: bool
    progress: bool


def context(args: argparse.Namespace) -> Context:
    from .data import DATASET_NAMES

    presets.check_preset(args.preset)
    if args.dataset not in DATASET_NAMES:
        raise WorkbenchError(f"unknown dataset {args.dataset!r}; choose from {', '.join(DATASET_NAMES)}")
    results = ensure_writable_dir(args.results)
    return Context(args.preset, args.dataset, resolve_device(args.device), args.seeds, results,
                   ensure_writable_dir(args.cache or results / "cache"), args.figures, args.data_dir,
                   not args.no_download, not args.no_progress)


def train(args: argparse.Namespace) -> None:
    ctx = context(args)
    for seed in ctx.seeds or (0,):
        config = presets.training(ctx.preset, args.model, ctx.dataset, seed=seed)
        trained = train_or_load(config, ctx.cache, ctx.device, data_dir=ctx.data_dir,
                                download=ctx.download, progress=ctx.progress)
        print(json.dumps({"config": config_dict(config), "metrics": trained.metrics}))


def run_and_store(ctx: Context, config, runner: Callable, table_name: str) -> None:
    """Run one experiment from its config and store its table with the config."""
    table = runner(config, ctx.cache, ctx.device, ctx.data_dir, ctx.download, ctx.progress)
    path = save_table(ctx.results / table_name, table, config)
    print(f"table: {path} ({len(table)} rows)")


def depth(args: argparse.Namespace) -> None:
    ctx = context(args)
    run_and_store(ctx, presets.depth_config(ctx.preset, ctx.dataset, ctx.seeds, model=args.model), run_depth,
                  DEPTH_TABLE)


def prune(args: argparse.Namespace) -> None:
    """Prune layers of one trained network with one method; write the checkpoint and its metrics."""
    from pruning import make_permanent

    ctx = context(args)
    config = presets.training(ctx.preset, args.model, ctx.dataset, seed=(ctx.seeds or (0,))[0])
    trained = train_or_load(config, ctx.cache, ctx.device, data_dir=ctx.data_dir, download=ctx.download,
                            progress=ctx.progress)
    names = _layer_names(trained.model, args.layers)
    samples = trained.split.x_train[:args.samples].to(ctx.device)
    pruned = prune_network(trained.model, names, args.method, args.sparsity, samples, cascade=not args.parallel)
    x, y = trained.split.x_test.to(ctx.device), trained.split.y_test.to(ctx.device)
    metrics = {"method": args.method, "sparsity": args.sparsity, "layers": names,
               "accuracy_before": evaluate(trained.model, x, y)["accuracy"],
               "accuracy_after": evaluate(pruned.model, x, y)["accuracy"],
               "pruning_time_s": pruned.pruning_time_s, "layer_info": pruned.infos,
               "train_config": config_dict(config)}
    stem = f"{args.model}-{ctx.dataset}-{args.method}-s{args.sparsity:g}-{'_'.join(names)}"
    out = ensure_writable_dir(ctx.results / "pruned")
    model = make_permanent(pruned.model)
    save_torch(out / f"{stem}.pt", {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                    "metrics": metrics})
    text = json.dumps(metrics, indent=2, default=float)
    atomic_write(out / f"{stem}.json", lambda tmp: tmp.write_text(text))
    print(text)


def _layer_names(model, spec: str) -> list[str]:
    if spec == "hidden":
        return hidden_linear_names(model)
    known = [name for name, _ in prunable_layers(model)]
    names = [part.strip() for part in spec.split(",")]
    for name in names:
        if name not in known:
            raise WorkbenchError(f"--layers: no prunable layer {name!r}; this model has {', '.join(known)}")
    return names


def methods(args: argparse.Namespace) -> None:
    ctx = context(args)
    config = presets.methods_config(ctx.preset, ctx.dataset, ctx.seeds)
    accuracy, retraining = run_methods(config, ctx.cache, ctx.device, ctx.data_dir, ctx.download, ctx.progress)
    for name, table in ((METHODS_TABLE, accuracy), (RETRAIN_TABLE, retraining),
                        (PRUNING_TIME_TABLE, pruning_time_table(accuracy))):
        path = save_table(ctx.results / name, table, config)
        print(f"methods table: {path} ({len(table)} rows)")


def bounds(args: argparse.Namespace) -> None:
    ctx = context(args)
    run_and_store(ctx, presets.bounds_config(ctx.preset, ctx.dataset, ctx.seeds), run_bounds, BOUNDS_TABLE)


def dimension(args: argparse.Namespace) -> None:
    """Estimates for a file of points, or for the datasets plus the estimator validation."""
    ctx = context(args)
    if args.points is not None:
        table = points_dimensions(read_points(args.points), n_bootstrap=args.bootstrap)
        save_table(ctx.results / POINTS_DIMENSION_TABLE, table)
        print(table[["method", "value", "ci_low", "ci_high", "n_points", "n_duplicates"]].to_string(index=False))
        return
    validation = presets.validation_config(ctx.preset)
    save_table(ctx.results / VALIDATION_TABLE, run_validation(validation), validation)
    config = presets.dataset_dimension_config(ctx.preset, ctx.dataset)
    table = dataset_dimensions(config, ctx.data_dir, ctx.download)
    path = save_table(ctx.results / DATASET_DIMENSION_TABLE, table, config)
    whole = table[table["group"] == "all"]
    print(whole[["dataset", "method", "k", "value", "ci_low", "ci_high", "published_mle_k20"]].to_string(index=False))
    print(f"dimension table: {path} ({len(table)} rows)")


def read_points(path: Path):
    """Points from .npy, .npz (first array) or .csv (no header), as a float array (N, D)."""
    import numpy as np

    if not path.is_file():
        raise WorkbenchError(f"--points: file {path} not found")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return archive[archive.files[0]]
        if path.suffix == ".csv":
            return np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, OSError) as err:
        raise WorkbenchError(f"--points: cannot read {path}: {err}") from None
    raise WorkbenchError(f"--points: unsupported file type {path.suffix!r}; use .npy, .npz or .csv")


def dimension_link(args: argparse.Namespace) -> None:
    ctx = context(args)
    run_and_store(ctx, presets.dimension_link_config(ctx.preset, ctx.dataset, ctx.seeds), run_dimension_link,
                  LINK_TABLE)


FIGURE_SETS = (
    (DEPTH_TABLE, (depth_figures.accuracy_vs_sparsity, depth_figures.degradation_vs_depth)),
    (METHODS_TABLE, (methods_figures.accuracy_vs_sparsity,
                     lambda t, o, s: methods_figures.accuracy_vs_sparsity(t, o, s, y="representation_change"))),
    (RETRAIN_TABLE, (methods_figures.retraining_curves, methods_figures.total_time)),
    (BOUNDS_TABLE, (bounds_figures.bounds_vs_depth, bounds_figures.tightness_table)),
    (VALIDATION_TABLE, (dimension_figures.estimator_validation, dimension_figures.validation_errors)),
    (DATASET_DIMENSION_TABLE, (dimension_figures.dataset_table,)),
    (LINK_TABLE, (dimension_figures.drop_vs_sparsity, dimension_figures.drop_vs_dimension,
                  dimension_figures.link_table)),
    (PRUNING_TIME_TABLE, (lambda t, o, s: [methods_figures.write_markdown_table(
        t, o / "pruning_time.md", "Pruning wall time per method and layer (seconds)")],)),
)


def figures(args: argparse.Namespace) -> None:
    """Draw the figures of every stored table; fail only when there is no table at all."""
    ctx = context(args)
    out = ensure_writable_dir(ctx.figures)
    found = [(ctx.results / name, draws) for name, draws in FIGURE_SETS if (ctx.results / name).is_file()]
    if not found:
        load_table(ctx.results / DEPTH_TABLE)  # raises the one-line "not found" error
    for source, draws in found:
        table = load_table(source)
        for draw in draws:
            for path in draw(table, out, str(source)):
                print(f"figure: {path}")


def reproduce(args: argparse.Namespace) -> None:
    """Every experiment of the preset, then every figure."""
    args.model = "cnn8"
    depth(args)
    methods(args)
    bounds(args)
    args.points = None
    dimension(args)
    dimension_link(args)
    figures(args)


def _model_option(default: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", default=default, choices=MODEL_NAMES, help="network to use")
    return add


def _nothing(parser: argparse.ArgumentParser) -> None:
    return None


def _prune_options(parser: argparse.ArgumentParser) -> None:
    from pruning import available_methods

    _model_option("fc")(parser)
    parser.add_argument("--method", default="threshold", choices=available_methods())
    parser.add_argument("--layers", default="hidden", help="comma-separated layer names, or 'hidden'")
    parser.add_argument("--sparsity", type=float, required=True, help="target sparsity in [0, 1)")
    parser.add_argument("--samples", type=int, default=10_000, help="training samples the method sees")
    parser.add_argument("--parallel", action="store_true", help="inputs from the unpruned network "
                        "(default: cascade, from the network pruned so far)")


def _dimension_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", type=Path, default=None, help="a .npy, .npz or .csv file of points (N, D)")
    parser.add_argument("--bootstrap", type=int, default=10, help="bootstrap resamples for the intervals")


COMMANDS: dict[str, tuple[Callable, str, Callable]] = {
    "train": (train, "train (or load from cache) a network of the preset", _model_option("fc")),
    "depth": (depth, "hard-threshold every layer alone and onward over a sparsity grid",
              _model_option("cnn8")),
    "prune": (prune, "prune layers of a trained network with one method", _prune_options),
    "methods": (methods, "FeTa, Net-Trim, L-OBS and thresholding: accuracy, pruning and retraining time",
                _nothing),
    "bounds": (bounds, "tightness report: every bound beside the measured perturbation", _nothing),
    "dimension": (dimension, "intrinsic dimension of the datasets (or of --points FILE), every estimator",
                  _dimension_options),
    "dimension-link": (dimension_link, "PCA and synthetic-manifold experiments: dimension against "
                       "robustness to hard thresholding", _nothing),
    "figures": (figures, "draw every figure from the stored result tables", _nothing),
    "reproduce": (reproduce, "run every experiment of the preset and draw every figure", _nothing),
}
