"""Job overhead: submit-to-finished time of an entry point that does nothing.

Starts the testbed as a user would (an MLflow server, `dioptra server`, and for the RQ
mode two `dioptra worker` processes on a local Redis), then for each dispatch mode:

- latency: 50 jobs one after another, submit -> status finished (p50, p95);
- throughput: 50 jobs submitted at once, jobs per minute with every worker busy.

The baseline, measured in the same run, is the bare cost of starting the entry point's
process (`bash -c "python -c pass"`); the platform overhead is latency minus that.
Target: platform overhead under 1 s p50 in the embedded mode.

    python benchmarks/job_overhead.py [--jobs 50] [--skip-rq]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import requests

from dioptra.client import DioptraClient
from dioptra.mlflow_server import MLflowServer

MLPROJECT = b"""name: noop
entry_points:
  main:
    command: "python -c pass"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def noop_archive(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("MLproject")
        info.size = len(MLPROJECT)
        tar.addfile(info, io.BytesIO(MLPROJECT))
    return path


def bare_process_cost(n: int = 20) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(["bash", "-c", f"{sys.executable} -c pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wait_up(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wait_finished(client: DioptraClient, job_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get_job_by_id(job_id)
        if job["status"] in ("finished", "failed"):
            if job["status"] != "finished":
                raise RuntimeError(client.get_job_log(job_id)["log"])
            return job
        time.sleep(0.01)
    raise TimeoutError(job_id)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(client: DioptraClient, archive: Path, experiment: str, queue: str, n: int
            ) -> tuple[list[float], float]:
    # Warm-up: the first job per worker pays one-off costs (imports, connections).
    for _ in range(4):
        wait_finished(client, client.submit_job(archive, experiment, "main", queue=queue)["jobId"])
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        job = client.submit_job(archive, experiment, "main", queue=queue)
        wait_finished(client, job["jobId"])
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    ids = [client.submit_job(archive, experiment, "main", queue=queue)["jobId"]
           for _ in range(n)]
    for job_id in ids:
        wait_finished(client, job_id)
    per_minute = n / (time.perf_counter() - start) * 60
    return latencies, per_minute


def report(mode: str, latencies: list[float], per_minute: float, bare: float) -> None:
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    print(f"{mode:>9}: submit->finished p50 {p50 * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms"
          f"  | overhead p50 {(p50 - bare) * 1000:6.0f} ms ({p50 / bare:4.1f}x the bare "
          f"process)  | {per_minute:6.1f} jobs/min")


def empty_redis_db(base: str) -> str | None:
    try:
        import redis

        for index in range(15, 0, -1):
            conn = redis.Redis.from_url(f"{base}/{index}", socket_connect_timeout=2)
            if conn.dbsize() == 0:
                return f"{base}/{index}"
    except Exception as exc:  # noqa: BLE001
        print(f"(Redis not available: {exc})")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--skip-rq", action="store_true")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()

    bare = bare_process_cost()
    print(f"bare entry point process (bash -c 'python -c pass'): {bare * 1000:.0f} ms")
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="dioptra-bench-") as tmp:
        tmp_path = Path(tmp)
        archive = noop_archive(tmp_path / "noop.tar.gz")
        mlflow_server = MLflowServer(tmp_path / "mlflow")
        mlflow_server.start()
        mlflow_server.wait_ready()
        redis_url = None
        try:
            modes = [("embedded", [])]
            if not args.skip_rq:
                redis_url = empty_redis_db(args.redis)
                if redis_url:
                    modes.append(("redis+rq", ["--redis-url", redis_url, "--workers", "0"]))
            for mode, extra in modes:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                cmd = [sys.executable, "-m", "dioptra.cli", "server", "--port", str(port),
                       "--data-dir", str(tmp_path / mode), "--log-level", "warning",
                       "--mlflow-tracking-uri", mlflow_server.uri, *extra]
                server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
                procs.append(server)
                wait_up(f"{url}/health")
                client = DioptraClient(url)
                experiment = client.register_experiment(f"bench-{mode}-{port}")["name"]
                queue = client.register_queue(f"bench-{port}")["name"]
                if mode == "redis+rq":
                    for i in range(os.cpu_count() or 2):
                        procs.append(subprocess.Popen(
                            [sys.executable, "-m", "dioptra.cli", "worker", "--server", url,
                             "--redis-url", redis_url, "--queue", queue,
                             "--worker-id", f"bench-{i}", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL))
                latencies, per_minute = measure(client, archive, experiment, queue,
                                                args.jobs)
                report(mode, latencies, per_minute, bare)
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            mlflow_server.stop()
            if redis_url:
                import redis

                redis.Redis.from_url(redis_url).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
