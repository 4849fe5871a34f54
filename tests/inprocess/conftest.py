"""The in-process tier: the rules of the testbed tested against an app built in this
process (a temporary SQLite database, a local object store, a dispatcher that records
what it is handed), driven through FastAPI's TestClient. No server process, no worker,
no MLflow: each test takes milliseconds. The end-to-end tests (one folder up) keep the
paths that need real processes."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from workflows import echo_workflow

from dioptra.config import Settings
from dioptra.db import Database
from dioptra.db.models import Experiment, Job, utcnow
from dioptra.dispatch.wakeup import WakeUp
from dioptra.restapi.app import create_app
from dioptra.services.context import ServiceContext
from dioptra.services.tracking import Tracking
from dioptra.storage import open_store

# Never contacted by these tests: only written into job specs.
TRACKING_URI = "http://127.0.0.1:9/mlflow-not-running"


class RecordingDispatcher:
    """Records the jobs handed over, in order (a real dispatcher would wake a worker)."""

    def __init__(self) -> None:
        self.ready: list[str] = []
        self.checked: list[str] = []  # offered to redispatch()

    def start(self) -> None:
        pass

    def job_ready(self, job_id: str, queue_name: str, timeout_seconds: int) -> None:
        self.ready.append(job_id)

    def redispatch(self, jobs: list[tuple[str, str, int]]) -> None:
        self.checked.extend(job_id for job_id, _, _ in jobs)

    def stop(self) -> None:
        pass


class Bed:
    """One in-process testbed and the few moves the tests make with it."""

    def __init__(self, ctx: ServiceContext, api: TestClient, tmp: Path) -> None:
        self.ctx = ctx
        self.api = api
        self.dispatcher: RecordingDispatcher = ctx.dispatcher
        self.archive = echo_workflow(tmp)
        with ctx.db.session() as session:
            now = utcnow()
            session.add(Experiment(experiment_id=1, name="exp", created_on=now,
                                   last_modified=now))
        assert api.post("/api/v0/queue/", json={"name": "cpu"}).status_code == 200

    def submit(self, entry_point: str = "main", **form: str) -> dict:
        data = {"experimentName": "exp", "queue": "cpu", "entryPoint": entry_point, **form}
        with self.archive.open("rb") as fh:
            answer = self.api.post("/api/v0/job/", data=data,
                                   files={"workflow": ("wf.tar.gz", fh)})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def job(self, job_id: str) -> dict:
        return self.api.get(f"/api/v0/job/{job_id}").json()

    def status(self, job_id: str) -> str:
        return self.job(job_id)["status"]

    def log(self, job_id: str) -> str:
        return self.api.get(f"/api/v0/job/{job_id}/log").json()["log"]

    def put(self, job_id: str, status: str):
        return self.api.put(f"/api/v0/job/{job_id}", json={"status": status})

    def claim(self, worker: str = "w1", job_id: str | None = None) -> dict | None:
        answer = self.api.post("/api/v0/worker/claim",
                               json={"workerId": worker, "wait": 0, "jobId": job_id})
        assert answer.status_code in (200, 204), answer.text
        return answer.json() if answer.status_code == 200 else None

    def report(self, job_id: str, worker: str = "w1", **body: str):
        return self.api.post(f"/api/v0/worker/jobs/{job_id}/report",
                             json={"workerId": worker, **body})

    def run(self, job_id: str, status: str, worker: str = "w1") -> None:
        """What a worker does with a job: claim it, start it, end it with ``status``."""
        assert self.claim(worker, job_id)["jobId"] == job_id
        assert self.report(job_id, worker, status="started").status_code == 200
        assert self.report(job_id, worker, status=status).status_code == 200

    def set_columns(self, job_id: str, **values) -> None:
        """Change a job's row directly: time passing, or a row an older version wrote."""
        with self.ctx.db.session() as session:
            job = session.get(Job, job_id)
            for name, value in values.items():
                setattr(job, name, value)

    @staticmethod
    def ago(seconds: float) -> dt.datetime:
        return utcnow() - dt.timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    """A database at the newest schema, made once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "dioptra.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


@pytest.fixture
def tracking_uri() -> str:
    """The MLflow the server knows; a test that needs a real one overrides this."""
    return TRACKING_URI


@pytest.fixture
def bed(tmp_path, migrated_db, tracking_uri) -> Iterator[Bed]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(migrated_db, data_dir / "dioptra.db")
    settings = Settings(data_dir=data_dir, workers=0, mlflow_tracking_uri=tracking_uri,
                        redis_url=None, database_uri=None, storage_url=None, api_token=None,
                        public_url=None, heartbeat_timeout_s=20.0)
    db = Database(settings.effective_database_uri)
    ctx = ServiceContext(settings=settings, db=db,
                         store=open_store(settings.effective_storage_url),
                         tracking=Tracking(tracking_uri), dispatcher=RecordingDispatcher(),
                         # The bed plays a server start whose embedded workers are
                         # "embedded:old:<n>" (those of other starts are refused).
                         embedded_instance="old")
    with TestClient(create_app(ctx, WakeUp())) as api:
        yield Bed(ctx, api, tmp_path)
    db.dispose()
