"""Exact k-nearest neighbours in torch: float32 screening with a proven error bound, float64
selection and distances.

``knn`` is the one entry point. Two searches give the same answer:

* ``brute``: every pair screened, a tile of queries at a time (``screening.select_nearest``);
* ``bounded``: principal-component lower bounds rule out almost all pairs before any
  full-dimension work (``bounded``, with ``clusters``, ``tiles`` and ``workers``); on a CPU
  it pays for many points in many dimensions (``search.use_bounded_search``).
"""
from .search import knn, resolve_device, use_bounded_search

__all__ = ["knn", "resolve_device", "use_bounded_search"]
