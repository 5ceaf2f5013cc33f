"""MLflow server mode: a real PostgreSQL backend, artifacts on shared storage, MLflow's basic-auth app with the
cluster recipe's settings (cluster/configs/mlflow-basic-auth.ini); trials logged over HTTP with credentials."""

import base64
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.servers import mlflow_server, postgres

# A PostgreSQL and an MLflow server started for one sweep: ~45 s on 2 cores, so in the slow tier (.ci/run runs it).
pytestmark = [pytest.mark.ray, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _auth_env(tmp_path: Path) -> tuple[dict[str, str], str]:
    """The recipe's basic-auth settings with a local user store, and an admin password from a "secret" file."""
    ini = (ROOT / "cluster" / "configs" / "mlflow-basic-auth.ini").read_text()
    ini = ini.replace("sqlite:////shared/mlflow/basic_auth.db", f"sqlite:///{tmp_path / 'basic_auth.db'}")
    (tmp_path / "basic_auth.ini").write_text(ini)
    secret = tmp_path / "admin_password"
    secret.write_text(secrets.token_urlsafe(16))
    secret.chmod(0o600)
    return {"MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
            "MLFLOW_AUTH_ADMIN_PASSWORD": secret.read_text(),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32)}, secret.read_text()


def _status(url: str, user: str | None = None, password: str | None = None) -> int:
    req = urllib.request.Request(url)
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_sweep_logs_to_an_mlflow_server_backed_by_postgres(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    auth, password = _auth_env(tmp_path)
    with postgres() as db_uri, mlflow_server(db_uri, shared / "artifacts", auth=auth) as server:
        api = f"{server.url}/api/2.0/mlflow/experiments/search?max_results=1"
        assert _status(api) == 401  # no credentials: refused
        assert _status(api, "admin", "wrong") == 401
        assert _status(api, "admin", password) == 200
        toml = (ROOT / "orchestrator" / "recipes" / "tiny.toml").read_text()
        toml += f'\n[tracking]\nuri = "{server.url}"\nexperiment = "pg"\n'
        (tmp_path / "sweep.toml").write_text(toml)
        r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "needs credentials" in r.stderr, r.stderr  # refused before any work
        assert not (tmp_path / "lawsweep_results").exists()
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600, env=dict(os.environ))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
        df = pd.read_csv(table)
        client = MlflowClient(tracking_uri=server.url)
        exp = client.get_experiment_by_name("pg")
        runs = client.search_runs([exp.experiment_id], max_results=100)
        trials = [x for x in runs if x.data.tags.get("lawsweep.kind") == "trial"]
        (parent,) = [x for x in runs if x.data.tags.get("lawsweep.kind") == "sweep"]
        assert sorted(t.data.tags["lawsweep.trial_id"] for t in trials) == sorted(df.trial_id)
        status = dict(zip(df.trial_id, df.status))
        for t in trials:  # every evaluation logged; a run the divergence predictor stopped has fewer
            n = len(client.get_metric_history(t.info.run_id, "val_loss"))
            assert n >= (2 if status[t.data.tags["lawsweep.trial_id"]] == "ok" else 1), (n, status)
        # The rows live in PostgreSQL ...
        port = db_uri.rsplit(":", 1)[1].split("/")[0]
        count = subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "lawsweep", "-d", "mlflow", "-tAc",
                                "SELECT count(*) FROM runs"], capture_output=True, text=True, check=True).stdout
        assert int(count) == len(df) + 1
        # ... and the artifacts on the shared storage the server was given.
        assert list(shared.glob(f"artifacts/**/{parent.info.run_id}/artifacts/sweep.csv"))
