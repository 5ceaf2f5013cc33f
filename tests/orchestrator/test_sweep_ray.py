"""A real sweep on a real local Ray cluster, recorded in a real MLflow sqlite store."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.ray

RECIPES = Path(__file__).resolve().parents[2] / "orchestrator" / "recipes"


def run_cli_sweep(work: Path, toml: str) -> str:
    """Write ``toml`` as sweep.toml in ``work`` and run it through the CLI; returns stdout."""
    (work / "sweep.toml").write_text(toml)
    r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=work,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Run the tiny recipe plus one exploding LR through the CLI, once for the module."""
    work = tmp_path_factory.mktemp("sweep")
    toml = (RECIPES / "tiny.toml").read_text().replace("lr = [0.004, 0.016]", "lr = [0.004, 0.016, 300.0]")
    return work, run_cli_sweep(work, toml)


def test_every_trial_is_in_the_sweep_table_with_its_status(sweep_dir):
    work, stdout = sweep_dir
    (table,) = work.glob("lawsweep_results/tiny-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 6
    assert set(df.columns) >= {"N", "D", "lr", "batch_tokens", "loss", "status", "curve", "flops"}
    diverged = df[df.lr == 300.0]
    assert (diverged.status == "diverged").all() and diverged.loss.isna().all()
    ok = df[df.lr != 300.0]
    assert (ok.status == "ok").all() and ok.loss.between(1.0, 6.0).all()
    assert (ok.batch_tokens == 8 * 32).all() and (ok.D == 4096).all()
    assert (ok.flops == 6 * ok.N * 4096).all()
    for curve in ok.curve:
        pts = json.loads(curve)
        assert len(pts) >= 2 and pts[-1][0] == 4096


def test_summary_table_and_law_are_printed(sweep_dir):
    _, stdout = sweep_dir
    assert "Per-scale optima" in stdout
    assert "Step Law posterior fit on 2 scales" in stdout
    assert "2/1/0" in stdout  # ok/diverged/failed per scale
    assert "[  6/6]" in stdout  # progress lines
    assert "Configuration for experiment" not in stdout and "TensorBoard" not in stdout  # Tune stays quiet


def test_mlflow_holds_the_parent_and_every_child_with_metrics(sweep_dir):
    work, _ = sweep_dir
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lawsweep")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("lawsweep.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("lawsweep.kind") == "trial"]
    assert len(parents) == 1 and len(children) == 6
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert "law_alpha" in parent.data.metrics and parent.data.metrics["trials_diverged"] == 2
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.csv", "summary.txt"} <= arts
    for c in children:
        assert c.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert c.info.status == "FINISHED"
        assert {"N", "D", "lr", "batch_size", "batch_tokens", "seed", "schedule"} <= c.data.params.keys()
        status = c.data.tags["lawsweep.status"]
        if status == "ok":
            hist = client.get_metric_history(c.info.run_id, "val_loss")
            assert len(hist) >= 2 and all(math.isfinite(m.value) for m in hist)
            assert [m.step for m in hist] == sorted(m.step for m in hist)
            assert {"train_loss", "lr", "tokens"} <= c.data.metrics.keys()
            assert c.data.metrics["final_val_loss"] == hist[-1].value
        else:
            assert status == "diverged" and float(c.data.params["lr"]) == 300.0


def test_progress_shows_running_compute_and_the_law_as_it_refits(sweep_dir):
    work, stdout = sweep_dir
    lines = [ln for ln in stdout.splitlines() if ln.startswith("[")]
    assert len(lines) == 6 and all("running" in ln and "FLOPs (" in ln and "| " in ln for ln in lines)
    # Compute spent is what ran (diverged trials stop early) against the plan of 6 N D per grid point.
    df = pd.read_csv(next(work.glob("lawsweep_results/tiny-*/sweep.csv")))
    share = 100 * df.flops.sum() / (6 * df.N * df.D).sum()
    pcts = [int(ln.split("FLOPs (")[1].split("%")[0]) for ln in lines]
    assert pcts == sorted(pcts) and pcts[-1] == round(share) and share < 100
    assert "law refit on 2 scales: eta* =" in stdout
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    (parent,) = client.search_runs([client.get_experiment_by_name("lawsweep").experiment_id],
                                   filter_string="tags.`lawsweep.kind` = 'sweep'")
    hist = client.get_metric_history(parent.info.run_id, "law_alpha")
    # Logged while the sweep ran (step = trials done), before the final refit.
    assert len(hist) >= 2 and all(1 < m.step <= 6 for m in hist[:-1])


def test_report_of_the_results_folder_is_attached_to_the_parent_run(sweep_dir):
    import re

    work, _ = sweep_dir
    (results,) = work.glob("lawsweep_results/tiny-*")
    r = subprocess.run([sys.executable, "-m", "orchestrator", "report", str(results)], capture_output=True,
                       text=True, timeout=300, cwd=work)
    assert r.returncode == 0, r.stderr
    html = (results / "report" / "report.html").read_text()
    div = re.search(r"<section id='divergence'>(.*?)</section>", html, re.S).group(1)
    assert div.count("<tr>") >= 3 and "300" in div  # header + both diverged runs
    def strict(c):
        raise AssertionError(f"{c} in report.json: not JSON")

    cov = json.loads((results / "report" / "report.json").read_text(), parse_constant=strict)["coverage_total"]
    blob = re.search(r"<script type='application/json' id='lawsweep-data'>(.*?)</script>", html, re.S).group(1)
    json.loads(blob.replace("<\\/", "</"), parse_constant=strict)  # what the browser parses
    assert cov["run"] == 6 and cov["grid"] == 6  # 2 scales x 3 LRs x 1 batch, all run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    (parent,) = client.search_runs([client.get_experiment_by_name("lawsweep").experiment_id],
                                   filter_string="tags.`lawsweep.kind` = 'sweep'")
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.json", "report/coverage.png"} <= arts
    assert sum(a.startswith("report/scale_") for a in arts) == 2  # one bowl figure per scale


def test_fit_reads_the_recorded_table(sweep_dir):
    work, _ = sweep_dir
    (table,) = work.glob("lawsweep_results/tiny-*/sweep.csv")
    r = subprocess.run([sys.executable, "-m", "orchestrator", "fit", str(table), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["scales"]) == 2 and out["lr_law"] is not None


def test_mlflow_ui_serves_the_sweep_and_all_its_trials(sweep_dir):
    """What a user sees after `mlflow ui` in the working directory, read through the server's REST API."""
    import os
    import socket
    import time
    import urllib.request

    work, _ = sweep_dir
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", "sqlite:///mlflow.db",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=lawsweep") as r:
            exp_id = json.load(r)["experiment"]["experiment_id"]
        req = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [exp_id], "max_results": 100}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            runs = json.load(r)["runs"]
        tags = [{t["key"]: t["value"] for t in run["data"].get("tags", [])} for run in runs]
        parent = [t for t in tags if t.get("lawsweep.kind") == "sweep"]
        assert len(parent) == 1 and sum(t.get("lawsweep.kind") == "trial" for t in tags) == 6
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.mark.parametrize("source", ["tune", "mlflow"])
def test_fit_reads_the_tune_folder_and_the_mlflow_experiment(sweep_dir, source):
    work, _ = sweep_dir
    if source == "tune":
        (folder,) = work.glob("lawsweep_results/tiny-*/tune")
        args = [str(folder)]
    else:
        args = ["mlflow:lawsweep", "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]
    r = subprocess.run([sys.executable, "-m", "orchestrator", "fit", *args, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (table,) = work.glob("lawsweep_results/tiny-*/sweep.csv")
    ref = json.loads(subprocess.run([sys.executable, "-m", "orchestrator", "fit", str(table), "--json"],
                                    capture_output=True, text=True, timeout=120).stdout)
    assert [s["lr"] for s in out["scales"]] == pytest.approx([s["lr"] for s in ref["scales"]])
    assert [s["loss"] for s in out["scales"]] == pytest.approx([s["loss"] for s in ref["scales"]], rel=1e-6)


def test_law_prior_with_asha_runs_through_tune(tmp_path):
    """policy = law_prior:tpe and scheduler = asha, selected by name in the config, on a real Ray."""
    toml = (RECIPES / "tiny.toml").read_text()
    toml = toml.replace('seeds = [0]', 'seeds = [0]\npolicy = "law_prior:tpe"\ntrials_per_scale = 3\n'
                        'scheduler = "asha"\nasha_grace_tokens = 1024\nasha_reduction = 2')
    toml = toml.replace("lr = [0.004, 0.016]", "lr = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032]")
    toml = toml.replace("batch_size = [8]", "batch_size = [4, 8]")
    run_cli_sweep(tmp_path, toml)
    (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 6 and (df.groupby("scale").size() == 3).all()
    assert not df.duplicated(["scale", "lr", "batch_size"]).any()
    assert set(df.status) <= {"ok", "stopped", "diverged"} and (df.status == "ok").any()
    # The law prior starts next to the published Step Law's prediction, not at the grid's corner.
    from laws.steplaw import PUBLISHED

    first = df.iloc[0]
    assert abs(math.log2(first.lr / PUBLISHED.lr(first.N, first.D))) <= 1.5


REFERENCE_GRID = RECIPES.parents[1] / "bench" / "data" / "reference_grid.csv"


def _replayed_reference(tmp_path, sweep_settings: str) -> tuple[str, pd.DataFrame]:
    """The reference recipe served from its recorded table with ``sweep_settings`` in place of its policy, run
    through the CLI on a real Ray: (its stdout, its sweep table)."""
    toml = (RECIPES / "reference.toml").read_text().replace(
        'policy = "grid"', f'{sweep_settings}\nreplay = "{REFERENCE_GRID}"')
    stdout = run_cli_sweep(tmp_path, toml)
    (table,) = tmp_path.glob("lawsweep_results/reference-*/sweep.csv")
    return stdout, pd.read_csv(table)


def test_replay_runner_goes_through_tune_and_mlflow(tmp_path):
    """The reference recipe served from its recorded table: same policy, Tune and MLflow path, no training."""
    stdout, got = _replayed_reference(tmp_path, 'policy = "law_prior"\ntrials_per_scale = 3')
    ref = pd.read_csv(REFERENCE_GRID)
    assert len(got) == 8 * 3
    merged = got.merge(ref, on=["N", "D", "lr", "batch_tokens"], suffixes=("", "_ref"))
    assert len(merged) == len(got)
    ok = merged[merged.status == "ok"]
    assert (ok.loss - ok.loss_ref).abs().max() < 1e-6
    assert "Step Law posterior fit on" in stdout
    # every searched scale says how sure the law prior is that its best run is its best grid point
    found = [line for line in stdout.splitlines() if line.startswith("law prior: ")]
    assert len(found) == 8 and all("searched with 3 of its 28 grid points; probability" in line for line in found)
    # searched from scratch, 3 runs a scale measure no bowl: each line says its probability is read through the
    # borrowed one, which is not calibrated there
    assert all("read through the Step Law grid's bowl (the sweep measured none of its own)" in line for line in found)


def test_a_sweep_refits_under_the_prior_its_config_names(tmp_path):
    """[sweep] prior = an earlier sweep's `fit --json`: the live refit, the law prior's search and the summary use
    it, and the summary says so."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"alpha": -0.3, "beta": 0.2, "gamma": 0.571, "a": 0.1}))
    # named relative to the sweep file, as a user would
    stdout, got = _replayed_reference(tmp_path, 'policy = "law_prior"\ntrials_per_scale = 3\nprior = "earlier.json"')
    assert len(got) == 8 * 3
    assert f"prior: given in {earlier}" in stdout
    assert "prior: published Step Law" not in stdout
    # the results folder's copy of the config names the prior by its absolute path, and the report fits under it
    (results,) = tmp_path.glob("lawsweep_results/reference-*")
    assert f'prior = "{earlier}"' in (results / "config.toml").read_text()
    r = subprocess.run([sys.executable, "-m", "orchestrator", "report", str(results), "--no-attach"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"prior: given in {earlier}" in (results / "report" / "report.html").read_text()
    assert json.loads((results / "report" / "report.json").read_text())["laws"]["prior"] == f"given in {earlier}"


def test_stop_when_found_ends_searched_scales_before_their_budget_through_tune(tmp_path):
    """sweep.stop_when_found on the replayed reference grid, as a ladder (widths 64 at 50k and 100k tokens mapped,
    width 96 at 100k searched): once the mapped scales give the sweep a bowl of its own, the searched scale whose best
    run is probably found ends before its budget, Tune is told the search is over, and the sweep says why. (A sweep
    searched from scratch ends nothing on the borrowed bowl: tests/search/test_bench.py.)"""
    toml = (RECIPES / "reference.toml").read_text()
    head, rest = toml.split("[[scales]]", 1)
    grid = rest[rest.index("[grid]"):]
    scales = "".join(f"[[scales]]\nd_model = {w}\ntokens = {d}\n\n" for w, d in ((64, 50_000), (64, 100_000),
                                                                                  (96, 100_000)))
    toml = head.replace('policy = "grid"', 'policy = "ladder"\ntrials_per_scale = 6\nstop_when_found = 0.8\n'
                        f'replay = "{REFERENCE_GRID}"') + scales + grid
    stdout = run_cli_sweep(tmp_path, toml)
    (table,) = tmp_path.glob("lawsweep_results/reference-*/sweep.csv")
    got = pd.read_csv(table)
    (ended,) = [line for line in stdout.splitlines() if line.startswith("law prior: ")]
    assert "ended before its budget of 6 trials by sweep.stop_when_found = 0.8" in ended, ended
    per_scale = got.groupby(["N", "D"]).size()
    assert per_scale[(223872, 100000)] < 6 and (per_scale.drop((223872, 100000)) == 28).all()
    # it ended on its own results, all in (a searched scale waits for its trial in flight before the next)
    assert float(re.search(r"\(probability ([0-9.]+) when it ended\)", ended)[1]) >= 0.8


def test_a_killed_trial_is_retried_from_its_checkpoint(tmp_path):
    """Kill the trial's worker process mid-run: Tune retries it and it resumes, not restarts."""
    import os
    import signal
    import time

    toml = (RECIPES / "tiny.toml").read_text()
    toml = toml.replace("lr = [0.004, 0.016]", "lr = [0.004]").replace(
        "[[scales]]\nd_model = 64\ntokens = 4096\n", "").replace("tokens = 4096", "tokens = 600000")
    toml = toml.replace("eval_windows = 8", "eval_windows = 8\neval_every = 200")
    (tmp_path / "sweep.toml").write_text(toml)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not killed:
        if list(tmp_path.glob("lawsweep_results/tiny-*/tune/*/checkpoint_00000[1-9]")):
            out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
            pids = [int(line.split()[0]) for line in out.splitlines() if "ray::ImplicitFunc" in line]
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed = bool(pids)
        time.sleep(0.2)
    stdout, _ = proc.communicate(timeout=600)
    assert killed, "no checkpoint appeared before the trial finished"
    (err,) = tmp_path.glob("lawsweep_results/tiny-*/tune/*/error.txt")
    assert "Failure # 1" in err.read_text()  # the kill landed; Tune retried the trial
    assert proc.returncode == 0, stdout[-3000:]
    (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 1 and df.status[0] == "ok"
    tokens = [t for t, _ in json.loads(df.curve[0])]
    assert tokens == sorted(tokens) and len(tokens) == len(set(tokens))  # resumed: no step seen twice
    assert tokens[-1] >= 600000 - 256
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lawsweep")
    runs = client.search_runs([exp.experiment_id], "tags.`lawsweep.kind` = 'trial'")
    assert len(runs) == 1  # the retry did not open a second MLflow run


def _predictor_sweep(tmp_path: Path, mode: str) -> str:
    """The tiny recipe with a third scale, an LR far above the others, one trial at a time and the divergence
    predictor set to ``mode``: the shipped model without its evidence bounds (98 steps, 50k tokens), since these
    tests check the wiring on runs of 64 steps and 4k tokens, where its calls are not to be trusted."""
    d = json.loads((Path(__file__).resolve().parents[2] / "laws" / "divergence_model.json").read_text())
    model = tmp_path / "divergence_model.json"
    model.write_text(json.dumps({**d, "min_steps": 0, "min_tokens": 0}))
    toml = (RECIPES / "tiny.toml").read_text()
    toml = toml.replace('seeds = [0]', f'seeds = [0]\nmax_concurrent = 1\ndivergence_predictor = {mode}\n'
                        f'divergence_model = "{model}"')
    toml = toml.replace("lr = [0.004, 0.016]", "lr = [0.004, 0.016, 0.25]")
    toml = toml.replace("batch_size = [8]", "batch_size = [2]")
    return toml.replace("[[scales]]\nd_model = 64",
                        "[[scales]]\nd_model = 48\ntokens = 4096\n\n[[scales]]\nd_model = 64")


def test_the_learned_divergence_predictor_stops_a_run_live_and_the_sweep_reports_the_compute_saved(tmp_path):
    """[sweep] divergence_predictor = true (with sweep.divergence_model, a model file of one's own): once two cells
    have finished (the law refits), a run far above the law's LR is stopped at its second evaluation with a
    finite, unspiked curve; the sweep prints the compute saved and logs it to the parent run."""
    out = run_cli_sweep(tmp_path, _predictor_sweep(tmp_path, "true"))
    assert "early stops:" in out, out[-3000:]
    (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
    df = pd.read_csv(table)
    assert (df[df.lr == 0.004].status == "ok").all() and len(df) == 9
    curves = [[v for _, v in json.loads(c)] for c in df[df.status == "diverged"].curve]
    # A run the predictor stopped: cut short (8 evaluations planned), every loss finite and none above the fixed
    # rule's 1.5x its best so far, so no fixed rule ended it.
    assert any(0 < len(v) < 8 and all(math.isfinite(x) for x in v) and v[-1] <= 1.5 * min(v) for v in curves), curves
    # Each verdict is in its trial's row: every run called diverging was stopped; the first cells (no law yet)
    # were not judged.
    called = df[df.divergence_p >= df.divergence_threshold]
    assert len(called) >= 1 and (called.status == "diverged").all() and (called.divergence_at >= 0.2).all()
    assert df.divergence_p.isna().sum() >= 2


def test_in_shadow_mode_the_predictor_judges_live_stops_nothing_and_the_sweep_scores_its_calls(tmp_path):
    """[sweep] divergence_predictor = "shadow": the same sweep as above runs every trial the predictor judges to
    its end; each verdict is in the row, and the sweep ends by scoring the calls against how the runs ended."""
    out = run_cli_sweep(tmp_path, _predictor_sweep(tmp_path, '"shadow"'))
    (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
    df = pd.read_csv(table)
    judged = df[df.divergence_p.notna()]
    called = judged[judged.divergence_p >= judged.divergence_threshold]
    assert len(judged) >= 2 and len(called) >= 1, df[["lr", "status", "divergence_p"]]
    # a called run ran on past its judgment (the fixed blow-up rules may still end it later)
    assert any(len(json.loads(c)) >= 4 for c in called.curve)
    # every evaluation's gradient norm and update sizes are kept beside its loss: the table can train and replay
    # the predictor with every feature it read live
    for curve, diag in zip(df.curve, df.diagnostics):
        rows = json.loads(diag)
        assert [r[0] for r in rows] == [p[0] for p in json.loads(curve)]
        assert all(r[1] > 0 and r[2] is not None for r in rows[:-1])
    assert f"divergence predictor (shadow): judged {len(judged)} trial(s), would have stopped {len(called)}" in out
    assert "against how the runs ended:" in out, out[-2000:]


@pytest.mark.slow
def test_a_schedule_axis_runs_every_schedule_at_every_point_and_the_fit_takes_the_best(tmp_path):
    """[grid] schedules: each (scale, LR, batch) runs once per schedule, each row records its own schedule."""
    toml = (RECIPES / "tiny.toml").read_text().replace(
        "batch_size = [8]", 'batch_size = [8]\nschedules = [{schedule = "cosine"}, '
                            '{schedule = "wsd", decay_frac = 0.3, decay_shape = "sqrt"}]')
    stdout = run_cli_sweep(tmp_path, toml)
    (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 8 and (df.status == "ok").all()
    assert set(df.scale) == {"d32-L1-D4096/cosine", "d32-L1-D4096/wsd-decay0.3-sqrt",
                             "d64-L1-D4096/cosine", "d64-L1-D4096/wsd-decay0.3-sqrt"}
    for _, r in df.iterrows():
        spec = json.loads(r.schedule_spec)
        assert r.schedule == ("wsd" if "wsd" in r.scale else "cosine")
        assert (spec["decay_frac"], spec["decay_shape"]) == ((0.3, "sqrt") if r.schedule == "wsd" else
                                                             (0.2, "linear"))
    # the two schedules really trained differently, and the summary fitted each point's best schedule
    pair = df.pivot_table(index=["N", "lr"], columns="schedule", values="loss")
    assert (pair.cosine != pair.wsd).all()
    assert "Step Law posterior fit on 2 scales" in stdout


@pytest.mark.slow
def test_a_branched_sweep_forks_cooldowns_from_stable_runs_and_survives_a_killed_stable_run(tmp_path):
    """[sweep] branch_budgets: one stable run per point, a cooldown trial per budget issued only once its
    checkpoint exists; a stable run killed after its first branch point is retried from its checkpoint and its
    branches are neither lost nor run twice; branches are MLflow child runs of their stable run."""
    import os

    toml = (RECIPES / "tiny.toml").read_text()
    toml = toml.replace('seeds = [0]', 'seeds = [0]\nbranch_budgets = [0.25, 0.5, 1.0]')
    toml = toml.replace('schedule = "cosine"', 'schedule = "wsd"\neval_every = 10')
    toml = toml.replace("[[scales]]\nd_model = 64\ntokens = 4096\n", "").replace("tokens = 4096", "tokens = 16384")
    (tmp_path / "sweep.toml").write_text(toml)
    env = dict(os.environ, LAWSWEEP_FAILPOINTS=json.dumps({"0.016": "die_after_checkpoint"}))
    r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (results,) = tmp_path.glob("lawsweep_results/tiny-*")
    assert list(results.glob("failpoints/*0.016")), "the failpoint never fired"
    df = pd.read_csv(results / "sweep.csv").fillna({"parent_trial": ""})
    stable, branches = df[df.parent_trial == ""], df[df.parent_trial != ""]
    assert len(stable) == 2 and (stable.status == "stable").all() and stable.loss.isna().all()
    assert len(branches) == 6 and (branches.status == "ok").all()
    got = sorted((p, d, s) for p, d, s in zip(branches.parent_trial, branches.D, branches.branch_step))
    assert got == sorted((t, d, s) for t in stable.trial_id for d, s in ((4096, 13), (8192, 26), (16384, 51)))
    # compute: each branch its cooldown only, the stable phase once
    assert (branches.tokens == branches.D - branches.branch_step * 256).all()
    assert df.flops.sum() < (6 * branches.N * branches.D).sum() * 0.7
    # `lawsweep plan` priced exactly this: the stable phase once, each cooldown, against independent runs
    plan = subprocess.run([sys.executable, "-m", "orchestrator", "plan", "sweep.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120).stdout
    total = next(line for line in plan.splitlines() if line.strip().startswith("total:") and "branched" in line)
    branched, independent = (float(w) for w in total.split() if w[0].isdigit() and "e+" in w)
    assert branched == pytest.approx(df.flops.sum(), rel=1e-3)
    assert independent == pytest.approx((6 * branches.N * branches.D).sum(), rel=1e-3)
    # no branch started before its stable run reported its checkpoint
    for _, b in branches.iterrows():
        (parent_result,) = results.glob(f"tune*/trial_{b.parent_trial}/result.json")
        ready = [json.loads(line) for line in parent_result.read_text().splitlines()]
        ready = [x["timestamp"] for x in ready if x.get("branch_ready") == b.D]
        (own,) = results.glob(f"tune*/trial_{b.trial_id}/result.json")
        first = json.loads(own.read_text().splitlines()[0])["timestamp"]
        assert ready and min(ready) <= first
    assert "Failure # 1" in "".join(p.read_text() for p in results.glob("tune*/*/error.txt"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lawsweep")
    runs = {x.data.tags["lawsweep.trial_id"]: x for x in
            client.search_runs([exp.experiment_id], "tags.`lawsweep.kind` = 'trial'")}
    assert len(runs) == 8
    for _, b in branches.iterrows():
        assert runs[b.trial_id].data.tags["mlflow.parentRunId"] == runs[b.parent_trial].info.run_id
    for sid in stable.trial_id:  # a stable run ended as planned: finished, tagged stable
        assert runs[sid].info.status == "FINISHED" and runs[sid].data.tags["lawsweep.status"] == "stable"
    fit = subprocess.run([sys.executable, "-m", "orchestrator", "fit", str(results / "sweep.csv"), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert fit.returncode == 0 and len(json.loads(fit.stdout)["scales"]) == 3


@pytest.mark.slow
def test_a_resumed_branched_sweep_keeps_its_finished_branches_and_runs_each_budget_once(tmp_path):
    """Kill the driver of a branched sweep mid-way; `lawsweep resume` re-runs unfinished points' stable runs,
    issues only the branches not yet recorded, and ends with every (point, budget) once."""
    import os
    import signal
    import time

    toml = (RECIPES / "tiny.toml").read_text()
    toml = toml.replace('seeds = [0]', 'seeds = [0]\nbranch_budgets = [0.25, 0.5, 1.0]\nmax_concurrent = 1')
    toml = toml.replace('schedule = "cosine"', 'schedule = "wsd"')
    toml = toml.replace("[[scales]]\nd_model = 64\ntokens = 4096\n", "").replace("tokens = 4096", "tokens = 16384")
    (tmp_path / "sweep.toml").write_text(toml)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    before, deadline = None, time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        tables = list(tmp_path.glob("lawsweep_results/tiny-*/sweep.csv"))
        if tables and len(pd.read_csv(tables[0])) >= 3:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            before = pd.read_csv(tables[0]).fillna({"parent_trial": ""})
            break
        time.sleep(0.1)
    assert before is not None and len(before) < 8, "the sweep ended before the driver could be killed"
    (results,) = tmp_path.glob("lawsweep_results/tiny-*")
    r = subprocess.run([sys.executable, "-m", "orchestrator", "resume", str(results)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    after = pd.read_csv(results / "sweep.csv").fillna({"parent_trial": ""})
    branches = after[after.parent_trial != ""]
    point = branches.merge(after[after.parent_trial == ""][["trial_id", "lr"]].rename(
        columns={"trial_id": "parent_trial", "lr": "parent_lr"}), on="parent_trial", how="left")
    assert (point.parent_lr == point.lr).all()  # every branch's stable run is recorded
    assert sorted(zip(branches.lr, branches.D)) == sorted((lr, d) for lr in (0.004, 0.016)
                                                          for d in (4096, 8192, 16384))
    assert (branches.status == "ok").all()
    kept = before[before.parent_trial != ""].set_index("trial_id").loss
    assert after.set_index("trial_id").loss.reindex(kept.index).equals(kept)  # finished branches kept as they were
