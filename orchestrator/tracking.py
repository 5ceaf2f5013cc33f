"""Tracking behind an interface; the only module that imports mlflow.

One MLflow parent run per sweep, one child run per trial (tag ``mlflow.parentRunId``). All writes happen
in the driver process, so a sqlite store sees one writer.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

__all__ = ["MlflowTracker", "Tracker"]


class Tracker(Protocol):
    """Where a sweep's runs are recorded."""

    def start_sweep(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> str: ...
    def start_trial(self, trial_id: str, name: str, params: dict[str, Any]) -> None: ...
    def log_metrics(self, trial_id: str, metrics: dict[str, float], step: int) -> None: ...
    def end_trial(self, trial_id: str, status: str, metrics: dict[str, float]) -> None: ...
    def log_sweep(self, metrics: dict[str, float], params: dict[str, Any]) -> None: ...
    def log_artifact(self, path: str) -> None: ...
    def end_sweep(self, status: str) -> None: ...


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    # MLflow stores NaN, but a NaN final loss reads as a number in the UI; status says why instead.
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


class MlflowTracker:
    """Records a sweep in MLflow.

    Args:
        uri: Tracking URI, e.g. ``sqlite:///mlflow.db`` or ``http://127.0.0.1:5000``.
        experiment: Experiment name (created if missing).
    """

    def __init__(self, uri: str, experiment: str) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self._mlflow = mlflow
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
        self.parent_id = ""
        self._runs: dict[str, str] = {}

    def start_sweep(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={"lawsweep.kind": "sweep", **tags}
        )
        self.parent_id = run.info.run_id
        self._log_params(self.parent_id, params)
        return self.parent_id

    def start_trial(self, trial_id: str, name: str, params: dict[str, Any]) -> None:
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags={
                "mlflow.parentRunId": self.parent_id,
                "lawsweep.kind": "trial",
                "lawsweep.trial_id": trial_id,
            },
        )
        self._runs[trial_id] = run.info.run_id
        self._log_params(run.info.run_id, params)

    def log_metrics(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        run_id = self._runs[trial_id]
        ts = _now_ms()
        batch = [Metric(k, v, ts, step) for k, v in _finite(metrics).items()]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def end_trial(self, trial_id: str, status: str, metrics: dict[str, float]) -> None:
        run_id = self._runs.pop(trial_id)
        from mlflow.entities import Metric

        ts = _now_ms()
        batch = [Metric(f"final_{k}", v, ts, 0) for k, v in _finite(metrics).items()]
        if batch:
            self.client.log_batch(run_id, metrics=batch)
        self.client.set_tag(run_id, "lawsweep.status", status)
        self.client.set_terminated(run_id, status="FINISHED" if status in ("ok", "diverged") else "FAILED")

    def log_sweep(self, metrics: dict[str, float], params: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        ts = _now_ms()
        batch = [Metric(k, v, ts, 0) for k, v in _finite(metrics).items()]
        if batch:
            self.client.log_batch(self.parent_id, metrics=batch)
        self._log_params(self.parent_id, params)

    def log_artifact(self, path: str) -> None:
        self.client.log_artifact(self.parent_id, path)

    def end_sweep(self, status: str) -> None:
        for trial_id in list(self._runs):
            self.end_trial(trial_id, "failed", {})
        self.client.set_terminated(self.parent_id, status=status)

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def load_trials(uri: str, experiment: str) -> list[dict[str, Any]]:
    """Every recorded trial of an MLflow experiment as a sweep-table row (N, D, lr, batch_tokens, loss, status).

    Raises:
        ValueError: when the experiment does not exist or holds no lawsweep trial.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"MLflow experiment {experiment!r} not found at {uri}; check --tracking-uri and the name.")
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.search_runs([exp.experiment_id], "tags.`lawsweep.kind` = 'trial'", max_results=1000,
                                  page_token=token)
        for r in page:
            p, m, t = r.data.params, r.data.metrics, r.data.tags
            status = t.get("lawsweep.status", "failed")
            rows.append({
                "N": float(p.get("N", "nan")),
                "D": float(p.get("D", "nan")),
                "lr": float(p.get("lr", "nan")),
                "batch_tokens": float(p.get("batch_tokens", "nan")),
                "loss": m.get("final_val_loss", math.nan) if status == "ok" else math.nan,
                "status": status,
                "flops": m.get("final_flops", math.nan),
                "trial_id": t.get("lawsweep.trial_id", r.info.run_id),
            })
        token = page.token
        if not token:
            break
    if not rows:
        raise ValueError(f"MLflow experiment {experiment!r} at {uri} holds no lawsweep trial runs.")
    return rows
