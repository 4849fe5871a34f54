"""`make demo`: start a testbed, run the digits-evasion example on it, stop.

Starts `dioptra server` on the embedded defaults (SQLite, local object store, its own
MLflow server and local workers, all under --data-dir), waits until it answers, runs
examples/digits-evasion/run.py against it, prints the robustness table and where the
plot is, then stops the server. The data dir stays: `make serve` shows the same runs.

    python examples/demo.py --data-dir data --port 5000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from dioptra import mlflow_ui as mlflow_ui_links

EXAMPLES = Path(__file__).resolve().parent
READY_TIMEOUT_S = 240


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As the server will: connections of an earlier run in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def load_evasion():
    spec = importlib.util.spec_from_file_location(
        "digits_evasion_run", EXAMPLES / "digits-evasion" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_server(data_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "dioptra.cli", "server", "--data-dir", str(data_dir),
               "--port", str(port), "--log-level", "warning"]
    env = dict(os.environ)
    env.pop("DIOPTRA_MLFLOW_TRACKING_URI", None)  # the demo runs its own MLflow
    log = log_path.open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env)


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path) -> bool:
    """Poll /health (every 0.1 s: it answers within seconds), printing a dot a second;
    False if the server died or never answered."""
    print("starting the testbed ", end="", flush=True)
    start = time.monotonic()
    dots = 0
    while time.monotonic() < start + READY_TIMEOUT_S:
        if proc.poll() is not None:
            print(f"\nthe server exited with code {proc.returncode}; the end of its log "
                  f"({log_path}):")
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-30:]))
            return False
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                print(" ready")
                return True
        except requests.RequestException:
            pass
        if time.monotonic() - start >= dots + 1:
            dots += 1
            print(".", end="", flush=True)
        time.sleep(0.1)
    print(f"\nno answer from {url}/health after {READY_TIMEOUT_S} s; see {log_path}")
    return False


def mlflow_ui(log_path: Path, port: int) -> str:
    """The MLflow address the server printed at start-up ("MLflow UI at http://...")."""
    found = re.findall(r"MLflow UI at (\S+?)\)?$", log_path.read_text(errors="replace"),
                       flags=re.MULTILINE)
    return found[-1].rstrip("/") if found else f"http://127.0.0.1:{port}/mlflow"


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    print("stopping the testbed ...", flush=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()

    data_dir = Path(args.data_dir).resolve()
    url = f"http://127.0.0.1:{args.port}"
    if port_in_use("127.0.0.1", args.port):
        print(f"port {args.port} is already in use: is a testbed running already (`make "
              f"serve`)? Stop it, or choose another port: make demo PORT={args.port + 10}",
              file=sys.stderr)
        return 2
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "demo-server.log"
    started = time.monotonic()
    proc = start_server(data_dir, args.port, log_path)
    try:
        if not wait_ready(proc, url, log_path):
            return 1
        ui = mlflow_ui(log_path, args.port)
        print(f"testbed at {url} (data in {data_dir}, server log {log_path})\n")
        outcome = load_evasion().run(url)
        if outcome.text:
            print("\n" + outcome.text + "\n")
        for warning in outcome.report.get("warnings", []):
            print(f"warning: {warning}")
        if not outcome.ok:
            print("some jobs failed (their log tails are above)")
            return 1
        report_run = outcome.run_id("report")
        experiment = outcome.experiment_id
        pipeline = outcome.state
        print(f"MLflow UI:   {mlflow_ui_links.experiment_url(ui, experiment)}  (experiment "
              f"digits-evasion; the jobs' runs are nested under run {pipeline['mlflowRunId']}, "
              "the pipeline's)")
        print(f"report:      {url}/api/v0/pipeline/{pipeline['pipelineId']}/report.html "
              "(table, charts, definition; also artifact report.html of the pipeline's run)")
        print(f"report run:  {report_run}")
        print(f"plot:        artifact accuracy_vs_eps.png of that run "
              f"(runs:/{report_run}/accuracy_vs_eps.png)")
        print(f"             {mlflow_ui_links.run_url(ui, experiment, report_run)}")
        for path in sorted(data_dir.glob(f"mlflow/**/{report_run}/**/accuracy_vs_eps.png")):
            print(f"             on disk: {path}")
        print(f"web interface: {url}/jobs?experimentId={experiment}  (after `make serve`)")
        print(f"\ndone in {time.monotonic() - started:.0f} s; `make serve` serves the same "
              "data again to browse the runs")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 130
    finally:
        stop_server(proc)


if __name__ == "__main__":
    sys.exit(main())
