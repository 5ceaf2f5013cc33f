"""Real servers for the tests, on 127.0.0.1 only, always stopped: MLflow tracking servers and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Ports a local Ray node takes by default unless told otherwise (GCS 6379, dashboard 8265, client server 10001,
#: worker ports 10002-19999, dashboard agent 52365: ray._private.ray_constants and `ray start --help`): a test that
#: hands one of them to Ray as another component's port fails its `ray start` ("the same port is used by multiple
#: components"), as a clean-clone CI run did once when the OS offered 52365 for the GCS.
RAY_DEFAULT_PORTS = frozenset({6379, 8265, 10001, 52365, *range(10002, 20000)})


def free_port() -> int:
    """A port free on 127.0.0.1 now, never one of :data:`RAY_DEFAULT_PORTS`."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RAY_DEFAULT_PORTS:
            return port


def wait_http(url: str, timeout: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise TimeoutError(f"the server for {url} exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.3)


class MlflowServer:
    """``mlflow server`` on loopback; start() and stop() may be called repeatedly (an outage)."""

    def __init__(self, backend_uri: str, artifacts: Path, port: int | None = None, cwd: Path | None = None,
                 auth: dict[str, str] | None = None):
        """``auth``: environment for MLflow's basic-auth app (MLFLOW_AUTH_CONFIG_PATH, MLFLOW_AUTH_ADMIN_*);
        None serves without authentication."""
        self.backend_uri, self.artifacts = backend_uri, artifacts
        self.port = port or free_port()
        self.cwd = cwd
        self.auth = auth
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **(self.auth or {}))
        self.log = open(self.artifacts.parent / f"mlflow-server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_uri,
             "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", *(["--app-name", "basic-auth"] if self.auth else [])],
            cwd=self.cwd, env=env, stdout=self.log, stderr=self.log, start_new_session=True,
        )
        try:
            wait_http(f"{self.url}/health", proc=self.proc)
        except TimeoutError as e:
            log = Path(self.log.name)
            self.stop()
            tail = log.read_text(errors="replace")[-3000:]
            raise TimeoutError(f"{e}; server log:\n{tail}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None


@contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, cwd: Path | None = None,
                  auth: dict[str, str] | None = None) -> Iterator[MlflowServer]:
    server = MlflowServer(backend_uri, artifacts, cwd=cwd, auth=auth).start()
    try:
        yield server
    finally:
        server.stop()


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; tests running as root start it as the 'postgres' user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields a SQLAlchemy URI of an empty database."""
    import tempfile

    for tool in ("initdb", "pg_ctl", "psql"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"PostgreSQL's {tool} is not on PATH; install postgresql (.ci/run does).")
    # Its own folder under /tmp: pytest's tmp folders are private to root, which the postgres user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="lawsweep-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    try:
        subprocess.run(_as_postgres(["initdb", "-D", str(data), "-U", "lawsweep", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                                     f"-h 127.0.0.1 -p {port} -k {base}", "start"]), check=True, capture_output=True)
        try:
            subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "lawsweep", "-d", "postgres", "-c",
                            "CREATE DATABASE mlflow"], check=True, capture_output=True)
            yield f"postgresql+psycopg2://lawsweep@127.0.0.1:{port}/mlflow"
        finally:
            subprocess.run(_as_postgres(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
