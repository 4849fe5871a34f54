#!/usr/bin/env python
"""Throughput and latency of the v0 REST API under load, measured the way a user runs it.

Starts `dioptra server` as a subprocess (its own temporary data directory, a free port,
no embedded workers, an MLflow tracking server started here), fills it with queues and
experiments, then loads it from a second process with `wrk` for a few seconds per
scenario:

* GET /api/v0/queue/            with 20 queues, then with 2,000 queues
* GET /api/v0/queue/<id>
* GET /api/v0/experiment/       (20 experiments)
* POST /api/v0/job/             multipart/form-data with a small workflow archive

and prints requests/s and latency p50/p90/p99 for each, plus the time of one
GET /api/v0/queue/ with 2,000 queues (median of 50 sequential requests: served from the
cache, and uncached, each right after a change), compared with the original Dioptra's
figures on a 2-core machine (2 gunicorn workers, 16 connections).

    python benchmarks/api_throughput.py                # ~1-2 minutes
    python benchmarks/api_throughput.py --duration 5 --connections 32
    python benchmarks/api_throughput.py --api-workers 1   # one API process

Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`).
Every request goes to 127.0.0.1 only, and each run of wrk is bounded by --duration.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

# The original Dioptra (Flask + gunicorn) on a 2-core machine, and this project's targets.
BASELINE_LIST_20_RPS = 500.0
TARGET_LIST_20_RPS = 3 * BASELINE_LIST_20_RPS
BASELINE_LIST_2000_MS = 80.0
TARGET_LIST_2000_MS = 20.0
# One uncached GET /api/v0/queue/ with 2,000 queues (the original rebuilds every time).
BASELINE_UNCACHED_2000_MS = (39.0, 70.0)
TARGET_UNCACHED_2000_MS = 10.0
# GET /api/v0/queue/<id> at 16 connections; the target is 3x the original's rate.
BASELINE_LOOKUP_RPS = 704.0
BASELINE_LOOKUP_P99_MS = 37.0
TARGET_LOOKUP_RPS = 3 * BASELINE_LOOKUP_RPS
# This project with one API process and no single-flight rebuild, 2,000 queues, loaded.
BEFORE_LIST_2000_LOADED_P99_MS = 1100.0

WRK_MISSING = """\
wrk is not installed; this benchmark needs it to load the server.
Install it with:
    apt-get install -y wrk        (Debian, Ubuntu; as root or with sudo)
    brew install wrk              (macOS)
then run this script again."""

# Appended to every wrk script: print the summary as one JSON line (times in µs).
LUA_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, '
    .. '"mean": %.1f, "max": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write,
    e.status, e.timeout))
end
"""

MLPROJECT = """\
name: bench
entry_points:
  main:
    parameters:
      x: {type: float, default: 1.0}
    command: "python run.py --x {x}"
"""


@dataclass
class Result:
    scenario: str
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_ms: float | None  # server process CPU time per request (Linux only)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its children (the API processes
    of a multi-process server); None where /proc is unavailable."""
    fields = _stat(pid)
    if fields is None:
        return None
    total = int(fields[11]) + int(fields[12])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (child := _stat(int(entry.name))) and child[1] == str(pid):
            total += int(child[11]) + int(child[12])
    return total / os.sysconf("SC_CLK_TCK")


def api_workers_used(requested: int | None) -> int:
    """What the server makes of --api-workers (config.Settings.effective_api_workers)."""
    from dioptra.config import Settings

    return Settings(api_workers=requested).effective_api_workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workflow_archive() -> bytes:
    """A small, valid workflow: an MLproject and the script its entry point runs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("MLproject", MLPROJECT), ("run.py", "print('hello')\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes
              ) -> tuple[bytes, str]:
    boundary = "dioptra-bench-" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{filename}"\r\nContent-Type: application/gzip\r\n\r\n'.encode()
                 + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Testbed:
    """One `dioptra server` subprocess and the MLflow server it uses."""

    def __init__(self, root: Path, database_uri: str | None, api_workers: int | None
                 ) -> None:
        self.root = root
        self.api_workers = api_workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_uri = database_uri
        self.mlflow = None
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "server.log"

    def start(self) -> None:
        from dioptra.mlflow_server import MLflowServer

        self.mlflow = MLflowServer(self.root)
        self.mlflow.start()
        self.mlflow.wait_ready()
        cmd = [sys.executable, "-m", "dioptra.cli", "server", "--data-dir",
               str(self.root / "data"), "--port", str(self.port), "--workers", "0",
               "--mlflow-tracking-uri", self.mlflow.uri, "--log-level", "warning"]
        if self.database_uri:
            cmd += ["--database-uri", self.database_uri]
        if self.api_workers is not None:
            cmd += ["--api-workers", str(self.api_workers)]
        env = {k: v for k, v in os.environ.items() if k != "DIOPTRA_API_TOKEN"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log_path.open("ab"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dioptra server exited:\n{self.log_path.read_text()}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"dioptra server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.mlflow is not None:
            self.mlflow.stop()


def register(url: str, kind: str, names: list[str], parallel: int = 4) -> list[dict]:
    session = requests.Session()

    def one(name: str) -> dict:
        answer = session.post(f"{url}/api/v0/{kind}/", json={"name": name}, timeout=60)
        answer.raise_for_status()
        return answer.json()

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, names))


def run_wrk(scenario: str, url: str, args: argparse.Namespace, workdir: Path,
            server_pid: int, setup_lua: str = "") -> Result:
    script = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(setup_lua + LUA_REPORT)
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections),
           "-d", f"{args.duration}s", "--timeout", "10s", "-s", str(script), url]
    cpu_before = cpu_seconds(server_pid)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    cpu_after = cpu_seconds(server_pid)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and data["requests"]:
        cpu_ms = 1000 * (cpu_after - cpu_before) / data["requests"]
    return Result(scenario, data["requests"] / (data["duration_us"] / 1e6),
                  data["p50"] / 1000, data["p90"] / 1000, data["p99"] / 1000,
                  data["requests"], errors, cpu_ms)


def sequential_ms(url: str, count: int) -> list[float]:
    """Wall time of ``count`` GETs one after the other on a kept-alive connection."""
    session = requests.Session()
    session.get(url, timeout=60).raise_for_status()  # warm up the connection
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(url, timeout=60)
        _ = answer.content
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


def uncached_ms(api: str, queue_id: int, count: int) -> list[float]:
    """Wall time of ``count`` GETs of the queue list, each right after a change (a
    rename, not timed): every one rebuilds the list, whichever process serves it."""
    session = requests.Session()
    original = session.get(f"{api}/queue/{queue_id}", timeout=60).json()["name"]
    times = []
    for i in range(count):
        session.put(f"{api}/queue/{queue_id}", json={"name": f"{original}-r{i}"},
                    timeout=60).raise_for_status()
        started = time.perf_counter()
        answer = session.get(f"{api}/queue/", timeout=60)
        _ = answer.content
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    session.put(f"{api}/queue/{queue_id}", json={"name": original}, timeout=60)
    return times


def submission_lua(body_path: Path, content_type: str) -> str:
    return f"""
local f = assert(io.open({json.dumps(str(body_path))}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = {json.dumps(content_type)}
"""


def print_table(results: list[Result]) -> None:
    print()
    print(f"{'scenario':<44} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'requests':>8} {'errors':>6} {'server CPU ms/req':>17}")
    for r in results:
        cpu = "-" if r.server_cpu_ms is None else f"{r.server_cpu_ms:.2f}"
        print(f"{r.scenario:<44} {r.requests_per_s:>8.0f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f} "
              f"{r.p99_ms:>8.2f} {r.requests:>8} {r.errors:>6} {cpu:>17}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run (8)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent connections kept open by wrk (16)")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (1: leave the other core to the server)")
    parser.add_argument("--queues", type=int, default=2000, help="queues for the large list")
    parser.add_argument("--sequential", type=int, default=50,
                        help="sequential requests timed for the large list (50)")
    parser.add_argument("--database-uri", help="benchmark on this database (default: SQLite)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--api-workers", type=int,
                        help="the server's --api-workers (default: the server's, the cores)")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print(WRK_MISSING, file=sys.stderr)
        return 2

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"note: the load average is {load:.1f} before starting: other processes share "
              "the CPU, so the figures below will be lower than on an idle machine",
              file=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="dioptra-bench-"))
    testbed = Testbed(root, args.database_uri, args.api_workers)
    api_workers = api_workers_used(args.api_workers)
    results: list[Result] = []
    try:
        print(f"starting dioptra server and MLflow in {root} ...", flush=True)
        testbed.start()
        api = f"{testbed.url}/api/v0"
        tag = uuid.uuid4().hex[:6]
        queues = register(testbed.url, "queue", [f"q-{tag}-{i:04d}" for i in range(20)])
        experiments = register(testbed.url, "experiment",
                               [f"exp-{tag}-{i:02d}" for i in range(20)], parallel=1)
        print(f"server at {testbed.url}: 20 queues, 20 experiments; wrk -t{args.threads} "
              f"-c{args.connections} -d{args.duration}s per scenario", flush=True)

        def scenario(name: str, url: str, lua: str = "") -> Result:
            print(f"  {name} ...", flush=True)
            result = run_wrk(name, url, args, root, testbed.proc.pid, lua)
            results.append(result)
            return result

        list_20 = scenario("GET /api/v0/queue/ (20 queues)", f"{api}/queue/")
        lookup = scenario("GET /api/v0/queue/<id>", f"{api}/queue/{queues[7]['queueId']}")
        scenario("GET /api/v0/experiment/ (20 experiments)", f"{api}/experiment/")

        body, content_type = multipart(
            {"experimentName": experiments[0]["name"], "queue": queues[0]["name"],
             "entryPoint": "main", "entryPointKwargs": "-P x=2", "timeout": "1h"},
            "workflow", "workflows.tar.gz", workflow_archive())
        body_path = root / "submission.body"
        body_path.write_bytes(body)
        probe = requests.post(f"{api}/job/", data=body,
                              headers={"Content-Type": content_type}, timeout=60)
        if probe.status_code != 200 or probe.json().get("status") != "queued":
            raise RuntimeError(f"a job submission failed: {probe.status_code} {probe.text}")
        scenario("POST /api/v0/job/ (submit, 0.3 kB archive)", f"{api}/job/",
                 submission_lua(body_path, content_type))

        print(f"  registering {args.queues - 20} more queues ...", flush=True)
        register(testbed.url, "queue", [f"q-{tag}-{i:04d}" for i in range(20, args.queues)])
        listed = requests.get(f"{api}/queue/", timeout=60).json()
        if len(listed) != args.queues:
            raise RuntimeError(f"expected {args.queues} queues, the server lists {len(listed)}")
        list_many = scenario(f"GET /api/v0/queue/ ({args.queues} queues)", f"{api}/queue/")
        times = sequential_ms(f"{api}/queue/", args.sequential)
        uncached = uncached_ms(api, queues[3]["queueId"], args.sequential)
        size = len(requests.get(f"{api}/queue/", timeout=60).content)
    finally:
        testbed.stop()
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print_table(results)
    median = statistics.median(times)
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(f"\nGET /api/v0/queue/ with {args.queues} queues, {args.sequential} sequential "
          f"requests: median {median:.1f} ms, p90 {p90:.1f} ms, "
          f"min {ordered[0]:.1f} ms (response body {size / 1024:.0f} KiB)")
    uncached_median = statistics.median(uncached)
    print(f"the same, each right after a change (uncached): median {uncached_median:.1f} ms, "
          f"min {min(uncached):.1f} ms")
    rps_ratio = list_20.requests_per_s / BASELINE_LIST_20_RPS
    ms_ratio = BASELINE_LIST_2000_MS / median
    verdict = {True: "met", False: "MISSED"}
    low, high = BASELINE_UNCACHED_2000_MS
    print(f"\nagainst the original Dioptra (2-core machine; this server: {api_workers} API "
          f"process{'es' if api_workers > 1 else ''}):")
    print(f"  GET /queue/<id> at {args.connections} connections: "
          f"{lookup.requests_per_s:.0f} req/s vs {BASELINE_LOOKUP_RPS:.0f} -> "
          f"{lookup.requests_per_s / BASELINE_LOOKUP_RPS:.1f}x, p99 {lookup.p99_ms:.1f} ms vs "
          f"{BASELINE_LOOKUP_P99_MS:.0f} ms  (target >= {TARGET_LOOKUP_RPS:.0f} req/s: "
          f"{verdict[lookup.requests_per_s >= TARGET_LOOKUP_RPS]})")
    print(f"  GET /queue/ ({args.queues} queues), uncached: {uncached_median:.1f} ms vs "
          f"{low:.0f}-{high:.0f} ms -> {low / uncached_median:.1f}-"
          f"{high / uncached_median:.1f}x the original's speed  "
          f"(target < {TARGET_UNCACHED_2000_MS:.0f} ms: "
          f"{verdict[uncached_median < TARGET_UNCACHED_2000_MS]})")
    print(f"  GET /queue/ ({args.queues} queues) under load: p99 {list_many.p99_ms:.1f} ms "
          f"(one API process without single-flight rebuilds: "
          f"{BEFORE_LIST_2000_LOADED_P99_MS:.0f} ms -> "
          f"{BEFORE_LIST_2000_LOADED_P99_MS / list_many.p99_ms:.1f}x lower)")
    print(f"  GET /queue/ (20 queues): {list_20.requests_per_s:.0f} req/s vs "
          f"{BASELINE_LIST_20_RPS:.0f} -> {rps_ratio:.1f}x  "
          f"(target >= {TARGET_LIST_20_RPS:.0f} req/s: "
          f"{verdict[list_20.requests_per_s >= TARGET_LIST_20_RPS]})")
    print(f"  GET /queue/ ({args.queues} queues), one request: {median:.1f} ms vs "
          f"{BASELINE_LIST_2000_MS:.0f} ms -> {ms_ratio:.1f}x the baseline's speed  "
          f"(target < {TARGET_LIST_2000_MS:.0f} ms: {verdict[median < TARGET_LIST_2000_MS]})")
    print(f"  under load, {args.queues} queues: {list_many.requests_per_s:.0f} req/s, "
          f"p50 {list_many.p50_ms:.1f} ms")
    if any(r.errors for r in results):
        print("\nWARNING: some requests failed (see the errors column)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({
            "results": [asdict(r) for r in results],
            "list_many_sequential_ms": {"median": median, "p90": p90, "min": ordered[0],
                                        "count": len(times)},
            "list_many_uncached_ms": {"median": uncached_median, "min": min(uncached),
                                      "count": len(uncached)},
            "api_workers": api_workers,
            "settings": {"duration": args.duration, "connections": args.connections,
                         "threads": args.threads, "queues": args.queues,
                         "cpus": os.cpu_count(), "load_average_before": load},
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
