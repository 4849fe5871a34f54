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


def mlflow_port(log: str) -> list[int]:
    return [int(p) for p in re.findall(r"MLflow UI at http://127\.0\.0\.1:(\d+)", log)]


def test_kill_9_leaves_no_orphans_and_a_restart_adopts_none(start_server) -> None:
    server = start_server(workers=1, own_mlflow=True)
    old_workers = []
    deadline = time.monotonic() + 60
    while not old_workers and time.monotonic() < deadline:
        old_workers = [w["workerId"] for w in
                       requests.get(f"{server.url}/api/v0/worker/", timeout=10).json()]
        time.sleep(0.2)
    assert old_workers and old_workers[0].startswith("embedded:")
    children = descendants(server.proc.pid)
    assert len(children) >= 3  # the MLflow CLI, its uvicorn, the worker (and setpriv's)

    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    deadline = time.monotonic() + 30
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(children), "children outlived the server"

    server.start()
    first, second = mlflow_port(server.log())
    assert first == second == server.port + 1
    # A worker of the first start (an orphan had there been one) may not take jobs.
    for path, body in (("claim", {"workerId": old_workers[0], "queues": None, "wait": 0}),
                       ("heartbeat", {"workerId": old_workers[0], "queues": None,
                                      "hostname": "h"})):
        answer = requests.post(f"{server.url}/api/v0/worker/{path}", json=body, timeout=10)
        assert answer.status_code == 403 and "earlier run" in answer.json()["message"]
    new_workers = []
    deadline = time.monotonic() + 60
    while not new_workers and time.monotonic() < deadline:
        new_workers = [w for w in requests.get(f"{server.url}/api/v0/worker/",
                                               timeout=10).json()
                       if w["workerId"] != old_workers[0]]
        time.sleep(0.2)
    assert new_workers, "the new start's own worker was not accepted"
    children = descendants(server.proc.pid)
    server.stop(signal.SIGKILL)  # tested above: the children follow it
    deadline = time.monotonic() + 30
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
