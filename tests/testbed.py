"""Real testbed processes for the tests: `dioptra server`, `dioptra worker`, MLflow.

Each test gets its own server process, data directory and port. The MLflow tracking
server is one per test session (like PostgreSQL, a shared service): experiment names
in tests are unique, and MLflow's own start-up takes ~10 s, too long to pay per test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REQUIRE_SERVICES = os.environ.get("DIOPTRA_REQUIRE_SERVICES") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip when a service is missing, or fail when CI made the services mandatory."""
    if not condition:
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (DIOPTRA_REQUIRE_SERVICES=1 makes this mandatory)")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_http(url: str, proc: subprocess.Popen | None, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s:\n{log.read_text()[-4000:]}")


@dataclass
class ServerProcess:
    """A `dioptra server` subprocess; restartable on the same data directory."""

    data_dir: Path
    port: int
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self, timeout_s: float = 120) -> ServerProcess:
        self.starts += 1
        cmd = [sys.executable, "-m", "dioptra.cli", "server", "--data-dir", str(self.data_dir),
               "--port", str(self.port), "--log-level", "warning", *self.args]
        log = self.log_path.open("ab")
        # One API process unless a test asks for more: every test server starting one per
        # core would slow the suite for nothing (tests/test_server_processes.py has them).
        env = {"DIOPTRA_API_WORKERS": "1", **os.environ, **self.env}
        self.proc = subprocess.Popen(cmd, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_http(f"{self.url}/health", self.proc, timeout_s, self.log_path)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running(server: ServerProcess, timeout_s: float = 120) -> Iterator[ServerProcess]:
    """``server`` started, and stopped at the end whatever happened (a module's one
    server: ``with running(ServerProcess(...)) as server: yield server``)."""
    try:
        yield server.start(timeout_s)
    finally:
        server.stop()


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_worker(server_url: str, log_path: Path, *args: str, env: dict | None = None
                 ) -> WorkerProcess:
    cmd = [sys.executable, "-m", "dioptra.cli", "worker", "--server", server_url, *args]
    log = log_path.open("ab")
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return WorkerProcess(proc, log_path)


def _command_lines() -> dict[int, bytes]:
    """Every process's command line (NUL-separated, as /proc has it), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # ended meanwhile
    return found


def processes_with(marker: str) -> list[int]:
    """Pids of the processes whose command line contains ``marker``."""
    return [pid for pid, line in _command_lines().items() if marker.encode() in line]


def worker_pids(server_url: str) -> list[int]:
    """Pids of the `dioptra.worker` processes serving ``server_url`` (from /proc)."""
    return [pid for pid, line in _command_lines().items()
            if {b"dioptra.worker", server_url.encode()} <= set(line.split(b"\0"))]


POSTGRES_ADMIN_URL = os.environ.get(
    "DIOPTRA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for as long as the block runs (for module-scoped
    servers; conftest's ``postgres_uri`` gives one per test)."""
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        need(False, f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    name = f"dioptra_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
