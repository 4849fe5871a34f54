"""The embedded MLflow server: one interpreter (mlflow_launch.py), and a new data dir's
database starts as a copy of a migrated template (mlflow_db.py) that MLflow, the real
server, takes without migrating; a doubtful template is not used."""

from __future__ import annotations

import sqlite3
import sys

import mlflow
import pytest
import requests

from dioptra import mlflow_db
from dioptra.mlflow_server import MLflowServer

MIGRATING = "Creating initial MLflow database tables"  # MLflow's log line when it migrates


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(mlflow_db.CACHE_ENV, str(folder))
    return folder


def test_a_new_data_dir_starts_from_the_template_and_works(tmp_path, cache):
    head = mlflow_db.mlflow_head()
    assert head is not None
    servers = [MLflowServer(tmp_path / name) for name in ("first", "second")]
    try:
        # no template yet: the first MLflow process makes it, then starts from a copy
        servers[0].start()
        servers[0].wait_ready()
        assert mlflow_db.revision_of(mlflow_db.template_path(head)) == head
        assert list(cache.iterdir()) == [mlflow_db.template_path(head)]  # no temp files left
        # the second data dir gets the copy before MLflow starts: MLflow migrates nothing
        servers[1].start()
        servers[1].wait_ready()
        log = (tmp_path / "second" / "mlflow" / "server.log").read_text()
        assert MIGRATING not in log, log
        # uvicorn serves in the process started (setpriv execs): no second interpreter
        assert f"Started server process [{servers[1].proc.pid}]" in log, log
        client = mlflow.MlflowClient(servers[1].uri)
        assert client.get_experiment("0").name == "Default"  # made at start, as on an empty db
        experiment = client.create_experiment("from-template")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", 0.5, step=1)
        client.log_param(run.info.run_id, "eps", "0.1")
        client.log_text(run.info.run_id, "hello", "note.txt")
        client.set_terminated(run.info.run_id)
        got = client.get_run(run.info.run_id)
        assert (got.data.metrics, got.data.params) == ({"accuracy": 0.5}, {"eps": "0.1"})
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
        assert requests.get(f"{servers[1].uri}/", timeout=10).status_code == 200  # the UI
        # the copy is the data dir's own: the template stays empty
        assert mlflow_db.revision_of(mlflow_db.template_path(head)) == head
    finally:
        for server in servers:
            server.stop()


def test_a_doubtful_template_is_not_used(tmp_path, cache):
    template = mlflow_db.make_template()
    assert template is not None and template.parent == cache
    assert mlflow_db.make_template() == template  # made once
    head = mlflow_db.mlflow_head()

    db = tmp_path / "data" / "mlflow.db"
    assert mlflow_db.seed(db) and mlflow_db.revision_of(db) == head
    db.write_bytes(b"mine")
    assert not mlflow_db.seed(db) and db.read_bytes() == b"mine"  # never over a database

    def altered(sql: str) -> bool:
        """Whether a new database is seeded from the template changed by ``sql``."""
        saved = template.read_bytes()
        try:
            with sqlite3.connect(template) as conn:
                conn.execute(sql)
            conn.close()
            target = tmp_path / f"new-{len(list(tmp_path.iterdir()))}.db"
            return mlflow_db.seed(target)
        finally:
            template.write_bytes(saved)

    assert not altered("UPDATE alembic_version SET version_num = 'older'")  # other schema
    assert not altered("INSERT INTO experiments (name, lifecycle_stage) VALUES ('x', 'active')")
    assert not altered("DELETE FROM alembic_version")
    template.write_bytes(b"not a database")
    assert not mlflow_db.seed(tmp_path / "other.db")
    assert mlflow_db.make_template() == template  # remade
    assert mlflow_db.seed(tmp_path / "other.db")


def test_no_template_when_the_cache_cannot_be_made(tmp_path, monkeypatch):
    """A cache folder that cannot be created: no template, and MLflow migrates the new
    database itself, as before."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(mlflow_db.CACHE_ENV, str(tmp_path / "file" / "cache"))
    assert mlflow_db.make_template() is None
    server = MLflowServer(tmp_path / "data")
    try:
        server.start()
        server.wait_ready()
        assert MIGRATING in (tmp_path / "data" / "mlflow" / "server.log").read_text()
        assert mlflow.MlflowClient(server.uri).get_experiment("0").name == "Default"
    finally:
        server.stop()


def test_only_a_one_worker_uvicorn_runs_in_the_launcher():
    from dioptra import mlflow_launch

    python = sys.executable
    assert mlflow_launch._one_uvicorn_worker([python, "-m", "uvicorn", "--workers", "1", "a:b"])
    assert mlflow_launch._one_uvicorn_worker([python, "-m", "uvicorn", "a:b"])
    for other in ([python, "-m", "uvicorn", "--workers", "4", "a:b"],
                  [python, "-m", "uvicorn", "--reload", "a:b"],
                  [python, "-m", "gunicorn", "a:b"], ["uvicorn", "a:b"]):
        assert not mlflow_launch._one_uvicorn_worker(other), other
    args = ["server", "--static-prefix", "/mlflow", "--port=5"]
    assert mlflow_launch._option(args, "--static-prefix") == "/mlflow"
    assert mlflow_launch._option(args, "--port") == "5"
    assert mlflow_launch._option(args, "--host") is None
