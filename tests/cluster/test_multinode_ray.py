"""Several Ray nodes on this machine (ray.cluster_utils.Cluster, each a real raylet on loopback): trials
spread over the nodes that advertise the resource they ask for, and survive losing a node."""

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.ray

SWEEP = """
[sweep]
name = "multinode"
cpus_per_trial = 1
resources_per_trial = {{proxy_slot = 1}}
max_retries = 2

[model]
n_layer = 1
context = 32

[train]
eval_windows = 8
eval_every = {eval_every}

[[scales]]
d_model = 32
tokens = {tokens}

[grid]
lr = [0.002, 0.004, 0.008, 0.016]
batch_size = [8]
"""


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, connect=False,
                head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1, resources={"proxy_slot": 1}, node_ip_address="127.0.0.1") for _ in range(2)]
    # A node with CPUs but without the resource the trials ask for: it must stay idle.
    c.add_node(num_cpus=1, resources={"other": 1}, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    try:
        yield c, nodes
    finally:
        c.shutdown()


def _results(work):
    out = {}
    for p in work.glob("lawsweep_results/multinode-*/tune/trial_*/result.json"):
        rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        out[p.parent.name] = rows
    return out


def test_trials_spread_over_the_nodes_that_have_their_resource(tmp_path, cluster):
    c, nodes = cluster
    (tmp_path / "sweep.toml").write_text(SWEEP.format(eval_every=100, tokens=250_000))
    r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml", "--address", c.address],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    used = {row["node_id"] for rows in _results(tmp_path).values() for row in rows}
    assert used == {n.node_id for n in nodes}  # both proxy_slot nodes ran trials; the head and 'other' none
    (table,) = tmp_path.glob("lawsweep_results/multinode-*/sweep.csv")
    assert (pd.read_csv(table).status == "ok").all()


@pytest.mark.slow  # ~90 s on 2 cores: waits out Ray's node-death detection
def test_a_killed_node_s_trials_are_retried_elsewhere_and_the_sweep_finishes(tmp_path, cluster):
    c, nodes = cluster
    (tmp_path / "sweep.toml").write_text(SWEEP.format(eval_every=100, tokens=2_000_000))
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "sweep.toml", "--address", c.address],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = nodes[1]
    deadline = time.monotonic() + 300
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        on_victim = [rows for rows in _results(tmp_path).values() if rows and rows[-1]["node_id"] == victim.node_id
                     and not rows[-1].get("done")]
        if on_victim:
            c.remove_node(victim, allow_graceful=False)  # the node dies with a trial half-way through
            killed = True
            break
        time.sleep(0.2)
    out, err = proc.communicate(timeout=900)
    assert killed, "no trial reached the victim node"
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    (table,) = tmp_path.glob("lawsweep_results/multinode-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 4 and (df.status == "ok").all()  # the interrupted trial was retried and finished
    errors = [e.parent.name for e in tmp_path.glob("lawsweep_results/multinode-*/tune/trial_*/error.txt")]
    assert errors, "the killed node's trial should have failed once before its retry"
    results = _results(tmp_path)
    for name in errors:
        rows = results[name]
        assert rows[-1]["done"] == 1.0 and rows[-1]["node_id"] == nodes[0].node_id  # finished on the survivor
        tokens = [row["tokens"] for row in rows]
        assert tokens[-1] >= 2_000_000 - 256
