"""RowGrams: the per-row weighted Grams stay exact whichever way they are built or updated."""
import torch

from pruning.layerdata import RowGrams


def augmented(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)


def assert_exact(grams: RowGrams, x: torch.Tensor, weights: torch.Tensor, wanted: torch.Tensor) -> None:
    xa = augmented(x)
    for row in range(wanted.shape[0]):
        slots = grams.valid[row].nonzero()[:, 0]
        index = grams.index[row, slots]
        assert sorted(index.tolist()) == wanted[row].nonzero()[:, 0].tolist()
        expected = (xa[:, index] * weights[:, row, None]).T @ xa[:, index] / x.shape[0]
        torch.testing.assert_close(grams.gram[row][slots][:, slots], expected)
        holes = ~grams.valid[row]
        assert not bool(grams.gram[row][holes].any() or grams.gram[row][:, holes].any())


def test_row_grams_stay_exact_under_rank_updates_and_support_changes():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(400, 10, generator=gen, dtype=torch.float64)
    weights = torch.rand(400, 3, generator=gen, dtype=torch.float64)
    grams = RowGrams(x, 3, delta=0.0, floor=0.0)
    wanted = torch.rand(3, 11, generator=gen) < 0.5
    wanted[:, -1] = True
    grams.track(wanted, weights)
    weights = weights + 0.3 * torch.rand(400, 3, generator=gen, dtype=torch.float64)
    grams.update(weights)
    wanted[0, :5] = ~wanted[0, :5]
    wanted[2, 7] = True
    grams.track(wanted, weights)
    assert_exact(grams, x, weights, wanted)


def test_updates_of_few_or_many_samples_read_either_layout_and_agree():
    # 20 moved samples are gathered by rows, 300 by columns (RowGrams._gather's cost rule)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(400, 10, generator=gen, dtype=torch.float64)
    weights = torch.rand(400, 2, generator=gen, dtype=torch.float64)
    wanted = torch.rand(2, 11, generator=gen) < 0.6
    wanted[:, -1] = True
    grams = RowGrams(x, 2, delta=0.0, floor=0.0)
    grams.track(wanted, weights)
    for moved in (20, 300):
        rows = torch.randperm(400, generator=gen)[:moved]
        weights[rows] += torch.rand(moved, 2, generator=gen, dtype=torch.float64)
        assert grams.update(weights).tolist() == [0, 1]
        assert_exact(grams, x, weights, wanted)


def test_grams_of_one_weight_on_most_samples_are_built_from_the_full_gram():
    # weights 0 or 2, as in the relu-aware refit: more than half live, every coordinate wanted,
    # so the complement w (G - sum over the samples of weight 0) saves more than G costs
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(400, 10, generator=gen, dtype=torch.float64)
    weights = 2.0 * (torch.rand(400, 8, generator=gen, dtype=torch.float64) < 0.8)
    weights[:, 0] = 2.0 * (torch.rand(400, generator=gen, dtype=torch.float64) < 0.3)  # a row built directly
    wanted = torch.ones(8, 11, dtype=torch.bool)
    grams = RowGrams(x, 8, delta=0.5, floor=0.5)
    grams.track(wanted, weights)
    assert grams._full_gram is not None
    assert_exact(grams, x, weights, wanted)


def test_dropping_most_coordinates_compacts_the_rows_and_keeps_them_exact():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(300, 30, generator=gen, dtype=torch.float64)
    weights = torch.rand(300, 4, generator=gen, dtype=torch.float64)
    grams = RowGrams(x, 4, delta=0.0, floor=0.0)
    wanted = torch.ones(4, 31, dtype=torch.bool)
    grams.track(wanted, weights)
    wanted = torch.rand(4, 31, generator=gen) < 0.3  # holes everywhere, then a compaction
    wanted[:, -1] = True
    grams.track(wanted, weights)
    assert grams.index.shape[1] == int(wanted.sum(1).max())
    weights[:50] += 0.5
    grams.update(weights)
    assert_exact(grams, x, weights, wanted)


def test_factors_leave_the_stored_grams_bit_for_bit_unchanged():
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(200, 6, generator=gen, dtype=torch.float64)
    grams = RowGrams(x, 3, delta=0.0, floor=0.0)
    wanted = torch.rand(3, 7, generator=gen) < 0.7
    wanted[:, -1] = True
    grams.track(wanted, torch.rand(200, 3, generator=gen, dtype=torch.float64))
    stored = grams.gram.clone()
    lower = grams.factors(1e-3)
    assert torch.equal(grams.gram, stored)
    ridged = stored.clone()
    ridged.diagonal(dim1=1, dim2=2).copy_(grams.diagonals(1e-3))
    torch.testing.assert_close(lower @ lower.transpose(1, 2), ridged)


def test_a_row_holding_only_rounding_factorises_and_leaves_the_other_rows_bit_for_bit():
    # A refit's unit whose samples all leave the quadratic piece keeps a Gram of float32 rounding only,
    # its diagonal possibly below 0 (a dead unit of the quick fc net at 90%, mean diagonal -4.7e-8):
    # the ridge relative to that diagonal cannot reach the rounding, and the refit used to fail.
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(300, 6, generator=gen)
    grams = RowGrams(x, 3, delta=0.0, floor=0.0)
    weights = torch.full((300, 3), 2.0)
    grams.track(torch.ones(3, 7, dtype=torch.bool), weights)
    before = grams.factors(1e-6)
    weights[:, 1] = 0.0
    grams.update(weights)
    grams.gram[1].diagonal().sub_(1e-7)  # rounding of the size seen, below 0
    lower = grams.factors(1e-6)
    assert torch.equal(lower[[0, 2]], before[[0, 2]])
    assert bool(torch.isfinite(lower[1]).all()) and bool((lower[1].diagonal() > 0).all())
    step = torch.cholesky_solve(torch.zeros(3, 7, 1, dtype=torch.float64), lower)
    assert not bool(step.any())  # a dead unit's gradient is 0, and so is its step
