"""Submit a sweep to a running Ray cluster as a Ray job (the driver then runs on the cluster's head)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["submit_sweep", "wait_for_job"]


def submit_sweep(config_path: str | Path, address: str, *, entrypoint_args: tuple[str, ...] = (),
                 submission_id: str | None = None) -> str:
    """Upload the sweep TOML as the job's working directory and start ``lawsweep run`` there.

    Args:
        config_path: The sweep TOML (validated by the caller before anything is sent).
        address: The cluster's job server, e.g. ``http://head:8265``.

    Returns:
        The job's submission id (``ray job status/logs/stop`` take it).
    """
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    with tempfile.TemporaryDirectory(prefix="lawsweep-job-") as d:
        shutil.copy(config_path, Path(d) / "sweep.toml")
        return client.submit_job(
            entrypoint=" ".join(["lawsweep", "run", "sweep.toml", *entrypoint_args]),
            runtime_env={"working_dir": d},
            submission_id=submission_id,
            metadata={"lawsweep.config": Path(config_path).name},
        )


def wait_for_job(address: str, job_id: str, *, echo: Callable[[str], None] = print, poll_s: float = 2.0) -> str:
    """Stream the job's log lines until it ends; returns its final status (SUCCEEDED, FAILED, STOPPED)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
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
