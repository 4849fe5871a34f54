"""Bearer-token authentication and the loopback-by-default bind.

`dioptra server` listens on 127.0.0.1 unless told otherwise. With DIOPTRA_API_TOKEN
(or --token-file) every request but /health needs `Authorization: Bearer <token>`; the
client sends it when the same variable is set. A non-loopback address without a token
is refused unless --insecure is given.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from testbed import free_port, start_worker, unique
from workflows import echo_workflow

from dioptra.client import DioptraClient
from dioptra.config import Settings
from dioptra.restapi import auth
from dioptra.restapi.auth import BearerTokenMiddleware
from dioptra.server import InsecureBindError, check_bind

TOKEN = "s3cret-" + "x" * 24


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch):
    """Start every test without a token or host from the caller's environment."""
    for name in ("DIOPTRA_API_TOKEN", "DIOPTRA_HOST"):
        monkeypatch.delenv(name, raising=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket in LISTEN state on ``port`` (Linux /proc)."""
    found: set[str] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, words))
    return found


def require_proc_net() -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp to see which address a socket listens on")


# --- the token on the wire --------------------------------------------------------------


def test_token_is_required_on_every_route_but_health(start_server):
    server = start_server(env={"DIOPTRA_API_TOKEN": TOKEN})
    queues = f"{server.url}/api/v0/queue/"

    missing = requests.get(queues)
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/json")
    assert "Bearer" in missing.headers.get("www-authenticate", "")
    body = missing.json()
    assert "Unauthorized" in body["message"] and "missing" in body["message"]

    wrong = requests.get(queues, headers=bearer(TOKEN + "x"))
    assert wrong.status_code == 401 and "invalid" in wrong.json()["message"]
    for header in (TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", "Bearer ", ""):
        answer = requests.get(queues, headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert "message" in answer.json()

    assert requests.get(queues, headers=bearer(TOKEN)).status_code == 200
    name = unique("authq")
    made = requests.post(queues, json={"name": name}, headers=bearer(TOKEN))
    assert made.status_code == 200 and made.json()["name"] == name
    # Writes are refused without the token, and refused before they happen.
    other = unique("authq")
    assert requests.post(queues, json={"name": other}).status_code == 401
    names = [q["name"] for q in requests.get(queues, headers=bearer(TOKEN)).json()]
    assert name in names and other not in names

    # Every other surface is closed too: item routes, uploads, docs, worker API, 404s.
    for method, path in [("GET", f"/api/v0/queue/{made.json()['queueId']}"),
                         ("GET", "/api/v0/experiment/"), ("GET", "/api/v0/job/"),
                         ("POST", "/api/v0/job/"), ("GET", "/api/v0/taskPlugin/"),
                         ("POST", "/api/v0/worker/heartbeat"), ("GET", "/api/v0/worker/"),
                         ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nowhere")]:
        answer = requests.request(method, server.url + path)
        assert answer.status_code == 401, (method, path)
        assert "message" in answer.json()

    health = requests.get(f"{server.url}/health")
    assert health.status_code == 200 and health.json() == "healthy"


def test_client_sends_the_token_from_the_environment(start_server, monkeypatch, tmp_path):
    server = start_server(env={"DIOPTRA_API_TOKEN": TOKEN})

    monkeypatch.setenv("DIOPTRA_API_TOKEN", TOKEN)
    client = DioptraClient(server.url)
    queue = client.register_queue(unique("q"))
    assert queue["name"].startswith("q-")
    assert client.get_queue_by_id(queue["queueId"]) == queue
    assert queue in client.list_queues()
    assert isinstance(client.list_all_task_plugins(), list)

    monkeypatch.delenv("DIOPTRA_API_TOKEN")
    anonymous = DioptraClient(server.url)
    refused = anonymous.list_queues()
    assert isinstance(refused, dict) and "Unauthorized" in refused["message"]
    assert "Unauthorized" in anonymous.register_queue(unique("nope"))["message"]

    monkeypatch.setenv("DIOPTRA_API_TOKEN", "not-the-token")
    assert "invalid" in DioptraClient(server.url).get_queue_by_id(queue["queueId"])["message"]


def test_token_file_and_a_non_loopback_bind(start_server, tmp_path):
    """--token-file sets the token (trailing newline ignored); with it, 0.0.0.0 is allowed."""
    require_proc_net()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = start_server("--host", "0.0.0.0", "--token-file", str(token_file))
    assert "0.0.0.0" in listening_addresses(server.port)
    queues = f"{server.url}/api/v0/queue/"
    assert requests.get(queues).status_code == 401
    assert requests.get(queues, headers=bearer(TOKEN)).status_code == 200
    assert requests.get(f"{server.url}/health").status_code == 200


def test_middleware_compares_in_constant_time(monkeypatch):
    """The header is checked with hmac.compare_digest, never with ==."""
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = BearerTokenMiddleware(inner, TOKEN)

    def call(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "path": path, "method": "GET", "headers": headers}
        asyncio.run(app(scope, receive, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    assert call("/api/v0/queue/", [(b"authorization", f"Bearer {TOKEN}".encode())])[0] == 200
    assert calls == [(TOKEN.encode(), TOKEN.encode())]
    status, body = call("/api/v0/queue/", [(b"authorization", b"Bearer nope")])
    assert status == 401 and "invalid" in json.loads(body)["message"]
    status, body = call("/api/v0/queue/", [])
    assert status == 401 and "missing" in json.loads(body)["message"]
    assert len(calls) == 3  # the missing header is compared too, not short-circuited
    lower = call("/api/v0/queue/", [(b"authorization", f"bearer {TOKEN}".encode())])
    assert lower[0] == 200  # the scheme name is case-insensitive (RFC 7235)
    calls.clear()
    assert call("/health", [])[0] == 200 and calls == []


# --- where the server listens ------------------------------------------------------------


def test_default_settings_are_loopback(monkeypatch):
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.is_loopback
    check_bind(settings)  # no token needed on loopback
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.org"):
        exposed = Settings(host=host)
        assert not exposed.is_loopback
        with pytest.raises(InsecureBindError) as refused:
            check_bind(exposed)
        assert "DIOPTRA_API_TOKEN" in str(refused.value) and "--insecure" in str(refused.value)
        check_bind(Settings(host=host, api_token=TOKEN))
        check_bind(Settings(host=host, insecure=True))
    for host in ("localhost", "::1", "127.0.0.2"):
        check_bind(Settings(host=host))


def test_server_listens_on_loopback_by_default(start_server):
    require_proc_net()
    server = start_server()
    assert listening_addresses(server.port) == {"127.0.0.1"}
    assert f"API at http://127.0.0.1:{server.port}" in server.log()


def run_cli(args: list[str], extra_env: dict[str, str] | None = None, timeout: float = 60
            ) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIOPTRA_API_TOKEN", "DIOPTRA_HOST")}
    env.update(extra_env or {})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dioptra.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return done, time.monotonic() - started


@pytest.mark.parametrize("how", ["flag", "env", "empty-token-file"])
def test_refuses_a_non_loopback_bind_without_a_token(tmp_path, how):
    port = free_port()
    args = ["server", "--data-dir", str(tmp_path / "data"), "--port", str(port),
            "--workers", "0", "--mlflow-tracking-uri", "http://127.0.0.1:9"]
    extra_env = {}
    if how == "env":
        extra_env["DIOPTRA_HOST"] = "0.0.0.0"
    else:
        args += ["--host", "0.0.0.0"]
    if how == "empty-token-file":
        (tmp_path / "token").write_text("\n")
        args += ["--token-file", str(tmp_path / "token")]
    done, elapsed = run_cli(args, extra_env)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "DIOPTRA_API_TOKEN" in done.stderr and "--insecure" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 20, f"refusal took {elapsed:.1f}s"
    assert not listening_addresses(port)


def test_insecure_allows_a_non_loopback_bind_without_a_token(start_server):
    require_proc_net()
    server = start_server("--host", "0.0.0.0", "--insecure")
    assert "0.0.0.0" in listening_addresses(server.port)
    answer = requests.get(f"{server.url}/api/v0/queue/")
    assert answer.status_code == 200 and isinstance(answer.json(), list)


# --- workers carry the token too ----------------------------------------------------------


def wait_for_status(client, job_id: str, statuses: tuple[str, ...], timeout_s: float = 90
                    ) -> dict:
    deadline = time.monotonic() + timeout_s
    job = client.get_job_by_id(job_id)
    while job["status"] not in statuses and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get_job_by_id(job_id)
    assert job["status"] in statuses, f"job still {job['status']}: {client.get_job_log(job_id)}"
    return job


def submit_echo(client, tmp_path) -> dict:
    experiment = client.register_experiment(unique("auth-exp"))
    queue = client.register_queue(unique("auth-q"))
    job = client.submit_job(echo_workflow(tmp_path), experiment["name"], "main", "-P x=2",
                            queue=queue["name"], timeout="5m")
    assert job["status"] == "queued", job
    return job


def test_embedded_workers_use_the_token(start_server, monkeypatch, tmp_path):
    server = start_server(env={"DIOPTRA_API_TOKEN": TOKEN}, workers=1)
    monkeypatch.setenv("DIOPTRA_API_TOKEN", TOKEN)
    client = DioptraClient(server.url)
    job = wait_for_status(client, submit_echo(client, tmp_path)["jobId"], ("finished", "failed"))
    assert job["status"] == "finished", client.get_job_log(job["jobId"])
    assert job["mlflowRunId"]


def test_an_external_worker_needs_the_token(start_server, monkeypatch, tmp_path):
    server = start_server(env={"DIOPTRA_API_TOKEN": TOKEN})
    monkeypatch.setenv("DIOPTRA_API_TOKEN", TOKEN)
    client = DioptraClient(server.url)
    job = submit_echo(client, tmp_path)

    # Workers inherit this process's environment: from here on it holds no token (the
    # client above keeps the one it read).
    monkeypatch.delenv("DIOPTRA_API_TOKEN")
    # Without the token a worker gets nothing: the job stays queued.
    intruder = start_worker(server.url, tmp_path / "intruder.log")
    try:
        time.sleep(4)
        assert client.get_job_by_id(job["jobId"])["status"] == "queued"
    finally:
        intruder.stop()
    assert "401" in (tmp_path / "intruder.log").read_text(errors="replace")

    token_file = tmp_path / "worker-token"
    token_file.write_text(TOKEN + "\n")
    worker = start_worker(server.url, tmp_path / "worker.log", "--token-file", str(token_file))
    try:
        done = wait_for_status(client, job["jobId"], ("finished", "failed"))
        assert done["status"] == "finished", client.get_job_log(job["jobId"])
    finally:
        worker.stop()
