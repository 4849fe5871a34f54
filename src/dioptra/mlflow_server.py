"""The embedded MLflow tracking server: SQLite store and artifacts under the data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from dioptra import mlflow_db
from dioptra.processes import die_with_parent

PREFIX = "/mlflow"  # where the API serves a private MLflow (UI and REST)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MLflowServer:
    """``mlflow server`` on a TCP port, or (``private=True``) on a Unix socket only the
    server's user can reach, its paths under ``/mlflow``: the API proxies it there behind
    its token check (restapi/mlflow_proxy.py)."""

    def __init__(self, data_dir: Path, port: int = 0, host: str = "127.0.0.1",
                 private: bool = False) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self.socket_path = _socket_path(data_dir) if private else None
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _get(self, path: str) -> int:
        if self.socket_path is None:
            return requests.get(f"{self.uri}{path}", timeout=2).status_code
        import httpx

        transport = httpx.HTTPTransport(uds=str(self.socket_path))
        with httpx.Client(transport=transport, timeout=2) as client:
            return client.get(f"http://localhost{PREFIX}{path}").status_code

    def start(self) -> None:
        root = self.data_dir / "mlflow"
        root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # Its job runner (huey consumers) is for MLflow's GenAI features: not needed here,
        # and it would double the start-up time.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        # A new database starts as a copy of the migrated template (mlflow_db.py), which
        # spares MLflow its migrations; with no template yet, the MLflow process makes
        # it first (once per MLflow schema).
        db = root / "mlflow.db"
        seed = [] if mlflow_db.seed(db) or db.exists() else ["--seed", str(db)]
        # SIGTERM when this server dies, however it dies (start() runs in the main
        # thread): no orphan keeps the port. mlflow_launch is `mlflow server` with its
        # uvicorn in the same process (one import of MLflow instead of two).
        cmd = [
            *die_with_parent("TERM"), sys.executable, "-m", "dioptra.mlflow_launch", *seed,
            "server",
            "--backend-store-uri", f"sqlite:///{db}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", self.host, "--port", str(self.port), "--workers", "1",
        ]
        if self.socket_path is not None:
            # uvicorn then listens on the socket only (no TCP port at all).
            self.socket_path.unlink(missing_ok=True)
            cmd += ["--static-prefix", PREFIX, "--uvicorn-opts", f"--uds {self.socket_path}"]
        log = (root / "server.log").open("ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"the MLflow server exited with code {self.proc.returncode}; "
                    f"see {self.data_dir / 'mlflow' / 'server.log'}"
                )
            try:
                if self._get("/health") == 200:
                    return
            except Exception:  # noqa: BLE001 - not listening yet (requests or httpx)
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the MLflow server did not answer within {timeout_s:g}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait()


def _socket_path(data_dir: Path) -> Path:
    """A socket in a folder only this user can enter (uvicorn makes the socket 0666)."""
    folder = data_dir / "mlflow" / "private"
    if len(str(folder)) > 90:  # sun_path holds 108 bytes
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="dioptra-mlflow-"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder / "mlflow.sock"
