"""`lawsweep schedules`: a curve folder with its manifest, a sweep table, and the errors a user meets."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws.schedule_laws import ScaledMultiPowerFit
from laws.schedules import Schedule, lr_multipliers

TRUTH = ScaledMultiPowerFit(N_ref=5e7, ref={"L0": 0.65, "A": 0.53, "B": 390.0},
                            slope={"L0": -0.3478, "A": 0.03, "B": 0.16}, alpha=0.52, C=4.5e-5, beta=2.2, gamma=1.4,
                            rmse=0.0, per_size={}, block=25, L0_floor=2.33)
WARM = 200


def lawsweep(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _folder(root: Path, sizes=(("s25", 2.5e7), ("s100", 1e8)), manifest: str | None = None) -> Path:
    """Curves of a known law in the multi-power-law repository's layout (step, lr, loss every 50 steps)."""
    for sub, n in sizes:
        (root / sub).mkdir(parents=True)
        for name, kw in {"cosine": {}, "constant": {}, "wsd": {"decay_frac": 0.3}}.items():
            lrs = 3e-4 * lr_multipliers(Schedule(name, 3000, warmup_steps=WARM, min_ratio=0.1, **kw))
            steps = np.arange(WARM + 50, 3001, 50)
            pd.DataFrame({"step": steps, "lr": lrs[steps - 1], "loss": TRUTH.predict(n, lrs, steps, WARM)}).to_csv(
                root / sub / f"{name}.csv", index=False)
    (root / "manifest.toml").write_text(manifest if manifest is not None else
                                        "warmup_steps = 200\nmin_lr_ratio = 0.1\n[sizes]\n"
                                        + "".join(f"{s} = {n:g}\n" for s, n in sizes))
    return root


def test_ranks_a_larger_sizes_schedules_as_the_true_law_does(tmp_path):
    from laws.schedule_laws import candidate_schedules

    root = _folder(tmp_path / "curves")
    r = lawsweep("schedules", str(root), "--n", "4e8", "--steps", "3000", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert [set(g) for g in got] == [{"schedule", "predicted_loss"}] * 8
    truth = {k: float(TRUTH.predict(4e8, lrs, warmup_steps=WARM)[0])
             for k, lrs in candidate_schedules(3e-4, 3000, WARM, 0.1).items()}
    for g in got:
        assert g["predicted_loss"] == pytest.approx(truth[g["schedule"]], abs=0.01)  # LRs rebuilt from logs
    # Best first, and in the true order wherever the truth separates two schedules by more than 0.005 (0.15%).
    assert [g["predicted_loss"] for g in got] == sorted(g["predicted_loss"] for g in got)
    order = [g["schedule"] for g in got]
    for a in order:
        for b in order:
            if truth[a] < truth[b] - 5e-3:
                assert order.index(a) < order.index(b), (a, b)
    assert truth[order[0]] - min(truth.values()) < 5e-3
    text = lawsweep("schedules", str(root), "--n", "4e8", "--steps", "3000")
    assert "across 2 sizes" in text.stdout and "<- best" in text.stdout


@pytest.mark.parametrize("manifest, flags, msg", [
    (None, ["--d", "1e9"], "tokens_per_step"),
    ("warmup_steps = -3\n[sizes]\ns25 = 2.5e7\ns100 = 1e8\n", ["--steps", "3000"], "warmup_steps = -3"),
    ("warmup_steps = 200\n", ["--steps", "3000"], "[sizes]"),
    ("warmup_steps = 200\n[sizes]\ns25 = 2.5e7\nmissing = 1e8\n", ["--steps", "3000"], "has no *.csv"),
    ("[sizes\n", ["--steps", "3000"], "not a TOML manifest"),
])
def test_bad_manifests_exit_2_naming_the_field(tmp_path, manifest, flags, msg):
    root = _folder(tmp_path / "curves", manifest=manifest)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    r = lawsweep("schedules", str(root), "--n", "4e8", *flags)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_a_curve_folder_without_its_manifest_is_named_with_the_manifest_it_needs(tmp_path):
    root = _folder(tmp_path / "curves")
    (root / "manifest.toml").unlink()
    r = lawsweep("schedules", str(root), "--n", "4e8", "--steps", "3000")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "looks like a curve folder (size folders s100, s25) but has no manifest.toml" in r.stderr
    assert "s25 = <non-embedding parameters>" in r.stderr


def test_one_size_ranks_without_scale_terms_and_says_so(tmp_path):
    root = _folder(tmp_path / "curves", sizes=(("s100", 1e8),))
    r = lawsweep("schedules", str(root), "--n", "1e8", "--steps", "3000")
    assert r.returncode == 0, r.stderr
    assert "no scale terms" in r.stdout


def test_flags_are_checked(tmp_path):
    root = _folder(tmp_path / "curves")
    for flags, msg in [(["--n", "4e8"], "one of the arguments --d --steps is required"),
                       (["--n", "4e8", "--steps", "1e9"], "--steps"),
                       (["--n", "-1", "--steps", "3000"], "--n"),
                       (["--n", "4e8", "--steps", "3000", "--manifest", str(tmp_path / "no.toml")], "--manifest")]:
        r = lawsweep("schedules", str(root), *flags)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr)


REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "data" / "reference_grid.csv"


def test_a_sweep_table_ranks_at_the_laws_lr_and_batch_and_predict_uses_the_same_law():
    r = lawsweep("schedules", str(REFERENCE), "--n", "5e5", "--d", "2e5", "--json")
    assert r.returncode == 0, r.stderr
    ranking = json.loads(r.stdout)
    p = lawsweep("predict", "--n", "5e5", "--d", "2e5", "--from", str(REFERENCE), "--json")
    assert p.returncode == 0, p.stderr
    sch = json.loads(p.stdout)["schedule"]
    assert sch["ranking"] == ranking and sch["name"] == ranking[0]["schedule"]
    assert "across 4 sizes" in sch["why"]
    assert lawsweep("schedules", str(REFERENCE), "--n", "5e5", "--steps", "100").returncode == 2


def test_a_schedule_axis_sweep_ranks_the_schedules_it_ran_and_predict_names_the_same_best(tmp_path):
    """A sweep with a [grid] schedules axis at three sizes and two peak LRs (curves of TRUTH): `schedules` ranks
    its own four schedules at each LR, the one nearest --peak-lr first (text and --json, with the law's own and the
    measured loss), and `predict`'s schedule line names the ranking's first at the LR nearest the law's eta*."""
    from tests.laws.test_schedule_laws import AXIS, axis_sweep

    table = tmp_path / "sweep.csv"
    axis_sweep(TRUTH, lrs=(1.5e-4, 3e-4)).to_csv(table, index=False)
    r = lawsweep("schedules", str(table), "--n", "4e8", "--d", "3e6", "--peak-lr", "3e-4", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {x["schedule"] for x in rows} == set(AXIS) and {x["peak_lr"] for x in rows} == {3e-4}
    assert [x["schedule"] for x in rows][-2:] == ["constant", "cosine"]  # the truth's two worst at 3e-4
    assert all(set(x) == {"schedule", "predicted_loss", "law_loss", "measured_loss", "peak_lr"} for x in rows)
    text = lawsweep("schedules", str(table), "--n", "4e8", "--d", "3e6", "--peak-lr", "3e-4")
    assert text.returncode == 0, text.stderr
    first, second = text.stdout.index("peak LR 0.0003,"), text.stdout.index("peak LR 0.00015,")
    assert first < second and "3000 steps of 1000 tokens" in text.stdout and "measured at N=1e+08" in text.stdout
    assert f"1. {rows[0]['schedule']}" in text.stdout
    p = lawsweep("predict", "--n", "4e8", "--d", "3e6", "--from", str(table), "--json")
    assert p.returncode == 0, p.stderr
    sch = json.loads(p.stdout)["schedule"]
    near = min((1.5e-4, 3e-4), key=lambda lr: abs(np.log(lr / json.loads(p.stdout)["lr"])))
    assert sch["ranking"][0]["peak_lr"] == near and sch["name"] == sch["ranking"][0]["schedule"]
    assert "schedules the sweep ran" in sch["why"]


def test_a_one_cell_sweep_table_needs_steps_and_peak_lr_or_says_why_it_cannot_rank(tmp_path):
    """A sweep table of one cell cannot fit the Step Law that turns --d into steps and gives the peak LR: a clear
    error (exit 2) naming --steps and --peak-lr, no traceback; given both, it ranks with that size's own law. A
    schedule axis run at one size is told to run the axis at two or more sizes."""
    from tests.laws.test_schedule_laws import axis_sweep

    t = pd.read_csv(REFERENCE)
    one = tmp_path / "one.csv"
    big = t[t.N == t.N.max()]
    big[big.D == big.D.max()].to_csv(one, index=False)  # one cell: one N at one D
    r = lawsweep("schedules", str(one), "--n", "5e6", "--d", "2e5")
    assert r.returncode == 2 and "--steps and --peak-lr" in r.stderr and "Traceback" not in r.stderr, r.stderr
    ok = lawsweep("schedules", str(one), "--n", "5e6", "--steps", "800", "--peak-lr", "0.002")
    assert ok.returncode == 0, ok.stderr
    assert "no scale terms" in ok.stdout and "<- best" in ok.stdout
    axis = tmp_path / "axis.csv"
    axis_sweep(TRUTH, sizes=(1e8,)).to_csv(axis, index=False)
    a = lawsweep("schedules", str(axis), "--n", "4e8", "--d", "3e6")
    assert a.returncode == 2 and "run the axis at two or more sizes" in a.stderr and "Traceback" not in a.stderr
