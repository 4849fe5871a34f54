"""The worker API's messages as typed models (docs/ARCHITECTURE.md, "Worker API").

Attributes are snake_case; on the wire they are camelCase (``job_id`` <-> ``jobId``).
The server builds and validates them, the worker parses what it receives with them, so
a field renamed on one side fails loudly on the other.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from dioptra.contract.status import JobStatus


class Message(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def wire(self) -> dict:
        """The JSON object sent over HTTP."""
        return self.model_dump(mode="json", by_alias=True)


# Bounds of the wire that the server's columns have too: a worker id is at most 255
# characters, an MLflow run id at most 36.
WorkerId = Annotated[str, Field(min_length=1, max_length=255)]


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
    # The entry point's own MLflow credential (services/job_tokens.py); None when MLflow
    # needs none of ours (no API token, or an external MLflow).
    mlflow_tracking_token: str | None = None


class WorkerHeartbeat(Message):
    worker_id: WorkerId
    queues: list[str] | None = None  # None: every queue
    hostname: str = Field("", max_length=255)


class ClaimRequest(Message):
    worker_id: WorkerId
    queues: list[str] | None = None
    # Seconds the server may hold the claim for a job to come (it waits at most 30).
    # strict: a number, not ``false`` or ``"1"``.
    wait: float = Field(0.0, ge=0, allow_inf_nan=False, strict=True)
    job_id: str | None = None


# What a worker may report about its job: the statuses only a worker knows.
ReportedStatus = Literal[JobStatus.STARTED, JobStatus.FINISHED, JobStatus.FAILED]


class JobReport(Message):
    worker_id: WorkerId
    mlflow_run_id: str | None = Field(None, max_length=36)
    status: ReportedStatus | None = None
    reason: str | None = None


class JobHeartbeat(Message):
    worker_id: WorkerId


class JobAnswer(Message):
    """The answer to a report or a job heartbeat."""

    cancel_requested: bool
