"""Fixtures that start real services: servers, MLflow, PostgreSQL databases, Redis DBs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from testbed import ServerProcess, free_port, need, postgres_database

from dioptra.client import DioptraClient
from dioptra.mlflow_server import MLflowServer

pytest_plugins = ["ml_fixtures"]

REDIS_URL = os.environ.get("DIOPTRA_TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> Iterator[str]:
    """One MLflow tracking server for the session (a shared service, like PostgreSQL)."""
    server = MLflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        server.wait_ready()
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def start_server(tmp_path, mlflow_uri) -> Iterator[Callable[..., ServerProcess]]:
    """Start `dioptra server` processes with their own data dir and port."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict | None = None, workers: int = 0,
              own_mlflow: bool = False) -> ServerProcess:
        data_dir = tmp_path / f"data{len(started)}"
        extra = list(args)
        if not own_mlflow:
            extra += ["--mlflow-tracking-uri", mlflow_uri]
        if "--workers" not in extra:
            extra += ["--workers", str(workers)]
        server = ServerProcess(data_dir, free_port(), extra, env or {})
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, start_server) -> ServerProcess:
    """A server with no workers, on SQLite and on PostgreSQL: the API tests run on both."""
    if request.param == "postgres":
        uri = request.getfixturevalue("postgres_uri")
        return start_server("--database-uri", uri)
    return start_server()


@pytest.fixture
def client(server) -> DioptraClient:
    return DioptraClient(server.url)


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    with postgres_database() as uri:
        yield uri


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty Redis database (its own key space), flushed afterwards."""
    try:
        import redis

        probe = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        probe.ping()
    except Exception as exc:  # noqa: BLE001
        need(False, f"Redis is not reachable at {REDIS_URL}: {exc}")
    for index in range(15, 0, -1):
        conn = redis.Redis.from_url(f"{REDIS_URL}/{index}")
        # Claim an empty database with a marker key so concurrent runs do not share it.
        if conn.dbsize() == 0 and conn.set("dioptra-test-claim", "1", nx=True):
            try:
                yield f"{REDIS_URL}/{index}"
            finally:
                conn.flushdb()
                conn.close()
            return
    need(False, "no empty Redis database (1-15) is free for the test")
