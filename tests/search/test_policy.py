import math

import pytest

from laws.steplaw import PUBLISHED
from search import GridPolicy, Observation, Proposal, Scale, build_grid, make_policy, plan_grid

SCALES = [Scale(key="big", N=400_000, D=300_000, context=64), Scale(key="small", N=100_000, D=300_000, context=64)]


def _drain(policy):
    out = []
    while (p := policy.suggest()) is not None:
        out.append(p)
    return out


def test_grid_policy_proposes_every_point_once_cheapest_scale_first():
    grids = build_grid(SCALES, lrs=[1e-3, 2e-3, 4e-3], batch_sizes=[8, 16])
    policy = GridPolicy(grids, seeds=(0, 1))
    points = _drain(policy)
    assert policy.budget == len(points) == 2 * 3 * 2 * 2
    assert len(set(points)) == len(points)
    assert points[0].scale == "small" and points[-1].scale == "big"
    assert policy.suggest() is None


def test_rebuilt_policy_skips_what_was_recorded():
    grids = build_grid(SCALES, lrs=[1e-3, 2e-3], batch_sizes=[8])
    first = GridPolicy(grids)
    done = [first.suggest(), first.suggest()]
    rebuilt = GridPolicy(grids)
    rebuilt.observe(Observation(done[0], 2.0, "ok"))
    rebuilt.observe(Observation(done[1], math.nan, "diverged"))
    rest = _drain(rebuilt)
    assert len(rest) == 2 and not set(rest) & set(done)


def test_lr_octaves_centre_on_the_prior_at_each_scale():
    grids = build_grid(SCALES, lr_octaves=[-1, 0, 1], batch_sizes=[16])
    for g in grids:
        centre = PUBLISHED.lr(g.scale.N, g.scale.D)
        assert g.lrs == pytest.approx((centre / 2, centre, centre * 2))


def test_grid_errors():
    with pytest.raises(ValueError, match="exactly one"):
        build_grid(SCALES, batch_sizes=[8])
    with pytest.raises(ValueError, match="batch_size is empty"):
        build_grid(SCALES, lrs=[1e-3], batch_sizes=[])
    with pytest.raises(ValueError, match="unknown policy 'bayes'"):
        make_policy("bayes", build_grid(SCALES, lrs=[1e-3], batch_sizes=[8]), (0,))
    with pytest.raises(ValueError, match="status 'ok' needs a finite loss"):
        Observation(Proposal("small", 1e-3, 8), math.nan, "ok")


def test_plan_counts_trials_and_compute():
    rows = plan_grid(build_grid(SCALES, lrs=[1e-3, 2e-3], batch_sizes=[8, 16]), n_seeds=3)
    assert [r.scale for r in rows] == ["small", "big"]
    assert rows[0].trials == 12
    assert rows[0].flops == 12 * 6 * 100_000 * 300_000
    assert rows[0].batch_tokens == (512, 1024)


def test_ladder_fits_the_budget_and_shrinks_the_right_axis():
    from search.plan import plan_ladder

    p = plan_ladder(7e9, 1e12, 1e21, workers=64, axis="N")
    assert p.flops <= 1e21 * (1 + 1e-9)
    assert p.flops == pytest.approx(0.1 * p.grid_flops)
    ns = [r.N for r in p.rungs]
    assert ns == sorted(ns) and ns[-1] < 7e9
    assert all(r.D / r.N == pytest.approx(1e12 / 7e9) for r in p.rungs)  # tokens per parameter kept
    d = plan_ladder(7e9, 1e12, 1e21, axis="D")
    # Along D: the target model at fewer tokens, plus one smaller model at the top rung's tokens (N exponent).
    assert sum(r.N == 7e9 for r in d.rungs) == 3 and all(r.D < 1e12 for r in d.rungs)
    small = [r for r in d.rungs if r.N < 7e9]
    assert len(small) == 1 and small[0].D == pytest.approx(max(r.D for r in d.rungs))
    assert d.flops <= 1e21 * (1 + 1e-9)
    assert p.waves == 4
    with pytest.raises(ValueError, match="axis"):
        plan_ladder(7e9, 1e12, 1e21, axis="L")
    with pytest.raises(ValueError, match="budget_flops"):
        plan_ladder(7e9, 1e12, -1)


def test_plan_prefers_the_d_axis_when_the_target_fits_a_worker():
    from search.plan import choose_axis

    axis, why = choose_axis(1e9, 80)
    assert axis == "D" and "fewer tokens" in why and "80 GiB" in why
    axis, why = choose_axis(7e10, 80)  # 70B params need ~1.2 TiB of training state
    assert axis == "N" and "shrinks the model" in why


def test_branched_rungs_price_a_d_axis_ladder_as_one_stable_run_plus_cooldowns():
    """Rungs at one N and D of 1x, 4x, 16x: per point one stable run to 80% of 16x plus 20% cooldowns of every
    rung, 17/21 of the tokens of the three rungs run apart (at equal trials per rung)."""
    from search.plan import branched_rungs, plan_ladder

    p = plan_ladder(1.6e6, 2e7, 1e14, workers=1, axis="D")
    (b,) = branched_rungs(p)
    rungs = [r for r in p.rungs if r.N == b["N"]]
    assert len(rungs) == 3 and b["N"] == 1.6e6 and b["trials"] == max(r.trials for r in rungs)
    assert b["D"] == [r.D for r in rungs]
    assert b["branched_flops"] == pytest.approx(
        b["trials"] * 6 * b["N"] * (0.8 * max(b["D"]) + 0.2 * sum(b["D"])))
    assert b["branched_flops"] / sum(6 * b["N"] * d * b["trials"] for d in b["D"]) == pytest.approx(17 / 21, rel=1e-3)
    assert branched_rungs(plan_ladder(7e9, 1e12, 1e21, workers=64, axis="N")) == []
