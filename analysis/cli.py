"""The ``hardthresh`` command line."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pruning import PruningError

from .errors import WorkbenchError
from .models import ModelError

DEFAULT_RESULTS = Path("results")
DEFAULT_FIGURES = Path("figures")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be non-negative, got {text!r}")
    return seeds


def common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--preset", default="quick", help="quick (minutes on a CPU) or paper (GUIDE section 3)")
    parent.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist, mnist, cifar10 or digits")
    parent.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parent.add_argument("--seeds", type=_seeds, default=None, help="comma-separated seeds, e.g. 0,1,2")
    parent.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="result tables folder")
    parent.add_argument("--cache", type=Path, default=None, help="checkpoint and cell cache (default RESULTS/cache)")
    parent.add_argument("--figures", type=Path, default=DEFAULT_FIGURES, help="figures folder")
    parent.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default $HARDTHRESH_DATA_DIR)")
    parent.add_argument("--no-download", action="store_true", help="never download missing data")
    parent.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parent


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(prog="hardthresh", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    parent = common_options()
    for name, (handler, help_text, add_arguments) in commands.COMMANDS.items():
        command = sub.add_parser(name, parents=[parent], help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        args.handler(args)
    except (WorkbenchError, PruningError, ModelError) as err:
        print(f"hardthresh: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hardthresh: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"hardthresh {args.command}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
