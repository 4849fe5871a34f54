"""Server start time: `dioptra server` launched -> `/health` answers, and -> MLflow ready.

Starts `dioptra server` (embedded MLflow, SQLite, embedded workers) on a fresh data
directory, stops it, and starts it again on the same (now existing) data directory; each
start is timed to the first answer of `/health` (the server accepts jobs from then on)
and to MLflow's first answer under `/mlflow/health` (the MLflow side, finished in the
background). Targets on a 2-core machine: /health within 3 s on an existing data
directory and within 10 s on a fresh one.

    python benchmarks/server_start.py [--rounds 3] [--api-workers N]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

TARGETS_S = {"fresh": 10.0, "existing": 3.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _first_200(url: str, proc: subprocess.Popen, start: float, timeout_s: float) -> float:
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout_s:g}s")


def start_once(data_dir: Path, log: Path, api_workers: int | None = None
               ) -> tuple[float, float]:
    """Seconds to /health and to MLflow ready for one start of the server."""
    port = free_port()
    cmd = [sys.executable, "-m", "dioptra.cli", "server", "--data-dir", str(data_dir),
           "--port", str(port), "--log-level", "warning"]
    if api_workers is not None:
        cmd += ["--api-workers", str(api_workers)]
    start = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        health = _first_200(f"{url}/health", proc, start, 180)
        mlflow = _first_200(f"{url}/mlflow/health", proc, start, 180)
        return health, mlflow
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--api-workers", type=int,
                        help="the server's --api-workers (default: the server's, the cores)")
    args = parser.parse_args()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: "
              "the figures will be slow", file=sys.stderr)
    times: dict[str, list[tuple[float, float]]] = {"fresh": [], "existing": []}
    with tempfile.TemporaryDirectory(prefix="dioptra-bench-start-") as tmp:
        for i in range(args.rounds):
            data_dir = Path(tmp) / f"data{i}"
            log = Path(tmp) / f"server{i}.log"
            times["fresh"].append(start_once(data_dir, log, args.api_workers))
            times["existing"].append(start_once(data_dir, log, args.api_workers))
    print(f"server start over {args.rounds} rounds (median; seconds from launch)")
    for kind, runs in times.items():
        health = statistics.median(h for h, _ in runs)
        mlflow = statistics.median(m for _, m in runs)
        verdict = "ok" if health <= TARGETS_S[kind] else "OVER TARGET"
        print(f"  {kind:8} data dir: /health {health:5.2f} s (target {TARGETS_S[kind]:g} s: "
              f"{verdict}); MLflow ready {mlflow:5.2f} s")


if __name__ == "__main__":
    main()
