"""The experiment contract: what every module in ``analysis.experiments`` offers.

An experiment module defines

* ``Config``: a frozen dataclass; its class attribute ``GRID`` names the fields that are
  grid axes (seeds, sparsities, ...). ``preset(name, dataset, seeds, **options) -> Config``.
* ``cells(config) -> list[Cell]``: one cell per point of the grid.
* ``compute(cell, runtime) -> list[dict]``: the rows one cell measured. It may run in
  another process or on a Dask worker, so it reads everything from ``cell`` and ``runtime``.
* ``TABLES`` and ``tables(config, rows) -> {name: DataFrame}``: the tidy tables assembled
  from every cell's rows (each row carries its cell's coordinates).
* optionally ``OPTIONS``: extra command-line options, ``(flag, argparse keywords)`` pairs
  passed to ``preset`` by their destination name.
* optionally ``REVISION``: an int, bumped when a fix changes what ``compute`` returns for
  the same config, so that cells stored before the fix are not reused.
* optionally ``COORDINATE_REVISIONS``: ``{axis: {value: int}}``, the same for the cells of one
  coordinate value only (a fix to one pruning method: ``{"method": {"nettrim": 1}}``), so the
  other cells stay cached.

Its figures live in ``analysis.figures.<module name>`` as ``draw(tables, out_dir) -> paths``.

A cell's cache key is the hash of the config without its grid axes, plus the provenance
keys of the data it reads (and the module's ``REVISION`` when set), plus the cell's own coordinates
(and their ``COORDINATE_REVISIONS``, ``cell_key``): adding seeds or sparsities to a config reuses every
cell already computed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from .data.config import DataConfig
from .errors import WorkbenchError
from .hashing import jsonable, stable_hash


@dataclass(frozen=True)
class Cell:
    """One point of an experiment's grid: its config and its coordinates (name, value) pairs."""

    experiment: str
    config: Any
    coords: tuple[tuple[str, Any], ...]

    @classmethod
    def make(cls, experiment: str, config: Any, **coords: Any) -> "Cell":
        return cls(experiment, config, tuple(coords.items()))

    def __getitem__(self, name: str) -> Any:
        return dict(self.coords)[name]

    @property
    def coordinates(self) -> dict:
        return dict(self.coords)

    @property
    def key(self) -> str:
        return stable_hash(self.coordinates)


def cell_key(cell: Cell, revisions: dict[str, dict[Any, int]] | None = None) -> str:
    """The cell's folder name: the hash of its coordinates and of the revisions that ``revisions``
    (a module's ``COORDINATE_REVISIONS``) gives its coordinate values; ``cell.key`` when it gives none,
    so that declaring a revision for one value keeps every other cell's folder."""
    revisions = revisions or {}
    bumped = {name: revisions[name][value] for name, value in cell.coords
              if value in revisions.get(name, {})}
    return stable_hash({**cell.coordinates, "revisions": bumped}) if bumped else cell.key


def grid_axes(config: Any) -> tuple[str, ...]:
    return tuple(getattr(type(config), "GRID", ()))


def identity(config: Any) -> dict:
    """The config as a JSON-ready dict without its grid axes: what every cell of it shares."""
    fields = jsonable(config)
    for axis in grid_axes(config):
        fields.pop(axis, None)
    return {"kind": type(config).__name__, "fields": fields}


def data_configs(value: Any) -> Iterator[DataConfig]:
    """Every DataConfig inside a (nested) dataclass config."""
    if isinstance(value, DataConfig):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from data_configs(getattr(value, field.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from data_configs(item)


def check_unique(name: str, values: tuple) -> tuple:
    """``values`` if it has no repeats, else a one-line error naming the parameter and the repeat."""
    seen = set()
    for value in values:
        if value in seen:
            raise WorkbenchError(f"{name}: {value!r} is given twice")
        seen.add(value)
    return values


def method_subset(config: Any, methods: tuple[str, ...] | None) -> Any:
    """``config`` with its ``methods`` axis narrowed to ``methods`` (None: unchanged). ``methods`` is a grid
    axis, so the narrowed run reuses (and adds to) the cells of the full one."""
    if methods is None:
        return config
    check_unique("--methods", methods)
    return dataclasses.replace(config, methods=tuple(methods))


def comma_separated(text: str) -> tuple[str, ...]:
    """A command-line list: 'a,b' -> ('a', 'b')."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


METHODS_OPTION = ("--methods", dict(default=None, type=comma_separated,
                                    help="comma-separated pruning methods to run instead of the preset's, "
                                         "e.g. threshold,feta (the cells are shared with the full run)"))
