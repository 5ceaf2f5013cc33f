"""Faults a sweep survives, each injected for real: a killed driver, failing/hanging/diverging trials, an
MLflow server that goes away. The reliability table in docs/reliability.md points here."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.servers import MlflowServer

pytestmark = pytest.mark.ray

SWEEP = """
[sweep]
name = "faults"
{sweep}

[model]
n_layer = 1
context = 32

[train]
eval_windows = 8
eval_every = 4

[[scales]]
d_model = 32
tokens = 16384

[[scales]]
d_model = 48
tokens = 16384

[grid]
lr = {lrs}
batch_size = [8]

[tracking]
{tracking}
"""


def _write(work, sweep="", lrs="[0.004, 0.008, 0.016]", tracking=""):
    (work / "sweep.toml").write_text(SWEEP.format(sweep=sweep, lrs=lrs, tracking=tracking))


def _cli(work, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=work, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _trial_runs(uri, experiment="lawsweep"):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return client, [r for r in runs if r.data.tags.get("lawsweep.kind") == "trial"], \
        [r for r in runs if r.data.tags.get("lawsweep.kind") == "sweep"]


@pytest.mark.slow  # 1.5-2.5 min on 2 cores: a driver killed mid-sweep, then resumed
def test_a_killed_driver_resumes_without_losing_or_rerunning_a_trial(tmp_path):
    _write(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    before = None
    while time.monotonic() < deadline and proc.poll() is None:
        tables = list(tmp_path.glob("lawsweep_results/faults-*/sweep.csv"))
        if tables and len(pd.read_csv(tables[0])) >= 2:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray cluster it started, mid-sweep
            proc.wait()
            before = pd.read_csv(tables[0])
            break
        time.sleep(0.2)
    assert before is not None and 2 <= len(before) < 6, "the sweep ended before the driver could be killed"
    (results,) = tmp_path.glob("lawsweep_results/faults-*")
    # ... and the table's last row is cut mid-row (a disk that filled up, a copy cut short): it must not be
    # trusted, kept or written back; its trial runs again.
    table = results / "sweep.csv"
    lines = table.read_text().splitlines()
    cut = lines[-1][: len(lines[-1]) // 2]
    table.write_text("\n".join(lines[:-1] + [cut]))
    cut_id = before.trial_id.iloc[-1]
    before = before.iloc[:-1]
    r = _cli(tmp_path, "resume", str(results))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (aside,) = results.glob("sweep.damaged-*.csv")
    assert aside.read_text().splitlines() == [lines[0], cut] and str(aside) in r.stderr
    assert f"{len(before)} of 6 trials recorded" in r.stdout
    after = pd.read_csv(results / "sweep.csv")
    assert len(after) == 6 and (after.status == "ok").all() and cut_id not in set(after.trial_id)
    assert not after.duplicated(["scale", "lr", "batch_size", "seed"]).any()  # nothing ran twice
    kept = after[after.trial_id.isin(before.trial_id)].set_index("trial_id").sort_index()
    assert kept.loss.equals(before.set_index("trial_id").sort_index().loss)  # nothing finished was lost or redone
    client, trials, parents = _trial_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and "law_a" in parents[0].data.metrics
    assert sorted(t.data.tags["lawsweep.trial_id"] for t in trials) == sorted(after.trial_id)  # one run per trial
    for t in trials:
        assert t.info.status == "FINISHED" and t.data.tags["lawsweep.status"] == "ok"
        steps = [m.step for m in client.get_metric_history(t.info.run_id, "val_loss")]
        assert steps == sorted(set(steps)) and steps[-1] == 16384  # full curve, no point twice


@pytest.mark.slow  # ~60 s on 2 cores (~100 s on a busy one): waits out a hanging trial's 25 s timeout and a retry
def test_failing_hanging_and_diverging_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    _write(tmp_path, sweep="trial_timeout_s = 25\nmax_retries = 1", lrs="[0.002, 0.004, 0.008, 0.016, 300.0]")
    env = dict(os.environ, LAWSWEEP_FAILPOINTS=json.dumps({"0.002": "raise", "0.008": "hang"}))
    r = _cli(tmp_path, "run", "sweep.toml", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (table,) = tmp_path.glob("lawsweep_results/faults-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 10
    status = {lr: set(g.status) for lr, g in df.groupby("lr")}
    assert status == {0.002: {"failed"}, 0.004: {"ok"}, 0.008: {"timeout"}, 0.016: {"ok"}, 300.0: {"diverged"}}
    assert df[df.status != "ok"].loss.isna().all()
    assert "2/1/2" in r.stdout  # per scale: ok / diverged / failed-or-timed-out, and only the ok ones fitted
    fit = json.loads(_cli(tmp_path, "fit", str(table), "--json").stdout)
    assert [s["n_runs"] for s in fit["scales"]] == [2, 2]  # failed, timed-out and diverged runs are not fitted
    _, trials, _ = _trial_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert sorted(t.data.tags["lawsweep.status"] for t in trials) == sorted(df.status)


@pytest.mark.slow  # ~40 s on 2 cores: a real MLflow server, stopped mid-sweep and restarted
def test_an_unreachable_mlflow_server_loses_no_record(tmp_path):
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    server = MlflowServer(backend, tmp_path / "artifacts").start()
    _write(tmp_path, tracking=f'uri = "{server.url}"\nexperiment = "outage"')
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(tmp_path.glob("lawsweep_results/faults-*/tune/trial_*")):
            time.sleep(0.2)
        server.stop()  # the tracking server goes away while trials run and finish
        time.sleep(15)
        server.start()  # ... and comes back on the same address
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        assert proc.returncode == 0, out[-3000:] + err[-3000:]
        assert "unreachable" in err and "reachable again" in err
        (table,) = tmp_path.glob("lawsweep_results/faults-*/sweep.csv")
        df = pd.read_csv(table)
        assert not list(table.parent.glob("mlflow_spool.jsonl"))  # everything delivered
        client, trials, parents = _trial_runs(server.url, "outage")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert sorted(t.data.tags["lawsweep.trial_id"] for t in trials) == sorted(df.trial_id)
        for t in trials:
            row = df[df.trial_id == t.data.tags["lawsweep.trial_id"]].iloc[0]
            hist = client.get_metric_history(t.info.run_id, "val_loss")
            assert [m.step for m in hist] == [p[0] for p in json.loads(row.curve)]  # every point arrived
            assert t.data.metrics["final_val_loss"] == pytest.approx(row.loss)
        arts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
        assert {"sweep.csv", "summary.txt"} <= arts
    finally:
        server.stop()
