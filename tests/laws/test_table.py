"""laws.table: joined table specs (one grid recorded in several sweeps)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws.table import read_tables, table_parts


def test_a_joined_spec_reads_every_part_in_order_and_names_a_missing_one(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"N": [1.0], "D": [2.0], "loss": [3.0]}).to_csv(a, index=False)
    pd.DataFrame({"N": [4.0, 5.0], "D": [6.0, 7.0], "loss": [8.0, 9.0], "eff_lr": [0.1, 0.2]}).to_csv(b, index=False)
    assert table_parts(f"{a}+{b}") == [a, b] and table_parts(a) == [a]
    t = read_tables(f"{a}+{b}")
    assert t.N.tolist() == [1.0, 4.0, 5.0] and t.index.tolist() == [0, 1, 2]
    assert t.eff_lr.isna().tolist() == [True, False, False]
    with pytest.raises(FileNotFoundError, match="c.csv: no such file"):
        read_tables(f"{a}+{tmp_path / 'c.csv'}")


def _bowl_rows(seed: int, shift: float = 0.0, lucky: tuple[float, float] | None = None) -> list[dict]:
    """One cell's 5 LRs x 2 batches: loss 2 + 0.02 (log2 lr + 8 - shift)^2, a lucky run optionally 0.1 lower."""
    import math

    rows = []
    for k in range(-10, -5):
        for bt in (64, 128):
            loss = 2.0 + 0.02 * (k + 8 - shift) ** 2 + (0.001 if bt == 128 else 0.0)
            if lucky == (2.0**k, bt):
                loss -= 0.1
            rows.append({"N": 1e5, "D": 1e5, "lr": 2.0**k, "batch_tokens": bt, "loss": loss, "status": "ok",
                         "seed": seed, "eff_lr": 0.01 * (seed + 1)})
    assert math.isfinite(rows[0]["loss"])
    return rows


def test_seed_mean_averages_the_seeds_that_finished_and_leaves_one_seed_alone():
    from laws.table import SweepTable

    rows = _bowl_rows(0) + _bowl_rows(1, shift=1.0)
    rows[-1]["status"], rows[-1]["loss"] = "diverged", float("nan")  # seed 1's last point failed
    m = SweepTable.from_rows(rows).seed_mean().frame
    assert len(m) == 10 and set(m.n_seeds) == {1, 2}
    at = m[(m.lr == 2.0**-8) & (m.batch_tokens == 64)].iloc[0]
    assert at.loss == pytest.approx(2.0 + 0.02 * 0.5) and at.eff_lr == pytest.approx(0.015)
    last = m.iloc[-1]
    assert last.n_seeds == 1 and last.status == "ok" and last.loss == pytest.approx(rows[9]["loss"])
    one = SweepTable.from_rows(_bowl_rows(0))
    assert one.seed_mean() is one


def test_a_fit_ranks_points_by_their_seed_mean_not_the_luckiest_seed():
    from laws.analysis import optima
    from laws.table import SweepTable

    # seed 0 has a lucky run two octaves above the bowl's bottom (2^-8); averaged with seed 1 it is not the best
    rows = _bowl_rows(0, lucky=(2.0**-6, 64)) + _bowl_rows(1)
    (opt,) = optima(SweepTable.from_rows(rows))
    assert opt.grid_lr == 2.0**-8
    (lucky,) = optima(SweepTable.from_rows(_bowl_rows(0, lucky=(2.0**-6, 64))))
    assert lucky.grid_lr == 2.0**-6


def test_seed_spread_measures_run_noise_and_how_far_the_seeds_optima_lie_apart():
    import numpy as np

    from laws.analysis import seed_spread
    from laws.table import SweepTable

    rng = np.random.default_rng(0)
    rows = _bowl_rows(0) + _bowl_rows(1, shift=1.0)
    for r in rows:
        r["loss"] *= float(np.exp(0.01 * rng.standard_normal()))
    (c,) = seed_spread(SweepTable.from_rows(rows))
    assert c["seeds"] == [0, 1] and c["band_pct"] == pytest.approx(0.25)
    # within-point SD: the shift's difference (up to 0.04 in loss near the bottom) plus 1% noise
    assert 0.8 < c["run_sd_pct"] < 3.0
    assert c["opt_spread_oct"] == pytest.approx(1.0, abs=0.35)
    assert [s["best_lr"] for s in c["per_seed"]] == [2.0**-8, 2.0**-7]
    assert seed_spread(SweepTable.from_rows(_bowl_rows(0))) == []


def test_fit_inputs_mark_a_diverged_run_inf_and_a_failed_one_nan_and_the_seed_mean_keeps_divergence():
    from laws.table import SweepTable

    rows = _bowl_rows(0) + _bowl_rows(1)
    rows[9]["status"], rows[9]["loss"] = "diverged", float("nan")  # seed 0's last point diverged,
    rows[19]["status"], rows[19]["loss"] = "diverged", float("nan")  # and seed 1's
    rows[8]["status"] = "failed"  # seed 0's second to last failed, seed 1's finished
    loss = SweepTable.from_rows(rows).fit_inputs().loss
    assert loss[9] == np.inf and loss[19] == np.inf and np.isnan(loss[8]) and np.isfinite(loss[18])
    m = SweepTable.from_rows(rows).seed_mean()
    assert list(m.frame.status.iloc[-2:]) == ["ok", "diverged"]
    assert m.fit_inputs().loss[-1] == np.inf


STEPLAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "steplaw"


def test_the_step_law_release_files_read_as_sweep_tables():
    # The authors' files as released (batch `bs` in sequences, the paper's target `smooth loss`, MoE `Na`): every
    # fit and benchmark reads them as sweep tables, so `lawsweep fit dense_lr_bs_loss.csv` works as it is.
    from laws.table import SweepTable

    raw = pd.read_csv(STEPLAW / "dense_lr_bs_loss.csv")
    t = SweepTable(read_tables(STEPLAW / "dense_lr_bs_loss.csv"))
    assert len(t) == len(raw) == 1911 and len(t.cells()) == 17
    assert np.allclose(t.frame.batch_tokens, raw.bs * 2048) and np.allclose(t.frame.loss, raw["smooth loss"])
    assert (t.frame.status == "ok").all() and t.frame.N.max() == 1073741824
    moe_raw = pd.read_csv(STEPLAW / "moe_lr_bs_loss.csv")
    moe = read_tables(STEPLAW / "moe_lr_bs_loss.csv")
    assert np.allclose(moe.N, moe_raw.Na) and np.allclose(moe.batch_tokens, moe_raw.bs * moe_raw.seq_len)


def test_a_table_with_batch_tokens_is_read_as_it_is(tmp_path):
    # a sweep table that also has a column named bs is not taken for the Step Law release
    f = tmp_path / "t.csv"
    pd.DataFrame({"N": [1.0], "D": [2.0], "lr": [0.1], "bs": [4], "smooth loss": [3.0], "batch_tokens": [256],
                  "loss": [2.5], "status": ["ok"]}).to_csv(f, index=False)
    t = read_tables(f)
    assert t.batch_tokens.tolist() == [256] and t.loss.tolist() == [2.5]
