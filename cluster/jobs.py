"""Submit a sweep to a running Ray cluster as a Ray job (the driver then runs on the cluster's head)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["AuthTokenError", "auth_headers", "find_auth_token", "submit_sweep", "wait_for_job"]


class AuthTokenError(ValueError):
    """No usable Ray auth token for a cluster that needs one; the message says where one is looked for."""


def find_auth_token(token_file: str | None = None) -> str | None:
    """The cluster's Ray auth token, as Ray's own clients look for it: ``token_file`` (``--token-file``), then
    $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token. None when there is none and RAY_AUTH_MODE is
    'disabled' (a cluster started without authentication, e.g. a local test cluster).

    Raises:
        AuthTokenError: a named token file is missing or empty, or no token is found while authentication is
            not explicitly disabled (every shipped cluster config enables it).
    """
    import os

    named = token_file or os.environ.get("RAY_AUTH_TOKEN_PATH")
    if token_file is None and os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(named).expanduser() if named else Path.home() / ".ray" / "auth_token"
    if path.is_file():
        token = path.read_text(encoding="utf-8", errors="replace").strip()
        if not token:
            raise AuthTokenError(f"Ray auth token file {str(path)!r} is empty; put the cluster's token in it "
                                 "(`ray get-auth-token` on the head prints it).")
        return token
    if named:
        raise AuthTokenError(f"Ray auth token file {str(path)!r} does not exist (from "
                             f"{'--token-file' if token_file else '$RAY_AUTH_TOKEN_PATH'}); give the file that "
                             "holds the cluster's token.")
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    raise AuthTokenError(
        "no Ray auth token: the cluster configs in cluster/configs start Ray with token authentication "
        "(RAY_AUTH_MODE=token). Put the cluster's token in ~/.ray/auth_token (`ray get-auth-token` on the head "
        "prints it), $RAY_AUTH_TOKEN or a file given with --token-file; set RAY_AUTH_MODE=disabled only for a "
        "cluster started without authentication."
    )


def auth_headers(token: str | None) -> dict[str, str]:
    """The HTTP header Ray's dashboard and job server check (RAY_AUTH_MODE=token), or none."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def submit_sweep(config_path: str | Path, address: str, *, entrypoint_args: tuple[str, ...] = (),
                 submission_id: str | None = None, token: str | None = None) -> str:
    """Upload the sweep TOML as the job's working directory and start ``lawsweep run`` there.

    Args:
        config_path: The sweep TOML (validated by the caller before anything is sent).
        address: The cluster's job server, e.g. ``http://head:8265``.
        token: The cluster's Ray auth token (:func:`find_auth_token`), sent as a bearer token.

    Returns:
        The job's submission id (``ray job status/logs/stop`` take it).
    """
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address, headers=auth_headers(token))
    with tempfile.TemporaryDirectory(prefix="lawsweep-job-") as d:
        shutil.copy(config_path, Path(d) / "sweep.toml")
        return client.submit_job(
            entrypoint=" ".join(["lawsweep", "run", "sweep.toml", *entrypoint_args]),
            runtime_env={"working_dir": d},
            submission_id=submission_id,
            metadata={"lawsweep.config": Path(config_path).name},
        )


def wait_for_job(address: str, job_id: str, *, echo: Callable[[str], None] = print, poll_s: float = 2.0,
                 token: str | None = None) -> str:
    """Stream the job's log lines until it ends; returns its final status (SUCCEEDED, FAILED, STOPPED)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address, headers=auth_headers(token))
    shown = 0
    while True:
        status = client.get_job_status(job_id)
        logs = client.get_job_logs(job_id)
        for line in logs[shown:].splitlines():
            echo(line)
        shown = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        time.sleep(poll_s)
