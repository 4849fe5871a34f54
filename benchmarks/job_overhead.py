"""Job overhead: submit-to-finished time of an entry point that does nothing.

Starts the testbed as a user would (an MLflow server, `dioptra server`, and for the RQ
mode two `dioptra worker` processes on a local Redis), then for each dispatch mode:

- latency: 50 jobs one after another, submit -> status finished (p50, p95);
- throughput: 50 jobs submitted at once, jobs per minute with every worker busy.

The baseline, measured in the same run, is the bare cost of starting the entry point's
process (`bash -c "python -c pass"`); the platform overhead is latency minus that.
Target: platform overhead under 1 s p50 in the embedded mode.

The ML-stack job (an entry point that imports mlflow, torch, ART, scikit-learn and the
builtins and logs one metric) is measured in the embedded mode with warm start by fork
(the default), by one prepared interpreter per job (DIOPTRA_WARM_FORK=0) and off
(`--no-warm-start`), beside its bare cost (`bash -c "python job.py"`): p50/p95 over
`--ml-jobs` sequential jobs, jobs per minute for `--ml-burst` submitted at once, and the
memory of one ready interpreter (what warm start keeps per worker).

    python benchmarks/job_overhead.py [--jobs 50] [--skip-rq] [--ml-jobs 20] [--ml-burst 50]
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


ML_MLPROJECT = b"""name: ml-stack
entry_points:
  main:
    command: "python job.py"
"""
ML_JOB = b"""import mlflow, torch, art, sklearn  # noqa
import dioptra_builtins.attacks  # noqa
mlflow.log_metric("imported", 1.0)
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


def ml_archive(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("MLproject", ML_MLPROJECT), ("job.py", ML_JOB)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def bare_ml_cost(folder: Path, tracking_uri: str, n: int = 3) -> float:
    """`bash -c "python job.py"` in the job's way: a fresh interpreter, same script."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_bytes(ML_JOB)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(["bash", "-c", "python job.py"], cwd=folder, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def measure(client: DioptraClient, archive: Path, experiment: str, queue: str, n: int,
            burst: int | None = None, warmup: int = 4) -> tuple[list[float], float]:
    # Warm-up: the first job per worker pays one-off costs (imports, connections).
    for _ in range(warmup):
        wait_finished(client, client.submit_job(archive, experiment, "main", queue=queue)["jobId"])
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        job = client.submit_job(archive, experiment, "main", queue=queue)
        wait_finished(client, job["jobId"])
        latencies.append(time.perf_counter() - start)
    burst = n if burst is None else burst
    start = time.perf_counter()
    ids = [client.submit_job(archive, experiment, "main", queue=queue)["jobId"]
           for _ in range(burst)]
    for job_id in ids:
        wait_finished(client, job_id, timeout_s=3600)
    per_minute = burst / (time.perf_counter() - start) * 60
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
    parser.add_argument("--ml-jobs", type=int, default=20)
    parser.add_argument("--ml-burst", type=int, default=50)
    parser.add_argument("--skip-noop", action="store_true", help="only the ML-stack job")
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
            modes = [] if args.skip_noop else [("embedded", [])]
            if not args.skip_rq and not args.skip_noop:
                redis_url = empty_redis_db(args.redis)
                if redis_url:
                    modes.append(("redis+rq", ["--redis-url", redis_url, "--workers", "0"]))
            for mode, extra in modes:
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                cmd = [sys.executable, "-m", "dioptra.cli", "server", "--port", str(port),
                       "--data-dir", str(tmp_path / mode), "--log-level", "warning",
                       "--mlflow-tracking-uri", mlflow_server.uri, *extra]
                started = time.perf_counter()
                server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
                procs.append(server)
                wait_up(f"{url}/health")
                print(f"{mode}: `dioptra server` answered /health after "
                      f"{time.perf_counter() - started:.1f} s (fresh data directory)")
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
            if args.ml_jobs:
                ml_stack(args, tmp_path, mlflow_server.uri, procs)
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


def ml_stack(args: argparse.Namespace, tmp_path: Path, tracking_uri: str,
             procs: list[subprocess.Popen]) -> None:
    from dioptra.worker import warm

    print(f"\nML-stack job ({ML_JOB.decode().splitlines()[0]} ...), embedded mode, "
          f"{os.cpu_count()} cores")
    rss_kb, ready_s = warm.measure_ready_memory()
    print(f"one ready warm interpreter: {rss_kb / 1024:.0f} MB resident, ready after "
          f"{ready_s:.1f} s ({len(warm.modules())} modules: {', '.join(warm.modules())})")
    bare = bare_ml_cost(tmp_path / "bare", tracking_uri)
    print(f"bare `bash -c 'python job.py'`: {bare * 1000:.0f} ms (median of 3)")
    archive = ml_archive(tmp_path / "ml.tar.gz")
    results: dict[str, tuple[float, float]] = {}
    modes = (("fork", [], {}),  # the default: each job a fork of the worker's fork server
             ("prepared", [], {"DIOPTRA_WARM_FORK": "0"}),  # one interpreter per job
             ("cold", ["--no-warm-start"], {}))
    for mode, extra, env in modes:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "dioptra.cli", "server", "--port", str(port),
               "--data-dir", str(tmp_path / f"ml-{mode}"), "--log-level", "warning",
               "--mlflow-tracking-uri", tracking_uri, *extra]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ, **env})
        procs.append(server)
        try:
            wait_up(f"{url}/health")
            client = DioptraClient(url)
            experiment = client.register_experiment(f"bench-ml-{mode}-{port}")["name"]
            queue = client.register_queue(f"bench-ml-{port}")["name"]
            latencies, per_minute = measure(client, archive, experiment, queue, args.ml_jobs,
                                            burst=args.ml_burst, warmup=2)
            p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
            results[mode] = (p50, per_minute)
            print(f"{mode:>8}: submit->finished p50 {p50 * 1000:7.0f} ms  p95 "
                  f"{p95 * 1000:7.0f} ms ({p50 / bare:4.2f}x bare) over {args.ml_jobs} "
                  f"sequential jobs | {per_minute:5.1f} jobs/min for {args.ml_burst} at once")
        finally:
            server.terminate()
            server.wait(timeout=60)
            procs.remove(server)
    p50, per_minute = results["fork"]
    print(f"targets: warm p50 <= 1.0 s and <= 0.2x bare: {p50:.2f} s, {p50 / bare:.2f}x "
          f"({'met' if p50 <= 1.0 and p50 <= 0.2 * bare else 'NOT met'}); {args.ml_burst} at "
          f"once >= 3x the jobs/min of cold start: {per_minute / results['cold'][1]:.1f}x "
          f"({'met' if per_minute >= 3 * results['cold'][1] else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
