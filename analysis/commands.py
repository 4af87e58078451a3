"""What each ``hardthresh`` command does with its parsed arguments.

Every experiment command is the same loop over the contract (``analysis.contract``):
preset -> cells -> executor -> tables -> results folder. ``train``, ``prune``, ``figures``
and ``reproduce`` are the tools around it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from .errors import WorkbenchError
from .experiments import command_name, experiment_modules, load, module_name, summary

Options = tuple[tuple[str, dict], ...]


def command(name: str) -> tuple[Callable[[argparse.Namespace], None], str, Options]:
    """(handler, help text, extra options) of command ``name``."""
    if name in TOOLS:
        handler, text, options = TOOLS[name]
        return handler, text, options()
    module = module_name(name)
    return (lambda args: run_experiment(module, args)), summary(module), getattr(load(module), "OPTIONS", ())


def runtime(args: argparse.Namespace):
    """The Runtime of these arguments, after checking them (before any data is read or network trained)."""
    from .device import check_device_name
    from .runtime import Runtime
    from .store import ensure_writable_dir

    check_device_name(args.device)
    results = ensure_writable_dir(args.results)
    return Runtime(ensure_writable_dir(args.cache or results / "cache"), args.device, args.data_dir,
                   not args.no_download, not args.no_progress)


def executor(args: argparse.Namespace):
    from .executor import make_executor

    return make_executor(args.workers, args.scheduler)


def experiment_config(module: str, args: argparse.Namespace):
    options = {flag.lstrip("-").replace("-", "_"): None for flag, _ in getattr(load(module), "OPTIONS", ())}
    return load(module).preset(args.preset, args.dataset, args.seeds,
                               **{key: getattr(args, key) for key in options})


def run_experiment(module: str, args: argparse.Namespace, config=None) -> dict:
    """Run one experiment's sweep and store its tables in the results folder."""
    from .executor import run_sweep
    from .store import save_table

    config = config if config is not None else experiment_config(module, args)
    tables = run_sweep(module, config, runtime(args), executor(args), describe=f"{command_name(module)} cells")
    for name, table in tables.items():
        path = save_table(args.results / f"{name}.parquet", table, config)
        print(f"table: {path} ({len(table)} rows)")
    return tables


def train(args: argparse.Namespace) -> None:
    from .networks import checkpoint_path, trained_network, with_seed
    from .presets import preset_training
    from .store import config_dict

    run = runtime(args)
    config = preset_training(args.preset, args.model, args.dataset)
    for seed in args.seeds or (0,):
        trained = trained_network(with_seed(config, seed), run)
        print(json.dumps({"checkpoint": str(checkpoint_path(trained.config, run)),
                          "config": config_dict(trained.config), "metrics": trained.metrics}))


def figures(args: argparse.Namespace) -> None:
    """Draw the figures of every stored table; fail only when there is no table at all."""
    import importlib

    from .store import ensure_writable_dir, load_table

    out = ensure_writable_dir(args.figures)
    drawn = 0
    for module in experiment_modules():
        paths = {name: args.results / f"{name}.parquet" for name in load(module).TABLES}
        present = {name: path for name, path in paths.items() if path.is_file()}
        if not present:
            continue
        tables = {name: table for name, table in ((n, load_table(p)) for n, p in present.items()) if len(table)}
        if not tables:
            continue
        draw = importlib.import_module(f"analysis.figures.{module}").draw
        for path in draw(tables, out, {name: str(path) for name, path in present.items()}):
            print(f"figure: {path}")
            drawn += 1
    if not drawn:
        raise WorkbenchError(f"no result tables in {args.results}; run an experiment (or 'reproduce') first")


def report(args: argparse.Namespace) -> None:
    """The reproduction report (FIGURES/REPORT.md) from the stored result tables."""
    from .report import write_report
    from .store import ensure_writable_dir

    if not any(args.results.glob("*.parquet")):
        raise WorkbenchError(f"no result tables in {args.results}; run an experiment (or 'reproduce') first")
    readme = getattr(args, "readme", None)
    print(f"report: {write_report(args.results, ensure_writable_dir(args.figures), readme)}")
    if readme is not None:
        print(f"results section: {readme}")


def reproduce(args: argparse.Namespace) -> None:
    """Every experiment of the preset, then every figure and the report."""
    for module in experiment_modules():
        config = load(module).preset(args.preset, args.dataset, args.seeds)
        run_experiment(module, args, config)
    figures(args)
    report(args)


def _model_option(default: str) -> Options:
    from .models import MODEL_NAMES

    return (("--model", dict(default=default, choices=MODEL_NAMES, help="network to use")),)


def _prune_options() -> Options:
    from .pruned import prune_options

    return _model_option("fc") + prune_options()


def prune(args: argparse.Namespace) -> None:
    from .pruned import prune_command

    prune_command(args, runtime(args))


TOOLS: dict[str, tuple[Callable, str, Callable[[], Options]]] = {
    "train": (train, "train (or load from the cache) a network of the preset", lambda: _model_option("fc")),
    "prune": (prune, "prune layers of a trained network with one method; write the checkpoint and its metrics",
              _prune_options),
    "figures": (figures, "draw every figure and markdown table from the stored result tables", lambda: ()),
    "report": (report, "write the reproduction report, a verdict per claim, from the stored result tables",
               lambda: (("--readme", dict(type=Path, default=None,
                                          help="also replace the results block of this README")),)),
    "reproduce": (reproduce, "run every experiment of the preset, then draw every figure and write the report",
                  lambda: ()),
}
