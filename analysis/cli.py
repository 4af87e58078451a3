"""The ``hardthresh`` command line: one sub-command per experiment, plus train, prune, figures, reproduce.

The parser is built for the chosen command only, so ``hardthresh --help`` imports no
experiment (nor torch) and answers at once.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .commands import TOOLS, command
from .experiments import command_name, experiment_modules, summary

DEFAULT_RESULTS = Path("results")
DEFAULT_FIGURES = Path("figures")


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line ``hardthresh: error: ...`` and exit status 2, no usage block."""

    def error(self, message: str):
        print(f"hardthresh: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be non-negative, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must not repeat, got {text!r}")
    return seeds


def common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--preset", default="quick", choices=("quick", "paper", "smoke"),
                        help="quick (the default run; hours on 2 CPU cores, see the README), paper (GUIDE "
                             "section 3) or smoke (minutes; tests only)")
    parent.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist", "cifar10", "digits"),
                        help="dataset to train and measure on")
    parent.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parent.add_argument("--seeds", type=_seeds, default=None, help="comma-separated seeds, e.g. 0,1,2")
    parent.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="result tables folder")
    parent.add_argument("--cache", type=Path, default=None, help="checkpoint and cell cache (default RESULTS/cache)")
    parent.add_argument("--figures", type=Path, default=DEFAULT_FIGURES, help="figures folder")
    parent.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default $HARDTHRESH_DATA_DIR)")
    parent.add_argument("--no-download", action="store_true", help="never download missing data")
    parent.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parent.add_argument("--workers", type=int, default=1,
                        help="local worker processes for the cells (default 1: this process)")
    parent.add_argument("--scheduler", default=None,
                        help="address of a Dask scheduler (e.g. tcp://host:8786) to run the cells on")
    return parent


def command_names() -> list[str]:
    return [command_name(m) for m in experiment_modules()] + list(TOOLS)


def top_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hardthresh", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in experiment_modules():
        sub.add_parser(command_name(module), help=summary(module), add_help=False)
    for name, (_, text, _) in TOOLS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The full parser of one command (imports that command's module only)."""
    handler, text, options = command(name)
    parser = OneLineParser(prog=f"hardthresh {name}", description=text, parents=[common_options()])
    for flag, keywords in options:
        parser.add_argument(flag, **keywords)
    parser.set_defaults(handler=handler, command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in command_names():
        top_parser().parse_args(argv)  # prints help, or the one-line error for an unknown command
        return 2
    args = command_parser(argv[0]).parse_args(argv[1:])
    start = time.perf_counter()
    from .errors import user_errors

    try:
        args.handler(args)
    except user_errors() as err:
        print(f"hardthresh: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hardthresh: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"hardthresh {args.command}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
