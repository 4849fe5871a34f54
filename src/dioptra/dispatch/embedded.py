"""Embedded dispatch: N local worker processes that pull jobs from this server.

The workers are ordinary `python -m dioptra.worker` processes talking HTTP, the same
code as remote workers; a supervisor thread restarts any that dies. They share one fork
server for their warm jobs, kept by `python -m dioptra.worker.fork_host` (one set of ML
imports at start instead of one per worker), which is stopped after them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from dioptra import processes
from dioptra.dispatch.wakeup import WakeUp
from dioptra.processes import die_with_parent

log = logging.getLogger("dioptra.dispatch")
EMBEDDED_PREFIX = "embedded:"


class EmbeddedDispatcher:
    def __init__(
        self, server_url: str, n_workers: int, wakeup: WakeUp, token: str | None,
        work_dir: str, extra_env: dict[str, str] | None = None,
    ) -> None:
        self.server_url = server_url
        self.n_workers = n_workers
        self.wakeup = wakeup
        self.token = token
        self.work_dir = work_dir
        self.extra_env = dict(extra_env or {})
        self.instance = uuid.uuid4().hex[:8]
        self._procs: dict[int, subprocess.Popen] = {}
        # Where the workers' shared fork server listens (the keeper makes it).
        self.fork_socket = Path(work_dir) / f"fork-server-{self.instance}.sock"
        self._fork_host: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._spawned = threading.Event()
        self._thread: threading.Thread | None = None

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        # N workers share the cores: without this every job's torch/BLAS would start a
        # thread per core and they would all thrash. A user's own setting wins.
        share = str(max(1, (os.cpu_count() or 1) // self.n_workers))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, share)
        return env

    def _spawn(self, index: int) -> subprocess.Popen:
        worker_id = f"{EMBEDDED_PREFIX}{self.instance}:{index}"
        env = self._environment()
        if self.token:
            env["DIOPTRA_API_TOKEN"] = self.token
        # Killed with the server (kill -9 included): an orphan would go on taking jobs.
        cmd = [
            *die_with_parent("KILL"), sys.executable, "-m", "dioptra.worker",
            "--server", self.server_url,
            "--worker-id", worker_id, "--work-dir", self.work_dir,
            "--fork-server-socket", str(self.fork_socket),
        ]
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)

    def _spawn_fork_host(self) -> subprocess.Popen:
        cmd = [*die_with_parent("KILL"), sys.executable, "-m", "dioptra.worker.fork_host",
               "--socket", str(self.fork_socket), "--work-dir", self.work_dir]
        return subprocess.Popen(cmd, env=self._environment(), stdin=subprocess.DEVNULL)

    def start(self) -> None:
        # The workers are spawned, watched and stopped by one thread: their
        # PR_SET_PDEATHSIG fires when the thread that forked them ends, so that thread
        # must live exactly as long as they should (it does, until stop()).
        self._thread = threading.Thread(target=self._run, name="embedded-workers", daemon=True)
        self._thread.start()
        self._spawned.wait()

    def _run(self) -> None:
        try:
            if self.n_workers > 0:
                self._fork_host = self._spawn_fork_host()
            for index in range(self.n_workers):
                self._procs[index] = self._spawn(index)
        finally:
            self._spawned.set()
        while not self._stopping.wait(2.0):
            for index, proc in list(self._procs.items()):
                if proc.poll() is not None and not self._stopping.is_set():
                    log.warning("embedded worker %s exited with %s; restarting", index,
                                proc.returncode)
                    self._procs[index] = self._spawn(index)
            host = self._fork_host
            if host is not None and host.poll() not in (None, 0) and not self._stopping.is_set():
                # (0: nothing to serve, the workers' jobs are not forked)
                log.warning("the embedded workers' fork server keeper exited with %s; "
                            "restarting", host.returncode)
                self._fork_host = self._spawn_fork_host()
        self._stop_workers()
        self._stop_fork_host()

    def job_ready(self, job_id: str, queue_name: str, timeout_seconds: int) -> None:
        self.wakeup.notify()

    def redispatch(self, jobs: list[tuple[str, str, int]]) -> None:
        pass  # the embedded workers ask the database itself: nothing to lose

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    def _stop_workers(self) -> None:
        """A first SIGTERM stops idle workers; a second makes busy ones kill their entry
        point and report the job failed, so nothing outlives the server."""
        alive = [p for p in self._procs.values() if p.poll() is None]
        for proc in alive:
            proc.terminate()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and any(p.poll() is None for p in alive):
            time.sleep(0.02)
        for proc in alive:
            if proc.poll() is None:
                proc.terminate()
        for proc in alive:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _stop_fork_host(self) -> None:
        """After the workers: its fork server's jobs are theirs."""
        if self._fork_host is not None:
            processes.stop(self._fork_host, timeout_s=15)
