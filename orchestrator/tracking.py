"""Tracking behind an interface; the only module that imports mlflow.

One MLflow parent run per sweep, one child run per trial (tag ``mlflow.parentRunId``). All writes happen
in the driver process, so a sqlite store sees one writer.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from laws.table import SweepTable

__all__ = ["MlflowTracker", "StoreError", "Tracker", "TrackingUnavailable", "check_store"]

#: The MLflow tracking URI schemes lawsweep accepts.
SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}
_SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(ValueError):
    """A tracking store that cannot be used: the message names the URI, what is wrong and the fix."""


def check_store(uri: str, *, create: bool, timeout_s: float = 5.0) -> None:
    """Check a tracking URI before any work: its scheme, and that the store is there and answers.

    No MLflow call is made (its HTTP retries take minutes): a sqlite store is checked on disk, a server by one
    HTTP request (with the basic-auth credentials MLflow's client would send: a refusal is an error), a
    database by a TCP connect, each within ``timeout_s``.

    Args:
        create: Whether the caller writes (a sweep: a missing sqlite file is created in an existing, writable
            folder) or only reads (``fit``, ``report``: a missing store is an error, never created).

    Raises:
        StoreError: naming the URI and the fix.
    """
    from urllib.parse import urlparse

    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme not in SCHEMES:
        raise StoreError(
            f"tracking URI {uri!r}: unsupported scheme {scheme or '(none)'!r}; use sqlite:///PATH (a file), "
            "http(s)://HOST:PORT (an MLflow server) or postgresql://... (a database)."
        )
    if scheme == "sqlite":
        _check_sqlite(uri, create)
        return
    u = urlparse(uri)
    try:
        port = u.port or _DEFAULT_PORTS[scheme]
    except ValueError as e:
        raise StoreError(f"tracking URI {uri!r}: {e}; fix the port.") from None
    if not u.hostname:
        raise StoreError(f"tracking URI {uri!r} names no host; e.g. http://127.0.0.1:5000.")
    if scheme in ("http", "https"):
        _check_http(uri, timeout_s)
        return
    import socket

    try:
        socket.create_connection((u.hostname, port), timeout=timeout_s).close()
    except OSError as e:
        shown = uri.replace(f":{u.password}@", ":***@") if u.password else uri  # never print a password
        raise StoreError(
            f"tracking database {shown} unreachable within {timeout_s:g} s ({e}); start it or fix the URI."
        ) from None


def _check_sqlite(uri: str, create: bool) -> None:
    if not uri.startswith("sqlite:///"):
        raise StoreError(f"tracking URI {uri!r}: a sqlite store is sqlite:///PATH (three slashes, then the path).")
    path = Path(uri[len("sqlite:///"):])
    if not create:
        if not path.is_file():
            raise StoreError(
                f"no MLflow store at {uri} ({str(path)!r} is not a file); give --tracking-uri of the store the "
                "sweep wrote (reads never create one)."
            )
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as e:
            raise StoreError(f"tracking store {str(path)!r} cannot be read: {e}.") from None
        if head != _SQLITE_MAGIC:
            raise StoreError(f"tracking store {str(path)!r} is not a SQLite database; give the sweep's store.")
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise StoreError(
            f"tracking.uri={uri!r}: folder {str(folder)!r} does not exist; create it or point the URI elsewhere."
        )
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise StoreError(f"tracking.uri={uri!r}: {str(path)!r} is not writable; fix its permissions or the URI.")
    if path.exists() and not path.is_file():
        raise StoreError(f"tracking.uri={uri!r}: {str(path)!r} is not a regular file.")


def _check_http(uri: str, timeout_s: float) -> None:
    import base64
    import urllib.error
    import urllib.request

    req = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:  # what MLflow's client sends to a basic-auth server
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout_s):
            return
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            have = "refused the credentials in" if user else "needs credentials: set"
            raise StoreError(f"tracking server {uri} {have} MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
                             f"(HTTP {e.code}); ask its admin for an account.") from None
        return  # it answered; what it thinks of this request is MLflow's to say
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise StoreError(
            f"tracking server {uri} unreachable within {timeout_s:g} s ({reason}); start it (mlflow server "
            "--host 127.0.0.1 ...) or fix the URI."
        ) from None


def fail_fast_http(uri: str, timeout_s: float) -> None:
    """Make MLflow's HTTP client give up after ``timeout_s`` instead of retrying for minutes."""
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(timeout_s))))


class Tracker(Protocol):
    """Where a sweep's runs are recorded."""

    def start_sweep(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> str: ...
    def start_trial(self, trial_id: str, name: str, params: dict[str, Any], parent: str = "") -> None: ...
    def log_metrics(self, trial_id: str, metrics: dict[str, float], step: int) -> None: ...
    def end_trial(self, trial_id: str, status: str, metrics: dict[str, float]) -> None: ...
    def log_sweep(self, metrics: dict[str, float], params: dict[str, Any]) -> None: ...
    def log_progress(self, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, path: str) -> None: ...
    def end_sweep(self, status: str) -> None: ...


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    # MLflow stores NaN, but a NaN final loss reads as a number in the UI; status says why instead.
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


class MlflowTracker:
    """Records a sweep in MLflow, and survives a tracking server that goes away for a while.

    Every write is an operation in a queue, sent in order. When the server cannot be reached the queue
    waits (retried with backoff at every later write, and for up to ``retry_s`` at the end of the sweep)
    and is mirrored to a spool file, so a driver that dies meanwhile loses nothing: ``attach_sweep`` (used by
    ``lawsweep resume``) sends the spool first.

    Args:
        uri: Tracking URI, e.g. ``sqlite:///mlflow.db`` or ``http://127.0.0.1:5000``.
        experiment: Experiment name (created if missing).
        spool: Where unsent operations are kept while the server is unreachable.
        retry_s: How long ``end_sweep`` keeps trying to deliver them.
        metrics_interval_s: A trial's curve is sent at its first evaluation, then at most this often, and in
            full at its end: one write per batch instead of one per evaluation (what a store pays per write,
            a sqlite commit or an HTTP request, is the driver's main cost per trial).
    """

    def __init__(self, uri: str, experiment: str, spool: str | Path | None = None, retry_s: float = 600.0,
                 metrics_interval_s: float = 10.0) -> None:
        # Fail fast and let the queue retry: MLflow's own retries would stall the driver for minutes.
        fail_fast_http(uri, 20)
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.spool = Path(spool) if spool else None
        self.retry_s = retry_s
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
        self.parent_id = ""
        self._runs: dict[str, str] = {}  # trial id -> MLflow run id, as runs get created
        self._open: set[str] = set()  # trials started and not yet ended
        self.metrics_interval_s = metrics_interval_s
        self._pending: dict[str, list[list]] = {}  # trial id -> metric rows not yet queued
        self._sent_at: dict[str, float] = {}
        self._queue: deque[list] = deque()
        self._next_try = 0.0
        self._backoff = 1.0
        self.unreachable_since: float | None = None

    # -- the queue ----------------------------------------------------------------------------------------
    def _put(self, *op: Any) -> None:
        self._queue.append(list(op))
        self.flush()

    def flush(self, force: bool = False) -> bool:
        """Send queued operations in order; False when some wait because the server is unreachable."""
        if not self._queue:
            return True
        if not force and time.monotonic() < self._next_try:
            self._save_spool()
            return False
        while self._queue:
            op = self._queue[0]
            try:
                self._apply(op)
            except Exception as e:  # noqa: BLE001 - classified below
                if _transient(e):
                    if self.unreachable_since is None:
                        self.unreachable_since = time.monotonic()
                        print(f"lawsweep: tracking server {self.uri} unreachable ({type(e).__name__}); "
                              f"buffering records in {self.spool or 'memory'} and retrying", file=sys.stderr)
                    self._next_try = time.monotonic() + self._backoff
                    self._backoff = min(self._backoff * 2, 30.0)
                    self._save_spool()
                    return False
                print(f"lawsweep: MLflow rejected {op[0]} ({e}); kept in {self._rejected_path()}", file=sys.stderr)
                with open(self._rejected_path(), "a") as f:
                    f.write(json.dumps({"op": op, "error": str(e)}) + "\n")
            self._queue.popleft()
        if self.unreachable_since is not None:
            print(f"lawsweep: tracking server {self.uri} reachable again; buffered records delivered", file=sys.stderr)
        self.unreachable_since, self._backoff = None, 1.0
        self._save_spool()
        return True

    def _rejected_path(self) -> Path:
        return (self.spool.parent if self.spool else Path(".")) / "mlflow_rejected.jsonl"

    def _save_spool(self) -> None:
        if self.spool is None:
            return
        if not self._queue:
            self.spool.unlink(missing_ok=True)
            return
        tmp = self.spool.with_suffix(".tmp")
        tmp.write_text(json.dumps({"parent_id": self.parent_id, "runs": self._runs, "ops": list(self._queue)}))
        tmp.replace(self.spool)

    def _apply(self, op: list) -> None:
        from mlflow.entities import Metric

        kind = op[0]
        if kind == "start_trial":
            _, trial_id, name, params, *rest = op  # spools written before branches have no parent
            parent = rest[0] if rest else ""
            if trial_id not in self._runs:  # a retry after a lost reply must not make a second run
                tags = {"mlflow.parentRunId": self._runs.get(parent, self.parent_id), "lawsweep.kind": "trial",
                        "lawsweep.trial_id": trial_id}
                if parent:  # still a trial (load_trials reads it); its sweep named for lawsweep resume
                    tags.update({"lawsweep.parent_trial": parent, "lawsweep.sweep_parent": self.parent_id})
                run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
                self._runs[trial_id] = run.info.run_id
            self._log_params(self._runs[trial_id], params)
        elif kind == "metrics":
            _, run_key, rows = op
            batch = [Metric(k, v, ts, step) for k, v, ts, step in rows]
            for i in range(0, len(batch), 1000):
                self.client.log_batch(self._run_id(run_key), metrics=batch[i : i + 1000])
        elif kind == "params":
            self._log_params(self._run_id(op[1]), op[2])
        elif kind == "end_trial":
            _, trial_id, status = op
            run_id = self._runs[trial_id]
            self.client.set_tag(run_id, "lawsweep.status", status)
            self.client.set_terminated(run_id, status="FINISHED" if status in ("ok", "diverged", "stable")
                                       else "FAILED")
        elif kind == "artifact":
            self.client.log_artifact(self.parent_id, op[1])
        elif kind == "end_sweep":
            self.client.set_terminated(self.parent_id, status=op[1])
        else:
            raise ValueError(f"unknown tracking operation {kind!r}")

    def _run_id(self, key: str) -> str:
        return self.parent_id if key == "" else self._runs[key]

    # -- the Tracker interface ----------------------------------------------------------------------------
    def start_sweep(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={"lawsweep.kind": "sweep", **tags}
        )
        self.parent_id = run.info.run_id
        self._put("params", "", _str_params(params))
        return self.parent_id

    def attach_sweep(self, parent_id: str, finished: dict[str, str]) -> tuple[int, int]:
        """Continue recording into an interrupted sweep's parent run (``lawsweep resume``).

        Delivers what the spool kept, closes the runs of trials the sweep table holds as finished, and
        deletes the runs of trials that never finished (their points run again), so no trial is recorded
        twice.

        Args:
            finished: trial id -> status of every trial in the sweep table.

        Returns:
            (trial runs kept, unfinished runs replaced).
        """
        self.parent_id = parent_id
        if self.spool is not None and self.spool.is_file():
            saved = json.loads(self.spool.read_text())
            self._runs.update(saved.get("runs", {}))
            self._queue.extend(saved.get("ops", []))
            self.flush(force=True)
            self._drain()
        self.client.update_run(parent_id, status="RUNNING")
        kept = replaced = 0
        page = list(self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                                            max_results=10000))
        page += self.client.search_runs([self.experiment_id], f"tags.`lawsweep.sweep_parent` = '{parent_id}'",
                                        max_results=10000)  # branches, nested under their stable runs
        for run in page:
            tags = run.data.tags
            tid = tags.get("lawsweep.trial_id", "")
            if tid in finished:  # the table is the truth: a trial not in it (never finished, or its row was
                # damaged and moved aside) runs again, so its run is replaced
                if run.info.status == "RUNNING" or "lawsweep.status" not in tags:
                    self._runs[tid] = run.info.run_id  # killed before its end was recorded: close it now
                    self._put("end_trial", tid, finished[tid])
                kept += 1
            else:
                self.client.delete_run(run.info.run_id)
                replaced += 1
        return kept, replaced

    def start_trial(self, trial_id: str, name: str, params: dict[str, Any], parent: str = "") -> None:
        """A child run of the sweep, or of trial ``parent``'s run (a branch under its stable run)."""
        self._open.add(trial_id)
        self._put("start_trial", trial_id, name, _str_params(params), parent)

    def log_metrics(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        ts = _now_ms()
        self._pending.setdefault(trial_id, []).extend([k, v, ts, step] for k, v in _finite(metrics).items())
        if time.monotonic() - self._sent_at.get(trial_id, -math.inf) >= self.metrics_interval_s:
            self._send_pending(trial_id)

    def _send_pending(self, trial_id: str, extra: list[list] | None = None) -> None:
        rows = self._pending.pop(trial_id, []) + (extra or [])
        self._sent_at[trial_id] = time.monotonic()
        if rows:
            self._put("metrics", trial_id, rows)

    def end_trial(self, trial_id: str, status: str, metrics: dict[str, float]) -> None:
        self._open.discard(trial_id)
        ts = _now_ms()
        self._send_pending(trial_id, [[f"final_{k}", v, ts, 0] for k, v in _finite(metrics).items()])
        self._sent_at.pop(trial_id, None)
        self._put("end_trial", trial_id, status)

    def log_sweep(self, metrics: dict[str, float], params: dict[str, Any]) -> None:
        ts = _now_ms()
        rows = [[k, v, ts, 0] for k, v in _finite(metrics).items()]
        if rows:
            self._put("metrics", "", rows)
        self._put("params", "", _str_params(params))

    def log_progress(self, metrics: dict[str, float], step: int) -> None:
        """Sweep-level metrics as they evolve (the law as it refits), at step = trials finished."""
        ts = _now_ms()
        rows = [[k, v, ts, step] for k, v in _finite(metrics).items()]
        if rows:
            self._put("metrics", "", rows)

    def log_artifact(self, path: str) -> None:
        self._put("artifact", str(path))

    def end_sweep(self, status: str) -> None:
        """Close open trials and the parent run, then deliver everything queued (retrying up to retry_s).

        Raises:
            TrackingUnavailable: when records are still undelivered after retry_s (they stay in the spool).
        """
        for trial_id in list(self._open):
            self.end_trial(trial_id, "failed", {})
        self._put("end_sweep", status)
        if not self._drain():
            raise TrackingUnavailable(
                f"tracking server {self.uri} unreachable for {self.retry_s:g} s; {len(self._queue)} records wait "
                f"in {self.spool}. Nothing is lost: `lawsweep resume {self.spool.parent if self.spool else '.'}` "
                "delivers them once the server is back."
            )

    def _drain(self) -> bool:
        deadline = time.monotonic() + self.retry_s
        while not self.flush(force=True):
            if time.monotonic() > deadline:
                return False
            time.sleep(min(self._backoff, max(0.1, deadline - time.monotonic())))
        return True

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])


class TrackingUnavailable(RuntimeError):
    """The tracking server stayed unreachable; the records wait in the spool file."""


def _str_params(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in params.items()}


def _transient(e: Exception) -> bool:
    """Whether a failed MLflow call is worth retrying (the server or the network, not the request)."""
    if isinstance(e, (ConnectionError, TimeoutError, OSError)):
        return True
    try:
        import requests

        if isinstance(e, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # pragma: no cover - mlflow depends on requests
        pass
    text = str(e)
    return any(s in text for s in ("Max retries exceeded", "Connection refused", "Failed to establish",
                                   "Read timed out", "RemoteDisconnected", "database is locked",
                                   "503", "502", "504"))


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def load_trials(uri: str, experiment: str, timeout_s: float = 5.0) -> SweepTable:
    """Every recorded trial of an MLflow experiment as a sweep-table row (N, D, lr, batch_tokens, loss, status).

    Raises:
        StoreError: the store is missing or does not answer within ``timeout_s`` (checked first; never created).
        ValueError: when the experiment does not exist or holds no lawsweep trial.
    """
    check_store(uri, create=False, timeout_s=timeout_s)
    fail_fast_http(uri, timeout_s)
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
    return SweepTable.from_rows(rows, f"mlflow:{experiment} at {uri}")


def attach_artifacts(uri: str, run_id: str, folder: str | Path, artifact_path: str, timeout_s: float = 5.0) -> None:
    """Upload every file of ``folder`` to the run's artifacts under ``artifact_path`` (the store is checked
    first, see :func:`check_store`)."""
    check_store(uri, create=False, timeout_s=timeout_s)
    fail_fast_http(uri, timeout_s)
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri).log_artifacts(run_id, str(folder), artifact_path)
