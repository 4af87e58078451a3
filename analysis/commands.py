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
from .experiments.depth import run_depth
from .figures import depth as depth_figures
from .models import MODEL_NAMES
from .store import config_dict, ensure_writable_dir, load_table, save_table
from .training import train_or_load

DEPTH_TABLE = "depth.parquet"


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


def depth(args: argparse.Namespace) -> None:
    ctx = context(args)
    config = presets.depth_config(ctx.preset, ctx.dataset, ctx.seeds, model=args.model)
    table = run_depth(config, ctx.cache, ctx.device, ctx.data_dir, ctx.download, ctx.progress)
    path = save_table(ctx.results / DEPTH_TABLE, table, config)
    print(f"depth table: {path} ({len(table)} rows)")


def figures(args: argparse.Namespace) -> None:
    ctx = context(args)
    out = ensure_writable_dir(ctx.figures)
    drawn = []
    source = ctx.results / DEPTH_TABLE
    table = load_table(source)
    drawn += depth_figures.accuracy_vs_sparsity(table, out, str(source))
    drawn += depth_figures.degradation_vs_depth(table, out, str(source))
    for path in drawn:
        print(f"figure: {path}")


def reproduce(args: argparse.Namespace) -> None:
    """Every experiment of the preset, then every figure."""
    args.model = "cnn8"
    depth(args)
    figures(args)


def _model_option(default: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", default=default, choices=MODEL_NAMES, help="network to use")
    return add


def _nothing(parser: argparse.ArgumentParser) -> None:
    return None


COMMANDS: dict[str, tuple[Callable, str, Callable]] = {
    "train": (train, "train (or load from cache) a network of the preset", _model_option("fc")),
    "depth": (depth, "hard-threshold every layer alone and onward over a sparsity grid",
              _model_option("cnn8")),
    "figures": (figures, "draw every figure from the stored result tables", _nothing),
    "reproduce": (reproduce, "run every experiment of the preset and draw every figure", _nothing),
}
