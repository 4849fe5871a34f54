"""Request bodies and the v0 response shapes (keys in the original's order)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

from dioptra.contract import messages
from dioptra.contract.status import STATUS_VALUES
from dioptra.db.models import Experiment, Job, Queue
from dioptra.services.names import nested_text_problem, printable
from dioptra.services.plugins import TaskPlugin

# Integers the database can hold (64-bit signed); ids and offsets are never negative.
INT64_MAX = 2**63 - 1
DbInt = Annotated[int, Ge(0), Le(INT64_MAX)]
# Free text kept as sent, NUL and lone surrogates replaced (see services/names.py).
FreeText = Annotated[str, AfterValidator(printable)]


def _refuse_unstorable(value):
    problem = nested_text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class Body(BaseModel):
    """Every JSON body: no text field may hold what no database stores (NUL, a lone
    surrogate); a 400 names the field. FreeText fields were cleaned before this runs."""

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
    # strict mode takes an enum member only, so the wire strings are spelled out here.
    status: Literal[STATUS_VALUES]  # type: ignore[valid-type]


class TaskEngineJobBody(Body):
    """POST /api/v0/job/newTaskEngine: a job from an experiment description (v0)."""

    model_config = ConfigDict(extra="forbid")
    queue: str
    experimentName: str
    experimentDescription: dict[str, Any]
    globalParameters: dict[str, Any] | None = None
    timeout: str = "24h"
    dependsOn: str | None = None


# The worker API's bodies are the contract's messages (their bounds are part of it),
# with the text rule of every body and a failure reason kept as free text.
class WorkerHeartbeatBody(Body, messages.WorkerHeartbeat):
    pass


class ClaimBody(Body, messages.ClaimRequest):
    pass


class ReportBody(Body, messages.JobReport):
    reason: FreeText | None = None


class WorkerIdBody(Body, messages.JobHeartbeat):
    pass


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
