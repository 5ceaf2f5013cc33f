import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
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


# --------------------------------------------------------------------------------------------------------
# The learned divergence predictor
# --------------------------------------------------------------------------------------------------------

def _curve(lr: float, total: int = 100, diverge: bool = False) -> list[dict[str, float]]:
    out = []
    for s in range(5, total + 1, 5):
        v = 5.5 * (0.6 + 0.4 * np.exp(-s / 10)) if not diverge else 5.5 * (0.8 + 0.02 * s / 5)
        out.append({"step": float(s), "val_loss": v, "grad_norm": 1.0 + (s if diverge else 0), "eff_lr": lr,
                    "eff_lr_max": 2 * lr})
    return out


def test_early_features_read_only_the_first_share_of_the_run():
    from laws.divergence import FEATURES, early_features

    c = _curve(0.01)
    x = early_features(c, 100, 0.2, 5.5, lr_vs_law=1.5)
    assert x.shape == (len(FEATURES),) and x[0] == 1.5
    # Changing the curve after 20% changes nothing; before it, it does.
    later = [dict(p, val_loss=9.0) if p["step"] > 20 else p for p in c]
    assert np.array_equal(early_features(later, 100, 0.2, 5.5, 1.5), x)
    assert early_features(c[:1], 100, 0.2, 5.5, 1.5) is None
    assert early_features([dict(p, val_loss=float("nan")) for p in c], 100, 0.2, 5.5, 1.5)[1] > 0  # NaN: worst


def test_the_predictor_separates_known_runs_and_keeps_good_runs_running():
    from laws.divergence import DivergencePredictor, early_features, fit_divergence_predictor

    rng = np.random.default_rng(0)
    X, y, band = [], [], []
    for _ in range(40):
        div = bool(rng.random() < 0.5)
        lr_vs = rng.normal(2.5 if div else -0.5, 0.7)
        X.append(early_features(_curve(0.01, diverge=div), 100, 0.2, 5.5, lr_vs))
        y.append(div)
        band.append(not div and abs(lr_vs) < 0.3)
    p = fit_divergence_predictor(np.array(X), np.array(y), np.array(band), 0.2)
    assert all(p.diverging(x) == t for x, t in zip(X, y))
    assert not any(p.diverging(x) for x, b in zip(X, band) if b)
    assert DivergencePredictor.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="both diverging and healthy"):
        fit_divergence_predictor(np.array(X), np.zeros(len(X)), np.array(band), 0.2)


RUNS = Path(__file__).resolve().parents[2] / "bench" / "data" / "divergence_runs.csv"


def test_on_recorded_runs_held_out_widths_f1_at_20_percent_and_no_good_run_stopped():
    """Trained on widths 32 and 48, scored on 64 and 96 (issue 16: F1 >= 0.92 at 20%, no run of the 0.25% band
    stopped); the shipped model loads and agrees with its file."""
    from laws.divergence import load_predictor
    from laws.divergence_bench import bench

    _, s = bench(RUNS)
    assert s["20% learned"]["f1"] >= 0.92 and s["20% learned"]["good_stopped"] == 0
    assert s["20% learned, 8 evaluations per run, judged at 25%"]["f1"] >= 0.92
    assert s["20% fixed thresholds"]["f1"] < s["20% learned"]["f1"]
    assert load_predictor().frac == 0.2


def test_replayed_on_a_grid_the_predictor_saves_compute_and_keeps_the_fit():
    """The shipped predictor on the pydoc reference grid, each run judged as a live sweep would, its LR against the
    law refitted on the other cells: it stops runs past the LR edge (all 60 of its labelled calls on the high-LR
    side: it learned that label from the recorded grids), none of the band, and the law stays put
    (docs/laws-bench.md). On the schedule grid, where each run's peers are its cell's runs of the same schedule,
    it stops none: no run there diverges by the high-LR label."""
    from laws.divergence_bench import REPLAY_GRIDS
    from laws.divergence_tables import replay

    s = replay(REPLAY_GRIDS["pydoc reference grid"])
    assert s["runs"] == 224 and s["stopped"] == 65 and s["labelled"] == 60 and s["labelled_high"] == 60
    assert s["in_band"] == 0 and 0.2 < s["saved"] < 0.3 and abs(s["law_move"]) < 0.05
    assert replay(REPLAY_GRIDS["pydoc schedule grid"])["stopped"] == 0


def test_a_corpus_left_out_of_training_is_judged_by_the_shipped_procedure_and_not_by_one_regimes_model():
    """The GPU grid's corpus (CPython source, 4-layer models, 8k-token batches) left out: the model trained as
    shipped on the pydoc runs and the other corpora's grids, on the relative features, meets F1 >= 0.85 there with
    no band run stopped; the former model (pydoc runs alone, with the share of the starting loss left) reads this
    regime's fast early fall as health and misses most of its diverging runs."""
    from laws.divergence import CURVE_FEATURES
    from laws.divergence_bench import TRAINING_GRIDS, train_model
    from laws.divergence_tables import replay

    grid = TRAINING_GRIDS["CPython source on a GPU, widths 128-384"][1]
    others = tuple(spec for corpus, spec in TRAINING_GRIDS.values() if corpus != "cpython")
    s = replay(grid, predictor=train_model(tables=others))
    assert s["diverging"] == 39 and s["stopped"] == 32 and s["labelled"] == 32 and s["in_band"] == 0
    assert s["f1"] >= 0.85
    former = replay(grid, predictor=train_model(tables=(), used=CURVE_FEATURES))
    assert former["in_band"] == 0 and former["f1"] < 0.5


def test_on_the_blind_grid_with_diagnostics_the_shipped_predictor_meets_the_goal_and_optimizer_features_do_not():
    """The second blind licenses grid (widths none of the training runs had, an unseen corpus), each run judged as
    live with every feature its table kept: the shipped curve-only model F1 >= 0.92 with no band run stopped and
    the law unmoved; the same training runs fitted with the gradient-norm and update-size features too fall
    below the goal there (why the shipped model leaves them out)."""
    from laws.divergence import FEATURES, fit_divergence_predictor
    from laws.divergence_bench import REPLAY_GRIDS, RUNS, features, label
    from laws.divergence_bench import _law as law_of
    from laws.divergence_tables import replay

    grid = REPLAY_GRIDS["licenses, widths 64-192 (blind grid 2, diagnostics kept)"]
    s = replay(grid)
    assert s["f1"] >= 0.92 and s["in_band"] == 0 and abs(s["law_move"]) <= 0.1 and s["cell_move_max"] <= 0.25
    f = label(pd.read_csv(RUNS))
    every = fit_divergence_predictor(features(f, 0.2, law_of(f)), f.diverged.to_numpy(), f.in_band.to_numpy(), 0.2,
                                     FEATURES)
    assert replay(grid, predictor=every)["f1"] < 0.92


def test_loss_vs_cell_is_the_runs_loss_over_its_cells_best_at_the_same_share_of_training():
    from laws.divergence import FEATURES, cell_best_at, early_features

    def curve(losses, total=100):
        return [{"step": float(s), "val_loss": v} for s, v in zip(range(10, 10 * len(losses) + 1, 10), losses)]

    slow, fast = curve([4.0, 3.5, 3.2]), curve([3.6, 3.0, 2.7])
    assert cell_best_at([(slow, 100), (fast, 100)], 0.2) == 3.0  # each peer's evaluation nearest 20%
    assert cell_best_at([(fast, 1000)], 0.2) is None  # no peer evaluated near 20% of its run
    i = FEATURES.index("loss_vs_cell")
    x = early_features(slow, 100, 0.2, 5.5, 0.0, [(slow, 100), (fast, 100)])
    assert x[i] == pytest.approx(math.log(3.5 / 3.0))
    assert early_features(fast, 100, 0.2, 5.5, 0.0, [(slow, 100), (fast, 100)])[i] == 0.0
    assert early_features(slow, 100, 0.2, 5.5, 0.0)[i] == 0.0  # no peer yet: the run is its cell's best


def test_a_tables_evaluations_merge_its_diagnostics_and_keep_a_measured_starting_loss():
    from laws.divergence import table_evaluations

    curve = json.dumps([[0, 3.1], [640, 2.9], [1280, 2.7]])
    diag = json.dumps([[640, 1.5, 0.01, None], [1280, 2.0, 0.02, 0.03]])
    ev, start = table_evaluations(curve, diag, 64)
    assert start == 3.1
    assert ev == [{"step": 10.0, "val_loss": 2.9, "grad_norm": 1.5, "eff_lr": 0.01},
                  {"step": 20.0, "val_loss": 2.7, "grad_norm": 2.0, "eff_lr": 0.02, "eff_lr_max": 0.03}]
    # an older table: no diagnostics, no starting point; unreadable text reads as nothing
    assert table_evaluations(curve.replace("[0, 3.1], ", ""), float("nan"), 64) == (
        [{"step": 10.0, "val_loss": 2.9}, {"step": 20.0, "val_loss": 2.7}], None)
    assert table_evaluations("[[640, 2.9", "", 64) == ([], None)


def test_a_predictor_fitted_on_the_curve_features_ignores_the_optimizers():
    """``used`` = CURVE_FEATURES: the gradient-norm and update-size features get weight 0, so whatever a run logs
    there (or nothing) leaves its verdict unchanged; the subset survives the model file."""
    from laws.divergence import (
        CURVE_FEATURES,
        FEATURES,
        OPTIMIZER_FEATURES,
        DivergencePredictor,
        early_features,
        fit_divergence_predictor,
    )

    rng = np.random.default_rng(1)
    X, y = [], []
    for _ in range(40):
        div = bool(rng.random() < 0.5)
        x = early_features(_curve(0.01, diverge=div), 100, 0.2, 5.5, rng.normal(2.5 if div else -0.5, 0.7))
        x[[FEATURES.index(k) for k in OPTIMIZER_FEATURES]] = rng.normal(0, 1, len(OPTIMIZER_FEATURES))
        X.append(x)
        y.append(div)
    X, y = np.array(X), np.array(y)
    p = fit_divergence_predictor(X, y, np.zeros(len(y), bool), 0.2, used=CURVE_FEATURES)
    opt = [FEATURES.index(k) for k in OPTIMIZER_FEATURES]
    assert p.used == CURVE_FEATURES and all(p.coef[j] == 0.0 for j in opt)
    assert all(p.diverging(x) == t for x, t in zip(X, y))
    x = X[0].copy()
    x[opt] = [50.0, -50.0, float("nan"), float("inf")]
    assert p.probability(x) == p.probability(X[0])
    assert DivergencePredictor.from_dict(p.to_dict()) == p
    # all features: a run without optimizer features cannot train it; an unknown feature name is refused
    X[0, opt[0]] = float("nan")
    with pytest.raises(ValueError, match="grad_growth.*missing"):
        fit_divergence_predictor(X, y, np.zeros(len(y), bool), 0.2)
    with pytest.raises(ValueError, match="used="):
        fit_divergence_predictor(X, y, np.zeros(len(y), bool), 0.2, used=("lr_vs_law", "loss_speed"))


def test_a_recorded_table_trains_the_predictor_only_with_the_features_it_kept(tmp_path):
    """A sweep table is training data as the live stopper judged its runs; one from before the diagnostics were
    kept trains a curve-only model and refuses the optimizer features with the fix named."""
    from laws.divergence import CURVE_FEATURES, FEATURES
    from laws.divergence_tables import table_training_runs

    src = Path(__file__).resolve().parents[2] / "bench" / "data" / "licenses_shadow.csv"
    X, y, band = table_training_runs(str(src), used=CURVE_FEATURES)
    assert X.shape[1] == len(FEATURES) and len(y) == len(band) > 90 and y.sum() > 40 and band.sum() >= 6
    assert not (y & band).any()
    with pytest.raises(ValueError, match="no row has diagnostics.*--features curve"):
        table_training_runs(str(src), used=FEATURES)


def test_a_recorded_grid_trains_the_predictor_on_the_high_lr_side_label():
    """The pydoc reference grid's slow low-LR runs (far above their cell's best at an LR below their batch's best)
    are diverging by the plain label only: as training data (the default) they count as not diverging."""
    from laws.divergence import CURVE_FEATURES
    from laws.divergence_bench import TRAINING_GRIDS
    from laws.divergence_tables import table_training_runs

    grid = str(Path(__file__).resolve().parents[2] / TRAINING_GRIDS["pydoc reference grid"][1])
    X, high, band = table_training_runs(grid, used=CURVE_FEATURES)
    X2, plain, band2 = table_training_runs(grid, used=CURVE_FEATURES, high_lr_side=False)
    assert np.array_equal(X, X2, equal_nan=True) and np.array_equal(band, band2)
    assert not (high & ~plain).any() and plain.sum() - high.sum() >= 40  # 48 slow runs in the grid


def test_the_high_lr_side_label_leaves_out_runs_that_end_high_because_their_lr_is_too_low():
    """Known answer: one cell, two batches. Far above the best (> 15%) below the best LR of its batch:
    undertrained, labelled diverging but not on the high-LR side; far above at a higher LR, or blown up: both."""
    from laws.divergence_tables import label

    f = pd.DataFrame({"N": 1e5, "D": 5e4, "batch_tokens": [64] * 4 + [512] * 3,
                      "lr": [2**-12, 2**-9, 2**-8, 2**-5, 2**-12, 2**-9, 2**-6],
                      "loss": [3.0, 2.0, 2.1, 2.6, 3.5, 2.2, float("nan")],
                      "status": ["ok"] * 6 + ["diverged"]})
    lab = label(f)
    assert lab.diverged.tolist() == [True, False, False, True, True, False, True]
    assert lab.diverged_high.tolist() == [False, False, False, True, False, False, True]
    assert lab.in_band.tolist() == [False, True, False, False, False, False, False]


def _same_model(a: dict, b: dict) -> bool:
    """Two predictor files with the same fields, their numbers equal to 1e-9 relative."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) or (isinstance(x, list) and x and isinstance(x[0], float)):
            if not np.allclose(np.atleast_1d(x), np.atleast_1d(y), rtol=1e-9, atol=1e-12):
                return False
        elif x != y:
            return False
    return True


def test_the_bench_retrains_on_a_recorded_sweep_and_refuses_features_its_table_never_kept(tmp_path, capsys):
    """`--train-table` adds a recorded sweep's judged runs to the shipped model's training data; the model goes
    where --out says (the shipped file untouched); `--write` alone rebuilds the shipped model exactly. Asking for
    the optimizer features from tables without diagnostics is a clear error (exit 2) naming the fix."""
    from laws.divergence import MODEL_PATH, RELATIVE_FEATURES, load_predictor
    from laws.divergence_bench import main

    shipped = MODEL_PATH.read_bytes()
    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    table = str(data / "fortunes_adamh.csv")  # not among TRAINING_GRIDS
    out = tmp_path / "model.json"
    assert main(["--write", "--out", str(out)]) == 0
    # the shipped model is what the bench writes (to the last few bits: summation order differs across numpy and
    # pandas releases, which moved the features' mean by one unit in the last place on 2026-12-07)
    assert _same_model(json.loads(out.read_text()), json.loads(shipped))
    assert main(["--train-table", table, "--write", "--out", str(out)]) == 0
    p = load_predictor(out)
    assert p.used == RELATIVE_FEATURES and p != load_predictor()  # more runs, another fit
    assert f" and {table}, on the features" in capsys.readouterr().out  # the bench names what it trained on
    assert main(["--features", "all"]) == 2  # the older grids kept no diagnostics
    assert "no row has diagnostics" in capsys.readouterr().out
    assert main(["--features", "all", "--runs-only", "--train-table", str(data / "licenses_shadow.csv")]) == 2
    assert "no row has diagnostics" in capsys.readouterr().out and MODEL_PATH.read_bytes() == shipped


def test_the_held_out_scales_split_holds_each_grid_s_larger_widths_out():
    """laws.divergence_bench --heldout-scales: a grid's judged runs split by width, the smaller half (the middle width
    with it where the count is odd) to train on, the larger half held out; every judged run is in exactly one."""
    from laws.divergence_bench import TRAINING_GRIDS, _split_judgments
    from laws.divergence_tables import read_table, table_judgments

    spec = TRAINING_GRIDS["pydoc reference grid"][1]  # widths 32, 48, 64, 96: 32 and 48 train, 64 and 96 held out
    small, large, t = _split_judgments(spec, 0.2)
    n_small = {float(t.frame.N[g[0]]) for g in small}
    n_large = {float(t.frame.N[g[0]]) for g in large}
    assert n_small == {25472.0, 56640.0} and n_large == {100096.0, 223872.0}
    assert sorted(g[0] for g in small + large) == sorted(g[0] for g in table_judgments(read_table(spec), 0.2))
