"""The one error type of the theory package."""
from __future__ import annotations


class TheoryError(ValueError):
    """Bad input to a theory calculator; the message names the layer or parameter and the problem."""
