"""One contract every search policy passes (Optuna's sampler tests, in spirit)."""

import math

import numpy as np
import pytest

from laws.bowl import BowlShape
from laws.steplaw import PUBLISHED, StepLaw
from search import POLICIES, LawPrior, Observation, Proposal, Scale, build_grid, make_policy

SCALES = [Scale(key="small", N=100_000, D=300_000, context=64), Scale(key="big", N=400_000, D=1_200_000, context=64)]
LRS = [2.0**e for e in range(-11, -3)]
BATCHES = [2, 4, 8, 16, 32]
# Every registered base policy, and the wrappers around some of them.
NAMES = [*POLICIES, "law_prior", "law_prior:random", "law_prior:tpe"]


def bowl(p):
    s = next(s for s in SCALES if s.key == p.scale)
    lo, bo = np.log2(PUBLISHED.lr(s.N, s.D)), np.log2(PUBLISHED.batch_tokens(s.D) / s.context)
    x, y = np.log2(p.lr) - lo, np.log2(p.batch_size) - bo
    if x > 2.5:
        return math.nan, "diverged"
    return 2.0 + 0.03 * x * x + 0.01 * y * y, "ok"


#: The bowl below as a sweep's mapped scales would measure it (laws.bowl.fit_bowl_shape): with a bowl of its own a
#: sweep's found() may end a searched scale (stop_at); on the borrowed Step Law bowl alone it may not.
MEASURED = BowlShape(lr_curv=0.015, batch_curv=0.005, noise=0.004, misfit=0.088, n_points=40, source="mapped scales")


def drive(policy, limit=1000):
    seen = []
    while len(seen) < limit and (p := policy.suggest()) is not None:
        loss, st = bowl(p)
        policy.observe(Observation(p, loss, st))
        seen.append(p)
    return seen


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


def _make(name, **kw):
    if name.startswith("law_prior"):
        kw.setdefault("trials_per_scale", None)
    return make_policy(name, build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES), (0,), rng_seed=1, **kw)


def test_proposes_only_grid_points_never_twice_and_stops(name):
    policy = _make(name, trials_per_scale=12)
    seen = drive(policy)
    assert len(seen) == len(set(seen)) == policy.budget == 24
    for p in seen:
        assert p.lr in LRS and p.batch_size in BATCHES and p.seed == 0
    assert policy.suggest() is None
    assert [p.scale for p in seen[:12]] == ["small"] * 12  # cheapest scale first


def test_whole_grid_is_reachable(name):
    policy = _make(name, trials_per_scale=len(LRS) * len(BATCHES))
    assert len(drive(policy)) == 2 * len(LRS) * len(BATCHES)


def test_rebuilt_from_recorded_trials_does_not_repeat_them(name):
    first = _make(name, trials_per_scale=8)
    done = drive(first, limit=5)
    rebuilt = _make(name, trials_per_scale=8)
    for p in done:
        rebuilt.observe(Observation(p, *bowl(p)))
    rest = drive(rebuilt)
    assert not set(rest) & set(done)
    assert len(rest) == 16 - 5


def test_respects_a_restricted_point_set(name):
    policy = _make(name, trials_per_scale=40)
    allowed = {(lr, bs, 0) for lr in LRS[:3] for bs in BATCHES[:2]}
    policy.restrict_to({"small": allowed, "big": set()})
    seen = drive(policy)
    assert {p.point for p in seen} == allowed


def test_law_prior_starts_at_the_prediction_and_stays_in_a_small_region():
    policy = _make("law_prior")
    first = policy.suggest()
    s = SCALES[0]
    assert abs(math.log2(first.lr / PUBLISHED.lr(s.N, s.D))) <= 0.5
    assert abs(math.log2(first.batch_size * 64 / PUBLISHED.batch_tokens(s.D))) <= 0.5
    assert policy.trials_per_scale == 4  # 10% of a 40-point grid, at least 4
    region = policy.region("small")
    assert len(region) <= 0.25 * len(LRS) * len(BATCHES)


def test_law_prior_follows_the_optimum_off_its_region_edge():
    # The prior is 3 octaves too low: the region must move up to the real optimum.
    bad_prior = StepLaw(a=PUBLISHED.a / 8, alpha=PUBLISHED.alpha, beta=PUBLISHED.beta, b=PUBLISHED.b,
                        gamma=PUBLISHED.gamma)
    policy = _make("law_prior", prior=bad_prior, trials_per_scale=20)
    seen = [p for p in drive(policy) if p.scale == "small"]
    best = min(seen, key=lambda p: bowl(p)[0])
    s = SCALES[0]
    assert abs(math.log2(best.lr / PUBLISHED.lr(s.N, s.D))) <= 0.5


def test_law_prior_refits_the_law_from_completed_scales():
    true = StepLaw(a=PUBLISHED.a * 2, alpha=PUBLISHED.alpha, beta=PUBLISHED.beta, b=PUBLISHED.b, gamma=PUBLISHED.gamma)
    three = SCALES + [Scale(key="bigger", N=1_600_000, D=1_200_000, context=64)]

    def bowl3(p):
        s = next(s for s in three if s.key == p.scale)
        x = np.log2(p.lr / true.lr(s.N, s.D))
        y = np.log2(p.batch_size * 64 / true.batch_tokens(s.D))
        return 2.0 + 0.03 * x * x + 0.01 * y * y

    policy = LawPrior(make_policy("grid", build_grid(three, lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=15)
    while (p := policy.suggest()) is not None:
        policy.observe(Observation(p, bowl3(p), "ok"))
    # After two scales the law moved from the published prefactor towards the truth.
    assert policy.law.a != PUBLISHED.a


def test_law_prior_validates_its_settings():
    base = make_policy("grid", build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES))
    with pytest.raises(ValueError, match="mass must be in"):
        LawPrior(base, mass=0.0)
    with pytest.raises(ValueError, match=r"spread=\(0.5, -1"):
        LawPrior(base, spread=(0.5, -1.0))


def test_ladder_maps_the_smaller_scales_then_searches_the_largest_with_the_refitted_law():
    three = SCALES + [Scale(key="bigger", N=1_600_000, D=1_200_000, context=64)]
    policy = make_policy("ladder", build_grid(three, lrs=LRS, batch_sizes=BATCHES))
    full = len(LRS) * len(BATCHES)
    assert policy.budget == 2 * full + 4  # 10% of the largest grid, at least 4
    seen = []
    true = StepLaw(a=PUBLISHED.a * 2, alpha=PUBLISHED.alpha, beta=PUBLISHED.beta, b=PUBLISHED.b, gamma=PUBLISHED.gamma)
    while (p := policy.suggest()) is not None:
        s = next(s for s in three if s.key == p.scale)
        x = np.log2(p.lr / true.lr(s.N, s.D))
        y = np.log2(p.batch_size * 64 / true.batch_tokens(s.D))
        policy.observe(Observation(p, 2.0 + 0.03 * x * x + 0.01 * y * y, "ok"))
        seen.append(p)
    keys = [p.scale for p in seen]
    assert len(set(seen)) == len(seen) == policy.budget
    assert keys.count("small") == keys.count("big") == full and keys.count("bigger") == 4
    assert keys.index("bigger") == 2 * full  # the largest scale starts after the mapped ones
    # The refit moved the law towards the truth (the published prior is 1 octave off): the largest scale's
    # first try is nearer the true optimum than the prior's prediction.
    first = next(p for p in seen if p.scale == "bigger")
    s = three[2]
    assert abs(np.log2(first.lr / true.lr(s.N, s.D))) <= 0.75


def test_the_refit_reads_runs_that_diverged_as_bounding_the_bowl_not_as_missing():
    # Every LR more than 0.3 octave above a scale's optimum diverges, so each mapped scale's best finished run
    # is its highest finished LR. Read as missing, those runs would leave every cell "at or above its edge".
    three = SCALES + [Scale(key="bigger", N=1_600_000, D=1_200_000, context=64)]
    true = StepLaw(a=PUBLISHED.a * 2, alpha=PUBLISHED.alpha, beta=PUBLISHED.beta, b=PUBLISHED.b, gamma=PUBLISHED.gamma)
    policy = make_policy("ladder", build_grid(three, lrs=LRS, batch_sizes=BATCHES))
    seen = []
    while (p := policy.suggest()) is not None:
        seen.append(p)
        s = next(s for s in three if s.key == p.scale)
        x = np.log2(p.lr / true.lr(s.N, s.D))
        y = np.log2(p.batch_size * 64 / true.batch_tokens(s.D))
        obs = Observation(p, math.nan, "diverged") if x > 0.3 else Observation(p, 2.0 + 0.03 * x * x + 0.01 * y * y,
                                                                                 "ok")
        policy.observe(obs)
    from laws.estimators import cell_observations
    from laws.table import SweepTable

    rows = [{"N": s.N, "D": s.D, "lr": o.proposal.lr, "batch_tokens": o.proposal.batch_size * 64, "loss": o.loss,
             "status": o.status} for o in policy.observations for s in three[:2] if s.key == o.proposal.scale]
    lr_obs, _ = cell_observations(*SweepTable.from_rows(rows).fit_inputs().arrays())
    assert [o.side for o in lr_obs] == [0, 0]  # the diverged runs bracket every mapped cell's LR
    # the refitted law's first try at the largest scale is the grid LR nearest its optimum (2^-6.65), not the
    # next one up (read as bounds, the mapped cells push the law above their best runs)
    first = next(p for p in seen if p.scale == "bigger")
    assert first.lr == 2.0**-7


def _batch_missed_by_two_octaves(s):
    """A bowl at scale ``s`` whose LR optimum is the published law's and whose batch optimum is two octaves below
    it: (loss of a proposal, the best grid point)."""
    lo, bo = np.log2(PUBLISHED.lr(s.N, s.D)), np.log2(PUBLISHED.batch_tokens(s.D) / s.context) - 2.0

    def loss(p):
        return 2.0 * (1 + 0.006 * (np.log2(p.lr) - lo) ** 2 + 0.006 * (np.log2(p.batch_size) - bo) ** 2)

    best = min(((lr, bs) for lr in LRS for bs in BATCHES),
               key=lambda q: (np.log2(q[0]) - lo) ** 2 + (np.log2(q[1]) - bo) ** 2)
    return loss, best


def test_law_prior_follows_the_runs_along_the_batch_axis_when_the_law_misses_the_batch():
    # The law's LR is right at the small scale; its batch is two octaves too high (12 sequences: grid point 16;
    # the best is 4). A region that looks along the LR first spends its trials there; the runs say batch.
    s = SCALES[0]
    loss, best = _batch_missed_by_two_octaves(s)
    policy = LawPrior(make_policy("grid", build_grid([s], lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=8,
                      spread=(0.5, 1.0))
    seen = []
    while (p := policy.suggest()) is not None and (p.lr, p.batch_size) != best:
        policy.observe(Observation(p, loss(p), "ok"))
        seen.append(p)
    assert p is not None and (p.lr, p.batch_size) == best
    assert len(seen) + 1 <= 4


def test_law_prior_says_how_probable_it_is_that_a_scale_s_best_run_is_its_best_point():
    policy = LawPrior(make_policy("grid", build_grid(SCALES[:1], lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=40)
    assert policy.found("small") == 0.0
    seen = []
    while (p := policy.suggest()) is not None:
        policy.observe(Observation(p, *bowl(p)))
        seen.append(policy.found("small"))
    assert 0.0 < seen[0] < 0.9 and seen[-1] == pytest.approx(1.0)  # every point run: the best is among them
    assert seen[3] > seen[0]  # the runs around the optimum make it surer


def test_law_prior_ends_a_searched_scale_once_its_best_run_is_probably_found():
    # The same bowl as above, 40 trials allowed: with stop_at the scale ends as soon as found() reaches it, with
    # the best grid point among the runs; without, it spends its budget.
    def run(stop_at):
        policy = LawPrior(make_policy("grid", build_grid(SCALES[:1], lrs=LRS, batch_sizes=BATCHES)),
                          trials_per_scale=40, stop_at=stop_at, bowl=MEASURED)
        n = 0
        while (p := policy.suggest()) is not None:
            policy.observe(Observation(p, *bowl(p)))
            n += 1
        return policy, n

    full, n_full = run(None)
    ended, n_ended = run(0.9)
    assert n_full == min(40, len(LRS) * len(BATCHES)) and not full.stopped
    assert 1 < n_ended < n_full
    assert ended.stopped["small"] == pytest.approx(ended.found("small")) and ended.found("small") >= 0.9
    ran = min((o for o in ended.observations if o.status == "ok"), key=lambda o: o.loss).proposal
    grid_best = min(((lr, bs) for lr in LRS for bs in BATCHES),
                    key=lambda q: np.nan_to_num(bowl(Proposal("small", q[0], q[1], 0))[0], nan=np.inf))
    assert (ran.lr, ran.batch_size) == grid_best
    with pytest.raises(ValueError, match="stop_at"):
        LawPrior(make_policy("grid", build_grid(SCALES[:1], lrs=LRS, batch_sizes=BATCHES)), stop_at=1.0)


def test_law_prior_does_not_end_a_scale_early_where_the_law_misses_its_batch():
    # The law two octaves off in batch (the test above): found() stays below 0.9 until the runs reach the best
    # point, so ending at 0.9 never ends the scale before it.
    s = SCALES[0]
    loss, best = _batch_missed_by_two_octaves(s)
    policy = LawPrior(make_policy("grid", build_grid([s], lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=20,
                      spread=(0.5, 1.0), stop_at=0.9, bowl=MEASURED)
    while (p := policy.suggest()) is not None:
        policy.observe(Observation(p, loss(p), "ok"))
    assert best in {(o.proposal.lr, o.proposal.batch_size) for o in policy.observations}
    assert len(policy.observations) < 20  # and it did end early


def test_law_prior_ends_no_scale_early_on_the_borrowed_bowl_until_a_scale_is_mapped():
    # No bowl of the sweep's own: found() rests on the published law and the Step Law grid's bowl, and it may not end
    # a scale (stop_at) until a mapped scale has run its whole grid.
    policy = LawPrior(make_policy("grid", build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=40,
                      stop_at=0.5, searched={"big"}, refit=False)
    assert not policy.stop_trusted()
    mapped = 0
    while (p := policy.suggest()) is not None:
        policy.observe(Observation(p, *bowl(p)))
        if p.scale == "small":
            mapped += 1
            assert policy.stop_trusted() == (mapped == len(LRS) * len(BATCHES))
    assert "big" in policy.stopped  # the mapped scale ran in full first: then found() ended the searched one
    alone = LawPrior(make_policy("grid", build_grid(SCALES[:1], lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=40,
                     stop_at=0.5)
    while (p := alone.suggest()) is not None:
        alone.observe(Observation(p, *bowl(p)))
    assert not alone.stopped and len(alone.observations) == 40


def test_law_prior_with_stop_at_waits_for_a_scale_s_result_in_flight_before_its_next_trial():
    # Run in parallel (a runner asks for trials before the last ones finish), a scale that stop_at may end would
    # otherwise be handed its whole budget before any result came back: with stop_at each searched scale has at
    # most one trial in flight, the other scales run meanwhile, and suggest() waits (None) while all are waiting.
    policy = LawPrior(make_policy("grid", build_grid(SCALES[:2], lrs=LRS, batch_sizes=BATCHES)),
                      trials_per_scale=40, stop_at=0.9, bowl=MEASURED)
    first, second = policy.suggest(), policy.suggest()
    assert first is not None and second is not None and first.scale != second.scale
    assert policy.suggest() is None and policy.in_flight(first.scale) == 1  # both scales wait for their result
    policy.observe(Observation(first, *bowl(first)))
    assert policy.in_flight(first.scale) == 0
    nxt = policy.suggest()
    assert nxt is not None and nxt.scale == first.scale  # its result came back: that scale goes on
    # run to the end with one result always pending: every scale still ends by stop_at, as run one at a time
    pending = [second, nxt]
    while pending:
        p = pending.pop(0)
        policy.observe(Observation(p, *bowl(p)))
        while (q := policy.suggest()) is not None:
            pending.append(q)
    assert set(policy.stopped) == {s.key for s in SCALES[:2]}
    assert all(policy.in_flight(s.key) == 0 for s in SCALES[:2])
    # without stop_at a scale is handed trials without waiting for their results
    free = LawPrior(make_policy("grid", build_grid(SCALES[:2], lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=40)
    assert len({free.suggest().scale for _ in range(3)}) == 1


def test_law_prior_starts_from_a_given_exponent_prior_and_refits_under_it():
    # [sweep] prior: an earlier sweep's law (here alpha -0.3 and its own prefactor) is where the search starts
    # and what the refit shrinks towards, instead of the published law.
    from laws.estimators import LawPrior as ExponentPrior

    given = ExponentPrior.from_mapping({"a": 0.05, "alpha": -0.3, "beta": 0.307, "gamma": 0.571}, source="test")
    grids = build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES)
    mine = LawPrior(make_policy("grid", grids), trials_per_scale=4, exponent_prior=given)
    published = LawPrior(make_policy("grid", build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES)), trials_per_scale=4)
    s = SCALES[0]
    assert mine.predicted("small")[0] == pytest.approx(given.law.lr(s.N, s.D))
    assert published.predicted("small")[0] == pytest.approx(PUBLISHED.lr(s.N, s.D))
    first = mine.suggest()
    assert abs(np.log2(first.lr / given.law.lr(s.N, s.D))) <= 1.0
    mine.observe(Observation(first, *bowl(first)))
    while (p := mine.suggest()) is not None:
        mine.observe(Observation(p, *bowl(p)))
    assert mine.law != given.law  # refitted on the runs, under the given prior
    assert mine.exponent_prior is given


def _bowl_rows(cells, off, boff=None):
    """Octave-grid bowls whose optimum sits ``off[N]`` octaves off the published law's LR (0 where not given) and
    ``boff[N]`` off its batch."""
    import pandas as pd

    from laws.table import SweepTable
    rows = []
    for n, d in cells:
        lo = np.log2(PUBLISHED.lr(n, d)) + off.get(n, 0.0)
        bo = np.log2(PUBLISHED.batch_tokens(d)) + (boff or {}).get(n, 0.0)
        for x in range(round(lo) - 3, round(lo) + 4):
            for y in range(round(bo) - 2, round(bo) + 3):
                rows.append(dict(N=n, D=d, lr=2.0**x, batch_tokens=2.0**y, status="ok", seed=0,
                                 loss=3 + 0.04 * (x - lo) ** 2 + 0.02 * (y - bo) ** 2))
    return SweepTable(pd.DataFrame(rows))


def test_law_prior_anchors_its_lr_centre_on_the_searched_model_at_fewer_tokens():
    """anchor: the searched scale's LR centre is the law's step in D from the same model's largest-D cell in the
    history (one octave below the law there, so the centre moves an octave down and the first trial with it); a
    scale whose model the history holds at no smaller D reads the law as fitted; without anchor, the law."""
    history = _bowl_rows([(100_000, 300_000), (400_000, 75_000), (400_000, 300_000)], {400_000: -1.0})
    grids = build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES)
    big = SCALES[1]
    truth = PUBLISHED.lr(big.N, big.D) / 2
    plain = LawPrior(make_policy("grid", grids), trials_per_scale=4, anchor=False)
    anchored = LawPrior(make_policy("grid", grids), trials_per_scale=4, history=history)
    assert plain.predicted("big")[0] == pytest.approx(PUBLISHED.lr(big.N, big.D))
    assert abs(math.log2(anchored.predicted("big")[0] / truth)) < 0.15
    assert "small" not in anchored.anchors and anchored.predicted("small") == plain.predicted("small")
    # the model's batch optimum sits on B*(D) there: the anchored batch centre is the law's
    assert abs(math.log2(anchored.predicted("big")[1] / plain.predicted("big")[1])) < 0.15
    first = next(p for p in drive(anchored) if p.scale == "big")
    assert abs(math.log2(first.lr / truth)) <= 0.5 < abs(math.log2(plain.region("big")[0][0] / truth))


def test_law_prior_anchors_its_batch_centre_too():
    """anchor_batch (the default): where the searched model's largest-D cell in the history has its batch optimum an
    octave above B*(D) (which has no N term), the batch centre moves an octave up with it; without, B*(D)."""
    history = _bowl_rows([(100_000, 300_000), (400_000, 75_000), (400_000, 300_000)], {400_000: -1.0},
                         {400_000: 1.0})
    grids = build_grid(SCALES, lrs=LRS, batch_sizes=BATCHES)
    plain = LawPrior(make_policy("grid", grids), trials_per_scale=4, history=history, anchor_batch=False)
    both = LawPrior(make_policy("grid", grids), trials_per_scale=4, history=history)
    big = SCALES[1]
    law_batch = PUBLISHED.batch_tokens(big.D) / big.context
    assert plain.predicted("big")[1] == pytest.approx(law_batch)
    assert abs(math.log2(both.predicted("big")[1] / (2 * law_batch))) < 0.15
    assert both.predicted("big")[0] == pytest.approx(plain.predicted("big")[0])  # the LR anchored alike
    assert not LawPrior(make_policy("grid", grids), anchor=False, anchor_batch=True, history=history).batch_anchors
