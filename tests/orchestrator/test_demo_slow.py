"""The README's main job: the bundled demo sweep, end to end (a few minutes on 2 cores)."""

import subprocess
import sys

import pandas as pd
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_demo_sweep_runs_to_completion_and_fits_the_law(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "Per-scale optima" in out and "Step Law posterior fit on" in out and "Recommended for the target" in out
    # The ladder: two mapped scales (15 each), the largest searched with 4 of its 15 points, against its grid.
    assert "searched with the refitted law: 4 of its 15 grid points (27%)" in out
    assert "law prior: d96-L2-D100000 searched with 4 of its 15 grid points; probability" in out
    (table,) = tmp_path.glob("lawsweep_results/demo-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 34 and set(df.status) <= {"ok", "diverged"}
    # The grid brackets the LR optimum of at least two scales, so the LR law is fitted, not held.
    best = df.loc[df.groupby("scale").loss.idxmin()]
    assert (best.lr > df.lr.min()).sum() + (best.lr < df.lr.max()).sum() >= 4
    assert (tmp_path / "mlflow.db").exists()
