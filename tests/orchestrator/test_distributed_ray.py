"""Multi-worker trials: DeepSpeed ZeRO-2 on 2 gloo workers, a Ray Train TorchTrainer inside each Tune trial."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from trainers import DataConfig, ModelConfig, TrainConfig, load_corpus, train

pytestmark = pytest.mark.ray

SWEEP = """
[sweep]
name = "zero2"
workers_per_trial = 2
cpus_per_trial = 1      # 0.5 CPU per worker: both trials' worker groups fit the 2-CPU machine at once

[model]
n_layer = 1
context = 32

[train]
engine = "deepspeed"
zero_stage = 2
micro_batch_size = 2    # 8 sequences = 2 workers x 2 micro-batches x 2 accumulation steps
eval_windows = 8
final_eval_windows = 32

[[scales]]
d_model = 32
tokens = 4096

[grid]
lr = [0.004, 0.016]
batch_size = [8]

[tracking]
experiment = "zero2"
"""


@pytest.fixture(scope="module")
def zero2(tmp_path_factory):
    work = tmp_path_factory.mktemp("zero2")
    (work / "sweep.toml").write_text(SWEEP)
    r = subprocess.run([sys.executable, "-m", "orchestrator", "run", "sweep.toml"], cwd=work,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return work


def test_zero2_trials_on_two_gloo_workers_match_the_single_process_run(zero2):
    (table,) = zero2.glob("lawsweep_results/zero2-*/sweep.csv")
    df = pd.read_csv(table)
    assert len(df) == 2 and (df.status == "ok").all()
    corpus = load_corpus(DataConfig())
    for row in df.itertuples():
        # The same run on one process with the plain loop: same data, same updates, so the same loss.
        ref = train(ModelConfig(d_model=32, n_layer=1, context=32),
                    TrainConfig(lr=row.lr, batch_size=8, tokens=4096, eval_windows=8, final_eval_windows=32),
                    corpus)
        assert row.loss == pytest.approx(ref.val_loss, abs=5e-4)
        curve = json.loads(row.curve)
        assert len(curve) == len(ref.curve) and curve[-1][0] == 4096


def test_workers_report_through_tune_on_their_own_rendezvous_ports(zero2):
    results = [[json.loads(line) for line in p.read_text().splitlines()]
               for p in zero2.glob("lawsweep_results/zero2-*/tune/*/result.json")]
    assert len(results) == 2
    ports = set()
    for rows in results:
        assert rows[-1]["done"] == 1.0 and all(r["workers"] == 2.0 for r in rows)
        assert {"grad_norm", "eff_lr", "weight_norm", "tokens_per_s"} <= rows[0].keys()
        ports |= {r["master_port"] for r in rows}
    assert len(ports) == 2  # one rendezvous port per trial, never shared


def test_multi_worker_trials_are_recorded_in_mlflow(zero2):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{zero2 / 'mlflow.db'}")
    exp = client.get_experiment_by_name("zero2")
    runs = client.search_runs([exp.experiment_id], max_results=10)
    children = [r for r in runs if r.data.tags.get("lawsweep.kind") == "trial"]
    assert len(children) == 2
    for c in children:
        hist = client.get_metric_history(c.info.run_id, "val_loss")
        assert len(hist) >= 4 and c.data.tags["lawsweep.status"] == "ok"
