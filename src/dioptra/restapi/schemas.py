"""Request bodies and the v0 response shapes (keys in the original's order)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from dioptra.contract import messages
from dioptra.contract.status import STATUS_VALUES
from dioptra.db.models import Experiment, Job, Queue
from dioptra.services.plugins import TaskPlugin


class NameBody(BaseModel):
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


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    # strict mode takes an enum member only, so the wire strings are spelled out here.
    status: Literal[STATUS_VALUES]  # type: ignore[valid-type]


class TaskEngineJobBody(BaseModel):
    """POST /api/v0/job/newTaskEngine: a job from an experiment description (v0)."""

    model_config = ConfigDict(extra="forbid")
    queue: str
    experimentName: str
    experimentDescription: dict[str, Any]
    globalParameters: dict[str, Any] | None = None
    timeout: str = "24h"
    dependsOn: str | None = None


# The worker API's bodies are the contract's messages.
WorkerHeartbeatBody = messages.WorkerHeartbeat
ClaimBody = messages.ClaimRequest
ReportBody = messages.JobReport
WorkerIdBody = messages.JobHeartbeat


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
