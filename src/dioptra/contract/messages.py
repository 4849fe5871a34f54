"""The worker API's messages as typed models (docs/ARCHITECTURE.md, "Worker API").

Attributes are snake_case; on the wire they are camelCase (``job_id`` <-> ``jobId``).
The server builds and validates them, the worker parses what it receives with them, so
a field renamed on one side fails loudly on the other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from dioptra.contract.status import JobStatus


class Message(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def wire(self) -> dict:
        """The JSON object sent over HTTP."""
        return self.model_dump(mode="json", by_alias=True)


class CustomPlugin(Message):
    name: str
    sha256: str


class JobSpec(Message):
    """What a worker needs to run one claimed job (the answer to a claim)."""

    job_id: str
    experiment_id: int
    queue: str
    entry_point: str
    entry_point_kwargs: str | None = None
    depends_on: str | None = None
    timeout: str
    timeout_seconds: int
    workflow_uri: str
    workflow_filename: str
    workflow_sha256: str | None = None
    mlflow_tracking_uri: str
    custom_plugins: list[CustomPlugin] = []
    # Tags the worker adds to the job's MLflow run (a pipeline's job: its parent run).
    mlflow_tags: dict[str, str] = {}


class WorkerHeartbeat(Message):
    worker_id: str
    queues: list[str] | None = None  # None: every queue
    hostname: str = ""


class ClaimRequest(Message):
    worker_id: str
    queues: list[str] | None = None
    wait: float = 0.0
    job_id: str | None = None


# What a worker may report about its job: the statuses only a worker knows.
ReportedStatus = Literal[JobStatus.STARTED, JobStatus.FINISHED, JobStatus.FAILED]


class JobReport(Message):
    worker_id: str
    mlflow_run_id: str | None = None
    status: ReportedStatus | None = None
    reason: str | None = None


class JobHeartbeat(Message):
    worker_id: str


class JobAnswer(Message):
    """The answer to a report or a job heartbeat."""

    cancel_requested: bool
