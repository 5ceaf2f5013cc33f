"""bench/gpu_schedule_grid.py: the GPU schedule grid's recorder writes a sweep table the schedule laws read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from laws.analysis import schedule_settings
from laws.table import SweepTable, read_tables

ROOT = Path(__file__).resolve().parents[2]


def _record(*args: str) -> subprocess.CompletedProcess:
    """Run the recorder as a user does (its training processes are spawned: they import it by its path)."""
    return subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_schedule_grid.py"), "--device", "cpu",
                           "--data", "pydoc", "--widths", "32", "--lrs", "0.004", "--seeds", "0", "--procs", "1",
                           *args], capture_output=True, text=True, timeout=300)


def test_records_real_runs_as_a_sweep_table(tmp_path):
    out = tmp_path / "grid.csv"
    r = _record("--tokens", str(3 * 8192), "--variants", "cosine", "wsd_20_sqrt", "--out", str(out))
    assert r.returncode == 0, r.stderr
    f = pd.read_csv(out)
    assert sorted(f.variant) == ["cosine", "wsd_20_sqrt"]
    assert (f.status == "ok").all() and np.isfinite(f.loss).all() and (f.loss < np.log(256)).all()
    assert set(f.batch_tokens) == {8192} and set(f.tokens) == {3 * 8192} and set(f.D) == {3 * 8192}
    assert (f.flops == 6.0 * f.N * f.tokens).all()
    sqrt = f[f.variant == "wsd_20_sqrt"].iloc[0]
    assert sqrt.schedule == "wsd"
    assert json.loads(sqrt.schedule_spec)["decay_shape"] == "sqrt"  # the variant's shape, not the default's
    assert schedule_settings(sqrt.schedule_spec)["min_lr_ratio"] == 0.1
    assert json.loads(sqrt.curve)[-1] == [3 * 8192, round(float(sqrt.loss), 6)]
    t = SweepTable(read_tables(str(out)), str(out)).clean()
    assert len(t.frame) == 2 and t.cells() == [(float(f.N[0]), float(3 * 8192))]
    assert "2 of 2 runs" in r.stdout


def test_deadline_starts_no_run_and_loses_no_table(tmp_path):
    out = tmp_path / "grid.csv"
    out.write_text("kept\n")
    r = _record("--tokens", "8192", "--variants", "cosine", "--deadline-s", "0", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text() == "kept\n"  # no run finished: an earlier table at that path is not overwritten
    assert "0 of 1 runs" in r.stdout
