import numpy as np
import pytest

from laws.optimum import NEAR_OPTIMAL_BAND, scale_optimum


def _bowl(lr_opt=2**-6, b_opt=512, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    lrs = 2.0 ** np.arange(-10, -2)
    bts = 2.0 ** np.arange(7, 12)
    L, B = np.meshgrid(lrs, bts, indexing="ij")
    loss = 2.0 + 0.05 * (np.log2(L / lr_opt)) ** 2 + 0.03 * (np.log2(B / b_opt)) ** 2
    loss = loss + noise * rng.standard_normal(loss.shape)
    return L.ravel(), B.ravel(), loss.ravel()


def test_vertex_of_a_convex_bowl_is_recovered_between_grid_points():
    lr, bt, loss = _bowl(lr_opt=2**-6.4, b_opt=2**9.3)
    o = scale_optimum(1e5, 3e5, lr, bt, loss)
    assert not o.on_edge
    assert np.log2(o.lr) == pytest.approx(-6.4, abs=0.05)
    assert np.log2(o.batch_tokens) == pytest.approx(9.3, abs=0.05)
    assert o.n_runs == lr.size
    assert o.n_band >= 1
    assert o.loss == pytest.approx(loss.min())


def test_optimum_outside_the_grid_is_flagged_on_edge_with_the_axis():
    lr, bt, loss = _bowl(lr_opt=2**-1)  # above the highest LR sampled (2^-3)
    o = scale_optimum(1e5, 3e5, lr, bt, loss)
    assert o.on_edge and o.lr_on_edge and not o.batch_on_edge
    assert o.lr == o.grid_lr == 2**-3


def test_diverged_runs_are_excluded():
    lr, bt, loss = _bowl()
    loss = loss.copy()
    loss[np.argmax(lr)] = np.nan
    o = scale_optimum(1e5, 3e5, lr, bt, loss)
    assert o.n_runs == lr.size - 1


def test_near_optimal_band_counts_runs_within_a_quarter_percent():
    lr = np.array([1e-3, 2e-3, 4e-3])
    loss = np.array([2.0, 2.0 * (1 + NEAR_OPTIMAL_BAND / 2), 2.1])
    o = scale_optimum(1, 1, lr, np.full(3, 256.0), loss)
    assert o.n_band == 2


def test_all_runs_diverged_is_a_clear_error():
    with pytest.raises(ValueError, match="no finished run"):
        scale_optimum(1e5, 3e5, [1e-3, 2e-3], [256, 256], [np.nan, np.inf])


def test_shape_mismatch_and_bad_values():
    with pytest.raises(ValueError, match="one entry per run"):
        scale_optimum(1, 1, [1e-3], [256, 512], [2.0])
    with pytest.raises(ValueError, match="positive"):
        scale_optimum(1, 1, [-1e-3], [256], [2.0])


def test_point_order_does_not_matter():
    lr, bt, loss = _bowl(noise=0.01, seed=3)
    perm = np.random.default_rng(1).permutation(lr.size)
    a = scale_optimum(1, 1, lr, bt, loss)
    b = scale_optimum(1, 1, lr[perm], bt[perm], loss[perm])
    assert (a.lr, a.batch_tokens, a.loss, a.on_edge, a.n_band) == (b.lr, b.batch_tokens, b.loss, b.on_edge, b.n_band)


def test_bootstrap_interval_covers_the_true_optimum_and_band_method():
    lr, bt, loss = _bowl(lr_opt=2**-6.3, b_opt=2**9.4, noise=0.003, seed=5)
    o = scale_optimum(1, 1, lr, bt, loss, n_boot=200)
    assert o.lr_interval[0] <= 2**-6.3 <= o.lr_interval[1]
    assert o.batch_interval[0] <= o.batch_tokens <= o.batch_interval[1]
    band = scale_optimum(1, 1, lr, bt, loss, method="band")
    assert abs(np.log2(band.lr) + 6.3) < 0.6
    with pytest.raises(ValueError, match="method"):
        scale_optimum(1, 1, lr, bt, loss, method="median")


def test_a_diverged_run_above_the_best_brackets_the_lr_a_failed_one_does_not():
    # A bowl whose optimum (2^-4) is at the first LR that diverged: the runs at 2^-4 and up diverged (+inf) or
    # failed (NaN). Diverged, they say the optimum is below them; failed, they say nothing.
    lr, bt, loss = _bowl(lr_opt=2**-4)
    loss = np.where(lr >= 2**-4, np.inf, loss)
    diverged = scale_optimum(1e5, 3e5, lr, bt, loss)
    assert not diverged.lr_on_edge
    assert diverged.n_runs == int(np.isfinite(loss).sum())
    failed = scale_optimum(1e5, 3e5, lr, bt, np.where(np.isinf(loss), np.nan, loss))
    assert failed.lr_on_edge
    # the best run is the highest finished LR in both; only the edge flag differs
    assert diverged.grid_lr == failed.grid_lr == 2**-5
