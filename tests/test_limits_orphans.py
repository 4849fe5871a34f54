"""kill -9 of the server leaves nothing behind, and a restart adopts no stranger
(issue 7, item 3): checked with real processes."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import requests


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: split after the last ')'.
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def mlflow_ui(log: str) -> list[str]:
    return re.findall(r"MLflow UI at (http://\S+?)\)", log)


def worker_ids(pids: set[int]) -> list[str]:
    """The --worker-id of each embedded worker among ``pids``."""
    found = []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "dioptra.worker" in argv and "--worker-id" in argv:
            found.append(argv[argv.index("--worker-id") + 1])
    return found


def wait_gone(pids: set[int], timeout_s: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def test_kill_9_leaves_no_orphans_and_a_restart_adopts_none(start_server) -> None:
    server = start_server(workers=1, own_mlflow=True)
    children = descendants(server.proc.pid)  # the workers are up once /health answers
    old_workers = worker_ids(children)
    assert len(old_workers) == 1 and old_workers[0].startswith("embedded:")
    assert len(children) >= 3  # the MLflow CLI, its uvicorn, the worker

    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    assert not wait_gone(children), "children outlived the server"

    server.start()
    # The MLflow UI is where it was, and answers (no orphan holds on to its socket).
    first, second = mlflow_ui(server.log())
    assert first == second == f"{server.url}/mlflow/"
    assert requests.get(second, timeout=30).status_code == 200
    # A worker of the first start (an orphan had there been one) may not take jobs.
    for path, body in (("claim", {"workerId": old_workers[0], "queues": None, "wait": 0}),
                       ("heartbeat", {"workerId": old_workers[0], "queues": None,
                                      "hostname": "h"})):
        answer = requests.post(f"{server.url}/api/v0/worker/{path}", json=body, timeout=10)
        assert answer.status_code == 403 and "earlier run" in answer.json()["message"]
    children = descendants(server.proc.pid)
    new_workers = worker_ids(children)
    assert len(new_workers) == 1 and new_workers != old_workers
    server.stop(signal.SIGKILL)  # tested above: the children follow it
    assert not wait_gone(children)
