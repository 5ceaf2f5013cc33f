from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.cpt import predict_cpt
from laws.fitting import FitError
from laws.loss import fit_chinchilla, fit_loss_compute
from laws.power import fit_power_law

TRUE_LC = dict(E=1.7, A=900.0, alpha=0.15)


def _lc_data(seed, n=40, noise=0.003):
    rng = np.random.default_rng(seed)
    C = np.logspace(16, 21, n)
    L = (TRUE_LC["E"] + TRUE_LC["A"] * C ** -TRUE_LC["alpha"]) * np.exp(noise * rng.standard_normal(n))
    return C, L


@pytest.mark.parametrize("seed", range(8))
def test_loss_compute_recovery_within_2_percent(seed):
    C, L = _lc_data(seed)
    f = fit_loss_compute(C, L, n_boot=0)
    assert f.alpha == pytest.approx(TRUE_LC["alpha"], rel=0.02)
    assert f.E == pytest.approx(TRUE_LC["E"], rel=0.02)
    assert f.converged and f.r2 > 0.99


def test_loss_compute_robust_to_10_percent_outliers():
    C, L = _lc_data(0)
    clean = fit_loss_compute(C, L, n_boot=0)
    bad = L.copy()
    idx = np.random.default_rng(1).choice(L.size, size=L.size // 10, replace=False)
    bad[idx] *= 1.3
    dirty = fit_loss_compute(C, bad, n_boot=0)
    assert dirty.alpha == pytest.approx(clean.alpha, rel=0.05)


def test_inverse_recovers_the_compute_and_refuses_loss_below_E():
    C, L = _lc_data(2)
    f = fit_loss_compute(C, L, n_boot=50)
    L0 = TRUE_LC["E"] + TRUE_LC["A"] * 1e20 ** -TRUE_LC["alpha"]
    eq = f.equivalent_compute(L0)
    assert eq.C_eq == pytest.approx(1e20, rel=0.15)
    assert eq.interval[0] <= eq.C_eq <= eq.interval[1]
    with pytest.raises(ValueError, match="at or below the fitted irreducible loss"):
        f.equivalent_compute(f.E * 0.99)
    for k in ("E", "A", "alpha"):
        lo, hi = f.intervals[k]
        assert lo <= getattr(f, k) <= hi


def test_loss_compute_clear_errors():
    with pytest.raises(FitError, match="at least 4"):
        fit_loss_compute([1e18, 1e19], [3.0, 2.9])
    with pytest.raises(FitError, match="finite and positive"):
        fit_loss_compute([1e18, 1e19, 1e20, -1], [3.0, 2.9, 2.8, 2.7])


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-3, 1e3), seed=st.integers(0, 1000))
def test_loss_compute_units_and_order_invariance(scale, seed):
    C, L = _lc_data(seed % 5, n=25)
    base = fit_loss_compute(C, L, n_boot=0)
    scaled = fit_loss_compute(C * scale, L, n_boot=0)  # FLOPs in other units: only A moves
    assert scaled.alpha == pytest.approx(base.alpha, rel=1e-3)
    assert scaled.E == pytest.approx(base.E, rel=1e-3)
    assert scaled.A == pytest.approx(base.A * scale**base.alpha, rel=1e-2)
    perm = np.random.default_rng(seed).permutation(C.size)
    shuffled = fit_loss_compute(C[perm], L[perm], n_boot=0)
    assert shuffled.alpha == pytest.approx(base.alpha, rel=1e-4)


TRUE_ND = dict(E=1.8, A=480.0, B=2100.0, alpha=0.34, beta=0.37)


def _nd_data(seed, noise=0.003):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.logspace(7, 10, 8), 8)
    D = np.tile(np.logspace(9, 12, 8), 8)
    L = TRUE_ND["E"] + TRUE_ND["A"] * N ** -TRUE_ND["alpha"] + TRUE_ND["B"] * D ** -TRUE_ND["beta"]
    return N, D, L * np.exp(noise * rng.standard_normal(L.size))


@pytest.mark.parametrize("seed", range(4))
def test_chinchilla_recovery_within_2_percent(seed):
    f = fit_chinchilla(*_nd_data(seed), n_boot=0)
    assert f.alpha == pytest.approx(TRUE_ND["alpha"], rel=0.02)
    assert f.beta == pytest.approx(TRUE_ND["beta"], rel=0.02)
    assert f.E == pytest.approx(TRUE_ND["E"], rel=0.02)


def test_chinchilla_robust_to_10_percent_outliers_and_gives_intervals():
    N, D, L = _nd_data(0)
    bad = L.copy()
    idx = np.random.default_rng(3).choice(L.size, size=L.size // 10, replace=False)
    bad[idx] *= np.random.default_rng(4).choice([0.8, 1.25], size=idx.size)
    f = fit_chinchilla(N, D, bad, n_boot=20)
    assert f.alpha == pytest.approx(TRUE_ND["alpha"], rel=0.05)
    assert f.beta == pytest.approx(TRUE_ND["beta"], rel=0.05)
    for k in ("alpha", "beta", "E"):
        lo, hi = f.intervals[k]
        assert lo <= getattr(f, k) <= hi
    n_opt = f.compute_optimal_n(1e21)
    assert 1e8 < n_opt < 1e11


@pytest.mark.parametrize("seed", range(6))
def test_power_law_recovery_and_robustness(seed):
    rng = np.random.default_rng(seed)
    C = np.logspace(18, 23, 30)
    y = 0.31 * C**-0.125 * np.exp(0.01 * rng.standard_normal(C.size))
    f = fit_power_law(C, y, n_boot=0)
    assert f.p == pytest.approx(-0.125, rel=0.02)
    y[rng.choice(C.size, 3, replace=False)] *= 4.0
    g = fit_power_law(C, y, n_boot=0)
    assert g.p == pytest.approx(-0.125, rel=0.05)


def test_cpt_prediction_reads_the_laws_at_c_eq_plus_budget():
    C, L = _lc_data(5)
    loss_law = fit_loss_compute(C, L, n_boot=50)
    rng = np.random.default_rng(0)
    lr_law = fit_power_law(C, 0.31 * C**-0.125 * np.exp(0.05 * rng.standard_normal(C.size)), n_boot=50)
    bt_law = fit_power_law(C, 0.29 * C**0.327 * np.exp(0.05 * rng.standard_normal(C.size)), n_boot=50)
    L0 = TRUE_LC["E"] + TRUE_LC["A"] * 1e19 ** -TRUE_LC["alpha"]
    p = predict_cpt(loss_law, lr_law, bt_law, L0, 1e19)
    assert p.C_eq == pytest.approx(1e19, rel=0.2)
    assert p.C_total == pytest.approx(p.C_eq + 1e19)
    assert p.lr == pytest.approx(0.31 * p.C_total**-0.125, rel=0.1)
    assert p.lr_interval[0] <= p.lr <= p.lr_interval[1]
    assert p.batch_interval[0] <= p.batch_tokens <= p.batch_interval[1]
    with pytest.raises(ValueError, match="budget_flops"):
        predict_cpt(loss_law, lr_law, bt_law, L0, -1)


def test_flat_or_unreachable_bootstrap_replicates_are_left_out_of_the_c_eq_interval():
    """A replicate with alpha at its bound (the resample showed no loss decrease) inverts to 0 or infinite
    compute: it is counted as undefined, like one whose E is above the checkpoint's loss, never used as an end."""
    import dataclasses

    from laws.loss import ALPHA_MIN, invertible_replicates

    rows = np.array([
        [1.0, 100.0, 0.2],        # C_eq = (100 / 1)^5 = 1e10
        [1.0, 50.0, 0.2],         # (50)^5 = 3.1e8
        [1.0, 0.1, ALPHA_MIN],    # flat: (0.1)^10000 underflows to 0
        [1.0, 10.0, ALPHA_MIN],   # flat: overflows to inf
        [2.5, 100.0, 0.2],        # E above the loss: unreachable
    ])
    vals, ok = invertible_replicates(rows, 2.0)
    assert ok.tolist() == [True, True, False, False, False]
    assert vals == pytest.approx([1e10, 50.0**5])
    rng = np.random.default_rng(0)
    C = np.logspace(9, 12, 12)
    fit = fit_loss_compute(C, 1.5 + 300.0 * C**-0.25 * np.exp(rng.normal(0, 0.01, C.size)), n_boot=50)
    flat = np.tile([[1.5, 0.05, ALPHA_MIN]], (10, 1))  # 10 degenerate replicates among 60
    boot = dataclasses.replace(fit.boot, samples=np.vstack([fit.boot.samples, flat]))
    eq = dataclasses.replace(fit, boot=boot).equivalent_compute(2.0)
    assert eq.interval[0] > 1e6 and np.isfinite(eq.interval[1])
    assert eq.undefined_share == pytest.approx(10 / 60, abs=0.02)


def test_compute_frontier_keeps_the_best_cell_of_each_compute_and_only_improvements():
    from laws.loss import compute_frontier

    C = np.array([1e10, 1.02e10, 2e10, 4e10, 4.1e10, 8e10])
    L = np.array([3.0, 2.9, 2.95, 2.7, 2.6, 2.65])
    # 1e10 and 1.02e10 are one level (2.9 wins); 2e10 spent more for worse; 4e10/4.1e10 one level (2.6); 8e10 worse.
    assert compute_frontier(C, L).tolist() == [False, True, False, False, True, False]
    assert compute_frontier(C[:1], L[:1]).tolist() == [True]


def test_loss_compute_law_on_the_frontier_recovers_the_compute_optimal_curve_of_an_isoflop_grid():
    """Several N at each compute (an isoFLOP grid of a known Chinchilla law): the frontier fit inverts a loss to
    the compute-optimal C within 5%; the fit on every cell is bent by the off-optimal N."""
    from laws.loss import compute_frontier, fit_loss_compute

    E, A, B, a, b = 1.8, 400.0, 2000.0, 0.34, 0.37

    def loss(N, D):
        return E + A * N ** -a + B * D ** -b

    C, L, opt = [], [], []
    for c in np.geomspace(1e17, 1e20, 7):
        Ns = np.geomspace(1e7, 1e10, 25)
        Ls = loss(Ns, c / (6 * Ns))
        opt.append(Ls.min())
        for n in np.geomspace(1e7, 1e10, 7):  # the grid's N: the optimum lies between them
            C.append(c)
            L.append(loss(n, c / (6 * n)))
    C, L = np.array(C), np.array(L)
    on = compute_frontier(C, L)
    assert on.sum() == 7
    front = fit_loss_compute(C[on], L[on], n_boot=0)
    every = fit_loss_compute(C, L, n_boot=0)
    target_C = np.geomspace(1e17, 1e20, 7)[3]
    l_target = float(L[on][3])
    assert abs(front.equivalent_compute(l_target).C_eq / target_C - 1) < 0.05
    assert abs(every.equivalent_compute(l_target).C_eq / target_C - 1) > 0.2


def test_cpt_bench_needs_proxies_with_bracketed_batch_optima_and_then_lands_each_continuation_in_the_band():
    """bench/data/cpt_grid.csv (two bases x two budgets, 7 LRs x 5 batches x 2 seeds each), predicted from fresh
    fortunes proxies: the first proxy table alone (batch optima on its lower edge) says ~65 tokens and misses the
    band by 1.2-4.2%; every fortunes AdamW proxy (widths 32-192) says 97-112 tokens, and every continuation's
    nearest grid point is within 0.25% of its best."""
    from laws.cpt_bench import PROXIES, bench

    _, every = bench()
    assert [round(r["pred_batch"]) for r in every] == [97, 101, 106, 112]
    assert all(r["gap"] <= 0.0025 for r in every) and all(r["saved"] > 0.9 for r in every)
    _, first = bench(proxies=PROXIES.split("+")[0])
    assert all(r["pred_batch"] < 70 for r in first) and min(r["gap"] for r in first) > 0.01


def test_cpt_warns_when_its_compute_laws_read_edge_optima_as_points():
    """fortunes_adamw.csv alone: 2 of 12 cells have both optima bracketed, 10 batch optima sit on the grid's lower
    edge, so eta*(C) and B*(C) fall back to every cell and the prediction says so; the reference grid has 4
    bracketed cells and fits on those alone, without a warning."""
    from laws.analysis import cpt_prediction, fit_cpt_laws, summarize
    from laws.table import SweepTable, read_tables

    root = Path(__file__).resolve().parents[2] / "bench" / "data"
    edge = cpt_prediction(summarize(SweepTable(read_tables(root / "fortunes_adamw.csv"))), 3.14, 1.7e10)
    (w,) = edge["warnings"]
    assert "2 of 12 cells have both optima inside their grid" in w and "10 batch optima" in w
    assert "B*(C) on all 12 cells" in edge["law"]
    ref = summarize(SweepTable(read_tables(root / "reference_grid.csv")))
    ok = cpt_prediction(ref, 2.1, 5e11)
    assert ok["warnings"] == [] and "on the 4 of 8 cells with both optima bracketed" in ok["law"]
    # the laws fitted once and reused (as the CPT benchmark does for every continuation) predict the same
    laws = fit_cpt_laws(ref)
    assert cpt_prediction(ref, 2.1, 5e11, laws=laws) == ok
    assert cpt_prediction(ref, 2.3, 1e12, laws=laws)["C_eq"] < ok["C_eq"]  # a worse checkpoint: less compute
