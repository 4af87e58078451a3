"""Entries of a screened tile under per-row and per-column limits: both implementations equal
a full comparison."""
from pathlib import Path

import numba
import pytest
import torch

from analysis.dimension.knn.tiles import entries_below, entries_within
from pruning.compiled import compiled

SHAPES = [(40, 64), (50, 61), (37, 8), (1, 16), (130, 200)]


def random_tile(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    screen = torch.randn(shape, generator=generator)
    row_limit = 0.1 * torch.randn(shape[0], generator=generator) - 1.0
    col_limit = 0.1 * torch.randn(shape[1], generator=generator) - 1.5
    return screen, row_limit, col_limit


def as_sorted_pairs(rows: torch.Tensor, cols: torch.Tensor, n_cols: int) -> torch.Tensor:
    found = torch.stack([rows, cols], dim=1)
    return found[torch.argsort(found[:, 0] * n_cols + found[:, 1])]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("along_rows", [True, False])
def test_entries_below_equals_a_full_comparison(shape, along_rows):
    screen, row_limit, col_limit = random_tile(shape)
    limit = row_limit if along_rows else col_limit
    expected = torch.nonzero(screen <= (limit[:, None] if along_rows else limit[None, :]))
    assert len(expected) > 0
    assert torch.equal(as_sorted_pairs(*entries_below(screen, limit, along_rows), shape[1]), expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_entries_within_finds_both_directions_in_one_pass(shape):
    screen, row_limit, col_limit = random_tile(shape, seed=1)
    by_row, by_col = entries_within(screen, row_limit, col_limit)
    assert torch.equal(as_sorted_pairs(*by_row, shape[1]), torch.nonzero(screen <= row_limit[:, None]))
    assert torch.equal(as_sorted_pairs(*by_col, shape[1]), torch.nonzero(screen <= col_limit[None, :]))
    assert by_row[0].dtype == torch.int64


def test_entries_within_without_column_limits_and_at_the_extremes():
    screen, row_limit, _ = random_tile((33, 70), seed=2)
    by_row, by_col = entries_within(screen, row_limit)
    assert by_col is None
    assert torch.equal(as_sorted_pairs(*by_row, 70), torch.nonzero(screen <= row_limit[:, None]))
    everything, _ = entries_within(screen, torch.full((33,), float("inf")))
    assert len(everything[0]) == 33 * 70  # every entry fits in the output
    nothing, none_by_col = entries_within(screen, torch.full((33,), -float("inf")),
                                          torch.full((70,), -float("inf")))
    assert len(nothing[0]) == 0 and len(none_by_col[0]) == 0


def _twice(x):
    return 2 * x


def test_compiled_loops_are_cached_in_the_user_cache_not_beside_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)  # numba re-reads it when it compiles
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    source_cache = Path(__file__).parent / "__pycache__"
    before = set(source_cache.glob("*_twice*"))
    assert compiled(_twice)(21) == 42
    assert list((tmp_path / "hardthresh" / "numba").rglob("*_twice*.nbi"))
    assert set(source_cache.glob("*_twice*")) == before
    assert numba.config.CACHE_DIR == ""
