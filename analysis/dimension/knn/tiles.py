"""The few entries of a screened tile that lie under per-row or per-column limits.

``entries_within(screen, row_limit, col_limit)`` returns the ``(i, j)`` with
``screen[i, j] <= row_limit[i]`` and those with ``screen[i, j] <= col_limit[j]``: the
candidates that one product of two tiles yields for the rows of each tile.

On a CPU one pass of a compiled loop finds both (numba: torch has no operation that compares
and collects in one pass, and its several passes per direction took about three times as
long on the 1024 x 1024 tiles of Fashion-MNIST). Elsewhere ``entries_below`` does it in torch,
once per direction.

The compiled loop is cached on disk in the user's cache folder
(``$XDG_CACHE_HOME/hardthresh/numba``, default ``~/.cache/hardthresh/numba``, or
``NUMBA_CACHE_DIR`` when set), never beside this file.
"""
from __future__ import annotations

import numpy as np
import torch

from pruning.compiled import compiled

Entries = tuple[torch.Tensor, torch.Tensor]
CHUNK = 64  # entries tested at once, branch-free, before any is collected


def entries_within(screen: torch.Tensor, row_limit: torch.Tensor,
                   col_limit: torch.Tensor | None = None) -> tuple[Entries, Entries | None]:
    """Rows and columns of the entries under ``row_limit[i]``, and (unless ``col_limit`` is
    None) of those under ``col_limit[j]``; each as int64 index tensors."""
    if screen.device.type != "cpu":
        by_col = None if col_limit is None else entries_below(screen, col_limit, along_rows=False)
        return entries_below(screen, row_limit, along_rows=True), by_col
    n_rows, n_cols = screen.shape
    column_test = np.full(n_cols, -np.inf, dtype=np.float32) if col_limit is None else col_limit.numpy()
    found = np.empty((4, n_rows * n_cols), dtype=np.int32)  # room for every entry
    n_by_row, n_by_col = _collect(screen.numpy(), row_limit.numpy(), column_test, found)

    def indices(part: int, count: int) -> torch.Tensor:
        return torch.from_numpy(found[part, :count]).long()

    by_col = None if col_limit is None else (indices(2, n_by_col), indices(3, n_by_col))
    return (indices(0, n_by_row), indices(1, n_by_row)), by_col


@compiled
def _collect(screen, row_limit, col_limit, found):
    """``found[0:2]``: rows and columns under the row limit; ``found[2:4]``: under the column
    limit. Returns both counts."""
    n_rows, n_cols = screen.shape
    n_by_row = n_by_col = 0
    for i in range(n_rows):
        limit, row = row_limit[i], screen[i]
        for start in range(0, n_cols, CHUNK):
            stop = min(start + CHUNK, n_cols)
            below = 0
            for j in range(start, stop):  # no branch, so it vectorises
                below += (row[j] <= limit) | (row[j] <= col_limit[j])
            if below == 0:
                continue
            for j in range(start, stop):
                if row[j] <= limit:
                    found[0, n_by_row], found[1, n_by_row] = i, j
                    n_by_row += 1
                if row[j] <= col_limit[j]:
                    found[2, n_by_col], found[3, n_by_col] = i, j
                    n_by_col += 1
    return n_by_row, n_by_col


def entries_below(screen: torch.Tensor, limit: torch.Tensor, along_rows: bool,
                  group: int = 8) -> Entries:
    """Row and column indices of the (few) entries with ``screen[i, j] <= limit[i]``
    (``along_rows``) or ``screen[i, j] <= limit[j]``, in torch (any device).

    First the minimum over groups of ``group`` entries (a reduction over a middle axis, which
    vectorises), then only the groups that pass are looked at entry by entry: about half the
    work of comparing every entry and collecting the hits with ``torch.nonzero``.
    """
    n_rows, n_cols = screen.shape
    if along_rows and n_cols % group == 0:
        width = n_cols // group  # group g holds columns g, g + width, g + 2 width, ...
        grouped = screen.view(n_rows, group, width)
        rows, classes = torch.nonzero(grouped.amin(dim=1) <= limit[:, None]).unbind(1)
        hit, member = torch.nonzero(grouped[rows, :, classes] <= limit[rows, None]).unbind(1)
        return rows[hit], classes[hit] + width * member
    if not along_rows and n_rows % group == 0:
        grouped = screen.view(n_rows // group, group, n_cols)  # groups of consecutive rows
        blocks, cols = torch.nonzero(grouped.amin(dim=1) <= limit[None, :]).unbind(1)
        hit, member = torch.nonzero(grouped[blocks, :, cols] <= limit[cols, None]).unbind(1)
        return blocks[hit] * group + member, cols[hit]
    mask = screen <= (limit[:, None] if along_rows else limit[None, :])
    return torch.nonzero(mask).unbind(1)
