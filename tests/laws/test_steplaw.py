import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.steplaw import PUBLISHED, StepLaw, fit_step_law
from laws.sweep import fit_sweep


def test_published_coefficients():
    assert (PUBLISHED.a, PUBLISHED.alpha, PUBLISHED.beta, PUBLISHED.b, PUBLISHED.gamma) == (
        1.79, -0.713, 0.307, 0.58, 0.571)
    assert PUBLISHED.lr(1e9, 1e11) == pytest.approx(1.79 * 1e9**-0.713 * 1e11**0.307)


@pytest.mark.parametrize("seed", range(10))
def test_refit_recovers_known_exponents_from_noisy_optima(seed):
    rng = np.random.default_rng(seed)
    true = StepLaw(a=0.9, alpha=-0.6, beta=-0.1, b=0.3, gamma=0.6)  # beta < 0: the sign is not hard-wired
    N = np.repeat(np.logspace(5, 8, 6), 4)
    D = np.tile(np.logspace(7, 10, 4), 6)
    lr = true.lr(N, D) * np.exp(0.02 * rng.standard_normal(N.size))
    bt = true.batch_tokens(D) * np.exp(0.02 * rng.standard_normal(N.size))
    fit = fit_step_law(N, D, lr, bt)
    assert fit.fixed == ()
    for k in ("alpha", "beta", "gamma"):
        assert getattr(fit.law, k) == pytest.approx(getattr(true, k), abs=0.02)
        lo, hi = fit.intervals[k]
        assert lo < getattr(fit.law, k) < hi
    assert fit.lr_rms_log2 < 0.1


def test_one_token_budget_holds_beta_and_gamma_at_the_prior():
    N = np.array([1e5, 4e5, 1.6e6])
    D = np.full(3, 3e5)
    fit = fit_step_law(N, D, PUBLISHED.lr(N, D), PUBLISHED.batch_tokens(D))
    assert set(fit.fixed) == {"beta", "gamma"}
    assert fit.law.beta == PUBLISHED.beta and fit.law.gamma == PUBLISHED.gamma
    assert fit.law.alpha == pytest.approx(PUBLISHED.alpha)
    assert fit.law.a == pytest.approx(PUBLISHED.a)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=">= 2 scales"):
        fit_step_law([1e5], [1e6], [1e-3], [256])
    with pytest.raises(ValueError, match="lr must be finite and positive"):
        fit_step_law([1e5, 2e5], [1e6, 1e6], [1e-3, -1], [256, 256])
    with pytest.raises(ValueError, match="fix may name"):
        fit_step_law([1e5, 2e5], [1e6, 1e6], [1e-3, 1e-3], [256, 256], fix=("delta",))


def test_scales_within_a_factor_two_identify_only_prefactors():
    fit = fit_step_law([1e5, 1.5e5], [1e6, 1.2e6], [1e-3, 2e-3], [256, 256])
    assert set(fit.fixed) == {"alpha", "beta", "gamma"}
    assert (fit.law.alpha, fit.law.beta, fit.law.gamma) == (PUBLISHED.alpha, PUBLISHED.beta, PUBLISHED.gamma)


def test_units_scaling_of_lr_moves_only_the_prefactor():
    N = np.array([1e5, 4e5, 1e5, 4e5, 2e5])
    D = np.array([3e5, 3e5, 1.2e6, 1.2e6, 6e5])
    lr = PUBLISHED.lr(N, D) * np.array([1.1, 0.9, 1.05, 0.97, 1.0])
    a = fit_step_law(N, D, lr, PUBLISHED.batch_tokens(D))
    b = fit_step_law(N, D, 10 * lr, PUBLISHED.batch_tokens(D))
    assert b.law.alpha == pytest.approx(a.law.alpha)
    assert b.law.beta == pytest.approx(a.law.beta)
    assert b.law.a == pytest.approx(10 * a.law.a)


def test_fit_sweep_end_to_end_on_synthetic_bowls():
    true = StepLaw(a=1.5, alpha=-0.7, beta=0.3, b=0.6, gamma=0.55)
    rows = []
    for n, d in [(1e5, 1e6), (4e5, 1e6), (1e5, 4e6), (4e5, 4e6)]:
        lo, bo = np.log2(true.lr(n, d)), np.log2(true.batch_tokens(d))
        for x in np.arange(round(lo) - 3, round(lo) + 4):
            for y in np.arange(round(bo) - 2, round(bo) + 3):
                rows.append((n, d, 2.0**x, 2.0**y, 3 + 0.04 * (x - lo) ** 2 + 0.02 * (y - bo) ** 2))
    N, D, lr, bt, loss = map(np.array, zip(*rows))
    fit = fit_sweep(N, D, lr, bt, loss, estimator="vertex")
    assert len(fit.scales) == 4 and not any(s.on_edge for s in fit.scales)
    assert not fit.used_on_edge
    assert fit.step_law.law.alpha == pytest.approx(-0.7, abs=0.03)
    assert fit.step_law.law.beta == pytest.approx(0.3, abs=0.03)
    assert fit.step_law.law.gamma == pytest.approx(0.55, abs=0.03)
    # The default (posterior) reads two-run bands as their centroid: within 0.05 on this octave grid.
    post = fit_sweep(N, D, lr, bt, loss).step_law
    assert post.estimator == "posterior" and post.n_bounds == 0
    for k, v in (("alpha", -0.7), ("beta", 0.3), ("gamma", 0.55)):
        assert getattr(post.law, k) == pytest.approx(v, abs=0.05)


def test_fit_sweep_with_one_scale_explains_why_no_law():
    fit = fit_sweep([1e5, 1e5], [1e6, 1e6], [1e-3, 2e-3], [256, 256], [2.0, 2.1])
    assert fit.step_law is None and "2 scales" in fit.note


def test_fit_sweep_holds_exponents_when_optima_are_on_the_edge():
    # Every scale's LR optimum sits at the top of its grid: the vertex estimator falls back to the prior.
    rows = []
    for n, d in [(1e5, 1e6), (4e5, 1e6), (1e5, 4e6)]:
        for x in range(-10, -4):
            for y in (8, 9, 10):
                rows.append((n, d, 2.0**x, 2.0**y, 3 - 0.01 * x + 0.02 * (y - 9) ** 2))
    N, D, lr, bt, loss = map(np.array, zip(*rows))
    fit = fit_sweep(N, D, lr, bt, loss, estimator="vertex")
    assert fit.used_on_edge and all(s.lr_on_edge and not s.batch_on_edge for s in fit.scales)
    assert {"alpha", "beta"} <= set(fit.step_law.fixed)
    assert fit.step_law.law.alpha == PUBLISHED.alpha


def test_step_law_refit_robust_to_10_percent_outlier_optima():
    rng = np.random.default_rng(0)
    N = np.repeat(np.logspace(7, 9, 5), 4)
    D = np.tile(np.logspace(9, 11, 4), 5)
    lr = PUBLISHED.lr(N, D) * np.exp(0.03 * rng.standard_normal(N.size))
    clean = fit_step_law(N, D, lr, PUBLISHED.batch_tokens(D))
    bad = lr.copy()
    bad[[3, 11]] *= 8.0  # two optima read off a bad grid, 3 octaves off
    dirty = fit_step_law(N, D, bad, PUBLISHED.batch_tokens(D))
    assert dirty.law.alpha == pytest.approx(clean.law.alpha, rel=0.05)
    assert dirty.law.beta == pytest.approx(clean.law.beta, rel=0.05)


@settings(max_examples=30, deadline=None)
@given(k=st.floats(1e-3, 1e3), seed=st.integers(0, 10_000))
def test_step_law_invariances_units_and_order(k, seed):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.logspace(7, 9, 4), 3)
    D = np.tile(np.logspace(9, 11, 3), 4)
    lr = PUBLISHED.lr(N, D) * np.exp(0.05 * rng.standard_normal(N.size))
    bt = PUBLISHED.batch_tokens(D) * np.exp(0.05 * rng.standard_normal(N.size))
    base = fit_step_law(N, D, lr, bt)
    scaled = fit_step_law(N, D, lr * k, bt * k)  # other LR / batch units: only the prefactors move
    assert scaled.law.alpha == pytest.approx(base.law.alpha, abs=1e-6)
    assert scaled.law.gamma == pytest.approx(base.law.gamma, abs=1e-6)
    assert scaled.law.a == pytest.approx(base.law.a * k, rel=1e-6)
    perm = rng.permutation(N.size)
    shuffled = fit_step_law(N[perm], D[perm], lr[perm], bt[perm])
    assert shuffled.law.beta == pytest.approx(base.law.beta, abs=1e-9)
