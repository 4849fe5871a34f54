"""The embedded MLflow tracking server: SQLite store and artifacts under the data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from dioptra.processes import die_with_parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def preferred_port(port: int, host: str = "127.0.0.1") -> int:
    """``port`` if it is free (a stable address for the UI), else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return free_port(host)
    return port


class MLflowServer:
    def __init__(self, data_dir: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        root = self.data_dir / "mlflow"
        root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # Its job runner (huey consumers) is for MLflow's GenAI features: not needed here,
        # and it would double the start-up time.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        # SIGTERM when this server dies, however it dies: the MLflow CLI passes it on to
        # its uvicorn, so no orphan keeps the port (start() runs in the main thread).
        cmd = [
            *die_with_parent("TERM"), sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", self.host, "--port", str(self.port), "--workers", "1",
        ]
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
                if requests.get(f"{self.uri}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
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
