"""What runs inside a Ray Tune trial: rebuild the configs, train, report to Tune."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.spec import TrialSpec

__all__ = ["branch_folder", "replay_trial", "run_trial"]


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable: one proxy run from a trial config (a TrialSpec's dict).

    Metrics go to Tune with ``ray.tune.report`` (``ray.train.report`` fails a Tune function trial).
    A diverged run is a normal result with ``diverged = 1``; only a crash fails the trial.
    """
    from ray import tune

    spec = TrialSpec.from_dict(config)
    marker = _timeout_marker(spec, tune.get_context().get_trial_id())
    if marker is not None and marker.exists():
        # This trial already ran past its time limit; a retry would only hang again.
        raise TimeoutError(f"trial ran past sweep.trial_timeout_s={spec.timeout_s:g} s")
    with _Watchdog(spec.timeout_s, marker):
        _failpoint(spec)
        if spec.replay:
            replay_trial(spec, tune.report)
        elif spec.workers is not None:
            run_multi_worker_trial(spec)
        else:
            _run_single(spec)


def _failpoint(spec: TrialSpec) -> None:
    """Fault injection for the reliability tests (like etcd's failpoints): LAWSWEEP_FAILPOINTS is a JSON map
    from a trial's LR (as written in the grid) to 'raise' or 'hang'. Unset, it does nothing."""
    import json
    import os
    import time

    points = os.environ.get("LAWSWEEP_FAILPOINTS")
    if not points:
        return
    action = json.loads(points).get(repr(float(spec.train.lr)))
    if action == "raise":
        raise RuntimeError(f"failpoint: trial with lr={spec.train.lr} raises")
    if action == "hang":
        while True:
            time.sleep(3600)


def _timeout_marker(spec: TrialSpec, trial_id: str) -> Any:
    from pathlib import Path

    if not spec.timeout_s or not spec.results_dir:
        return None
    return Path(spec.results_dir) / "timeouts" / trial_id


class _Watchdog:
    """Ends the trial's process when it runs past its time limit, hung or not.

    A hung trial reports nothing, so nothing in Tune would ever stop it; this thread leaves a marker (so the
    driver records the trial as 'timeout' and a retry gives up at once) and exits the worker process, which
    Tune sees as a failed trial while the sweep goes on.
    """

    def __init__(self, timeout_s: float, marker: Any) -> None:
        import threading

        self.timeout_s, self.marker = timeout_s, marker
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="lawsweep-trial-watchdog")

    def _watch(self) -> None:
        import os

        if self._done.wait(self.timeout_s):
            return
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(f"{self.timeout_s}\n")
        os._exit(124)

    def __enter__(self) -> _Watchdog:
        if self.timeout_s and self.marker is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()


def run_meta(spec: TrialSpec) -> dict[str, float | str]:
    """What every report of a trial carries beside the trainer's metrics: its scale, schedule and plan, for the
    live divergence predictor (orchestrator.tune_runner.DivergenceStopper)."""
    from laws.divergence import schedule_label

    return {"N": spec.N, "D": float(spec.train.tokens), "peak_lr": float(spec.train.lr),
            "total_steps": float(max(1, round(spec.train.tokens / spec.batch_tokens))),
            "baseline_loss": math.log(spec.model.vocab_size), "schedule_label": schedule_label(spec.scale)}


def _run_single(spec: TrialSpec) -> None:
    import ray
    from ray import tune

    from trainers import train

    model, train_cfg, corpus = spec.model, spec.train, _corpus(spec)
    node = ray.get_runtime_context().get_node_id()  # which node ran it (result.json), for multi-node debugging
    meta = dict(run_meta(spec), node_id=node)
    pending: dict[str, Any] = {}

    def report(m: dict[str, float]) -> None:
        if m.get("done") or m.get("tokens") == 0:
            tune.report(dict(m, **meta))
        else:
            pending.clear()
            pending.update(m, **meta)  # sent with the checkpoint that follows it

    def checkpoint(save: Callable[[str], None]) -> None:
        import tempfile

        from ray.tune import Checkpoint

        with tempfile.TemporaryDirectory() as d:
            save(d)
            tune.report(dict(pending), checkpoint=Checkpoint.from_directory(d))
        _failpoint_after_checkpoint(spec, int(pending.get("step", 0)))

    branch = None
    if train_cfg.branch_tokens:
        trial_id = tune.get_context().get_trial_id()

        def branch(budget: int, step: int, save: Callable[[str], None], point: dict[str, float]) -> None:
            """Write the state a cooldown to ``budget`` resumes, then tell the searcher it exists."""
            dest = branch_folder(spec.results_dir, trial_id, budget)
            if not dest.is_dir():  # a retried stable run passing the same point again keeps the first copy
                tmp = dest.with_name(dest.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                save(str(tmp))
                os.replace(tmp, dest)
            tune.report(dict(point, **meta, done=0.0, branch_ready=float(budget), branch_step=float(step),
                             branch_path=str(dest)))

    with _resume_folder(tune.get_checkpoint(), spec, lambda m: tune.report(dict(m, **meta))) as resume:
        result = train(model, train_cfg, corpus, report=report, checkpoint=checkpoint, resume=resume, branch=branch)
    if result.status == "failed":
        raise RuntimeError(result.reason)


def branch_folder(results_dir: str, trial_id: str, budget: int) -> Path:
    """Where a stable trial leaves the state its cooldown to ``budget`` tokens resumes (kept for the sweep)."""
    return Path(results_dir) / "branches" / trial_id / f"tokens_{budget}"


@contextlib.contextmanager
def _resume_folder(ckpt: Any, spec: TrialSpec,
                   report: Callable[[dict[str, float]], None]) -> Iterator[str | None]:
    """Where a trial continues from, if anywhere.

    A retried trial gets its own last checkpoint back from Tune (or Ray Train). A trial of a resumed sweep
    (``lawsweep resume``: this point was running when the driver died) continues from the checkpoint folder
    the driver found, and first hands its curve so far to the new trial's record.
    """
    if ckpt is not None:
        with ckpt.as_directory() as d:
            yield d
    elif spec.resume_from:
        from trainers import read_trial_state

        d = spec.resume_from
        for point in read_trial_state(d, spec.train.engine)["curve"]:
            report(dict(point, done=0.0))
        yield d
    else:
        yield None


def _failpoint_after_checkpoint(spec: TrialSpec, step: int) -> None:
    """Fault injection (see :func:`_failpoint`): 'die_after_checkpoint' ends this process, once per trial point,
    right after its second checkpoint, the way a preempted or OOM-killed worker dies (no exception, no cleanup)."""
    import json
    import os
    from pathlib import Path

    points = os.environ.get("LAWSWEEP_FAILPOINTS")
    if not points or json.loads(points).get(repr(float(spec.train.lr))) != "die_after_checkpoint":
        return
    marker = Path(spec.results_dir) / "failpoints" / f"lr{spec.train.lr!r}"
    seen = marker.with_name(marker.name + ".first")
    if marker.exists():
        return
    if not seen.exists():  # the first checkpoint: note it, die at the next one
        seen.parent.mkdir(parents=True, exist_ok=True)
        seen.write_text(str(step))
        return
    marker.write_text(str(step))
    os._exit(1)


def _corpus(spec: TrialSpec) -> Any:
    from trainers import load_corpus

    return load_corpus(spec.data)


def run_multi_worker_trial(spec: TrialSpec) -> None:
    """One trial on several data-parallel workers: a Ray Train TorchTrainer launched from the Tune trial.

    The trial's own process only drives (it reserves no CPU); the workers reserve the trial's resources.
    Ray Train sets up the process group (gloo on CPU, NCCL on GPU) on a free port it picks on rank 0's node,
    so concurrent trials never share a rendezvous. Rank 0's metrics reach Tune through TuneReportCallback.
    The Ray Train run is named after the Tune trial, so a retried trial's TorchTrainer finds the run's
    checkpoint record in storage and its workers resume from the newest checkpoint (Ray Train V2 restores a
    run by name and storage path).
    """
    from pathlib import Path

    import ray.train
    from ray import tune
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    w = spec.workers
    assert w is not None
    resources = {"CPU": w.cpus}
    if w.gpus:
        resources["GPU"] = w.gpus
    ctx = tune.get_context()
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config=spec.to_dict(),
        torch_config=TorchConfig(backend="nccl" if w.gpus else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=w.n, use_gpu=bool(w.gpus),
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=f"train-{ctx.get_trial_id()}",
            storage_path=str(Path(ctx.get_trial_dir()).parent / "ray_train"),
            callbacks=[TuneReportCallback()],
            # Only the newest checkpoint is ever resumed from (the trial's own Tune side keeps one too).
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        ),
    )
    trainer.fit()


def _worker_loop(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: the same trainer, over the process group Ray Train made.

    Every worker reports (Ray Train's report is collective; rank 0's metrics go to Tune) and every worker
    writes its part of each checkpoint (its ZeRO shards; rank 0 the loop's state), which Ray Train gathers
    into one folder. A retried trial builds its TorchTrainer under the same name, so Ray Train hands the
    workers that folder back and the run resumes where it stopped.
    """
    import os
    import tempfile

    import ray.train

    from trainers import train

    spec = TrialSpec.from_dict(config)
    model, train_cfg, corpus = spec.model, spec.train, _corpus(spec)
    ctx = ray.train.get_context()
    extra = dict(run_meta(spec), workers=float(ctx.get_world_size()),
                 master_port=float(os.environ.get("MASTER_PORT", 0)))
    pending: dict[str, Any] = {}

    def report(m: dict[str, float]) -> None:
        if m.get("done") or m.get("tokens") == 0:
            ray.train.report(dict(m, **extra))
        else:
            pending.clear()
            pending.update(m, **extra)  # sent with the checkpoint that follows it

    def checkpoint(save: Callable[[str], None]) -> None:
        with tempfile.TemporaryDirectory() as d:
            save(d)
            ray.train.report(dict(pending), checkpoint=ray.train.Checkpoint.from_directory(d))
        if ctx.get_world_rank() == ctx.get_world_size() - 1:
            _failpoint_after_checkpoint(spec, int(pending.get("step", 0)))

    with _resume_folder(ray.train.get_checkpoint(), spec, lambda m: ray.train.report(dict(m, **extra))) as resume:
        result = train(model, train_cfg, corpus, report=report, checkpoint=checkpoint, resume=resume)
    if result.status == "failed":
        raise RuntimeError(result.reason)


@functools.lru_cache(maxsize=4)
def _table(path: str) -> Any:
    """The replayed sweep table's rows (read once per worker)."""
    from orchestrator.records import read_table

    return read_table(path).frame


def replay_trial(spec: TrialSpec, report: Callable[[dict[str, float]], None]) -> None:
    """Serve a recorded run instead of training: its curve, then its final loss, as a training run reports.

    Raises:
        LookupError: when the table holds no run at this point (the trial fails with this message).
    """
    import json
    import math

    N, D, bt, lr = spec.N, spec.train.tokens, spec.batch_tokens, spec.train.lr
    t = _table(spec.replay)
    rows = t[(t.N == N) & (t.D == D) & (t.batch_tokens == bt) & ((t.lr - lr).abs() <= 1e-9 * lr)]
    if rows.empty:
        raise LookupError(f"replay table {spec.replay} has no run at N={N}, D={D}, lr={lr}, batch_tokens={bt}.")
    row = rows.iloc[0]
    curve = json.loads(row["curve"]) if isinstance(row.get("curve"), str) else []
    for tokens, val in curve[:-1]:
        report({"tokens": float(tokens), "val_loss": float(val), "done": 0.0, "N": float(N)})
    ok = row["status"] == "ok"
    tokens = float(row.get("tokens", D))
    report({
        "tokens": tokens,
        "val_loss": float(row["loss"]) if ok else math.nan,
        "done": 1.0,
        "diverged": float(row["status"] == "diverged"),
        "flops": 6.0 * N * tokens,
        "N": float(N),
    })
