"""The `dioptra` command explains itself and refuses bad invocations clearly."""

import subprocess
import sys


def dioptra(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dioptra.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_help_texts():
    top = dioptra("--help")
    assert top.returncode == 0
    assert "server" in top.stdout and "worker" in top.stdout
    server = dioptra("server", "--help")
    assert server.returncode == 0
    for flag in ("--data-dir", "--database-uri", "--redis-url", "--storage-url",
                 "--mlflow-tracking-uri", "--workers", "--token-file", "--insecure"):
        assert flag in server.stdout
    assert "DIOPTRA_DATA_DIR" in server.stdout
    worker = dioptra("worker", "--help")
    assert worker.returncode == 0
    assert "--server" in worker.stdout and "--queue" in worker.stdout


def test_bad_invocations():
    no_command = dioptra()
    assert no_command.returncode == 2 and "COMMAND" in no_command.stderr
    no_server = dioptra("worker")
    assert no_server.returncode == 2 and "--server" in no_server.stderr
    rq_without_queue = dioptra("worker", "--server", "http://127.0.0.1:9",
                               "--redis-url", "redis://127.0.0.1:6379/15")
    assert rq_without_queue.returncode == 2
    assert "--queue" in rq_without_queue.stderr



def test_json_logs_are_one_object_per_line(start_server):
    import json

    server = start_server("--log-format", "json", "--log-level", "info")
    server.stop()
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert any("startup complete" in e["message"] for e in entries), server.log()
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
