"""`dioptra server --api-workers 2`: two API processes on one socket behave as one
server. A change made through one connection is seen at once through every other,
whichever process holds it; a job submitted through either runs on the embedded
worker; a crashed API process is replaced; nothing outlives the server."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from testbed import processes_with, start_worker, unique, worker_pids
from workflows import echo_workflow

from dioptra.client import DioptraClient


def api_processes(server) -> list[int]:
    return processes_with(f"dioptra.api_child\0--serving\0{server.url}\0")


def alive(pids: list[int]) -> list[int]:
    """Those still running (a zombie no one has reaped yet has ended)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.append(pid)
    return running


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def _established_to(port: int) -> set[str]:
    """Inodes of the server-side ends of the established TCP connections to ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                found.add(fields[9])
    return found


@pytest.fixture
def two_processes(start_server):
    server = start_server(workers=1, env={"DIOPTRA_API_WORKERS": "2"})
    assert len(api_processes(server)) == 2
    return server


def connections_on_both(server, count: int = 16, headers: dict | None = None
                        ) -> list[requests.Session]:
    """Kept-alive connections, until both API processes hold some (opened at once: one
    after the other, they may all go to whichever process is quicker to accept)."""

    def opened(_) -> requests.Session:
        session = requests.Session()
        session.headers.update(headers or {})
        session.get(f"{server.url}/api/v0/queue/", timeout=30).raise_for_status()
        return session

    for _ in range(10):
        with ThreadPoolExecutor(count) as pool:
            sessions = list(pool.map(opened, range(count)))
        served = _established_to(server.port)
        if all(_socket_inodes(pid) & served for pid in api_processes(server)):
            return sessions
        for session in sessions:
            session.close()
    raise AssertionError("the connections all went to one API process")


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_change_through_one_process_is_seen_at_once_through_the_other(
        request, start_server, database):
    args = ["--database-uri", request.getfixturevalue("postgres_uri")] \
        if database == "postgres" else []
    server = start_server(*args, env={"DIOPTRA_API_WORKERS": "2"})
    sessions = connections_on_both(server)
    api = f"{server.url}/api/v0/queue"
    name = unique("shared")
    created = sessions[0].post(f"{api}/", json={"name": name}, timeout=30).json()
    for session in sessions:  # every process had the old list cached
        assert name in [q["name"] for q in session.get(f"{api}/", timeout=30).json()]
        assert session.get(f"{api}/{created['queueId']}", timeout=30).json() == created

    renamed = unique("renamed")
    sessions[1].put(f"{api}/{created['queueId']}", json={"name": renamed},
                    timeout=30).raise_for_status()
    sessions[2].put(f"{api}/{created['queueId']}/lock", timeout=30).raise_for_status()
    for session in sessions:
        assert renamed not in [q["name"] for q in session.get(f"{api}/", timeout=30).json()]
        assert session.get(f"{api}/{created['queueId']}", timeout=30).json()["name"] == renamed
    sessions[3].delete(f"{api}/{created['queueId']}", timeout=30).raise_for_status()
    for session in sessions:
        assert session.get(f"{api}/{created['queueId']}", timeout=30).status_code == 404


def test_a_job_runs_and_stopping_leaves_no_process(two_processes, tmp_path):
    server = two_processes
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("procs"))["name"]
    queue = client.register_queue(unique("cpu"))["name"]
    jobs = [client.submit_job(echo_workflow(tmp_path), experiment, "main", queue=queue)
            for _ in range(2)]
    for job in jobs:
        done = client.wait_for_job(job["jobId"], timeout_s=120)
        assert done["status"] == "finished", client.get_job_log(job["jobId"])["log"]
    children = api_processes(server) + worker_pids(server.url)
    assert server.stop() == 0
    assert alive(children) == []


def test_a_crashed_api_process_is_replaced(two_processes):
    server = two_processes
    crashed = api_processes(server)[0]
    os.kill(crashed, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = api_processes(server)
        if len(now) == 2 and crashed not in now:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"not replaced: {api_processes(server)}")
    for _ in range(10):
        assert requests.get(f"{server.url}/api/v0/queue/", timeout=30).status_code == 200
    assert "restarting it" in server.log()


def test_the_api_processes_die_with_a_killed_server(two_processes):
    server = two_processes
    children = api_processes(server)
    server.proc.kill()
    server.proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and api_processes(server):
        time.sleep(0.2)
    assert api_processes(server) == []
    assert alive(children) == []


def test_a_login_holds_in_both_processes_and_a_logout_ends_it_in_both(start_server):
    token = "processes-" + unique("token")
    server = start_server(env={"DIOPTRA_API_WORKERS": "2", "DIOPTRA_API_TOKEN": token})
    sessions = connections_on_both(server, headers={"Authorization": f"Bearer {token}"})
    login = requests.post(f"{server.url}/login", data={"token": token},
                          allow_redirects=False, timeout=30)
    assert login.status_code == 303
    # Sent by hand: the cookie is Secure, which requests keeps for HTTPS.
    cookie = {"Cookie": f"dioptra_session={login.cookies['dioptra_session']}"}
    for session in sessions:
        del session.headers["Authorization"]
        assert session.get(f"{server.url}/api/v0/queue/", timeout=30).status_code == 401
        assert session.get(f"{server.url}/api/v0/queue/", headers=cookie,
                           timeout=30).status_code == 200
    requests.post(f"{server.url}/logout", headers=cookie, allow_redirects=False, timeout=30)
    for session in sessions:
        assert session.get(f"{server.url}/api/v0/queue/", headers=cookie,
                           timeout=30).status_code == 401


@pytest.mark.redis
@pytest.mark.postgres
def test_jobs_submitted_through_the_api_processes_reach_rq(start_server, postgres_uri,
                                                           redis_url, tmp_path):
    """With RQ the API processes enqueue the jobs themselves (the main process only
    redispatches what Redis lost)."""
    server = start_server("--database-uri", postgres_uri, "--redis-url", redis_url,
                          env={"DIOPTRA_API_WORKERS": "2"})
    client = DioptraClient(server.url)
    experiment = client.register_experiment(unique("procs-rq"))["name"]
    queue = client.register_queue(unique("cpu"))["name"]
    worker = start_worker(server.url, tmp_path / "worker.log", "--redis-url", redis_url,
                          "--queue", queue, "--worker-id", unique("rq-procs"))
    try:
        jobs = [client.submit_job(echo_workflow(tmp_path), experiment, "main", queue=queue)
                for _ in range(3)]
        for job in jobs:
            done = client.wait_for_job(job["jobId"], timeout_s=180)
            assert done["status"] == "finished", client.get_job_log(job["jobId"])["log"]
    finally:
        worker.stop()
    assert "Redis lost it" not in server.log()  # enqueued by the API processes, not redispatch


def test_every_api_process_learns_mlflow_is_ready_and_serves_it(start_server):
    """MLflow runs once, in the main process; each API process settles its readiness from
    the shared state and serves /mlflow through MLflow's private socket."""
    server = start_server(own_mlflow=True, env={"DIOPTRA_API_WORKERS": "2"})
    sessions = connections_on_both(server)
    deadline = time.monotonic() + 180
    states: set[str] = set()
    while time.monotonic() < deadline:
        states = {s.get(f"{server.url}/health", timeout=30).headers["X-MLflow-State"]
                  for s in sessions}
        if "starting" not in states:
            break
        time.sleep(0.5)
    assert states == {"ready"}, server.log()
    for session in sessions:
        assert session.get(f"{server.url}/mlflow/health", timeout=30).status_code == 200
