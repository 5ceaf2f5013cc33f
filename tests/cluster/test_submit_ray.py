"""`lawsweep submit`: a sweep sent to a running cluster's job server runs there as a Ray job."""

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.servers import free_port

pytestmark = pytest.mark.ray

CONFIGS = Path(__file__).resolve().parents[2] / "cluster" / "configs"
RECIPES = Path(__file__).resolve().parents[2] / "orchestrator" / "recipes"


def _status(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.slow  # a token-authenticated head with its job server and dashboard: ~45 s on 2 cores
def test_a_submitted_sweep_runs_as_a_ray_job_on_a_token_authenticated_cluster(tmp_path):
    """The head starts as the shipped configs start it (RAY_AUTH_MODE=token, the token from a file): strangers
    are refused, `lawsweep submit` without a token exits 2 before contact, with --token-file the sweep runs."""
    token_file = tmp_path / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    head_env = dict(env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    port, dash = free_port(), free_port()
    subprocess.run(["ray", "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                    "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                    "--disable-usage-stats"], env=head_env, check=True, capture_output=True, timeout=180)
    try:
        address = f"http://127.0.0.1:{dash}"
        deadline = time.monotonic() + 90
        while _status(f"{address}/api/jobs/", token_file.read_text()) != 200 and time.monotonic() < deadline:
            time.sleep(1)
        assert _status(f"{address}/api/jobs/") == 401  # no token: refused
        assert _status(f"{address}/api/jobs/", "0" * 64) in (401, 403)  # a wrong one too
        (tmp_path / "shared").mkdir()
        toml = (RECIPES / "tiny.toml").read_text().replace(
            'name = "tiny"', f'name = "tiny"\nresults_dir = "{tmp_path / "shared" / "results"}"')
        toml += f'\n[tracking]\nuri = "sqlite:///{tmp_path / "shared" / "mlflow.db"}"\n'
        (tmp_path / "sweep.toml").write_text(toml)
        cmd = [sys.executable, "-m", "orchestrator", "submit", "sweep.toml", "--address", address]
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env=dict(env, HOME=str(tmp_path)))
        assert r.returncode == 2 and "no Ray auth token" in r.stderr, r.stderr
        r = subprocess.run([*cmd, "--token-file", str(token_file), "--wait"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "as job raysubmit_" in r.stdout and "SUCCEEDED" in r.stdout
        assert "Per-scale optima" in r.stdout  # the job's own log, streamed back
        (table,) = (tmp_path / "shared" / "results").glob("tiny-*/sweep.csv")
        assert len(pd.read_csv(table)) == 4
    finally:
        subprocess.run(["ray", "stop", "--force"], env=head_env, capture_output=True, timeout=120)


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda t: t, "tracking.uri='sqlite:///mlflow.db' is relative"),
        (lambda t: t + '\n[tracking]\nuri = "http://127.0.0.1:1"\n',
         "sweep.results_dir='lawsweep_results' is relative"),
        (lambda t: t.replace("lr = [0.004, 0.016]", "lr = []"), "grid.lr is empty"),
        (lambda t: t.replace("[sweep]", '[sweep]\nprior = "earlier.json"\nresults_dir = "/shared/r"') + (
            '\n[tracking]\nuri = "http://127.0.0.1:1"\n'), "sweep.prior='earlier.json' is relative"),
    ],
)
def test_submit_checks_the_config_before_contacting_a_cluster(tmp_path, edit, msg):
    (tmp_path / "earlier.json").write_text('{"alpha": -0.5, "beta": 0.3, "gamma": 0.5}')
    (tmp_path / "sweep.toml").write_text(edit((RECIPES / "tiny.toml").read_text()))
    r = subprocess.run([sys.executable, "-m", "orchestrator", "submit", "sweep.toml", "--address", "http://127.0.0.1:9"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and msg in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["ray-up-onprem.yaml", "ray-up-aws.yaml"])
def test_ray_up_configs_pass_ray_s_own_schema(name):
    import copy

    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((CONFIGS / name).read_text())
    validate_config(prepare_config(copy.deepcopy(raw)))
    head_cmd = " ".join(raw["head_start_ray_commands"])
    assert "--num-cpus=0" in head_cmd and "--num-gpus=0" in head_cmd  # the driver's node runs no trials
    text = (CONFIGS / name).read_text()
    assert "/shared" in text and "proxy_slot" in text
    # Locked: token authentication on every node, the dashboard and MLflow on loopback, secrets only from files.
    starts = [c for c in raw["head_start_ray_commands"] + raw["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all(c.lstrip().startswith("RAY_AUTH_MODE=token ray start") for c in starts)
    assert "--dashboard-host=127.0.0.1" in head_cmd and "0.0.0.0" not in text
    assert raw["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "mlflow server --app-name basic-auth --host 127.0.0.1" in head_cmd
    assert not re.search(r"(RAY_AUTH_TOKEN|PASSWORD|SECRET_KEY)=[\"']?[A-Za-z0-9]", text)  # no literal secret
    if raw["provider"]["type"] == "aws":
        head = raw["available_node_types"][raw["head_node_type"]]["node_config"]
        assert "InstanceMarketOptions" not in head  # the head is on-demand, never spot
        markets = {n: t["node_config"].get("InstanceMarketOptions", {}).get("MarketType")
                   for n, t in raw["available_node_types"].items()}
        assert "spot" in markets.values()


def test_kuberay_rayjob_keeps_the_driver_off_spot_and_shares_storage():
    docs = list(yaml.safe_load_all((CONFIGS / "kuberay-rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["apiVersion"] == "ray.io/v1" and job["spec"]["entrypoint"].startswith("lawsweep run ")
    spec = job["spec"]["rayClusterSpec"]
    head = spec["headGroupSpec"]["template"]["spec"]
    assert "tolerations" not in head and head["nodeSelector"]["lawsweep.io/capacity"] == "on-demand"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (gpu,) = spec["workerGroupSpecs"]
    wspec = gpu["template"]["spec"]
    assert wspec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    claims = {v["persistentVolumeClaim"]["claimName"] for s in (head, wspec) for v in s["volumes"]
              if "persistentVolumeClaim" in v}
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claims == {pvc["metadata"]["name"]} and pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kuberay_rayjob_is_locked():
    docs = list(yaml.safe_load_all((CONFIGS / "kuberay-rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token"}  # KubeRay makes the token Secret
    mlflow = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow")
    (c,) = mlflow["spec"]["template"]["spec"]["containers"]
    assert c["command"][:4] == ["mlflow", "server", "--app-name", "basic-auth"]
    env = {e["name"]: e for e in c["env"]}
    for k in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "value" not in env[k] and env[k]["valueFrom"]["secretKeyRef"]["name"] == "lawsweep-mlflow-auth"
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "mlflow")
    assert svc["spec"]["type"] == "ClusterIP"  # not exposed outside the cluster
