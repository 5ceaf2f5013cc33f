import math

import numpy as np
import pytest

from laws.divergence import divergence_verdict
from laws.extrapolation import (
    adamw_equilibrium_update,
    effective_lr,
    ladder_error,
    log_curvature,
    out_of_sample_r2,
)


def _healthy(n=40, seed=0):
    t = np.arange(1, n + 1)
    return 2.0 + 3.0 * t**-0.5 + 0.01 * np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize("seed", range(5))
def test_healthy_curves_are_not_flagged(seed):
    v = divergence_verdict(_healthy(seed=seed), grad_norm=np.full(40, 1.0), effective_lr=np.full(40, 0.01))
    assert not v.diverging and v.score < 1


def test_nan_spike_trend_grad_and_update_size_are_flagged():
    c = _healthy()
    assert divergence_verdict(np.append(c, np.nan)).diverging
    v = divergence_verdict(np.append(c, c.min() * 1.5))
    assert v.diverging and "spiked" in v.reason
    rising = np.concatenate([c, c.min() + 0.02 * np.arange(1, 7)])
    assert divergence_verdict(rising).diverging
    g = np.append(np.ones(10), 50.0)
    assert divergence_verdict(_healthy(11), grad_norm=g).diverging
    assert divergence_verdict(_healthy(5), effective_lr=np.array([0.01, 0.5])).diverging
    assert math.isinf(divergence_verdict(np.array([2.0, np.inf])).score)


def test_divergence_thresholds_are_validated():
    with pytest.raises(ValueError, match="spike_factor"):
        divergence_verdict(np.ones(3), spike_factor=1.0)


def test_effective_lr_and_adamw_equilibrium():
    w = np.ones((4, 4))
    assert effective_lr(w, w * 1.1) == pytest.approx(0.1)
    assert adamw_equilibrium_update(0.01, 0.1) == pytest.approx(math.sqrt(0.002))
    with pytest.raises(ValueError):
        effective_lr(np.zeros((2, 2)), np.ones((2, 2)))


def test_curvature_detects_an_upward_bend_with_an_interval():
    N = np.logspace(6, 10, 12)
    logn = np.log(N)
    lr = np.exp(-0.7 * logn + 0.02 * (logn - logn.mean()) ** 2 + 0.01 * np.random.default_rng(0).standard_normal(12))
    c = log_curvature(N, lr)
    assert c.c2 == pytest.approx(0.02, abs=0.005)
    assert c.c2_interval[0] > 0  # the bend is significant
    straight = log_curvature(N, np.exp(-0.7 * logn))
    assert abs(straight.c2) < 1e-9


def test_d_axis_ladder_beats_n_axis_when_the_law_bends_in_n():
    # eta*(N, D) bends upward in log N but is straight in log D: a D-axis ladder extrapolates better.
    def eta(n, d):
        ln = np.log(n) - np.log(1e9)
        return np.exp(-0.7 * np.log(n) + 0.03 * ln**2 + 0.3 * np.log(d))

    target = (1e9, 1e11)
    n_ladder = np.array([1e7, 3e7, 1e8])
    d_ladder = np.array([1e8, 3e8, 1e9])
    n_err = ladder_error(n_ladder, eta(n_ladder, target[1]), target[0], eta(*target))
    d_err = ladder_error(d_ladder, eta(target[0], d_ladder), target[1], eta(*target))
    assert abs(d_err) < 1e-9 < abs(n_err)
    assert out_of_sample_r2(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 4.0])) == 1.0
