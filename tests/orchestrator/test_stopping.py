"""Stop decisions wired into Tune, fed synthetic result dicts (no Ray cluster needed)."""

import numpy as np

from orchestrator.searchers import PolicySearcher
from orchestrator.tune_runner import DivergenceStopper
from search import Scale, build_grid, make_policy


def test_divergence_stopper_stops_a_rising_curve_and_records_it():
    ids: set[str] = set()
    stop = DivergenceStopper(ids, spike_factor=1.5)
    healthy = [3.0, 2.5, 2.2, 2.1, 2.05]
    assert not any(stop("a", {"val_loss": v}) for v in healthy)
    assert not stop("b", {"val_loss": 3.0}) and not stop("b", {"val_loss": 2.0})
    assert stop("b", {"val_loss": 3.5})
    assert ids == {"b"} and not stop.stop_all()
    assert not stop("c", {"done": 1.0, "val_loss": np.nan})  # the final report is the trainer's to judge


def test_policy_searcher_round_trips_its_observations(tmp_path):
    grids = build_grid([Scale("s", 100_000, 300_000, 64)], lrs=[1e-3, 2e-3, 4e-3], batch_sizes=[8])
    a = PolicySearcher(make_policy("tpe", grids), lambda p: {"lr": p.lr})
    cfg = a.suggest("t1")
    a.on_trial_complete("t1", {"done": 1.0, "val_loss": 2.5})
    a.suggest("t2")
    a.diverged_ids.add("t2")
    a.on_trial_complete("t2", {"val_loss": 9.0})
    path = tmp_path / "searcher.json"
    a.save(str(path))
    b = PolicySearcher(make_policy("tpe", grids), lambda p: {"lr": p.lr})
    b.restore(str(path))
    assert [o.status for o in b.policy.observations] == ["ok", "diverged"]
    assert b.suggest("t3")["lr"] not in {cfg["lr"], a.policy.observations[1].proposal.lr}


def _results(lr, n=100, total=50, loss=lambda s: 3.0 - s / 100):
    """The reports of a trial (as orchestrator.trial sends them): its plan with every evaluation."""
    meta = {"N": 1e5, "D": 6400.0, "peak_lr": lr, "total_steps": float(total), "baseline_loss": 5.5}
    return [dict(meta, step=float(s), tokens=s * 128.0, val_loss=loss(s), grad_norm=1.0, eff_lr=0.01,
                 eff_lr_max=0.02) for s in range(5, total + 1, 5)]


def test_the_learned_predictor_stops_at_its_share_of_the_run_and_counts_the_compute_saved():
    from laws.divergence import FEATURES, DivergencePredictor
    from laws.steplaw import StepLaw

    # A known predictor: diverging iff the LR is more than 2 octaves above the law's eta* (only lr_vs_law counts).
    coef = tuple(1.0 if f == "lr_vs_law" else 0.0 for f in FEATURES)
    n = len(FEATURES)
    pred = DivergencePredictor(frac=0.2, mean=(0.0,) * n, scale=(1.0,) * n, coef=coef, intercept=-2.0, threshold=0.5)
    law = StepLaw(a=1.0, alpha=0.0, beta=0.0, b=1.0, gamma=1.0)  # eta* = 1 everywhere
    ids: set[str] = set()
    stop = DivergenceStopper(ids, predictor=pred, law={"law": law}, spike_factor=1.5)
    hot = [stop("hot", r) for r in _results(lr=8.0)]
    assert hot.index(True) == 1  # step 10 = 20% of 50 steps: the first report at the predictor's share
    assert ids == {"hot"}
    assert stop.saved_flops["hot"] == 6 * 1e5 * 6400 * (1 - 10 / 50)
    assert not any(stop("fine", r) for r in _results(lr=2.0))  # 1 octave above: healthy, judged once
    # (P, threshold, share judged at, called)
    assert "fine" not in ids and stop.judgments["fine"][1:] == (0.5, 10 / 50, 0.0) and stop.judgments["hot"][3] == 1.0
    assert stop.judgments["fine"][0] < 0.5 <= stop.judgments["hot"][0]
    # Before the sweep has its own law (fewer than two cells), the predictor is not used; the fixed rules still are.
    box: dict = {}
    early = DivergenceStopper(set(), predictor=pred, law=box, spike_factor=1.5)
    reports = _results(lr=8.0)
    assert not any(early("hot", r) for r in reports[:7])  # steps 5..35: no law yet
    box["law"] = law  # the law arrives at 70% of the run: past JUDGE_BY, the run is never judged
    assert not any(early("hot", r) for r in reports[7:]) and "hot" not in early.judgments
    assert early("blowup", _results(lr=8.0, loss=lambda s: 3.0 if s < 20 else float("nan"))[3])
    import pickle

    assert pickle.loads(pickle.dumps(stop)).saved_flops == stop.saved_flops  # Tune pickles its stopper


def test_in_shadow_mode_the_predictor_judges_every_trial_and_stops_none_but_the_fixed_rules_still_do():
    from laws.divergence import FEATURES, DivergencePredictor
    from laws.steplaw import StepLaw

    coef = tuple(1.0 if f == "lr_vs_law" else 0.0 for f in FEATURES)
    n = len(FEATURES)
    pred = DivergencePredictor(frac=0.2, mean=(0.0,) * n, scale=(1.0,) * n, coef=coef, intercept=-2.0, threshold=0.5)
    law = StepLaw(a=1.0, alpha=0.0, beta=0.0, b=1.0, gamma=1.0)
    ids: set[str] = set()
    shared: dict[str, tuple[float, float, float]] = {}  # the callback's dict: verdicts land in the trial rows
    stop = DivergenceStopper(ids, predictor=pred, law={"law": law}, spike_factor=1.5, shadow=True, judgments=shared)
    assert not any(stop("hot", r) for r in _results(lr=8.0))  # called diverging, run to its end
    assert not any(stop("fine", r) for r in _results(lr=2.0))
    assert set(shared) == {"hot", "fine"} and shared["hot"][0] >= 0.5 > shared["fine"][0]
    assert (shared["hot"][3], shared["fine"][3]) == (1.0, 0.0)
    assert ids == set() and stop.saved_flops == {}
    assert stop.shadow_flops == {"hot": 6 * 1e5 * 6400 * (1 - 10 / 50)}  # what the stop would have saved
    assert stop("blowup", _results(lr=8.0, loss=lambda s: 3.0 if s < 20 else float("nan"))[3])
    assert ids == {"blowup"}


def test_a_run_that_leads_its_cell_is_never_stopped_whatever_its_lr_says():
    """The law can be octaves off at an unfamiliar scale: a run far above the law's LR but ahead of every other
    run of its cell at the same share is judged (and recorded as not called), not stopped; behind them it is."""
    from laws.divergence import FEATURES, DivergencePredictor, leads_cell
    from laws.steplaw import StepLaw

    coef = tuple(1.0 if f == "lr_vs_law" else 0.0 for f in FEATURES)
    n = len(FEATURES)
    pred = DivergencePredictor(frac=0.2, mean=(0.0,) * n, scale=(1.0,) * n, coef=coef, intercept=-2.0, threshold=0.5)
    law = StepLaw(a=1.0, alpha=0.0, beta=0.0, b=1.0, gamma=1.0)
    stop = DivergenceStopper(set(), predictor=pred, law={"law": law}, spike_factor=1.5)
    assert not any(stop("slow", r) for r in _results(lr=1.0, loss=lambda s: 3.2 - s / 100))
    assert not any(stop("hot leader", r) for r in _results(lr=8.0))  # 0.2 below "slow" at every share
    assert stop.judgments["hot leader"][0] >= 0.5 and stop.judgments["hot leader"][3] == 0.0
    assert any(stop("hot laggard", r) for r in _results(lr=8.0, loss=lambda s: 3.5 - s / 100))
    assert stop.judgments["hot laggard"][3] == 1.0
    peer = [([{"step": 10.0, "val_loss": 2.0}], 50)]
    assert leads_cell(1.9, 0.2, peer) and not leads_cell(2.1, 0.2, peer)
    assert not leads_cell(1.0, 0.2, []) and not leads_cell(1.0, 0.8, peer)  # nothing to compare with: no lead


def test_a_run_shorter_than_the_predictors_evidence_is_left_to_the_fixed_rules():
    import dataclasses

    from laws.divergence import FEATURES, MIN_STEPS, MIN_TOKENS, DivergencePredictor, load_predictor
    from laws.steplaw import StepLaw

    shipped = load_predictor()
    assert (shipped.min_steps, shipped.min_tokens) == (MIN_STEPS, MIN_TOKENS)  # the shipped model carries its bounds
    assert shipped.judges(MIN_STEPS, MIN_TOKENS) and not shipped.judges(MIN_STEPS, MIN_TOKENS - 1)
    coef = tuple(1.0 if f == "lr_vs_law" else 0.0 for f in FEATURES)
    n = len(FEATURES)
    pred = DivergencePredictor(frac=0.2, mean=(0.0,) * n, scale=(1.0,) * n, coef=coef, intercept=-2.0,
                               threshold=0.5, min_steps=51)
    law = StepLaw(a=1.0, alpha=0.0, beta=0.0, b=1.0, gamma=1.0)
    stop = DivergenceStopper(set(), predictor=pred, law={"law": law}, spike_factor=1.5)
    assert not any(stop("short hot", r) for r in _results(lr=8.0, total=50)) and stop.judgments == {}
    stop = DivergenceStopper(set(), predictor=dataclasses.replace(pred, min_steps=50), law={"law": law},
                             spike_factor=1.5)
    assert any(stop("hot", r) for r in _results(lr=8.0, total=50)) and set(stop.judgments) == {"hot"}


def test_the_stopper_measures_a_trial_against_the_runs_of_its_cell_reported_so_far():
    from laws.divergence import FEATURES, DivergencePredictor
    from laws.steplaw import StepLaw

    # A known predictor: diverging iff the trial's loss is more than 20% above its cell's best at the same share.
    coef = tuple(1.0 if f == "loss_vs_cell" else 0.0 for f in FEATURES)
    n = len(FEATURES)
    pred = DivergencePredictor(frac=0.2, mean=(0.0,) * n, scale=(1.0,) * n, coef=coef, intercept=-0.2,
                               threshold=0.5)
    law = StepLaw(a=1.0, alpha=0.0, beta=0.0, b=1.0, gamma=1.0)
    stop = DivergenceStopper(set(), predictor=pred, law={"law": law}, spike_factor=1.5)
    slow = lambda s: 3.0 - s / 100 + 0.9  # noqa: E731 - 30% above the good run at 20%
    assert not any(stop("first", r) for r in _results(lr=1.0, loss=slow))  # no peer yet: its cell's best
    assert not any(stop("good", r) for r in _results(lr=1.0))
    assert any(stop("late", r) for r in _results(lr=1.0, loss=slow))  # now the good run is its peer
    other = [dict(r, N=2e5) for r in _results(lr=1.0, loss=slow)]
    assert not any(stop("other cell", r) for r in other)  # another cell's runs are no peers
    # A schedule axis: the cell's runs under another schedule are no peers either (orchestrator.trial.run_meta
    # sends each trial's schedule label), so a slow schedule is measured against its own schedule's runs only.
    wsd = [dict(r, schedule_label="wsd") for r in _results(lr=1.0, loss=slow)]
    assert not any(stop("wsd first", r) for r in wsd)
    assert any(stop("wsd late", r) for r in [dict(r, schedule_label="wsd") for r in _results(lr=1.0, loss=lambda s:
                                             slow(s) + 0.9)])  # now the first wsd run is its peer


def test_a_trial_reports_its_schedule_label_for_the_stoppers_peers():
    from laws.divergence import schedule_label
    from orchestrator.config import parse_config
    from orchestrator.trial import run_meta

    assert schedule_label("d96-L2-D50000/wsd-decay0.2-sqrt") == "wsd-decay0.2-sqrt"
    assert schedule_label("d96-L2-D50000") == "" and schedule_label("d96", "cosine") == "cosine"
    assert schedule_label("d96/x", float("nan")) == "x"  # a table without a variant for this row
    cfg = parse_config({"sweep": {"name": "s"}, "scales": [{"d_model": 32, "tokens": 4096}],
                        "grid": {"lr": [0.01], "batch_size": [1],
                                 "schedules": [{"schedule": "cosine"}, {"schedule": "wsd", "decay_frac": 0.2}]}})
    labels = {run_meta(cfg.trial_spec(key, 0.01, 1, 0))["schedule_label"] for key, _, _ in cfg.scale_variants()}
    assert len(labels) == 2 and "" not in labels
