"""A running sweep's table on disk: rows validated on read, damaged rows moved aside (never written back),
durable writes; Tune folders discovered to a depth and named when merged; tracking stores checked first."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from cluster.jobs import AuthTokenError, auth_headers, find_auth_token
from orchestrator.config import load_config
from orchestrator.records import TrialRecord, load_table, read_records, write_table
from orchestrator.tracking import StoreError, check_store
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _rec(i: int, **kw) -> TrialRecord:
    base = dict(trial_id=f"t{i}", scale="s", N=1000, D=4096, lr=0.001 * (i + 1), batch_tokens=512, batch_size=8,
                loss=3.0 + i / 10, status="ok", seed=0, schedule="cosine", tokens=4096, flops=6.0 * 1000 * 4096,
                wall_s=1.5, curve=json.dumps([[512, 4.0], [4096, 3.0 + i / 10]]), optimizer="adamw", eff_lr=0.01)
    return TrialRecord(**{**base, **kw})


def _written(tmp_path: Path, n: int = 3) -> tuple[Path, list[TrialRecord]]:
    recs = [_rec(i) for i in range(n)]
    write_table(recs, tmp_path / "sweep.csv")
    return tmp_path / "sweep.csv", recs


def test_a_written_table_reads_back_exactly_and_leaves_no_temporary_file(tmp_path):
    path, recs = _written(tmp_path)
    assert read_records(path) == recs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.csv"]


@pytest.mark.parametrize("damage, why", [
    (lambda line: line[: len(line) // 2], "cells"),  # cut mid-row
    (lambda line: line.replace('3.2]]"', '3."'), "curve"),  # the curve's JSON cut
    (lambda line: line.replace("3.2,ok", "-3.2,ok"), "loss"),
    (lambda line: line.replace(",ok,", ",okay,"), "status"),
    (lambda line: line.replace("24576000.0", "245760.0"), "flops"),  # flops cut 100x
    (lambda line: line.replace(",1000,", ",1e3x,", 1), "N"),
])
def test_a_damaged_row_is_moved_aside_never_written_back(tmp_path, damage, why):
    path, recs = _written(tmp_path)
    lines = path.read_text().splitlines()
    bad = damage(lines[-1])
    assert bad != lines[-1]
    path.write_text("\n".join(lines[:-1] + [bad]) + "\n")
    said = []
    good = read_records(path, warn=said.append)
    assert good == recs[:-1]
    (aside,) = tmp_path.glob("sweep.damaged-*.csv")
    assert aside.read_text().splitlines() == [lines[0], bad]  # the damaged bytes kept, for a human to look at
    assert path.read_text().splitlines() == lines[:-1]  # the table holds only what was validated
    assert str(aside) in said[0] and why in said[0] and "run again" in said[0]
    assert read_records(path) == good and len(list(tmp_path.glob("sweep.damaged-*"))) == 1  # nothing new


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"not,a,sweep\n1,2,3\n"])
def test_a_table_that_is_not_one_is_moved_aside_whole(tmp_path, content):
    path = tmp_path / "sweep.csv"
    path.write_bytes(content)
    said = []
    assert read_records(path, warn=said.append) == []
    (aside,) = tmp_path.glob("sweep.damaged-*.csv")
    assert aside.read_bytes() == content and not path.exists() and "every trial runs again" in said[0]


def test_the_divergence_verdict_is_kept_in_the_row_and_a_table_from_before_it_still_reads(tmp_path):
    import pandas as pd

    judged = _rec(0, divergence_p=0.93, divergence_threshold=0.71, divergence_at=0.25)
    write_table([judged, _rec(1)], tmp_path / "sweep.csv")
    back = read_records(tmp_path / "sweep.csv")
    assert back[0] == judged and math.isnan(back[1].divergence_p)
    old = pd.read_csv(tmp_path / "sweep.csv").drop(columns=["divergence_p", "divergence_threshold", "divergence_at"])
    old.to_csv(tmp_path / "old.csv", index=False)
    assert [r.trial_id for r in read_records(tmp_path / "old.csv")] == ["t0", "t1"]
    bad = pd.read_csv(tmp_path / "sweep.csv").astype({"divergence_p": object})
    bad.loc[0, "divergence_p"] = "high"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    warned: list[str] = []
    assert [r.trial_id for r in read_records(tmp_path / "bad.csv", warn=warned.append)] == ["t1"]
    assert "divergence_p='high' is not a number" in warned[0]


def test_the_diagnostics_are_kept_per_evaluation_checked_and_optional(tmp_path):
    """Each evaluation's gradient norm and update sizes (what the divergence predictor reads live) are kept in the
    row, a missing value as null; a damaged diagnostics cell moves its row aside; tables from before it read."""
    import pandas as pd

    diag = TrialRecord.diagnostics_json([(512, 1.25, 0.0123456789, float("nan")), (4096, 0.5, 0.01, 0.02)])
    assert json.loads(diag) == [[512, 1.25, 0.0123457, None], [4096, 0.5, 0.01, 0.02]]
    assert TrialRecord.diagnostics_json([]) == ""
    rec = _rec(0, diagnostics=diag)
    write_table([rec, _rec(1)], tmp_path / "sweep.csv")
    back = read_records(tmp_path / "sweep.csv")
    assert back[0] == rec and back[1].diagnostics == ""
    old = pd.read_csv(tmp_path / "sweep.csv").drop(columns=["diagnostics"])
    old.to_csv(tmp_path / "old.csv", index=False)
    assert [r.diagnostics for r in read_records(tmp_path / "old.csv")] == ["", ""]
    bad = pd.read_csv(tmp_path / "sweep.csv")
    bad.loc[0, "diagnostics"] = "[[512, 1.25, 0.01]]"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    warned: list[str] = []
    assert [r.trial_id for r in read_records(tmp_path / "bad.csv", warn=warned.append)] == ["t1"]
    assert "diagnostics is not a JSON list of [tokens, grad_norm, eff_lr, eff_lr_max] rows" in warned[0]


def test_an_empty_table_has_no_records(tmp_path):
    (tmp_path / "sweep.csv").write_bytes(b"")
    assert read_records(tmp_path / "sweep.csv") == []


def test_a_failed_trial_without_a_loss_or_curve_is_a_valid_row(tmp_path):
    recs = [_rec(0), _rec(1, status="failed", loss=math.nan, curve="[]", wall_s=math.nan, eff_lr=math.nan)]
    write_table(recs, tmp_path / "sweep.csv")
    got = read_records(tmp_path / "sweep.csv")
    assert got[0] == recs[0] and got[1].status == "failed" and math.isnan(got[1].loss)


def _tune_trial(folder: Path, lr: float) -> None:
    spec = load_config("tiny").trial_spec(load_config("tiny").grids()[0].scale.key, lr, 8, 0)
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(spec.to_dict()))
    (folder / "result.json").write_text(json.dumps({"val_loss": 3.0 + lr, "done": True, "flops": 1e9}) + "\n")


def test_folder_discovery_names_what_it_merged_and_stops_at_a_depth(tmp_path):
    _tune_trial(tmp_path / "a" / "tune" / "trial_1", 0.004)
    _tune_trial(tmp_path / "b" / "tune" / "trial_1", 0.016)
    _tune_trial(tmp_path / "c" / "d" / "e" / "f" / "g" / "trial_1", 0.002)  # too deep: not a sweep of this folder
    said = []
    table = load_table(str(tmp_path), warn=said.append)
    assert sorted(table.frame.lr) == [0.004, 0.016]
    assert any("merged 2 trials from 2 Tune experiment folders" in m and "a/tune" in m and "b/tune" in m
               for m in said), said


# -- tracking stores --------------------------------------------------------------------------------------
def test_store_checks(tmp_path):
    check_store(f"sqlite:///{tmp_path / 'new.db'}", create=True)  # a sweep may create it here
    assert not (tmp_path / "new.db").exists()  # ... the check itself creates nothing
    with pytest.raises(StoreError, match="reads never create one"):
        check_store(f"sqlite:///{tmp_path / 'new.db'}", create=False)
    with pytest.raises(StoreError, match="does not exist"):
        check_store(f"sqlite:///{tmp_path / 'no' / 'x.db'}", create=True)
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(StoreError, match="not a SQLite database"):
        check_store(f"sqlite:///{tmp_path / 'text.db'}", create=False)
    with pytest.raises(StoreError, match="unsupported scheme 'gopher'"):
        check_store("gopher://x", create=False)
    with pytest.raises(StoreError, match="unreachable within 1 s"):
        check_store(f"http://127.0.0.1:{free_port()}", create=False, timeout_s=1)
    with pytest.raises(StoreError, match=r"postgresql://u:\*\*\*@127"):  # the password is never printed
        check_store(f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db", create=False, timeout_s=1)


# -- Ray auth tokens --------------------------------------------------------------------------------------
def test_the_ray_token_is_found_where_ray_looks_and_never_guessed(tmp_path, monkeypatch):
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(AuthTokenError, match="no Ray auth token"):
        find_auth_token()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert find_auth_token() is None and auth_headers(None) == {}
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert find_auth_token() == "home-token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "env-token")
    assert find_auth_token() == "env-token" and auth_headers("env-token") == {"Authorization": "Bearer env-token"}
    f = tmp_path / "tok"
    f.write_text("file-token")
    assert find_auth_token(str(f)) == "file-token"  # --token-file wins
    f.write_text("")
    with pytest.raises(AuthTokenError, match="is empty"):
        find_auth_token(str(f))
    with pytest.raises(AuthTokenError, match="does not exist"):
        find_auth_token(str(tmp_path / "none"))
    assert os.environ["RAY_AUTH_TOKEN"] == "env-token"


def test_the_schedule_shape_is_recorded_read_back_and_checked(tmp_path):
    spec = json.dumps({"warmup_frac": 0.1, "decay_frac": 0.3, "decay_shape": "sqrt", "min_lr_ratio": 0.1})
    recs = [_rec(0, schedule="wsd", schedule_spec=spec), _rec(1)]  # the second: a row from before the column
    write_table(recs, tmp_path / "sweep.csv")
    assert read_records(tmp_path / "sweep.csv") == recs
    bad = _rec(2, schedule_spec=json.dumps({"decay_frac": 7}))
    write_table([*recs, bad], tmp_path / "sweep.csv")
    warned = []
    assert read_records(tmp_path / "sweep.csv", warn=warned.append) == recs  # the bad row moved aside
    assert any("decay_frac" in w for w in warned), warned


def test_schedule_laws_rebuild_each_rows_own_schedule():
    """A row's recorded shape (here a 10% floor) decides its rebuilt LRs, not the defaults (a floor of 0)."""
    import pandas as pd

    from laws.schedule_ranking import curves_by_size
    from laws.table import SweepTable

    t = pd.read_csv(ROOT / "bench" / "data" / "schedule_grid.csv")
    t = t[t.variant == "cosine"].assign(
        schedule_spec=json.dumps({"warmup_frac": 0.1, "decay_frac": 0.2, "decay_shape": "linear",
                                  "min_lr_ratio": 0.1}))
    for curves in curves_by_size(SweepTable(t)).values():
        for c in curves:
            assert c.lrs[-1] == pytest.approx(0.1 * c.lrs.max(), rel=1e-6)
    without = curves_by_size(SweepTable(t.drop(columns="schedule_spec")))
    assert all(c.lrs[-1] == pytest.approx(0.0, abs=1e-12) for cs in without.values() for c in cs)
