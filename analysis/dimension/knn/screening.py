"""Float32 screening of squared distances with a proven error bound, and the float64 check.

``S_ij = ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j`` is one product ``left_i . right_j`` with
``left_i = [x_i, ||x_i||^2, 1]`` and ``right_j = [-2 x_j, 1, ||x_j||^2]``. In float32 its
error is at most ``gamma * |left_i|.|right_j| <= 2 gamma (||x_i||^2 + ||x_j||^2)``, bounded per
row by ``tolerance_i = 4 gamma (||x_i||^2 + max_j ||x_j||^2)`` with
``gamma = n u / (1 - n u)``, ``n = D + 2`` (Higham, "Accuracy and Stability of Numerical
Algorithms", eq. 3.5; the factor 2 to spare covers the float32 rounding of the norms, which
needs ``n u`` small: hence ``points.MAX_FEATURES``, where ``n u <= 1/8`` and ``gamma <= 1/7``).
"""
from __future__ import annotations

import torch

CANDIDATE_MARGIN = 8
WIDE_GROUP = 64  # rows ranked together when their limit reaches past the kept candidates
GATHER_BYTES = 2 * 2**20  # float64 rows gathered at a time; small enough to stay in cache
UNIT_ROUNDOFF = torch.finfo(torch.float32).eps / 2


class ScreenedPoints:
    """Float32 screening factors and tolerances of float64 points (N, D).

    Screening works on the centred points (centring shrinks the norms, hence the tolerance);
    exact distances are measured on the points as given, by differences, so that equal
    distances in the data stay equal. ``labels`` (default: the row numbers) break such ties
    in favour of the lower label.
    """

    def __init__(self, points: torch.Tensor, labels: torch.Tensor | None = None):
        self.points, self.labels = points, labels
        n, dim = points.shape
        centred = points - points.mean(dim=0)
        self.sq64 = torch.linalg.vector_norm(centred, dim=1) ** 2
        # filled in place: fresh large tensors are slow to allocate on some machines
        self.left = torch.empty(n, dim + 2, dtype=torch.float32, device=points.device)
        self.x32 = self.left[:, :dim]
        self.x32.copy_(centred)
        del centred
        sq32 = torch.linalg.vector_norm(self.x32, dim=1) ** 2
        self.left[:, dim], self.left[:, dim + 1] = sq32, 1.0
        self.right = torch.empty_like(self.left)
        torch.mul(self.x32, -2.0, out=self.right[:, :dim])
        self.right[:, dim], self.right[:, dim + 1] = 1.0, sq32
        nu = (dim + 2) * UNIT_ROUNDOFF
        self.gamma = nu / (1 - nu)
        # per row, a bound on the screening error against any point
        self.tolerance = (4 * self.gamma * (self.sq64 + self.sq64.max()) + 1e-12).float()

    def screen(self, rows: torch.Tensor | slice, cols: torch.Tensor | slice) -> torch.Tensor:
        """Screened squared distances, rows x cols (self-pairs included)."""
        left = self.left[rows] if isinstance(rows, slice) else self.left.index_select(0, rows)
        right = self.right[cols] if isinstance(cols, slice) else self.right.index_select(0, cols)
        return left @ right.T


def select_nearest(points: ScreenedPoints, queries: torch.Tensor, pool: torch.Tensor,
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest of each query among ``pool`` (sorted positions that must hold them all),
    self excluded: their float64 squared distances, increasing, and their labels.

    Only a j with ``S_ij <= S_i(k) + 2 tol_i`` (``S_i(k)`` the k-th smallest screened value)
    can be among the k nearest. Those j, the k smallest and the few too close to call, are
    measured in float64 by differences and ranked (ties: lower label first). Rows ranked
    together rank as many candidates as the widest of them; a row's extra candidates are past
    its own limit, hence strictly farther than k others, and never change its k nearest.
    Rows whose limit reaches past the ``k + CANDIDATE_MARGIN`` kept candidates are ranked in
    groups of similar width, so that one such row does not widen all the others.
    """
    everyone = len(pool) == len(points.points)  # pool is 0..N-1: no gather needed
    screen = points.screen(queries, slice(None) if everyone else pool)
    _exclude_self(screen, queries, pool)
    values, positions = torch.topk(screen, min(k + CANDIDATE_MARGIN, len(pool)), dim=1, largest=False)
    limit = values[:, k - 1] + 2 * points.tolerance[queries]
    inside = values <= limit[:, None]
    wide = inside[:, -1] & (values.shape[1] < len(pool))
    d2 = torch.empty(len(queries), k, dtype=torch.float64, device=screen.device)
    nearest = torch.empty(len(queries), k, dtype=torch.int64, device=screen.device)
    narrow = torch.nonzero(~wide).flatten()
    if len(narrow):
        width = int(inside[narrow].sum(dim=1).max())
        d2[narrow], nearest[narrow] = _k_ranked(points, queries[narrow], pool[positions[narrow, :width]], k)
    wide = torch.nonzero(wide).flatten()
    if len(wide):
        counts = (screen[wide] <= limit[wide, None]).sum(dim=1)
        for group in torch.argsort(counts).split(WIDE_GROUP):
            rows = wide[group]
            kept = torch.topk(screen[rows], int(counts[group].max()), dim=1, largest=False).indices
            d2[rows], nearest[rows] = _k_ranked(points, queries[rows], pool[kept], k)
    return d2, nearest if points.labels is None else points.labels[nearest]


def _k_ranked(points: ScreenedPoints, rows: torch.Tensor, cand: torch.Tensor,
              k: int) -> tuple[torch.Tensor, torch.Tensor]:
    d2, ranked = rank_by_float64(points, rows, cand)
    return d2[:, :k], ranked[:, :k]


def _exclude_self(screen: torch.Tensor, queries: torch.Tensor, pool: torch.Tensor) -> None:
    """Set ``screen[i, j] = inf`` where ``pool[j] == queries[i]`` (``pool`` sorted)."""
    where = torch.searchsorted(pool, queries).clamp(max=len(pool) - 1)
    own = torch.nonzero(pool[where] == queries).flatten()
    screen[own, where[own]] = float("inf")


def rank_by_float64(points: ScreenedPoints, rows: torch.Tensor,
                    cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates of each row sorted by float64 squared distance (ties: lower label first)."""
    if points.labels is None:
        cand, _ = cand.sort(dim=1)
    else:
        cand = cand.gather(1, points.labels[cand].argsort(dim=1))
    d2 = squared_distances(points.points, rows, cand)
    d2, order = d2.sort(dim=1, stable=True)
    return d2, cand.gather(1, order)


def squared_distances(x64: torch.Tensor, rows: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """``||x_i - x_j||^2`` in float64 by differences, for each row i and its candidates j."""
    d2 = torch.empty(cand.shape, dtype=torch.float64, device=cand.device)
    block = max(1, GATHER_BYTES // (8 * cand.shape[1] * x64.shape[1]))
    for start in range(0, len(rows), block):
        r, c = rows[start:start + block], cand[start:start + block]
        diff = x64.index_select(0, c.reshape(-1)).view(*c.shape, x64.shape[1])
        d2[start:start + block] = diff.sub_(x64[r, None, :]).pow_(2).sum(dim=2)
    return d2
