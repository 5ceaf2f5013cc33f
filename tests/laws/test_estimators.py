"""The Step Law estimators on data with known answers: pooled band, censored posterior, unidentified axes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws.diagnostics import (
    anchored_batch,
    anchored_d_ladder,
    batch_n_trend,
    batch_same_n,
    calibration_cost,
    curved_lr,
    effective_lr_observations,
    lr_law_diagnostics,
    peak_lr_from_effective,
)
from laws.estimators import (
    PUBLISHED_PRIOR,
    CellObservation,
    LawPrior,
    cell_observations,
    fit_pooled,
    fit_posterior,
)
from laws.fitting import FitError
from laws.steplaw import PUBLISHED, StepLaw
from laws.sweep import fit_sweep, predict_target, search_outcome

BOOT = (Path(__file__).resolve().parents[3] / "shared" / "data" / "steplaw"
        / "1004_fitted_lr_bs_scaling_model_parameters.csv")
TRUE = StepLaw(a=0.5, alpha=-0.5, beta=0.35, b=0.3, gamma=0.6)


def bowls(cells, law=TRUE, lr_oct=range(-3, 4), bt_oct=range(-2, 3), step=1.0, noise=0.0, seed=0, shift=(0, 0)):
    """Runs on an octave grid around each cell's optimum (shifted by ``shift`` octaves): convex bowls."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, d in cells:
        lo, bo = np.log2(law.lr(n, d)), np.log2(law.batch_tokens(d))
        c_lr, c_bt = round(lo) + shift[0], round(bo) + shift[1]
        for i in lr_oct:
            for j in bt_oct:
                x, y = c_lr + step * i, c_bt + step * j
                loss = 3.0 + 0.02 * (x - lo) ** 2 + 0.01 * (y - bo) ** 2 + noise * rng.standard_normal()
                rows.append((n, d, 2.0**x, 2.0**y, loss))
    return tuple(np.array(v, dtype=float) for v in zip(*rows))


CELLS = [(n, d) for n in (1e5, 3e5, 1e6) for d in (1e6, 4e6, 1.6e7)]


@pytest.mark.skipif(not BOOT.is_file(), reason="shared/data not beside the checkout")
def test_published_prior_is_the_spread_of_the_authors_bootstrap():
    b = pd.read_csv(BOOT)
    cov = np.asarray(PUBLISHED_PRIOR.lr_cov)
    assert np.sqrt(cov[0, 0]) == pytest.approx(b.lr_coefN.std(), rel=1e-3)
    assert np.sqrt(cov[1, 1]) == pytest.approx(b.lr_coefD.std(), rel=1e-3)
    assert cov[0, 1] == pytest.approx(np.cov(b.lr_coefN, b.lr_coefD)[0, 1], rel=1e-2)
    assert np.sqrt(PUBLISHED_PRIOR.gamma_var) == pytest.approx(b.bs_coefD.std(), rel=1e-3)
    assert PUBLISHED_PRIOR.law.alpha == pytest.approx(b.lr_coefN.mean(), abs=1e-3)


def test_pooled_is_least_squares_over_the_near_optimal_runs():
    N, D, lr, bt, loss = bowls(CELLS, step=0.5, noise=0.002)
    fit = fit_pooled(N, D, lr, bt, loss, n_boot=0)
    best = pd.Series(loss).groupby([N, D]).transform("min").to_numpy()
    s = loss <= best * 1.0025
    X = np.column_stack([np.ones(s.sum()), np.log(N[s]), np.log(D[s])])
    c = np.linalg.lstsq(X, np.log(lr[s]), rcond=None)[0]
    assert (np.log(fit.law.a), fit.law.alpha, fit.law.beta) == pytest.approx(tuple(c))
    boot = fit_pooled(N, D, lr, bt, loss, n_boot=200)
    assert boot.law.alpha == pytest.approx(TRUE.alpha, abs=0.1) and boot.draws.shape == (200, 5)
    lo, hi = boot.intervals["alpha"]
    assert lo < boot.law.alpha < hi


def test_posterior_recovers_a_law_the_cells_identify():
    fit = fit_posterior(*cell_observations(*bowls(CELLS, noise=0.001)))
    for k, tol in (("alpha", 0.06), ("beta", 0.06), ("gamma", 0.1)):  # a 2-run batch band snaps toward the grid
        assert getattr(fit.law, k) == pytest.approx(getattr(TRUE, k), abs=tol)
    for k in ("alpha", "beta"):
        lo, hi = fit.intervals[k]
        assert lo <= getattr(TRUE, k) <= hi
    # TRUE is far from the published exponents: the prior was widened and the data decided.
    assert fit.prior_scale > 1 and fit.data_share["alpha"] > 0.9 and fit.data_share["beta"] > 0.9


def test_an_unidentified_exponent_comes_from_the_prior_and_says_so():
    one_d = [(n, 4e6) for n in (1e5, 3e5, 1e6, 3e6)]
    fit = fit_posterior(*cell_observations(*bowls(one_d, law=PUBLISHED)))
    assert fit.law.beta == pytest.approx(PUBLISHED.beta, abs=1e-3)
    assert fit.data_share["beta"] < 0.05 and fit.data_share["gamma"] < 0.05
    assert fit.data_share["alpha"] > 0.1
    assert fit.law.alpha == pytest.approx(PUBLISHED.alpha, abs=0.05)


def test_optima_beyond_the_grid_are_bounds_and_the_fit_respects_them():
    # Every cell's grid stops 2 octaves below its LR optimum (the best run is the largest LR).
    N, D, lr, bt, loss = bowls(CELLS, lr_oct=range(-6, -1))
    lo, bo = cell_observations(N, D, lr, bt, loss)
    assert all(o.side == 1 for o in lo) and all(o.side == 0 for o in bo)
    fit = fit_posterior(lo, bo)
    assert fit.n_bounds == len(CELLS)
    for o in lo:  # every cell agrees the optimum is above its edge: the law must not say otherwise
        assert np.log(fit.law.lr(o.N, o.D)) >= o.value - 0.01


def test_runs_that_diverged_above_the_best_bracket_the_lr_and_failed_ones_leave_a_bound():
    # Every LR above each cell's optimum diverged: the best run is the highest finished LR. Read as sampled
    # values (+inf) they bracket it and the fit recovers the law; read as failed (NaN), each cell is a bound.
    N, D, lr, bt, loss = bowls(CELLS, noise=0.0)
    above = np.log2(lr) > np.round(np.log2(TRUE.lr(N, D))) + 0.5
    diverged = np.where(above, np.inf, loss)
    lo, _ = cell_observations(N, D, lr, bt, diverged)
    assert all(o.side == 0 for o in lo) and len(lo) == len(CELLS)
    fit = fit_posterior(*cell_observations(N, D, lr, bt, diverged))
    assert fit.n_bounds == 0
    for n, d in CELLS:
        assert abs(np.log2(fit.law.lr(n, d) / TRUE.lr(n, d))) < 0.6  # the best grid run is within half an octave
    lo_failed, _ = cell_observations(N, D, lr, bt, np.where(above, np.nan, loss))
    assert all(o.side == 1 for o in lo_failed)


def test_a_best_run_alone_at_its_batch_says_nothing_about_the_lr_optimum():
    # A searched cell (the demo's largest scale after 3 of its runs): 2^-9 and 2^-10 at batch 128, 2^-9 alone at
    # batch 64, the best. At batch 64 the LR optimum is neither bracketed nor bounded; read as a bracketed point it
    # let empirical Bayes widen the prior 8x and move alpha from -0.71 to -0.36 in the demo's online refit.
    N, D = np.full(3, 2e5), np.full(3, 1e5)
    lr, bt, loss = np.array([2**-9, 2**-10, 2**-9]), np.array([128.0, 128.0, 64.0]), np.array([1.910, 1.954, 1.872])
    lo, bo = cell_observations(N, D, lr, bt, loss)
    assert lo == []
    assert [(o.side, round(float(np.exp(o.value)))) for o in bo] == [(-1, 64)]  # batch: at or below 64
    lo, _ = cell_observations(*(np.append(v, x) for v, x in zip((N, D, lr, bt, loss), (2e5, 1e5, 2**-10, 64, 1.9))))
    assert [o.side for o in lo] == [1]  # a second LR at batch 64: now a bound (optimum at or above 2^-9)


def test_a_bound_every_cell_agrees_on_holds_for_a_target_inside_their_range():
    # Every batch optimum sits below the smallest batch of its grid, which is 32x below the published law's.
    small = StepLaw(a=PUBLISHED.a, alpha=PUBLISHED.alpha, beta=PUBLISHED.beta, b=PUBLISHED.b / 64, gamma=0.571)
    N, D, lr, bt, loss = bowls(CELLS, law=small, shift=(0, 3))
    fit = fit_sweep(N, D, lr, bt, loss)
    assert all(s.batch_on_edge for s in fit.scales)
    edges = {d: bt[D == d].min() for d in np.unique(D)}
    for d, e in edges.items():
        assert fit.step_law.law.batch_tokens(d) <= e * 1.01
    # A target between the cells' budgets: at or below the bound interpolated between its neighbours.
    p = predict_target(fit, 2e6, 8e6)
    bound = np.exp(np.interp(np.log(8e6), np.log(list(edges)), np.log(list(edges.values()))))
    assert p.batch_tokens <= bound * 1.01 and p.batch_tokens < PUBLISHED.batch_tokens(8e6) / 4


def test_censored_synthetic_coverage_is_near_nominal():
    """Every other cell censored on LR (grid too low): over 60 noisy draws each true exponent falls inside its
    95% interval at least 85% of the time, and the estimate is unbiased to 0.05."""
    hits, est = [], []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        obs = []
        for n, d in CELLS:
            v = float(np.log(TRUE.lr(n, d))) + 0.15 * rng.standard_normal()
            edge = float(np.log(TRUE.lr(n, d))) - 0.3
            censored = (n, d) in CELLS[::2]
            obs.append(CellObservation(n, d, edge if censored else v, 1 if censored else 0))
        f = fit_posterior(obs, [], prior=LawPrior.from_sd(TRUE, 0.3, 0.3, 0.3))
        hits.append([f.intervals[k][0] <= getattr(TRUE, k) <= f.intervals[k][1] for k in ("alpha", "beta")])
        est.append(f.law.alpha)
    assert np.all(np.mean(hits, axis=0) >= 0.85)
    assert np.mean(est) == pytest.approx(TRUE.alpha, abs=0.05)


def test_diagnostics_see_curvature_and_held_out_axes():
    bent = []
    for n, d in CELLS:
        y = np.log(TRUE.lr(n, d)) + 0.08 * (np.log(n) - np.log(3e5)) ** 2  # log eta* bends upward in log N
        bent.append(CellObservation(n, d, float(y)))
    law = fit_posterior(bent, [], prior=LawPrior.from_sd(TRUE, 1, 1, 1)).law
    d = lr_law_diagnostics(bent, law, target=(1e7, 1.6e7))
    c = d.curvature["N"]
    assert c.c2 == pytest.approx(0.08, abs=1e-6) and c.interval[0] > 0
    assert d.holdout["N"].err_oct > d.holdout["D"].err_oct  # the bend only shows along N
    assert d.leans_on == "N" and d.lean["D"] == 0


def test_the_law_bent_along_n_extrapolates_the_bend_and_needs_three_widths():
    """curved_lr: log eta* quadratic in log N, linear in log D; exact on a bent law, the straight law's value on a
    straight one, None with two widths (a square through two values of N is not identified)."""
    c = 0.08
    truth = lambda n, d: np.log(TRUE.lr(n, d)) + c * (np.log(n) - np.log(3e5)) ** 2  # noqa: E731
    bent = [CellObservation(n, d, float(truth(n, d))) for n, d in CELLS]
    assert np.log(curved_lr(bent, 1e7, 3e7)) == pytest.approx(truth(1e7, 3e7), abs=1e-9)
    straight = [CellObservation(n, d, float(np.log(TRUE.lr(n, d)))) for n, d in CELLS]
    assert curved_lr(straight, 1e7, 3e7) == pytest.approx(TRUE.lr(1e7, 3e7), rel=1e-9)
    # a bound is not a point: the bend comes from bracketed cells only
    with_bound = [*bent, CellObservation(3e6, 1e6, 0.0, side=+1)]
    assert curved_lr(with_bound, 1e7, 3e7) == pytest.approx(curved_lr(bent, 1e7, 3e7), rel=1e-12)
    assert curved_lr([o for o in bent if o.N < 1e6], 1e7, 3e7) is None


def test_the_anchored_d_ladder_takes_its_level_from_the_targets_largest_bracketed_cell_below_its_d():
    """anchored_d_ladder: the law's LR at the target times measured / law at the target N's largest-D bracketed
    cell below the target's D (a bound, a cell at the target's D or beyond, and other widths do not count)."""
    n = 3e5
    obs = [CellObservation(n, 1e7, float(np.log(TRUE.lr(n, 1e7) * 2.0))),           # one octave above the law
           CellObservation(n, 4e7, float(np.log(TRUE.lr(n, 4e7) / 2.0))),           # one below: the largest D
           CellObservation(n, 1.6e8, float(np.log(TRUE.lr(n, 1.6e8) * 8)), +1),      # a bound at a larger D
           CellObservation(n, 6.4e8, float(np.log(TRUE.lr(n, 6.4e8) * 8))),          # at the target's D
           CellObservation(1e6, 4e7, float(np.log(TRUE.lr(1e6, 4e7) * 16.0)))]       # another width
    lr, at = anchored_d_ladder(obs, TRUE, n, 6.4e8)
    assert at == 4e7 and lr == pytest.approx(TRUE.lr(n, 6.4e8) / 2.0, rel=1e-12)
    assert anchored_d_ladder(obs, TRUE, n, 2e7)[1] == 1e7  # only cells below the target's D
    assert anchored_d_ladder(obs, TRUE, n, 1e7) is None and anchored_d_ladder(obs, TRUE, 3e6, 6.4e8) is None


def test_predict_anchors_the_lr_on_the_target_models_own_runs_at_fewer_tokens():
    """laws.analysis.prediction: where the table holds the target's own model at fewer tokens, whose optimum sits an
    octave below a law the other widths follow (its batch an octave above), the LR and the batch are the law's step
    in D from that model's largest-D cell (within 0.15 octave of the truth, where the law alone is further off),
    their intervals moved with them; a target model not in the table gets the law as fitted."""
    from laws.analysis import prediction, summarize
    from laws.table import SweepTable

    rows = []
    n0 = 4e5
    for n, d in [(1e5, 1e6), (2e5, 1e6), (1e5, 4e6), (2e5, 4e6), (1e5, 1.6e7), (2e5, 1.6e7), (n0, 1e6), (n0, 4e6)]:
        lo = np.log2(TRUE.lr(n, d)) - (1.0 if n == n0 else 0.0)
        bo = np.log2(TRUE.batch_tokens(d)) + (1.0 if n == n0 else 0.0)
        for x in range(round(lo) - 3, round(lo) + 4):
            for y in range(round(bo) - 2, round(bo) + 3):
                rows.append(dict(N=n, D=d, lr=2.0**x, batch_tokens=2.0**y, status="ok",
                                 loss=3 + 0.04 * (x - lo) ** 2 + 0.02 * (y - bo) ** 2))
    s = summarize(SweepTable(pd.DataFrame(rows)))
    truth = TRUE.lr(n0, 1.6e7) / 2
    p = prediction(s, n0, 1.6e7)
    assert p["anchored"]["D"] == 4e6 and "anchored on the target's own runs at D=4e+06" in p["law"]
    # the batch likewise: that model's batch optimum sits an octave above B*(D), which has no N term
    truth_b = TRUE.batch_tokens(1.6e7) * 2
    assert p["anchored"]["batch_D"] == 4e6 and ", batch at D=4e+06" in p["law"]
    assert abs(np.log2(p["batch_tokens"] / truth_b)) < 0.15 < abs(np.log2(p["anchored"]["law_batch_tokens"] / truth_b))
    assert p["batch_interval"][0] < p["batch_tokens"] < p["batch_interval"][1]
    assert abs(np.log2(p["lr"] / truth)) < 0.15 < abs(np.log2(p["anchored"]["law_lr"] / truth))
    assert p["lr"] == pytest.approx(p["anchored"]["law_lr"] * 2 ** p["anchored"]["octaves"], rel=1e-12)
    assert p["lr_interval"][0] < p["lr"] < p["lr_interval"][1]
    assert "anchored" not in prediction(s, 8e5, 1.6e7)
    # the report's target line (target_prediction with the table) says the same; without the table, the law
    from laws.analysis import target_prediction

    assert target_prediction(s.fit, n0, 1.6e7, s.table)["lr"] == pytest.approx(p["lr"], rel=1e-12)
    assert "anchored" not in target_prediction(s.fit, n0, 1.6e7)
    pooled = summarize(SweepTable(pd.DataFrame(rows)), estimator="pooled")  # the authors' procedure as published
    assert "anchored" not in prediction(pooled, n0, 1.6e7)


def test_the_batch_offset_of_the_targets_own_model_is_the_mean_of_its_bracketed_cells():
    """batch_same_n: the cells at the target's N whose batch optimum is bracketed, each read against B*(D) at its
    own D; their mean offset, in natural log. Edge cells and other widths do not count; no bracketed cell, None."""
    n = 3e5
    obs = [CellObservation(n, 1e7, float(np.log(TRUE.batch_tokens(1e7) * 2.0))),     # one octave above the law
           CellObservation(n, 4e7, float(np.log(TRUE.batch_tokens(4e7) * 1.0))),     # on it
           CellObservation(n, 1.6e8, float(np.log(TRUE.batch_tokens(1.6e8) / 8)), -1),  # a lower-edge bound
           CellObservation(1e6, 1e7, float(np.log(TRUE.batch_tokens(1e7) * 16.0)))]  # another width
    assert batch_same_n(obs, TRUE, n) == pytest.approx(0.5 * np.log(2.0), abs=1e-12)
    assert batch_same_n(obs, TRUE, 1e6) == pytest.approx(4 * np.log(2.0), abs=1e-12)
    assert batch_same_n(obs[2:3], TRUE, n) is None and batch_same_n(obs, TRUE, 3e6) is None


def test_a_batch_optimum_that_moves_with_n_is_measured_and_warned_about():
    """batch_n_trend: the cells' log batch optima over B*(D), against log N. A known slope is recovered and called
    significant; batch optima that follow B*(D) give an interval around 0; fewer than 3 widths give nothing. The
    warning prints the law's batch and the trend's at a target beyond the cells' N, and only there."""
    from laws.analysis import batch_warnings
    from laws.sweep import law_report

    wiggle = {1e5: 0.05, 3e5: -0.04, 1e6: 0.03}  # a little scatter, so that the interval has a width
    grown = [CellObservation(n, d, float(np.log(TRUE.batch_tokens(d)) + 0.3 * np.log(n / 3e5) + wiggle[n]))
             for n, d in CELLS]
    t = batch_n_trend(grown, TRUE)
    assert t.slope == pytest.approx(0.3 + (0.03 - 0.05) / np.log(10), abs=0.01) and t.significant
    assert t.factor(3e6) == pytest.approx(np.exp(t.intercept + t.slope * (np.log(3e6) - t.centre)))
    flat = [CellObservation(n, d, float(np.log(TRUE.batch_tokens(d)) + wiggle[n])) for n, d in CELLS]
    t0 = batch_n_trend(flat, TRUE)
    assert t0.interval[0] < 0 < t0.interval[1] and not t0.significant
    assert batch_n_trend([o for o in grown if o.N < 1e6], TRUE) is None
    # end to end: runs whose batch optimum grows as N^0.3 at fixed D
    rows = []
    for n, d in CELLS:
        lo, bo = np.log2(TRUE.lr(n, d)), np.log2(TRUE.batch_tokens(d)) + 0.3 * np.log2(n / 3e5)
        for i in range(-3, 4):
            for j in range(-3, 4):
                x, y = round(lo) + i, round(bo) + j
                rows.append((n, d, 2.0**x, 2.0**y, 3.0 + 0.02 * (x - lo) ** 2 + 0.01 * (y - bo) ** 2))
    arrs = [np.array(v, float) for v in zip(*rows)]
    fit = fit_sweep(*arrs)
    far = law_report(*arrs, fit, target=(1e7, 1.6e7))
    assert far["batch_law"]["n_trend"]["significant"] and far["batch_law"]["n_trend"]["slope"] > 0.15
    (w,) = batch_warnings(far)
    assert "grow with N beyond B*(D)" in w and f"{far['batch_law']['target_batch_tokens_trend']:,.0f}" in w
    assert far["batch_law"]["target_batch_tokens_trend"] > 1.5 * far["batch_law"]["target_batch_tokens"]
    assert batch_warnings(law_report(*arrs, fit, target=(3e5, 1.6e7))) == []  # within the cells' N


def test_effective_lr_read_at_the_optimum_and_mapped_back():
    N, D, lr, bt, loss = bowls(CELLS)
    eff = 3.0 * np.sqrt(lr)  # an AdamW-like sublinear update size
    lo, _ = cell_observations(N, D, lr, bt, loss)
    obs = effective_lr_observations(N, D, lr, bt, loss, eff, lo)
    for o, low in zip(obs, lo):
        assert o.value == pytest.approx(np.log(3.0) + 0.5 * low.value, abs=1e-9)
    calib = [1e-3, 2e-3, 4e-3]
    assert peak_lr_from_effective(3.0 * np.sqrt(5e-3), calib, [3.0 * np.sqrt(x) for x in calib]) == pytest.approx(5e-3)
    with pytest.raises(FitError, match="calibration LRs"):
        peak_lr_from_effective(0.1, [1e-3], [0.1])
    flops, share = calibration_cost(1e9, 1e12, 1e6, steps=300, n_lrs=3)
    assert flops == pytest.approx(6e9 * 1e6 * 900) and share < 0.01


def test_fit_sweep_estimators_and_their_errors():
    N, D, lr, bt, loss = bowls(CELLS, step=0.5, noise=0.001)
    for est in ("posterior", "pooled", "vertex"):
        f = fit_sweep(N, D, lr, bt, loss, estimator=est)
        assert f.step_law.estimator == est
        assert f.step_law.law.alpha == pytest.approx(TRUE.alpha, abs=0.12)
    with pytest.raises(ValueError, match="estimator must be one of"):
        fit_sweep(N, D, lr, bt, loss, estimator="median")
    with pytest.raises(ValueError, match="positive-definite"):
        LawPrior(law=PUBLISHED, lr_cov=((1.0, 2.0), (2.0, 1.0)), gamma_var=0.1)


def test_search_outcome_against_the_full_grid():
    o = search_outcome(np.array([2.01, 2.005, np.nan]), np.array([2.0 + 0.01 * i for i in range(15)]))
    assert (o.trials, o.grid_points) == (3, 15) and o.share == pytest.approx(0.2)
    assert o.gap == pytest.approx(0.0025) and o.in_band
    with pytest.raises(ValueError, match="finished run"):
        search_outcome(np.array([np.nan]), np.array([2.0]))


def test_an_axis_no_cell_swept_gives_no_observation_and_the_prior_says_so():
    N, D, lr, bt, loss = bowls(CELLS, bt_oct=range(0, 1))  # one batch per cell
    lo, bo = cell_observations(N, D, lr, bt, loss)
    assert len(lo) == len(CELLS) and bo == []
    fit = fit_sweep(N, D, lr, bt, loss).step_law
    assert (fit.law.b, fit.law.gamma) == pytest.approx((PUBLISHED.b, PUBLISHED.gamma))
    assert fit.data_share["gamma"] == 0 and fit.data_share["alpha"] > 0.5
    one_lr = fit_sweep(N, D, np.full_like(lr, 1e-3), bt, loss)
    assert one_lr.step_law is None and "two LRs per scale" in one_lr.note


def _obs(law, cells, noise, seed=0):
    rng = np.random.default_rng(seed)
    return [CellObservation(n, d, float(np.log(law.lr(n, d))) + noise * rng.standard_normal()) for n, d in cells]


GRID9 = [(n, d) for n in (1e5, 3e5, 1e6) for d in (1e6, 4e6, 1.6e7)]


def test_empirical_bayes_keeps_a_prior_the_cells_agree_with():
    """Cells drawn from the prior's own law with a quarter-octave of noise: nothing to widen."""
    fit = fit_posterior(_obs(PUBLISHED, GRID9, 0.17), [])
    assert fit.prior_scale == 1.0
    assert fit.law.alpha == pytest.approx(PUBLISHED.alpha, abs=0.03)
    assert fit.data_share["alpha"] < 0.5


def test_empirical_bayes_widens_a_prior_the_cells_contradict():
    """Cells from TRUE (alpha -0.5 vs the prior's -0.713, 0.2 nat noise): the prior is widened and the data win."""
    fit = fit_posterior(_obs(TRUE, GRID9, 0.2), [])
    assert fit.prior_scale >= 8
    assert fit.law.alpha == pytest.approx(TRUE.alpha, abs=0.1)
    lo, hi = fit.intervals["alpha"]
    assert lo <= TRUE.alpha <= hi


def test_two_cells_leave_the_prior_as_given():
    """One contrast cannot tell a wrong prior from a noisy cell: the prior stands (no widening)."""
    fit = fit_posterior(_obs(TRUE, [(1e5, 1e6), (1e6, 1e6)], 0.0), [])
    assert fit.prior_scale == 1.0
    assert fit.law.alpha == pytest.approx(PUBLISHED.alpha, abs=0.05)


def test_calibration_inverts_a_clean_line_and_refuses_a_flat_or_far_one():
    from laws.diagnostics import invert_calibration

    lrs = [1e-3, 2e-3, 4e-3]
    inv = invert_calibration(0.03, lrs, [10 * x for x in lrs])  # eff = 10 lr: the target needs lr 3e-3
    assert inv.ok and inv.peak_lr == pytest.approx(3e-3, rel=1e-6) and inv.slope == pytest.approx(1.0)
    flat = invert_calibration(0.03, lrs, [0.020, 0.0205, 0.021])  # eff barely moves (slope 0.04)
    assert not flat.ok and "barely follows" in flat.reason and np.isnan(flat.peak_lr)
    far = invert_calibration(1.0, lrs, [10 * x for x in lrs])  # needs lr 0.1: 4.6 octaves past the range
    assert not far.ok and "outside the calibrated" in far.reason
    assert not invert_calibration(0.03, [1e-3], [0.01]).ok  # one LR: nothing to fit


def test_the_ladder_inverts_the_target_widths_own_runs_at_fewer_tokens():
    """Seed 002 at no extra compute: the target N ran at 50k and 100k tokens, its effective LR saturating above
    2^-10 (eff = 8 lr below, flat above). The line goes through the three runs nearest the target effective LR at
    the largest ladder D and the best batch, so the target 8 * 2^-11.5 needs peak LR 2^-11.5; the other batch and
    the smaller D (whose effective LRs are 2x) are not read."""
    from laws.diagnostics import invert_ladder

    lrs = 2.0 ** np.arange(-13, -7)
    rows = []
    for d, scale in ((5e4, 2.0), (1e5, 1.0)):
        for bt, loss0 in ((128, 2.0), (256, 2.1)):
            for x in lrs:
                eff = scale * (8 if bt == 128 else 3) * min(x, 2.0**-10)
                rows.append((1e6, d, x, bt, loss0 + 0.01 * (np.log2(x) + 11) ** 2, eff))
    n, d, lr, bt, loss, eff = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    lad = invert_ladder(8 * 2.0**-11.5, 1e6, 2e5, n, d, lr, bt, loss, eff)
    assert lad is not None and lad.D == 1e5 and lad.batch_tokens == 128
    assert lad.inverse.ok and lad.inverse.slope == pytest.approx(1.0)
    assert np.log2(lad.inverse.peak_lr) == pytest.approx(-11.5, abs=1e-9)
    assert lad.lrs == (2.0**-13, 2.0**-12, 2.0**-11)
    # a target only the saturated runs reach: their line is flat, refused
    flat = invert_ladder(8 * 2.0**-10 * 1.05, 1e6, 2e5, n, d, lr, bt, loss, eff)
    assert not flat.inverse.ok and np.isnan(flat.inverse.peak_lr) and "grow" in flat.inverse.reason
    # no run of the target N below its D: no ladder (an N-axis target needs `lawsweep calibrate`)
    assert invert_ladder(0.01, 2e6, 2e5, n, d, lr, bt, loss, eff) is None
    assert invert_ladder(0.01, 1e6, 5e4, n, d, lr, bt, loss, eff) is None


def test_a_schedule_axis_is_fitted_on_each_points_best_schedule():
    """Two schedules per cell: 'cosine' holds the true bowl; 'constant' is 0.5 nats worse on the grid, its
    optimum 2 octaves higher. The law must come from the best schedule's bowl, not from a mix of the two."""
    from laws.sweep import fit_table
    from laws.table import SweepTable

    rows = []
    for sched, shift, extra in (("cosine", 0.0, 0.0), ("constant", 2.0, 0.5)):
        N, D, lr, bt, loss = bowls(CELLS)
        for i in range(len(N)):
            lo = np.log2(TRUE.lr(N[i], D[i])) + shift
            x = np.log2(lr[i])
            rows.append(dict(N=N[i], D=D[i], lr=lr[i], batch_tokens=bt[i], seed=0, status="ok", schedule=sched,
                             schedule_spec="{}", loss=loss[i] - 0.02 * (x - np.log2(TRUE.lr(N[i], D[i]))) ** 2
                             + 0.02 * (x - lo) ** 2 + extra))
    t = SweepTable.from_rows(rows)
    env = t.schedule_envelope()
    assert len(env.frame) == len(t.frame) // 2 and set(env.frame.schedule) == {"cosine"}
    both = fit_table(t).step_law.law
    alone = fit_table(SweepTable.from_rows([r for r in rows if r["schedule"] == "cosine"])).step_law.law
    assert both == alone
    one = SweepTable.from_rows([r for r in rows if r["schedule"] == "cosine"])
    assert one.schedule_envelope() is one


@pytest.mark.slow  # three runs of the script, every estimator twice (about 10 s)
def test_heldout_predictions_are_written_blind_and_scored_against_the_recorded_cell(tmp_path):
    """bench/heldout_predictions.py: refuses a target already recorded; writes every estimator's prediction along
    both axes; scores it against the cell once recorded (fortunes width 96 at 200k: best run 2^-7, batch 64)."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    t = pd.read_csv(root / "bench/data/fortunes_adamw.csv")
    cell = (t.N == 223872) & (t.D == 200000)
    t[~cell].to_csv(tmp_path / "before.csv", index=False)
    script = [sys.executable, str(root / "bench/heldout_predictions.py")]
    args = ["--n", "223872", "--d", "200000", "--out", str(tmp_path / "p.json")]
    r = subprocess.run([*script, str(root / "bench/data/fortunes_adamw.csv"), *args], capture_output=True, text=True,
                       cwd=root)
    assert r.returncode == 2 and "already in the tables" in r.stderr
    r = subprocess.run([*script, str(tmp_path / "before.csv"), *args], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "p.json").read_text())
    pred = doc["predictions"]
    assert pred["N_axis"]["cells"] == 9 and pred["D_axis"]["cells"] == 11
    assert set(pred["N_axis"]) == {"cells", "posterior", "posterior_straight", "pooled", "vertex", "curved_N",
                                   "batch_trend", "eff_lr"}
    r = subprocess.run([*script, str(root / "bench/data/fortunes_adamw.csv"), "--score", str(tmp_path / "p.json")],
                       capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert "best run LR 2^-7.0, batch 64" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("| D axis (11) | posterior |"))
    lr = pred["D_axis"]["posterior"]["lr"]
    assert f"| {np.log2(lr / 2**-7):+.2f} |" in row
    assert "Effective LR at the optimum: observed" in r.stdout
    # the default's predictive interval is committed with it and scored: it holds the law's own and the prediction
    d = pred["D_axis"]["posterior"]
    assert d["lr_interval"][0] < d["lr_law_interval"][0] < lr < d["lr_law_interval"][1] < d["lr_interval"][1]
    inside = d["lr_interval"][0] <= 2**-7 <= d["lr_interval"][1]
    assert f"best run {'inside' if inside else 'outside'}" in next(
        line for line in r.stdout.splitlines() if line.startswith("D axis: posterior's 95% predictive LR interval"))


def test_earlier_predictions_are_scored_against_the_seed_mean_of_a_cell_recorded_twice():
    """The committed predictions for fortunes width 96 at 200k (2026-11-24 layout: several targets) scored on the
    cell with seeds 0 and 1: the mean's best point is 2^-8 at batch 128 (seed 0 alone: 2^-7 at 64), so the D axis
    (2^-7.84) is +0.16 octave from it and the nearest point is the best one."""
    import importlib.util
    import json

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("heldout_predictions", root / "bench/heldout_predictions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = json.loads((root / "bench/data/fortunes_predictions_200k.json").read_text())
    t = pd.concat([pd.read_csv(root / f"bench/data/{f}.csv") for f in ("fortunes_adamw", "fortunes_adamw_seed1_w96")])
    with pytest.raises(SystemExit, match="--target must name one of"):
        mod.score(doc, t)
    out = mod.score(doc, t, "N=223872,D=200000")
    assert "best run LR 2^-8.0, batch 128" in out[0] and "the mean of 2 seeds" in out[0]
    d_row = next(line for line in out if line.startswith("| D axis (10) | posterior |"))
    assert "| +0.16 |" in d_row and d_row.endswith("| 0.00% |")
    one = mod.score(doc, t[t.seed == 0], "N=223872,D=200000")
    assert "best run LR 2^-7.0, batch 64" in one[0]


@pytest.mark.parametrize(("width", "n", "best", "rows"), [
    # width 160: the default's LR -0.11 (N axis) and -0.10 octave (D axis) from the best point, the law bent along N
    # -0.53; its batch (87) is nearest 64 tokens, 2.76% above the best point
    (160, 618880, "best run LR 2^-9.0, batch 256",
     {("N axis (15)", "posterior"): ("-0.11", "2.76%"), ("D axis (17)", "posterior"): ("-0.10", "2.76%"),
      ("N axis (15)", "curved_N"): ("-0.53", "0.40%")}),
    # width 192: the straight law overshoots again (+0.45 / +0.56), the bent one lands (-0.01 along N)
    (192, 890112, "best run LR 2^-10.0, batch 128",
     {("N axis (18)", "posterior"): ("+0.45", "0.00%"), ("D axis (20)", "posterior"): ("+0.56", "2.56%"),
      ("N axis (18)", "curved_N"): ("-0.01", "0.00%"), ("D axis (20)", "curved_N"): ("+0.35", "0.00%")}),
])
def test_a_blind_width_is_scored_on_its_two_seeds(width, n, best, rows):
    """Fortunes widths 160 and 192 at 200k, each recorded with seeds 0 and 1 after its
    bench/data/fortunes_predictions_w<width>.json was committed: the seed mean's best point, and each estimator's
    LR error from it (octaves) with the loss gap of the grid run nearest its (LR, batch)."""
    import importlib.util
    import json

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("heldout_predictions", root / "bench/heldout_predictions.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = json.loads((root / f"bench/data/fortunes_predictions_w{width}.json").read_text())
    assert not any(c.startswith(f"N={n},D=200000") for c in doc["cells"])  # blind: not among the fitted cells
    t = pd.concat([pd.read_csv(root / f"bench/data/fortunes_adamw_w{width}{s}.csv") for s in ("", "_target")])
    out = mod.score(doc, t)
    assert best in out[0] and "the mean of 2 seeds" in out[0]
    table = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in out if line.startswith("| ")}
    for key, (err, gap) in rows.items():
        assert f"| {err} |" in table[key] and table[key].endswith(f"| {gap} |"), table[key]


def test_predictive_intervals_cover_a_new_cells_optimum_where_the_laws_own_do_not():
    """Cells scatter about the law (0.3 nats here, as on the recorded grids): the law's own 95% interval is where
    the mean lies and covers a new cell's optimum far less often than 95%; the predictive interval (the law's
    uncertainty plus the scatter the fit estimated) covers it at about the nominal rate."""
    from laws.estimators import CellObservation
    from laws.sweep import SweepFit, predict_target

    rng = np.random.default_rng(1)
    Ns, Ds, sigma, target = (2e7, 6e7, 2e8, 6e8), (2e9, 6e9, 2e10), 0.3, (2e9, 4e10)
    hits_law, hits_pred = [], []
    for _ in range(60):
        lr_obs = [CellObservation(n, d, float(np.log(PUBLISHED.lr(n, d)) + sigma * rng.standard_normal()))
                  for n in Ns for d in Ds]
        bt_obs = [CellObservation(n, d, float(np.log(PUBLISHED.batch_tokens(d)) + sigma * rng.standard_normal()))
                  for n in Ns for d in Ds]
        fit = fit_posterior(lr_obs, bt_obs)
        assert 0.1 <= fit.noise_log[0] <= 0.6  # the scatter it estimated (truth 0.3)
        p = predict_target(SweepFit(scales=(), step_law=fit), *target)
        new = PUBLISHED.lr(*target) * np.exp(sigma * rng.standard_normal())
        hits_law.append(p.lr_law_interval[0] <= new <= p.lr_law_interval[1])
        hits_pred.append(p.lr_interval[0] <= new <= p.lr_interval[1])
        assert p.lr_interval[0] < p.lr_law_interval[0] < p.lr < p.lr_law_interval[1] < p.lr_interval[1]
    assert np.mean(hits_pred) >= 0.85 and np.mean(hits_law) <= 0.75


# The N x D interaction (kappa): the D exponent moving with N, weighed by empirical Bayes.
BENT = StepLaw(a=0.5, alpha=-0.5, beta=0.35, b=0.3, gamma=0.6, kappa=-0.25, n0=float(np.log(3e5)),
               d0=float(np.log(4e6)))
GRID16 = [(n, d) for n in (1e5, 2e5, 4e5, 8e5) for d in (1e6, 2e6, 4e6, 8e6)]


def test_a_bent_law_is_the_published_form_times_the_interaction():
    """kappa 0 is the published form; otherwise the D exponent at N is beta + kappa (ln N - n0), the N exponent
    at D alpha + kappa (ln D - d0), and at the centre the law is a N^alpha D^beta."""
    n0, d0 = np.exp(BENT.n0), np.exp(BENT.d0)
    straight = StepLaw(a=0.5, alpha=-0.5, beta=0.35, b=0.3, gamma=0.6)
    assert BENT.lr(n0, 1e7) == pytest.approx(straight.lr(n0, 1e7)) and BENT.lr(1e8, d0) == pytest.approx(
        straight.lr(1e8, d0))
    for n in (1e5, 1e6):
        slope = np.log(BENT.lr(n, 2e6) / BENT.lr(n, 1e6)) / np.log(2)
        assert slope == pytest.approx(BENT.beta_at(n)) and BENT.beta_at(n) == pytest.approx(
            0.35 - 0.25 * (np.log(n) - BENT.n0))
    assert straight.beta_at(1e9) == 0.35 and straight.alpha_at(1e3) == -0.5


def test_the_posterior_finds_an_interaction_the_cells_carry_and_predicts_beyond_them_with_it():
    """Cells from a law whose D exponent falls with N (kappa -0.25, 0.1 nat noise): the default posterior bends,
    kappa's interval covers the truth, and at a larger N and D than any cell it lands nearer the truth than the
    straight posterior, which cannot bend."""
    obs = _obs(BENT, GRID16, 0.1, seed=3)
    bent, straight = fit_posterior(obs, [], interaction=True), fit_posterior(obs, [], interaction=False)
    lo, hi = bent.intervals["kappa"]
    # The interval averages over the settings empirical Bayes weighed, the straight law among them (a few percent
    # here): it covers the truth and reaches about to 0, and nearly all of its draws bend the right way.
    assert bent.law.kappa != 0 and lo < BENT.kappa < hi and hi < 0.01
    assert np.mean(bent.draws[:, 5] < 0) > 0.9
    assert straight.law.kappa == 0 and "kappa" not in straight.intervals
    n, d = 3.2e6, 3.2e7
    err = {k: abs(np.log2(f.law.lr(n, d) / BENT.lr(n, d))) for k, f in (("bent", bent), ("straight", straight))}
    assert err["bent"] < 0.3 < err["straight"]
    # the posterior draws carry kappa: the prediction's interval covers the truth
    lrs, _ = bent.draws_at(n, d)
    assert np.percentile(lrs, 2.5) < BENT.lr(n, d) < np.percentile(lrs, 97.5)


def test_cells_from_a_straight_law_keep_the_published_form():
    """Cells from the straight TRUE law (0.1 nat noise): the interaction is not admitted, and the default posterior
    is the straight posterior exactly."""
    for seed in range(3):
        obs = _obs(TRUE, GRID16, 0.1, seed=seed)
        bent, straight = fit_posterior(obs, [], interaction=True), fit_posterior(obs, [], interaction=False)
        assert bent.law == straight.law and bent.law.kappa == 0


def test_too_few_cells_never_bend_the_law():
    """Seven bracketed cells of a strongly bent law: fewer than the interaction's four coefficients and four degrees
    of freedom to spare (CROSS_MIN_CELLS), so it is not weighed; a 2 x 2 corner of cells cannot identify it either."""
    from laws.estimators import CROSS_MIN_CELLS

    assert CROSS_MIN_CELLS == 8
    strong = StepLaw(a=0.5, alpha=-0.5, beta=0.35, b=0.3, gamma=0.6, kappa=-1.0, n0=BENT.n0, d0=BENT.d0)
    assert fit_posterior(_obs(strong, GRID16[:7], 0.0), []).law.kappa == 0
    corner = [(n, d) for n in (1e5, 8e5) for d in (1e6, 8e6)] * 2  # eight observations, rank 4: the corners twice
    assert fit_posterior(_obs(strong, corner, 0.05), []).law.kappa != 0  # identified: both diagonals seen
    assert fit_posterior(_obs(strong, corner[:7], 0.05), []).law.kappa == 0  # one short of the count
    line = [(n, 1e6) for n in (1e5, 2e5, 4e5, 8e5)] + [(1e5, d) for d in (2e6, 4e6, 8e6, 1.6e7)]
    assert fit_posterior(_obs(strong, line, 0.0), []).law.kappa == 0  # an L of cells: no N at two D but one


def test_six_bracketed_cells_far_from_the_prior_keep_alpha_covered():
    """The censored bench's design (3 N x 3 D, 0.2 nat noise, the three smallest-D cells LR bounds): a truth seven
    prior SDs from the published alpha. With six bracketed cells the interaction would be weighed on two residual
    degrees of freedom, absorb the noise and narrow alpha's interval (measured: 87% coverage over 300 draws); not
    weighed, alpha's 95% interval covers the truth at least 88% of the time over these 60 draws (92% over 300)."""
    true = StepLaw(a=0.5, alpha=-0.5, beta=0.35, b=0.3, gamma=0.6)
    cells = [(n, d) for n in (1e5, 3e5, 1e6) for d in (1e6, 4e6, 1.6e7)]
    prior = LawPrior.from_sd(PUBLISHED, 0.03, 0.02, 0.02)
    hits = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        obs = []
        for i, (n, d) in enumerate(cells):
            y = float(np.log(true.lr(n, d)))
            obs.append(CellObservation(n, d, y - rng.uniform(0.1, 1.0), 1) if i % 3 == 0
                       else CellObservation(n, d, y + 0.2 * rng.standard_normal()))
        f = fit_posterior(obs, [], prior=prior)
        assert f.law.kappa == 0
        hits.append(f.intervals["alpha"][0] <= true.alpha <= f.intervals["alpha"][1])
    assert np.mean(hits) >= 0.88


def test_fit_sweep_bends_by_default_and_posterior_straight_does_not():
    """The estimator names: 'posterior' (default) weighs the interaction, 'posterior_straight' never does."""
    N, D, lr, bt, loss = bowls(GRID16, law=BENT, lr_oct=np.arange(-3, 3.5, 0.5), bt_oct=range(-1, 2), step=1.0)
    bent = fit_sweep(N, D, lr, bt, loss)
    straight = fit_sweep(N, D, lr, bt, loss, estimator="posterior_straight")
    assert bent.estimator == "posterior" and bent.step_law.law.kappa == pytest.approx(BENT.kappa, abs=0.1)
    assert straight.estimator == "posterior_straight" and straight.step_law.law.kappa == 0
    with pytest.raises(ValueError, match="posterior_straight"):
        fit_sweep(N, D, lr, bt, loss, estimator="bent")



def test_intervals_average_over_the_settings_so_a_spurious_bend_keeps_zero_inside():
    """Cells from a straight law (0.2 nat noise, 16 cells): empirical Bayes picks a bent law for some noise draws.
    Plugging that pick in gave a kappa interval that excluded the true 0 in a third of them (measured: 6 of 17);
    averaged over the settings it weighed (the straight one among them, by its posterior probability), the interval
    keeps 0 inside."""
    truth = StepLaw(a=0.5, alpha=-0.713, beta=0.307, b=0.3, gamma=0.6)
    bent, covered = 0, 0
    for seed in range(60):
        obs = _obs(truth, GRID16, 0.2, seed=seed)
        f = fit_posterior(obs, [])
        if f.law.kappa != 0:
            bent += 1
            lo, hi = f.intervals["kappa"]
            covered += lo <= 0.0 <= hi
    assert bent >= 5  # the case is exercised
    assert covered / bent >= 0.9


def _axes_retro_rows(target: str) -> dict[tuple[str, str], list[str]]:
    """bench/axes_retro.py's rows for one of its held-out cells (``target``: W320 .. W640), keyed (width, axis)."""
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("axes_retro", root / "bench/axes_retro.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[3:-1]]
            for line in mod.rows([getattr(mod, target)]) if line.split("|")[1].strip().isdigit()}


def test_the_blind_width_320_cell_is_predicted_within_the_issue_goals_by_the_default():
    """bench/axes_retro.py on width 320 at 200k (recorded blind, scored on its octave and half-octave points): the
    default posterior's LR is -0.08 octave (N axis) and +0.03 (D axis) from the cell's two-seed best point, as
    committed before the cell ran; the straight posterior is 0.4-0.5 octave high. A change to the estimator that
    moves these fails here."""
    rows = _axes_retro_rows("W320")
    assert rows[("320", "N axis")][:2] == ["-0.08", "+0.43"]
    assert rows[("320", "D axis")][:2] == ["+0.03", "+0.50"]


def test_the_blind_width_384_cell_is_scored_as_committed():
    """bench/axes_retro.py on width 384 at 200k (recorded blind on 2026-12-06, its half-octave points on 2026-12-07
    under a rule committed before them): against the two-seed best point of the union (2^-11.5 at batch 128) the
    default posterior's LR is +0.09 octave (N axis) and +0.10 (D axis), inside both goals; the straight posterior
    +0.56 / +0.59 (on the octave grid alone, best point 2^-11: -0.41 / -0.40 and +0.06 / +0.09). A change to the
    estimator that moves these fails here (and must say what it does on this cell)."""
    rows = _axes_retro_rows("W384")
    assert rows[("384", "N axis")][:2] == ["+0.09", "+0.56"]
    assert rows[("384", "D axis")][:2] == ["+0.10", "+0.59"]


def test_the_blind_width_512_cell_is_scored_as_committed():
    """bench/axes_retro.py on width 512 at 200k (recorded blind on 2026-12-07, octave and half-octave points): the
    default posterior's LR is -1.08 octave (N axis) and -1.03 (D axis) from the cell's two-seed best point (2^-11):
    the N x D interaction, carried past width 384, bends the law an octave too low; the straight posterior is
    -0.51 / -0.39. Both goals missed by the default on this cell. A change to the estimator that moves these fails
    here (and must say what it does on this cell)."""
    rows = _axes_retro_rows("W512")
    assert rows[("512", "N axis")][:2] == ["-1.08", "-0.51"]
    assert rows[("512", "D axis")][:2] == ["-1.03", "-0.39"]


def test_the_blind_width_640_cell_is_scored_as_committed():
    """bench/axes_retro.py on width 640 at 200k (recorded blind on 2026-12-07 after every prediction, the effective-LR
    routes included, was committed in bench/data/fortunes_predictions_w640.json): against the cell's two-seed best
    point (2^-12 at batch 64) the default posterior's LR is -0.22 octave (N axis) and -0.28 (D axis), inside both
    goals; the straight posterior +0.22 / +0.21; the effective LR through width 640's own 100k runs +0.37 (D axis)
    and through `lawsweep calibrate` runs of the target model +0.53 (N axis). A change to the estimator that moves
    these fails here (and must say what it does on this cell)."""
    rows = _axes_retro_rows("W640")
    assert rows[("640", "N axis")][:2] == ["-0.22", "+0.22"]
    assert rows[("640", "D axis")][:2] == ["-0.28", "+0.21"]
    assert rows[("640", "D axis")][4] == "+0.37" and rows[("640", "N axis")][5] == "+0.53"


def test_the_censored_bench_recovers_a_truth_at_the_prior_inside_its_intervals():
    """laws.estimator_bench.censored_coverage on a truth the prior agrees with, low noise: every coefficient within
    its 95% interval in every draw, estimates on the truth; a truth 10 prior SDs off, at the same noise, is reached
    by the data and covered in most draws."""
    from laws.estimator_bench import censored_coverage

    cover, est = censored_coverage(PUBLISHED, 0.1, 20)
    assert all(v == 1.0 for v in cover.values()), cover
    assert all(abs(est[k] - getattr(PUBLISHED, k)) < 0.02 for k in est), est
    far = StepLaw(a=0.5, alpha=-0.4, beta=0.4, b=0.3, gamma=0.65)
    cover_far, est_far = censored_coverage(far, 0.1, 20)
    assert abs(est_far["alpha"] - far.alpha) < 0.05  # the data move it, against a prior 10 SDs off
    assert min(cover_far.values()) >= 0.85


def _one_width_cells(true: StepLaw) -> tuple[list, list]:
    """Bracketed LR and batch optima of ``true`` at one N over four D: alpha is not identified by them."""
    lo = [CellObservation(3e5, d, float(np.log(true.lr(3e5, d)))) for d in (1e6, 2e6, 4e6, 8e6)]
    bo = [CellObservation(3e5, d, float(np.log(true.batch_tokens(d)))) for d in (1e6, 2e6, 4e6, 8e6)]
    return lo, bo


def test_a_prior_written_down_or_from_fit_json_is_what_the_unidentified_exponent_follows():
    """LawPrior.from_mapping: the exponents a user gives (e.g. from an earlier sweep) centre the posterior where the
    cells cannot identify a coefficient (alpha from one N), and the data still decide what they identify."""
    true = StepLaw(a=0.5, alpha=-0.3, beta=0.45, b=0.3, gamma=0.6)
    lo, bo = _one_width_cells(true)
    given = LawPrior.from_mapping({"alpha": -0.3, "beta": 0.45, "gamma": 0.6}, source="test")
    assert given.law.a == PUBLISHED.a and np.sqrt(given.lr_cov[0][0]) == pytest.approx(0.029858)  # published SDs
    assert given.lr_cov[0][1] == pytest.approx(PUBLISHED_PRIOR.lr_cov[0][1])  # and their correlation
    mine, published = fit_posterior(lo, bo, prior=given), fit_posterior(lo, bo, prior=PUBLISHED_PRIOR)
    assert mine.law.alpha == pytest.approx(-0.3, abs=0.02) and mine.data_share["alpha"] < 0.1
    assert published.law.alpha < -0.65  # the published alpha (moved a little with beta, which it correlates with)
    assert mine.law.beta == pytest.approx(0.45, abs=0.03) and mine.law.gamma == pytest.approx(0.6, abs=0.03)
    assert mine.prior_source == "test"
    # `lawsweep fit --json`'s layout: exponents from lr_law / batch_law, SDs from their 95% intervals
    doc = {"lr_law": {"a": 0.2, "alpha": -0.4, "beta": 0.3, "intervals": {"alpha": [-0.6, -0.2], "beta": [0.2, 0.4]}},
           "batch_law": {"b": 0.5, "gamma": 0.6, "intervals": {"gamma": [0.5, 0.7]}}}
    p = LawPrior.from_mapping(doc, source="fit.json")
    assert (p.law.a, p.law.alpha, p.law.beta, p.law.b, p.law.gamma) == (0.2, -0.4, 0.3, 0.5, 0.6)
    assert np.sqrt(p.lr_cov[0][0]) == pytest.approx(0.4 / 3.919928) and p.lr_cov[0][1] == 0.0
    assert np.sqrt(p.gamma_var) == pytest.approx(0.2 / 3.919928)
    for bad, field in [({"beta": 0.3, "gamma": 0.5}, "'alpha'"), ({"alpha": "x", "beta": 0.3, "gamma": 0.5}, "alpha"),
                       ({"alpha": -0.5, "beta": 0.3, "gamma": 0.5, "alpha_sd": -1}, "alpha_sd"),
                       ({"alpha": -0.5, "beta": 0.3, "gamma": 0.5, "rho": 1.5}, "rho"),
                       ({"lr_law": None, "batch_law": None}, "no law"), ([1, 2], "JSON object")]:
        with pytest.raises(ValueError, match=field):
            LawPrior.from_mapping(bad, source="bad.json")


def test_an_earlier_sweep_s_posterior_becomes_the_prior_of_the_next():
    """LawPrior.from_fit: centred on the earlier fit's law, its spread the earlier posterior's intervals; cells of
    one width then take alpha from the earlier sweep, not from the published law."""
    true = StepLaw(a=0.5, alpha=-0.3, beta=0.45, b=0.3, gamma=0.6)
    earlier_cells = [(n, d) for n in (1e5, 3e5, 1e6) for d in (1e6, 4e6, 1.6e7)]
    lo = [CellObservation(n, d, float(np.log(true.lr(n, d)))) for n, d in earlier_cells]
    bo = [CellObservation(n, d, float(np.log(true.batch_tokens(d)))) for n, d in earlier_cells]
    earlier = fit_posterior(lo, bo, prior=PUBLISHED_PRIOR)
    prior = LawPrior.from_fit(earlier, source="earlier")
    assert prior.law.alpha == pytest.approx(earlier.law.alpha) and prior.law.kappa == 0.0
    sd = np.sqrt(prior.lr_cov[0][0])
    lo_a, hi_a = earlier.intervals["alpha"]
    assert sd == pytest.approx((hi_a - lo_a) / 3.919928) and abs(prior.lr_cov[0][1]) < sd * np.sqrt(prior.lr_cov[1][1])
    lo1, bo1 = _one_width_cells(true)
    now = fit_posterior(lo1, bo1, prior=prior)
    assert now.law.alpha == pytest.approx(-0.3, abs=0.05)
    assert fit_posterior(lo1, bo1, prior=PUBLISHED_PRIOR).law.alpha < -0.65


def test_the_anchored_batch_takes_its_level_from_the_targets_largest_bracketed_batch_cell_below_its_d():
    """anchored_batch: B*(D) at the target times measured / law at the target N's largest-D cell whose batch is
    bracketed (a bound, a cell at the target's D and other widths do not count)."""
    n = 3e5
    obs = [CellObservation(n, 1e7, float(np.log(TRUE.batch_tokens(1e7) / 2.0))),
           CellObservation(n, 4e7, float(np.log(TRUE.batch_tokens(4e7) * 2.0))),         # the largest D: x2
           CellObservation(n, 1.6e8, float(np.log(TRUE.batch_tokens(1.6e8) * 8)), -1),   # a bound
           CellObservation(n, 6.4e8, float(np.log(TRUE.batch_tokens(6.4e8) * 8))),      # at the target's D
           CellObservation(1e6, 4e7, float(np.log(TRUE.batch_tokens(4e7) * 16.0)))]      # another width
    bt, at = anchored_batch(obs, TRUE, n, 6.4e8)
    assert at == 4e7 and bt == pytest.approx(TRUE.batch_tokens(6.4e8) * 2.0, rel=1e-12)
    assert anchored_batch(obs, TRUE, n, 2e7) == (pytest.approx(TRUE.batch_tokens(2e7) / 2.0, rel=1e-12), 1e7)
    assert anchored_batch(obs, TRUE, n, 1e7) is None and anchored_batch(obs, TRUE, 3e6, 6.4e8) is None
