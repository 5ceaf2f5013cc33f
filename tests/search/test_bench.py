"""The replay benchmark on real recorded sweeps: the acceptance of the law prior."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from search.bench import (
    BATCH_UNANCHORED,
    UNANCHORED,
    UNTILTED,
    ReplayCell,
    bench_stop,
    bench_table,
    cell_from_table,
    replay,
    summarize_results,
    target_cell,
)
from search.registry import make_policy

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
REFERENCE = ROOT / "bench" / "data" / "reference_grid.csv"


def test_replay_counts_compute_and_gap_on_a_tiny_cell():
    res = {(lr, bt): (2.0 + 0.01 * (np.log2(lr) + 6) ** 2 + 0.01 * (np.log2(bt) - 8) ** 2, "ok")
           for lr in 2.0 ** np.arange(-9, -3) for bt in (64, 128, 256, 512)}
    res[(2.0**-4, 512)] = (float("nan"), "diverged")
    cell = ReplayCell(N=1e5, D=1e6, results=res)
    share, gap, trials = replay(make_policy("grid", [cell.grid()]), cell)
    assert trials == 1 + list(res).index((2.0**-6, 256))  # grid order: LR ascending, then batch
    assert share == pytest.approx(trials / len(res))
    assert gap >= 0


def test_a_replayed_point_with_several_seeds_serves_their_mean_loss():
    rows = [{"N": 1e5, "D": 1e5, "lr": lr, "batch_tokens": 64, "loss": loss, "status": st, "seed": sd}
            for lr, loss, st, sd in [(1e-3, 2.0, "ok", 0), (1e-3, 2.2, "ok", 1), (2e-3, 2.05, "ok", 0),
                                     (2e-3, float("nan"), "diverged", 1), (4e-3, float("nan"), "diverged", 0)]]
    cell = cell_from_table(pd.DataFrame(rows), 1e5, 1e5)
    assert cell.run(1e-3, 64) == (pytest.approx(2.1), "ok")
    assert cell.run(2e-3, 64) == (pytest.approx(2.05), "ok") and cell.best == pytest.approx(2.05)
    assert cell.run(4e-3, 64)[1] == "diverged"


def test_a_replay_holds_out_the_cell_it_is_told_and_names_the_cells_when_there_is_none():
    t = pd.read_csv(ROOT / "bench" / "data" / "fortunes_adamw.csv")
    assert target_cell(t, None) == (223872.0, 200000.0)  # the largest-compute cell
    assert target_cell(t, "223872:1e5") == (223872.0, 100000.0)
    with pytest.raises(ValueError, match=r"no cell N=200000, D=100000.*223872:100000"):
        target_cell(t, "2e5:1e5")
    with pytest.raises(ValueError, match="give the held-out cell as N:D"):
        target_cell(t, "223872")
    # the law prior then never sees the held-out cell: width 96 at 100k, searched from the other eleven cells
    got = _summary(t, targets=[target_cell(t, "223872:100000")], policies=("law_prior", "grid", UNTILTED), seeds=1)
    assert got["law_prior"]["median_compute_share_to_band"] < got["grid"]["median_compute_share_to_band"]
    # the former order (a bowl without its tilt) is replayed under its own name, from the same proxies
    assert got[UNTILTED]["median_compute_share_to_band"] < got["grid"]["median_compute_share_to_band"]


def _summary(table, **kw):
    return {r["policy"]: r for r in summarize_results(bench_table(table, **kw))}


@pytest.mark.skipif(not DATA.is_file(), reason="shared/data not beside the checkout")
def test_law_prior_on_held_out_step_law_cells_beats_random_and_tpe():
    from laws.bench import steplaw_table

    dense = steplaw_table(DATA)
    results = []
    for held in ([(1073741824.0, 2e10), (1073741824.0, 5.69e10)], [(214663680.0, 1e11)]):
        # The prior is fitted without any cell of the held-out group.
        hidden = dense[[(n, d) not in held[1:] for n, d in zip(dense.N, dense.D)]]
        results += bench_table(hidden, targets=[held[0]], policies=("law_prior", "random", "tpe"), seeds=5)
    s = {r["policy"]: r for r in summarize_results(results)}
    # Medians over seeds and cells, as the acceptance asks.
    assert s["law_prior"]["median_compute_share_to_band"] <= 0.10
    for other in ("random", "tpe"):
        assert s["law_prior"]["median_compute_share_to_band"] <= s[other]["median_compute_share_to_band"]
        assert s["law_prior"]["median_final_gap"] <= s[other]["median_final_gap"]


def test_ending_a_searched_step_law_cell_at_probability_0_9_saves_target_runs_and_stays_in_the_band():
    # The 118-point 1.07B cell at 20B tokens, the law fitted without the 1.07B cells: the live sweep's budget is 12
    # trials (10% of the grid); ended at 0.9, the law prior runs 5 and its best run is 0.045% above the cell's best
    # (inside the 0.25% band; with the budget it finds the best run itself).
    from laws.bench import steplaw_table
    from laws.optimum import NEAR_OPTIMAL_BAND

    dense = steplaw_table(DATA)
    hidden = dense[[(n, d) != (1073741824.0, 5.69e10) for n, d in zip(dense.N, dense.D)]]
    full, ended = bench_stop(hidden, [(1073741824.0, 2e10)], stop_at=0.9)
    assert full.stop_at is None and full.trials == 12 and full.gap == 0.0
    assert ended.stop_at == 0.9 and 4 <= ended.trials <= 6 and ended.gap <= NEAR_OPTIMAL_BAND


@pytest.mark.skipif(not REFERENCE.is_file(), reason="reference grid not recorded")
def test_law_prior_on_the_reference_grid():
    ref = pd.read_csv(REFERENCE)
    assert len(ref) >= 4 * 2 * 7 * 4 and ref.N.nunique() >= 4 and ref.D.nunique() >= 2
    s = _summary(ref, policies=("law_prior", "random", "tpe"), seeds=5)
    assert s["law_prior"]["median_compute_share_to_band"] <= 0.10
    assert s["law_prior"]["median_compute_share_to_band"] <= s["random"]["median_compute_share_to_band"]


def test_cell_from_table_keeps_the_best_repeat_and_statuses():
    t = pd.DataFrame({"N": [1.0] * 3, "D": [2.0] * 3, "lr": [0.1, 0.1, 0.2], "batch_tokens": [64] * 3,
                      "loss": [2.0, 1.9, float("nan")], "status": ["ok", "ok", "diverged"]})
    c = cell_from_table(t, 1.0, 2.0)
    assert c.results[(0.1, 64)] == (1.9, "ok") and c.results[(0.2, 64)][1] == "diverged"


FORTUNES_W128 = [ROOT / "bench" / "data" / f for f in (
    "fortunes_adamw.csv", "fortunes_adamw_w128.csv", "fortunes_adamw_seed1_w96.csv", "fortunes_adamw_seed1_w128.csv")]


def test_law_prior_on_the_two_seed_fortunes_width_128_cell_looks_along_the_batch():
    # The law's first point there is (2^-9, 64 tokens), 0.84% above the best (2^-9, 128): a batch neighbour. The
    # radius-based region (1 octave of LR, half an octave of batch) tried the LR neighbours first and needed 4 of
    # the 24 points (16.7%); the law's predictive spread and the bowl put the batch neighbour second.
    from laws.table import read_tables

    t = read_tables("+".join(str(p) for p in FORTUNES_W128))
    s = _summary(t, policies=("law_prior", "gp"), seeds=3)
    assert s["law_prior"]["median_compute_share_to_band"] <= 0.10
    assert s["law_prior"]["median_compute_share_to_band"] < s["gp"]["median_compute_share_to_band"]


def test_a_fresh_law_prior_sweep_reaches_the_band_on_half_the_reference_cells():
    """search.bench.bench_fresh: every full cell of the reference grid searched from scratch (the published law, the
    Step Law grid's bowl borrowed, 4 trials a cell). With that bowl known only up to its scale, 4 of the 8 cells'
    best runs are inside the 0.25% band (with the bowl as measured, the early cells' runs were read as optima many
    octaves away: 2 of 8, the smallest cell 14% above its best after 6 trials)."""
    from laws.table import SweepTable
    from search.bench import bench_fresh

    r = bench_fresh(SweepTable(pd.read_csv(REFERENCE), str(REFERENCE)))
    assert r.cells == 8 and r.trials_per_cell == 4
    assert all(g >= 0 for g in r.gaps)
    assert sum(g <= 0.0025 for g in r.gaps) >= 4
    with pytest.raises(ValueError, match="full cell"):
        bench_fresh(SweepTable(pd.read_csv(REFERENCE).head(28), "one cell"))


def test_a_fresh_sweep_is_not_ended_early_on_the_borrowed_bowl():
    """sweep.stop_when_found on a sweep searched from scratch: until the sweep has a bowl of its own (or a mapped
    scale), found() rests on the published law and the Step Law grid's bowl, which read 0.8-1.0 on cells whose best
    run was 15-21% above the cell's best (fortunes, the first cells: the law 2-3 octaves off). So no cell ends before
    its budget there, and every cell keeps the gap it has without stop_at."""
    from laws.table import SweepTable
    from search.bench import bench_fresh

    path = ROOT / "bench" / "data" / "fortunes_adamw.csv"
    table = SweepTable(pd.read_csv(path), str(path))
    budget, ended = bench_fresh(table), bench_fresh(table, stop_at=0.8)
    assert ended.gaps == budget.gaps and sum(ended.trials) == ended.cells * ended.trials_per_cell
    assert not any(ended.ended)
    # AdamH: its bowl is measured from its own runs after the first cells, and then cells end, inside 1% of their best
    path = ROOT / "bench" / "data" / "fortunes_adamh.csv"
    adamh = bench_fresh(SweepTable(pd.read_csv(path), str(path)), stop_at=0.8)
    assert any(adamh.ended) and max(g for g, e in zip(adamh.gaps, adamh.ended) if e) < 0.01


def test_the_tilted_bowl_runs_the_width_640_cell_s_band_first():
    """Width 640 at 200k (recorded blind, two seeds): the law says 2^-12.2 at batch 108; at batch 128 the cell's
    optimal LR lies above its batch-64 optimum, which the bowl's tilt reads from the proxies. The tilted order's
    first point, 2^-12 at 128, is in the band; the former order ran 2^-12.5 at 128 (1.2% above) first. (Since
    2026-12-08 the default also centres the batch on width 640's own 100k cell, one seed, which costs it a run
    here: 2 of 18.)"""
    names = [f"fortunes_adamw{s}.csv" for s in (
        "", "_w128", "_seed1_w96", "_seed1_w128", "_w160", "_w160_target", "_w192", "_w192_target", "_w256",
        "_w256_target", "_w320", "_w320_target", "_w384", "_w384_target", "_w512", "_w512_target", "_w640",
        "_w640_target")]
    t = pd.concat([pd.read_csv(ROOT / "bench" / "data" / n) for n in names], ignore_index=True)
    got = _summary(t, policies=("law_prior", BATCH_UNANCHORED, UNTILTED), seeds=1)
    assert got[BATCH_UNANCHORED]["median_compute_share_to_band"] == pytest.approx(1 / 18)
    assert got[UNTILTED]["median_compute_share_to_band"] == pytest.approx(2 / 18)
    assert got["law_prior"]["median_compute_share_to_band"] == pytest.approx(2 / 18)


def test_the_anchored_centre_finds_the_width_256_cell_along_d_sooner():
    """Width 256 at 400k (recorded blind): every law was 0.8-1 octave high there, while width 256's own 200k cell
    sat below the law. The law prior, its LR and batch centre anchored on that cell (the default since 2026-12-08),
    reaches the 0.25% band with its first run; its LR centre alone anchored, in 2 of 18 runs; centred on the law as
    fitted (the former centre), in 4."""
    names = [f"fortunes_adamw{s}.csv" for s in (
        "", "_w128", "_seed1_w96", "_seed1_w128", "_w160", "_w160_target", "_w192", "_w192_target", "_w256",
        "_w256_target", "_w256_half", "_w320", "_w320_target", "_w320_target_half", "_w384", "_w384_target",
        "_w384_half", "_w512", "_w512_target", "_w512_target_half", "_w640", "_w640_target", "_w256_400k")]
    t = pd.concat([pd.read_csv(ROOT / "bench" / "data" / n) for n in names], ignore_index=True)
    got = _summary(t, targets=[(1580032.0, 400000.0)], policies=("law_prior", BATCH_UNANCHORED, UNANCHORED), seeds=1)
    assert got["law_prior"]["median_compute_share_to_band"] == pytest.approx(1 / 18)
    assert got[BATCH_UNANCHORED]["median_compute_share_to_band"] == pytest.approx(2 / 18)
    assert got[UNANCHORED]["median_compute_share_to_band"] == pytest.approx(4 / 18)
