"""The `lawsweep` command as a user runs it: exit codes and messages (no Ray here)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laws.steplaw import StepLaw


def lawsweep(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_plan_prints_scales_grid_and_compute():
    r = lawsweep("plan")
    assert r.returncode == 0, r.stderr
    # The demo's ladder: two mapped scales in full (15 each), the largest searched with 4 trials.
    assert "d96-L2-D100000" in r.stdout and "total: 34 trials" in r.stdout
    rows = json.loads(lawsweep("plan", "tiny", "--json").stdout)
    assert [row["trials"] for row in rows] == [2, 2]


def test_plan_says_when_stop_when_found_may_end_a_scale(tmp_path):
    recipes = Path(__file__).parents[2] / "orchestrator" / "recipes"
    toml = (recipes / "demo.toml").read_text().replace('policy = "ladder"', 'policy = "ladder"\nstop_when_found = 0.9')
    (tmp_path / "sweep.toml").write_text(toml)
    (tmp_path / "demo_target_grid.csv").write_bytes((recipes / "demo_target_grid.csv").read_bytes())
    r = lawsweep("plan", "sweep.toml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "reaches 0.9 (sweep.stop_when_found), once the sweep has a bowl of its own" in r.stdout


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("[grid]\nlr = [-0.01]\nbatch_size=[8]\n[[scales]]\nd_model=32\ntokens=4096\n", "grid.lr"),
        ("[grid]\nlr = []\nbatch_size=[8]\n[[scales]]\nd_model=32\ntokens=4096\n", "grid.lr is empty"),
        ("[grid]\nlr = [0.01]\nbatch_size=[8]\n[train]\nschedule='nope'\n[[scales]]\nd_model=32\ntokens=4096\n",
         "unknown schedule 'nope'"),
        ("[grid]\nlr = [0.01]\nbatch_size=[2.5]\n[[scales]]\nd_model=32\ntokens=4096\n", "grid.batch_size"),
        ("[grid\n", "not valid TOML"),
        ("[sweep]\nprior = 'earlier.json'\n[grid]\nlr = [0.01]\nbatch_size=[8]\n[[scales]]\nd_model=32\n"
         "tokens=4096\n", "sweep.prior: no such file 'earlier.json'"),
        ("[sweep]\nprior = 'bad.toml'\nestimator = 'pooled'\n[grid]\nlr = [0.01]\nbatch_size=[8]\n[[scales]]\n"
         "d_model=32\ntokens=4096\n", "only the posterior estimator has a prior"),
        ("[sweep]\nprior = 'bad.toml'\n[grid]\nlr = [0.01]\nbatch_size=[8]\n[[scales]]\nd_model=32\n"
         "tokens=4096\n", "sweep.prior: "),
    ],
)
def test_bad_config_exits_2_naming_the_field_and_starts_nothing(tmp_path, toml, expected):
    p = tmp_path / "bad.toml"
    p.write_text(toml)
    for cmd in ("run", "plan"):
        r = lawsweep(cmd, str(p), cwd=tmp_path)
        assert r.returncode == 2, r.stdout + r.stderr
        assert expected in r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "mlflow.db").exists()  # failed before any tracking or Ray start
    assert not (tmp_path / "lawsweep_results").exists()


def test_missing_config_file_exits_2(tmp_path):
    r = lawsweep("run", str(tmp_path / "missing.toml"), cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr and "demo" in r.stderr


def test_unknown_flag_exits_2():
    assert lawsweep("run", "--no-such-flag").returncode == 2


def test_predict_uses_the_published_law_by_default():
    r = lawsweep("predict", "--n", "1e9", "--d", "1e11", "--json")
    out = json.loads(r.stdout)
    assert out["lr"] == pytest.approx(1.79 * 1e9**-0.713 * 1e11**0.307)
    assert out["batch_tokens"] == pytest.approx(0.58 * 1e11**0.571)
    assert lawsweep("predict", "--n", "-5", "--d", "1e9").returncode == 2


def _synthetic_table(path):
    # beta 0.15 is 0.16 from the prior: over 16x in D the cells identify it beyond their quarter-octave noise floor
    true = StepLaw(a=1.2, alpha=-0.7, beta=0.15, b=0.5, gamma=0.6)
    rows = []
    for n, d in [(1e5, 1e6), (4e5, 1e6), (1e5, 1.6e7), (4e5, 1.6e7), (2e5, 4e6)]:
        lo, bo = np.log2(true.lr(n, d)), np.log2(true.batch_tokens(d))
        for x in range(round(lo) - 3, round(lo) + 4):
            for y in range(round(bo) - 2, round(bo) + 3):
                loss = 3 + 0.04 * (x - lo) ** 2 + 0.02 * (y - bo) ** 2
                rows.append(dict(N=n, D=d, lr=2.0**x, batch_tokens=2.0**y, loss=loss, status="ok"))
    rows.append(dict(N=1e5, D=1e6, lr=1.0, batch_tokens=512.0, loss=float("nan"), status="diverged"))
    pd.DataFrame(rows).to_csv(path, index=False)
    return true


def test_fit_json_and_predict_from_a_sweep_table(tmp_path):
    table = tmp_path / "sweep.csv"
    true = _synthetic_table(table)
    r = lawsweep("fit", str(table), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["lr_law"]["alpha"] == pytest.approx(true.alpha, abs=0.03)
    assert out["lr_law"]["beta"] == pytest.approx(true.beta, abs=0.03)
    assert out["batch_law"]["gamma"] == pytest.approx(true.gamma, abs=0.03)
    lo, hi = out["lr_law"]["intervals"]["alpha"]
    assert lo <= out["lr_law"]["alpha"] <= hi
    assert len(out["scales"]) == 5 and not any(s["on_edge"] for s in out["scales"])
    assert out["diagnostics"]["estimator"] == "posterior" and set(out["diagnostics"]["data_share"]) >= {"alpha"}
    p = json.loads(lawsweep("predict", "--n", "1e7", "--d", "1e8", "--from", str(table), "--json").stdout)
    assert np.log2(p["lr"] / true.lr(1e7, 1e8)) == pytest.approx(0, abs=0.3)
    assert p["lr_interval"][0] <= p["lr"] <= p["lr_interval"][1]
    assert p["estimator"] == "posterior" and p["diagnostics"]["lr_law"]["leans_on"] in ("N", "D")
    pooled = json.loads(lawsweep("fit", str(table), "--json", "--estimator", "pooled").stdout)
    assert pooled["diagnostics"]["estimator"] == "pooled"
    assert pooled["lr_law"]["alpha"] == pytest.approx(true.alpha, abs=0.1)  # the band snaps to this octave grid
    r = lawsweep("fit", str(table), "--estimator", "median")
    assert r.returncode == 2 and "invalid choice: 'median'" in r.stderr


@pytest.mark.slow  # three real fits with the schedule law across five sizes (about 25 s)
def test_predict_reads_joined_sweeps_as_one_table_and_warns_where_the_law_bends():
    """`--from A.csv+B.csv`: the fortunes grid's five widths (the fifth recorded as its own sweeps); the log
    optimum curves down along N there (significant), so a prediction beyond the largest width says so."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    both = "bench/data/fortunes_adamw.csv+bench/data/fortunes_adamw_w128.csv"
    r = lawsweep("predict", "--n", "7e5", "--d", "4e5", "--from", both, "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert "fit on 15 scales" in p["law"]
    # the batch optima's trend with N first (README's example), then the bend
    batch, w = p["warnings"]
    assert batch.startswith("the cells' batch optima grow with N beyond B*(D)")
    assert w.startswith("log eta* curves down along N") and "extrapolate along D" in w
    r = lawsweep("predict", "--n", "7e5", "--d", "4e5", "--from", both.replace("w128", "w999"), cwd=root)
    assert r.returncode == 2 and "fortunes_adamw_w999.csv" in r.stderr
    # Within the cells' range along N there is nothing to warn about.
    p = json.loads(lawsweep("predict", "--n", "1e5", "--d", "4e5", "--from", both, "--json", cwd=root).stdout)
    assert p["warnings"] == []


def test_bend_warnings_fire_only_on_a_significant_bend_the_target_extrapolates_along():
    from laws.analysis import bend_warnings

    def diag(interval, lean_n):
        return {"lr_law": {"curvature": {"N": {"c2": sum(interval) / 2, "interval": interval}, "D": None},
                           "lean_octaves": {"N": lean_n, "D": 0.0}, "holdout": {"N": None}}}

    assert len(bend_warnings(diag([-0.4, -0.1], 0.5))) == 1
    assert "curves up along N" in bend_warnings(diag([0.1, 0.3], 0.5))[0]
    assert bend_warnings(diag([-0.4, 0.1], 0.5)) == []  # straddles 0: no evidence of a bend
    assert bend_warnings(diag([-0.4, -0.1], 0.0)) == []  # no extrapolation along N
    assert bend_warnings({}) == []


def test_fit_rejects_a_table_without_the_required_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"N": [1], "lr": [0.1]}).to_csv(bad, index=False)
    r = lawsweep("fit", str(bad))
    assert r.returncode == 2 and "lacks columns" in r.stderr
    r = lawsweep("fit", str(tmp_path / "none.csv"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_resume_of_a_folder_that_is_not_a_sweep_exits_2(tmp_path):
    r = lawsweep("resume", str(tmp_path))
    assert r.returncode == 2 and "holds no sweep.json" in r.stderr
    (tmp_path / "sweep.json").write_text("{not json")
    r = lawsweep("resume", str(tmp_path))
    assert r.returncode == 2 and "is damaged" in r.stderr and "sweep.csv beside it is intact" in r.stderr


def test_fit_skips_corrupted_rows_with_a_warning(tmp_path):
    table = tmp_path / "sweep.csv"
    _synthetic_table(table)
    with open(table, "a") as f:
        f.write("not-a-number,1e6,0.01,512,2.0,ok\n-5,1e6,0.01,512,2.0,ok\n1e5,1e6,0.01,512,2.0,weird\n")
    r = lawsweep("fit", str(table), "--json")
    assert r.returncode == 0, r.stderr
    assert "skipped 2 of" in r.stderr and "unknown status" in r.stderr
    assert len(json.loads(r.stdout)["scales"]) == 5


def test_bench_json_on_the_reference_grid():
    from pathlib import Path

    ref = Path(__file__).resolve().parents[2] / "bench" / "data" / "reference_grid.csv"
    r = lawsweep("bench", "--table", str(ref), "--json", "--seeds", "3", "--policies", "law_prior,random,tpe")
    assert r.returncode == 0, r.stderr
    rows = {row["policy"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"law_prior", "random", "tpe"}
    for row in rows.values():
        assert {"median_compute_share_to_band", "median_final_gap", "seeds"} <= row.keys()
    assert rows["law_prior"]["median_compute_share_to_band"] <= 0.10
    assert lawsweep("bench", "--table", str(ref), "--seeds", "0").returncode == 2


def test_bench_holds_out_the_cell_given_by_target():
    fortunes = Path(__file__).resolve().parents[2] / "bench" / "data" / "fortunes_adamw.csv"
    r = lawsweep("bench", "--table", str(fortunes), "--target", "223872:100000", "--json", "--seeds", "1",
                 "--policies", "law_prior,grid")
    assert r.returncode == 0, r.stderr
    rows = {row["policy"]: row for row in json.loads(r.stdout)}
    assert rows["law_prior"]["median_compute_share_to_band"] < rows["grid"]["median_compute_share_to_band"]
    bad = lawsweep("bench", "--table", str(fortunes), "--target", "2e5:1e5")
    assert bad.returncode == 2 and "no cell N=200000, D=100000" in bad.stderr and "223872:100000" in bad.stderr
    assert lawsweep("bench", "--target", "2e5:1e5").returncode == 2  # a target needs its table


def test_a_bent_fit_reaches_fit_json_predict_json_and_the_printed_summary():
    """The fortunes widths 32-192 bend (the D exponent falls with N): `fit --json` gives kappa with its interval,
    `predict --json` its coefficients with the centre, and the printed fit a line of its own; the prediction is
    the bent law's."""
    from laws.analysis import fit_details, prediction, summarize
    from laws.table import SweepTable, read_tables
    from orchestrator.summary import format_summary

    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    names = ("fortunes_adamw.csv", "fortunes_adamw_w128.csv", "fortunes_adamw_seed1_w96.csv",
             "fortunes_adamw_seed1_w128.csv", "fortunes_adamw_w160.csv", "fortunes_adamw_w160_target.csv",
             "fortunes_adamw_w192.csv", "fortunes_adamw_w192_target.csv")
    s = summarize(SweepTable(read_tables("+".join(str(data / f) for f in names))))
    law = s.fit.step_law.law
    assert -0.4 < law.kappa < -0.05
    lr_law = fit_details(s, n_boot=5)["lr_law"]
    lo, hi = lr_law["intervals"]["kappa"]
    # The interval averages over the straight and the bent settings: the straight one holds about a tenth of the
    # posterior, so the interval reaches exactly 0 and the probability of the bend is given beside it.
    assert lo < lr_law["kappa"] < hi == 0.0 and (lr_law["n0"], lr_law["d0"]) == (law.n0, law.d0)
    assert 0.8 < lr_law["p_bent"] < 0.975
    p = prediction(s, 2e6, 4e5)
    assert p["coefficients"]["kappa"] == law.kappa and p["lr"] == pytest.approx(float(law.lr(2e6, 4e5)))
    assert "kappa=" in format_summary(s) and "bent with posterior probability 0.89" in format_summary(s)


def test_an_interaction_weighed_and_not_admitted_is_reported_with_its_probability():
    """The reference grid's 8 cells weigh the N x D interaction and do not admit it (Bayes factor below 1): the law
    stays straight, `fit --json` gives the bend's posterior probability, and the printed fit says the intervals
    average over it."""
    from laws.analysis import fit_details, prediction, summarize
    from laws.table import SweepTable, read_tables
    from orchestrator.summary import format_summary

    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    s = summarize(SweepTable(read_tables(str(data / "reference_grid.csv"))))
    assert s.fit.step_law.law.kappa == 0.0
    p = fit_details(s, n_boot=5)["lr_law"]["p_bent"]
    assert 0.05 < p < 0.5 and "kappa" not in fit_details(s, n_boot=5)["lr_law"]
    assert f"N x D interaction weighed, not admitted (posterior probability {p:.2f})" in format_summary(s)
    pred = prediction(s, 1.6e6, 2e7)
    assert f"N x D interaction not in the law; its posterior probability over every width, prior widening and " \
           f"noise {p:.2f}" in pred["law"]


def _one_width_table(path, true):
    """Bowls of ``true`` at one width over four token budgets: the cells cannot identify alpha."""
    rows = []
    for d in (1e6, 2e6, 4e6, 8e6):
        lo, bo = np.log2(true.lr(3e5, d)), np.log2(true.batch_tokens(d))
        for x in range(round(lo) - 3, round(lo) + 4):
            for y in range(round(bo) - 2, round(bo) + 3):
                rows.append(dict(N=3e5, D=d, lr=2.0**x, batch_tokens=2.0**y, status="ok",
                                 loss=3 + 0.04 * (x - lo) ** 2 + 0.02 * (y - bo) ** 2))
    pd.DataFrame(rows).to_csv(path, index=False)


def test_fit_and_predict_take_an_earlier_sweep_or_a_written_prior(tmp_path):
    """--prior: a `fit --json` of an earlier sweep, the earlier sweep itself, or exponents written down centre the
    posterior; what the new cells cannot identify (alpha, from one width) follows that prior, and bad priors are
    refused naming the field."""
    earlier = tmp_path / "earlier.csv"
    true = _synthetic_table(earlier)  # two widths: alpha -0.7 identified there
    r = lawsweep("fit", str(earlier), "--json")
    (tmp_path / "earlier.json").write_text(r.stdout)
    one = tmp_path / "one_width.csv"
    _one_width_table(one, StepLaw(a=1.2, alpha=-0.3, beta=0.15, b=0.5, gamma=0.6))
    written = tmp_path / "mine.json"
    written.write_text(json.dumps({"alpha": -0.3, "beta": 0.15, "gamma": 0.6}))
    for prior, alpha, said in [(written, -0.3, f"given in {written}"),
                               (tmp_path / "earlier.json", true.alpha, "given in"),
                               (earlier, true.alpha, f"posterior of the earlier sweep {earlier}")]:
        r = lawsweep("fit", str(one), "--json", "--prior", str(prior))
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["lr_law"]["alpha"] == pytest.approx(alpha, abs=0.05), prior
        assert out["diagnostics"]["prior"].startswith(said)
    assert json.loads(lawsweep("fit", str(one), "--json").stdout)["lr_law"]["alpha"] < -0.6  # published prior
    text = lawsweep("fit", str(one), "--prior", str(written)).stdout
    assert f"prior: given in {written}" in text
    # predict: extrapolated 33x in N, alpha -0.3 instead of about -0.7 puts the LR about two octaves higher
    def predicted(*extra):
        return json.loads(lawsweep("predict", "--n", "1e7", "--d", "4e6", "--from", str(one), "--json",
                                   *extra).stdout)["lr"]

    assert np.log2(predicted("--prior", str(written)) / predicted()) > 1.5
    (tmp_path / "bad.json").write_text(json.dumps({"alpha": -0.3, "beta": 0.15}))
    for args, msg in [(["fit", str(one), "--prior", str(tmp_path / "bad.json")], "no 'gamma'"),
                      (["fit", str(one), "--prior", str(written), "--estimator", "pooled"], "only the posterior"),
                      (["fit", str(one), "--prior", str(tmp_path / "missing.csv")], "missing.csv"),
                      (["predict", "--n", "1e7", "--d", "1e8", "--prior", str(written)], "needs --from")]:
        r = lawsweep(*args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)


def test_fit_reads_the_step_law_release_as_it_is():
    dense = Path(__file__).resolve().parents[3] / "shared" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
    r = lawsweep("fit", str(dense))
    assert r.returncode == 0, r.stderr
    assert "Step Law posterior fit on 17 scales" in r.stdout
    assert "1,073,741,824  56,900,000,000" in r.stdout  # the per-scale table's columns widen to the billions
