"""The one error of the intrinsic-dimension code."""
from __future__ import annotations

from ..errors import WorkbenchError


class DimensionError(WorkbenchError, ValueError):
    """Bad input to an intrinsic-dimension routine; the message names the culprit and the
    allowed range. A ``WorkbenchError``, so the command line prints it as its one-line error."""
