"""The workbench's user-facing error: the command line prints its message on one line and exits 2."""
from __future__ import annotations


class WorkbenchError(Exception):
    """Bad input or missing data; the message alone tells the user what to fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Every error the command line reports as one line: the packages' own errors, I/O and decompression.

    Anything else is a bug and keeps its traceback.
    """
    import gzip
    import zlib

    from pruning import PruningError
    from theory import TheoryError

    from .models import ModelError

    return (WorkbenchError, PruningError, TheoryError, ModelError, OSError, zlib.error, EOFError,
            gzip.BadGzipFile)
