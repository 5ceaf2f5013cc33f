"""`lawsweep report` and `lawsweep predict` on the recorded reference grid (no Ray): every section is there,
and the numbers it shows are the fits' numbers."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws import fit_sweep, predict_target
from laws.analysis import fit_schedules
from laws.sweep import per_scale_optima
from orchestrator.report import SECTIONS, build_report, write_report

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "bench" / "data" / "reference_grid.csv"
CONFIG = ROOT / "orchestrator" / "recipes" / "reference.toml"
TARGET = (1.6e6, 2e7)


@pytest.fixture(scope="module")
def table():
    t = pd.read_csv(TABLE)
    # Two runs of the largest scale blew up: the divergence section must show them, and no fit may use them.
    big = t[(t.N == t.N.max()) & (t.D == t.D.max()) & (t.lr == t.lr.max())].index[:2]
    t.loc[big, "status"] = "diverged"
    t.loc[big, "loss"] = np.nan
    return t


@pytest.fixture(scope="module")
def report(table, tmp_path_factory):
    rep = build_report(table, title="reference", config_path=CONFIG, target=TARGET)
    out = tmp_path_factory.mktemp("report")
    return rep, write_report(rep, out)


def _arrays(t):
    loss = np.where(t.status == "ok", t.loss, np.nan)
    return [t[c].to_numpy(float) for c in ("N", "D", "lr", "batch_tokens")], loss


def test_every_section_is_in_the_html_with_its_figure(report):
    rep, path = report
    html = path.read_text()
    for sec in SECTIONS:
        m = re.search(rf"<section id='{sec}'>(.*?)</section>", html, re.S)
        assert m, f"section {sec} missing"
        assert "<img" in m.group(1), f"section {sec} has no figure"
    assert len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", html)) == len(rep.figures)  # self-contained
    for name in rep.figures:
        png = (path.parent / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    embedded = json.loads(re.search(r"<script type='application/json' id='lawsweep-data'>(.*?)</script>", html,
                                    re.S).group(1).replace("<\\/", "</"))
    assert embedded["laws"]["alpha"] == rep.data["laws"]["alpha"]


def test_per_scale_optima_and_laws_are_the_fits(report, table):
    rep, path = report
    args, loss = _arrays(table)
    optima = per_scale_optima(*args, loss, n_boot=200)
    assert [s["lr"] for s in rep.data["scales"]] == pytest.approx([o.lr for o in optima])
    assert [s["lr_interval"] for s in rep.data["scales"]] == [list(o.lr_interval) for o in optima]
    fit = fit_sweep(*args, loss)
    law = fit.step_law.law
    for k in ("a", "alpha", "beta", "b", "gamma"):
        assert rep.data["laws"][k] == pytest.approx(getattr(law, k))
    p = predict_target(fit, *TARGET)
    t = rep.data["laws"]["target"]
    assert t["lr"] == pytest.approx(law.lr(*TARGET)) and t["lr_interval"] == pytest.approx(list(p.lr_interval))
    assert t["lr_interval"][0] < t["lr"] < t["lr_interval"][1]
    html = path.read_text()
    assert f"{law.alpha:.4g}" in html and f"{t['lr']:.4g}" in html  # the page prints the same numbers
    # The target lies 1.23 octaves beyond the proxies along N, where the optima bend, and its batch optima shrink with
    # N beyond B*(D): the report says both.
    batch, bend = [n for n in rep.notes.get("laws", []) if n.startswith("Warning: ")]
    assert "curves down along N" in bend and "curves down along N" in html
    assert "batch optima shrink with N beyond B*(D)" in batch and "shrink with N beyond B*(D)" in html


def test_held_out_scales_are_predicted_by_the_other_scales(report, table):
    rep, _ = report
    rows = rep.data["heldout"]
    assert len(rows) == 8
    r = rows[-1]
    keep = ~((table.N == r["N"]) & (table.D == r["D"]))
    args, loss = _arrays(table[keep])
    law = fit_sweep(*args, loss).step_law.law
    assert r["predicted_lr"] == pytest.approx(law.lr(r["N"], r["D"]))
    assert r["lr_error_octaves"] == pytest.approx(math.log2(r["predicted_lr"] / r["observed_lr"]))
    assert np.median([abs(x["lr_error_octaves"]) for x in rows]) < 1.0  # the law transfers within an octave


def test_coverage_schedules_and_divergence(report, table):
    rep, _ = report
    assert rep.data["coverage_total"] == {"run": 224, "grid": 224, "share": 1.0}
    sf, _ = fit_schedules(table, {"schedule": "cosine", "warmup_frac": 0.1, "decay_frac": 0.2,
                                  "decay_shape": "linear", "min_lr_ratio": 0.0})
    ranking = rep.data["schedules"]["ranking"]
    assert [r["schedule"] for r in ranking] == [n for n, _ in sf.ranking]
    assert len(ranking) == 6 and ranking == sorted(ranking, key=lambda r: r["predicted_loss"])
    assert rep.data["schedules"]["law"]["rmse"] < 0.15
    div = rep.data["divergence"]
    assert len(div) == 2 and all(d["lr"] == table.lr.max() for d in div)
    assert rep.data["status_counts"] == {"ok": 222, "diverged": 2}
    # At the target (200x the proxies' tokens), the law carried across the 4 sizes with curves predicts negative
    # losses (-5.5 for linear decay): the report says the schedules are not ranked there, and why (as `predict`).
    across = rep.data["schedules"]["across_scales"]
    assert across["why"].startswith("not ranked: the schedule law predicts a final loss of -")
    assert across["ranking"] == []
    # The reference grid's curves have 8 evaluations per run: too sparse for the predictor's first 20%.
    assert rep.data["divergence_predictor"]["runs"] == 0


def test_the_divergence_predictor_reads_a_tables_curves_in_the_report(tmp_path):
    """The CPU schedule grid: 64 healthy runs with 20 evaluations each; one made to blow up after 5%."""
    t = pd.read_csv(ROOT / "bench" / "data" / "schedule_grid.csv")
    i = t.index[(t.N == t.N.max()) & (t.lr == t.lr.max())][0]
    pts = json.loads(t.loc[i, "curve"])
    t.loc[i, "curve"] = json.dumps([[tok, v if k < 1 else v * 4] for k, (tok, v) in enumerate(pts)])
    t.loc[i, "status"], t.loc[i, "loss"] = "diverged", np.nan
    rep = build_report(t, title="schedule grid")
    dp = rep.data["divergence_predictor"]
    assert dp["runs"] == 64 and dp["diverged"] == 1
    assert [(r["lr"], r["diverged"]) for r in dp["called_runs"]] == [(t.loc[i, "lr"], True)]
    html = write_report(rep, tmp_path).read_text()
    assert "Divergence predictor" in html and "1 of 64 runs called diverging" in html


def test_the_report_shows_the_verdicts_a_live_sweep_recorded(tmp_path):
    """bench/data/licenses_shadow.csv, a shadow sweep: the report reads the recorded verdicts (every feature the
    live stopper read) instead of replaying the curves; a called run that was stopped has no outcome to score."""
    t = pd.read_csv(ROOT / "bench" / "data" / "licenses_shadow.csv")
    from laws.analysis import divergence_predictions
    from laws.steplaw import PUBLISHED
    from laws.table import SweepTable

    dp = divergence_predictions(SweepTable(t, "licenses"), PUBLISHED)
    # one called run blew up later and was stopped by the fixed rules: no end to score
    assert (dp["source"], dp["runs"], dp["called"], dp["stopped"], dp["precision"]) == ("live", 96, 38, 1, 1.0)
    assert dp["recall"] == pytest.approx(37 / 57) and all(r["probability"] >= 0.5 for r in dp["called_runs"])
    i = t.index[(t.divergence_p >= t.divergence_threshold) & (t.status == "ok")][0]
    t.loc[i, ["status", "loss"]] = ["diverged", np.nan]  # as a stopping sweep would have recorded it
    dp = divergence_predictions(SweepTable(t, "licenses"), PUBLISHED)
    assert (dp["called"], dp["stopped"], dp["precision"]) == (38, 2, 1.0)
    html = write_report(build_report(t, title="licenses"), tmp_path).read_text()
    assert "Judged live" in html and "38 of 96 runs called diverging, 2 of them stopped" in html


def test_report_command_on_a_table(tmp_path):
    r = subprocess.run([sys.executable, "-m", "orchestrator", "report", str(TABLE), "--out", str(tmp_path / "r"),
                        "--target-n", "1.6e6", "--target-d", "2e7"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "laws.png").is_file()
    bad = subprocess.run([sys.executable, "-m", "orchestrator", "report", str(TABLE), "--target-n", "1e6"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert bad.returncode == 2 and "--target-d" in bad.stderr


def _predict(*args):
    return subprocess.run([sys.executable, "-m", "orchestrator", "predict", *args], capture_output=True, text=True,
                          timeout=300)


def test_predict_gives_intervals_the_law_and_a_ranked_schedule():
    r = _predict("--n", "1.6e6", "--d", "2e7", "--from", str(TABLE), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["lr_interval"][0] < out["lr"] < out["lr_interval"][1]
    assert out["batch_interval"][0] < out["batch_tokens"] < out["batch_interval"][1]
    assert "Step Law posterior fit on 8 scales" in out["law"]
    assert out["schedule"]["name"] == out["schedule"]["ranking"][0]["schedule"]
    r = _predict("--n", "1.6e6", "--d", "2e7")
    assert r.returncode == 0 and "published Step Law" in r.stdout and "schedule: cosine" in r.stdout


@pytest.mark.slow  # trains a base model and its continuations (about 1.5 minutes)
def test_predict_for_continued_pretraining(tmp_path):
    r = _predict("--n", "2e5", "--d", "1e6", "--from", str(TABLE), "--checkpoint-loss", "2.1", "--budget", "5e11",
                 "--json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)["cpt"]
    assert c["C_total"] == pytest.approx(c["C_eq"] + 5e11)
    assert c["C_eq_interval"][0] < c["C_eq"] < c["C_eq_interval"][1]
    assert c["lr_interval"][0] <= c["lr"] <= c["lr_interval"][1]
    lo, hi = c["fitted_compute"]
    assert lo < hi and 0 <= c["undefined_share"] < 1
    # Where the prediction sits against the proxies' compute: inside (1.0), or the factor outside.
    assert c["C_eq_extrapolation"] == (c["C_eq"] / hi if c["C_eq"] > hi else c["C_eq"] / lo if c["C_eq"] < lo else 1.0)
    assert c["C_total_extrapolation"] == pytest.approx(c["C_total"] / hi) and c["C_total"] > hi
    text = _predict("--n", "2e5", "--d", "1e6", "--from", str(TABLE), "--checkpoint-loss", "2.1", "--budget", "5e11")
    assert "beyond the largest proxy compute" in text.stdout and "extrapolated" in text.stdout
    assert "warning" not in text.stdout.split("continued pre-training")[1]  # 4 of 8 cells bracketed: no warning
    # Proxies whose batch optima sit on the grid's edge: the compute laws read them as points, and say so.
    edge = _predict("--n", "56640", "--d", "5e4", "--from", str(ROOT / "bench/data/fortunes_adamw.csv"),
                    "--checkpoint-loss", "3.14", "--budget", "1.7e10").stdout.split("continued pre-training")[1]
    assert "warning: eta*(C) and B*(C) read every cell's optimum as a point" in edge and "10 batch optima" in edge
    # A lower checkpoint loss means more equivalent compute already spent.
    c2 = json.loads(_predict("--n", "2e5", "--d", "1e6", "--from", str(TABLE), "--checkpoint-loss", "1.9",
                             "--budget", "5e11", "--json").stdout)["cpt"]
    assert c2["C_eq"] > c["C_eq"]
    for args, msg in [
        (["--checkpoint-loss", "2.1"], "needs --budget"),
        (["--checkpoint-loss", "2.1", "--budget", "1e12", "--from", ""], "needs --from"),
        (["--checkpoint", str(tmp_path / "none.pt"), "--budget", "1e12", "--from", str(TABLE)], "cannot be read"),
        (["--checkpoint-loss", "0.5", "--budget", "1e12", "--from", str(TABLE)], "E="),
    ]:
        r = _predict("--n", "2e5", "--d", "1e6", *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)


def test_predict_measures_a_real_checkpoint(tmp_path):
    from trainers import DataConfig, ModelConfig, TrainConfig, load_corpus, train

    ck = tmp_path / "base.pt"
    res = train(ModelConfig(d_model=32, n_layer=1, context=32),
                TrainConfig(lr=2**-6, batch_size=8, tokens=8 * 32 * 60, save_checkpoint=str(ck)),
                load_corpus(DataConfig()))
    r = _predict("--n", "2e5", "--d", "1e6", "--from", str(TABLE), "--checkpoint", str(ck), "--budget", "5e11",
                 "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cpt"]["checkpoint_loss"] == pytest.approx(res.val_loss, abs=1e-6)


@pytest.mark.slow  # trains a BPE tokenizer and a model on it (about 1 minute)
def test_predict_measures_a_bpe_checkpoint_with_its_tokenizer(tmp_path):
    from trainers import DataConfig, ModelConfig, TrainConfig, load_corpus, train
    from trainers.data import _pydoc_text
    from trainers.tokenizer import train_bpe

    tok_path = tmp_path / "tokenizer.json"
    train_bpe(_pydoc_text()[:200_000], 320).save(str(tok_path))
    ck = tmp_path / "bpe.pt"
    res = train(ModelConfig(d_model=32, n_layer=1, context=32, vocab_size=320),
                TrainConfig(lr=2**-6, batch_size=8, tokens=8 * 32 * 40, save_checkpoint=str(ck)),
                load_corpus(DataConfig(tokenizer=str(tok_path))))
    common = ("--n", "2e5", "--d", "1e6", "--from", str(TABLE), "--checkpoint", str(ck), "--budget", "5e11")
    for tok in ([], ["--tokenizer", str(tok_path)]):  # the checkpoint records its tokenizer; naming it is the same
        r = _predict(*common, *tok, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["cpt"]["checkpoint_loss"] == pytest.approx(res.val_loss, abs=1e-6)
    bad = _predict(*common, "--tokenizer", str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "--tokenizer" in bad.stderr and "tokenizer.json" in bad.stderr
    wrong = _predict(*common, "--tokenizer", "byte")
    assert wrong.returncode == 2 and "trained with a BPE of 320 tokens tokenizer" in wrong.stderr, wrong.stderr


_PAGE_CHECK = """(() => {
  let data = null, json_error = null;
  try { data = JSON.parse(document.getElementById('lawsweep-data').textContent); }
  catch (e) { json_error = String(e); }
  const imgs = [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,
                                               h: i.naturalHeight}));
  return {json_error, keys: data ? Object.keys(data) : [], imgs, title: document.title,
          text: document.body.innerText.length};
})()"""


def test_the_html_report_renders_in_a_real_headless_chromium(report):
    """The page people open: loads from disk with no console error, its embedded JSON parses, every figure
    decodes to a real image."""
    import os

    from tests.browser import find_browser, open_page

    if find_browser() is None:
        if os.environ.get("LAWSWEEP_REQUIRE_BROWSER"):
            pytest.fail("no Chromium on PATH, and .ci/run requires one (apt-get install chromium)")
        pytest.skip("no Chromium on PATH (.ci/run installs Debian's chromium)")
    rep, path = report
    page = open_page(path, _PAGE_CHECK)
    assert page["errors"] == []
    v = page["value"]
    assert v["json_error"] is None and v["keys"]
    assert len(v["imgs"]) == len(rep.figures) > 0
    for img in v["imgs"]:
        assert img["complete"] and img["w"] > 100 and img["h"] > 100, img
    assert v["text"] > 500


def test_a_branched_sweep_shows_each_stable_run_with_its_branches(tmp_path):
    """Two stable runs, three branches each: the report's branches section holds every branch under its stable
    run, stars each cell's best, and the fits ignore the stable rows (compute only)."""
    from laws.analysis import branch_families, optima
    from laws.table import SweepTable
    from orchestrator.report import build_report, write_report

    rows = []
    for sid, lr, losses in (("s1", 0.004, (3.2, 3.0, 2.9)), ("s2", 0.016, (3.1, 3.05, 2.95))):
        rows.append(dict(trial_id=sid, scale="d32-L1-D16384", N=12768, D=16384, lr=lr, batch_tokens=256, loss=np.nan,
                         status="stable", tokens=13056, flops=6 * 12768 * 13056, parent_trial="", branch_step=0,
                         curve=json.dumps([[2560, 4.0], [13056, 3.3]])))
        for (d, step), loss in zip(((4096, 13), (8192, 26), (16384, 51)), losses):
            rows.append(dict(trial_id=f"{sid}-{d}", scale=f"d32-L1-D{d}", N=12768, D=d, lr=lr, batch_tokens=256,
                             loss=loss, status="ok", tokens=d - 256 * step, flops=6 * 12768 * (d - 256 * step),
                             parent_trial=sid, branch_step=step,
                             curve=json.dumps([[256 * step, 3.4], [d, loss]])))
    table = SweepTable.from_rows(rows)
    fams = branch_families(table)
    assert [f["trial_id"] for f in fams] == ["s1", "s2"]
    assert [(b["D"], b["branch_step"], b["cell_best"]) for b in fams[0]["branches"]] == [
        (4096, 13, False), (8192, 26, True), (16384, 51, True)]
    assert [b["cell_best"] for b in fams[1]["branches"]] == [True, False, False]
    assert sorted((o.D, o.grid_lr) for o in optima(table)) == [(4096, 0.016), (8192, 0.004), (16384, 0.004)]
    rep = build_report(table, title="branched")
    assert "branches" in rep.figures and len(rep.data["branches"]) == 2
    html = write_report(rep, tmp_path).read_text()
    assert "<section id='branches'>" in html and "2 stable runs" in html


def test_a_schedule_axis_sweeps_report_ranks_the_schedules_it_ran_at_the_target(tmp_path):
    """The report of a [grid] schedules sweep at three sizes shows, at the target, the schedules the sweep ran
    ranked across scales by the law anchored at the largest size, with the law's own and the measured loss beside
    it (the HTML table too)."""
    from tests.laws.test_schedule_laws import AXIS, axis_sweep
    from tests.orchestrator.test_schedules_cli import TRUTH

    rep = build_report(axis_sweep(TRUTH, lrs=(1.5e-4, 3e-4)), title="axis", target=(4e8, 3e6))
    across = rep.data["schedules"]["across_scales"]
    assert "schedules the sweep ran" in across["why"]
    assert {r["schedule"] for r in across["ranking"]} == set(AXIS)
    assert all(np.isfinite(r["law_loss"]) and np.isfinite(r["measured_loss"]) for r in across["ranking"])
    html = write_report(rep, tmp_path).read_text()
    section = re.search(r"<section id='schedules'>(.*?)</section>", html, re.S).group(1)
    assert "law_loss" in section and "measured_loss" in section and "wsd-decay0.3" in section
