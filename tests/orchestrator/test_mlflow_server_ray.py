"""MLflow server mode: a real PostgreSQL backend and artifacts on shared storage, trials logged over HTTP."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.servers import mlflow_server, postgres

pytestmark = pytest.mark.ray


def test_a_sweep_logs_to_an_mlflow_server_backed_by_postgres(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    with postgres() as db_uri, mlflow_server(db_uri, shared / "artifacts") as server:
        toml = (Path(__file__).resolve().parents[2] / "orchestrator" / "recipes" / "tiny.toml").read_text()
        toml += f'\n[tracking]\nuri = "{server.url}"\nexperiment = "pg"\n'
        (tmp_path / "sweep.toml").write_text(toml)
        r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        (table,) = tmp_path.glob("lawsweep_results/tiny-*/sweep.csv")
        df = pd.read_csv(table)
        client = MlflowClient(tracking_uri=server.url)
        exp = client.get_experiment_by_name("pg")
        runs = client.search_runs([exp.experiment_id], max_results=100)
        trials = [x for x in runs if x.data.tags.get("lawsweep.kind") == "trial"]
        (parent,) = [x for x in runs if x.data.tags.get("lawsweep.kind") == "sweep"]
        assert sorted(t.data.tags["lawsweep.trial_id"] for t in trials) == sorted(df.trial_id)
        for t in trials:
            assert len(client.get_metric_history(t.info.run_id, "val_loss")) >= 2
        # The rows live in PostgreSQL ...
        port = db_uri.rsplit(":", 1)[1].split("/")[0]
        count = subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", "lawsweep", "-d", "mlflow", "-tAc",
                                "SELECT count(*) FROM runs"], capture_output=True, text=True, check=True).stdout
        assert int(count) == len(df) + 1
        # ... and the artifacts on the shared storage the server was given.
        assert list(shared.glob(f"artifacts/**/{parent.info.run_id}/artifacts/sweep.csv"))
