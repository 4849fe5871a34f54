"""Request bodies and the v0 response shapes (keys in the original's order)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from dioptra.db.models import Experiment, Job, Queue
from dioptra.services.names import printable, text_problem
from dioptra.services.plugins import TaskPlugin

# Integers the database can hold (64-bit signed); ids and offsets are never negative.
INT64_MAX = 2**63 - 1
DbInt = Annotated[int, Ge(0), Le(INT64_MAX)]
# Free text kept as sent, NUL and lone surrogates replaced (see services/names.py).
FreeText = Annotated[str, AfterValidator(printable)]
WorkerId = Annotated[str, Field(min_length=1, max_length=255)]


def _refuse_unstorable(value):
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
    elif isinstance(value, list):
        for item in value:
            _refuse_unstorable(item)
    return value


class Body(BaseModel):
    """Every JSON body: types as documented (no ``false`` for a number, no number for a
    string), and no text field may hold what no database stores (NUL, a lone
    surrogate); a 400 names the field. FreeText fields were cleaned before this runs."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value):
        return _refuse_unstorable(value)


class NameBody(Body):
    """POST/PUT body of experiments and queues."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str


class ExperimentOut(BaseModel):
    """Documentation of the v0 Experiment shape."""

    experimentId: int
    createdOn: str
    lastModified: str
    name: str


class QueueOut(BaseModel):
    """Documentation of the v0 Queue shape."""

    queueId: int
    createdOn: str
    lastModified: str
    name: str


class StatusBody(Body):
    model_config = ConfigDict(extra="forbid", strict=True)
    status: Literal["queued", "started", "deferred", "finished", "failed"]


class WorkerHeartbeatBody(Body):
    workerId: WorkerId
    queues: list[str] | None = None
    hostname: str = Field("", max_length=255)


class ClaimBody(Body):
    workerId: WorkerId
    queues: list[str] | None = None
    wait: float = Field(0.0, ge=0, allow_inf_nan=False,
                        description="seconds to wait for a job (at most 30 are waited)")
    jobId: str | None = None


class ReportBody(Body):
    workerId: WorkerId
    mlflowRunId: str | None = Field(None, max_length=36)
    status: Literal["started", "finished", "failed"] | None = None
    reason: FreeText | None = None


class WorkerIdBody(Body):
    workerId: WorkerId


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def experiment(e: Experiment) -> dict:
    return {
        "experimentId": e.experiment_id,
        "createdOn": iso(e.created_on),
        "lastModified": iso(e.last_modified),
        "name": e.name,
    }


def queue(q: Queue) -> dict:
    return {
        "queueId": q.queue_id,
        "createdOn": iso(q.created_on),
        "lastModified": iso(q.last_modified),
        "name": q.name,
    }


def job(j: Job) -> dict:
    return {
        "jobId": j.job_id,
        "mlflowRunId": j.mlflow_run_id,
        "experimentId": j.experiment_id,
        "queueId": j.queue_id,
        "createdOn": iso(j.created_on),
        "lastModified": iso(j.last_modified),
        "timeout": j.timeout,
        "workflowUri": j.workflow_uri,
        "entryPoint": j.entry_point,
        "entryPointKwargs": j.entry_point_kwargs,
        "dependsOn": j.depends_on,
        "status": j.status,
    }


def task_plugin(p: TaskPlugin) -> dict:
    return {"taskPluginName": p.name, "collection": p.collection, "modules": p.modules}
