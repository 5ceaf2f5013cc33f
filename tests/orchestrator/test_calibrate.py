"""`lawsweep calibrate`: the target model's peak LR from the effective-LR law (real short runs for AdamW)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.calibrate import measured_eff_lr

ROOT = Path(__file__).resolve().parents[2]


def lawsweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def test_measured_eff_lr_is_the_median_per_unit_of_schedule_near_the_peak():
    curve = [{"eff_lr": 0.001, "lr": 0.001},  # warmup at a tenth of the peak: left out
             {"eff_lr": 0.02, "lr": 0.01}, {"eff_lr": 0.01, "lr": 0.005}, {"eff_lr": 0.03, "lr": 0.01},
             {"eff_lr": float("nan"), "lr": 0.01}]
    assert measured_eff_lr(curve, 0.01) == pytest.approx(0.02)
    assert math.isnan(measured_eff_lr([{"eff_lr": 0.1, "lr": 0.001}], 0.01))


def test_adamh_needs_no_run_its_peak_lr_is_the_effective_lr():
    r = lawsweep("calibrate", "bench/grids/fortunes_adamh.toml", "--from", "bench/data/fortunes_adamh.csv",
                 "--d-model", "128", "--d", "4e5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["runs"] == [] and out["flops"] == 0 and out["peak_lr"] == out["target_eff_lr"]
    # the effective-LR law at the target, from the table's own cells
    law = out["eff_lr_law"]
    assert out["target_eff_lr"] == pytest.approx(law["a"] * out["N"] ** law["alpha"] * 4e5 ** law["beta"], rel=1e-6)


def test_adamw_runs_the_target_model_and_prints_its_cost(tmp_path):
    """Three real 40-step runs of a width-48 model on fortunes; the held-out cell is left out of the law."""
    t = pd.read_csv(ROOT / "bench/data/fortunes_adamw.csv")
    t[t.N < 223872].to_csv(tmp_path / "proxies.csv", index=False)
    r = lawsweep("calibrate", "bench/grids/fortunes_adamw.toml", "--from", str(tmp_path / "proxies.csv"),
                 "--d-model", "48", "--d", "1e6", "--steps", "40", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    runs = out["runs"]
    assert [round(math.log2(x["lr"] / out["step_law_lr"]), 6) for x in runs] == [-1, 0, 1]
    assert all(x["status"] == "ok" and x["eff_lr"] > 0 and x["steps"] == 40 for x in runs)
    assert out["flops"] == pytest.approx(sum(x["flops"] for x in runs))
    assert out["share_of_target"] == pytest.approx(out["flops"] / (6 * out["N"] * 1e6))
    if out["fallback"]:
        assert out["peak_lr"] == out["step_law_lr"] and "not inverted" in out["note"]
    else:
        assert runs[0]["lr"] / 2 <= out["peak_lr"] <= runs[-1]["lr"] * 2


def test_a_table_without_effective_lrs_is_refused_with_the_fix():
    r = lawsweep("calibrate", "tiny", "--from", "bench/data/reference_grid.csv", "--d-model", "64", "--d", "1e5")
    assert r.returncode == 2 and "eff_lr" in r.stderr and "rerun the proxies" in r.stderr
    r = lawsweep("calibrate", "tiny", "--from", "bench/data/fortunes_adamw.csv", "--d-model", "64")
    assert r.returncode == 2 and "--d" in r.stderr and "[target]" in r.stderr


def test_predict_inverts_the_effective_lr_through_the_target_widths_own_runs(tmp_path):
    """A D-axis ladder (width 512 recorded at 50k/100k tokens, its 200k cell held out): `predict` turns the
    effective-LR law's target into a peak LR through those runs, with no extra run; width 96's runs, whose
    effective LR barely follows the peak LR, are refused with the reason."""
    t = pd.concat([pd.read_csv(ROOT / "bench/data" / f) for f in
                   ("fortunes_adamw_w384.csv", "fortunes_adamw_w384_target.csv", "fortunes_adamw_w512.csv")])
    t.to_csv(tmp_path / "ladder.csv", index=False)
    r = lawsweep("predict", "--from", str(tmp_path / "ladder.csv"), "--n", "6305792", "--d", "2e5", "--json")
    assert r.returncode == 0, r.stderr
    lad = json.loads(r.stdout)["diagnostics"]["eff_lr_law"]["ladder"]
    assert lad["D"] == 1e5 and lad["reason"] == "" and lad["slope"] >= 0.25
    assert min(lad["lrs"]) / 2 <= lad["peak_lr"] <= max(lad["lrs"]) * 2
    text = lawsweep("predict", "--from", str(tmp_path / "ladder.csv"), "--n", "6305792", "--d", "2e5").stdout
    assert f"peak LR {lad['peak_lr']:.4g}" in text and "no extra run" in text
    r = lawsweep("predict", "--from", "bench/data/fortunes_adamw.csv", "--n", "223872", "--d", "4e5")
    assert r.returncode == 0, r.stderr
    assert "do not invert it: the effective LR barely follows the peak LR" in r.stdout
