"""The experiments, found by module name: each module here follows ``analysis.contract``.

Discovery reads only the modules' names and docstrings (no import), so the command line
can list every experiment at once without importing torch. ``load`` imports one.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).parent
# Order of ``hardthresh reproduce`` and of the README's tables.
ORDER = ("depth", "methods", "bounds", "dimension", "dimension_link", "generalization")


@lru_cache(maxsize=None)
def experiment_modules() -> tuple[str, ...]:
    """Module names of every experiment, in ``ORDER`` first, then alphabetically."""
    found = [m.name for m in pkgutil.iter_modules([str(_HERE)]) if not m.name.startswith("_")]
    return tuple(sorted(found, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name)))


def command_name(module: str) -> str:
    return module.replace("_", "-")


def module_name(command: str) -> str:
    return command.replace("-", "_")


def summary(module: str) -> str:
    """First line of the module's docstring, read without importing it."""
    tree = ast.parse((_HERE / f"{module}.py").read_text())
    return (ast.get_docstring(tree) or module).strip().splitlines()[0]


def load(module: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{module}")
