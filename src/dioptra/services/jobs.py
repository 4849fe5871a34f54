"""Jobs as users see them: submit, get, list, set a status by hand, cancel, read the log.

The status changes go through the lifecycle (services/lifecycle.py); what workers do
with jobs is the worker protocol (services/worker_protocol.py).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dioptra.archives import ArchiveError, Member, safe_extract
from dioptra.contract.mlproject import (
    MLPROJECT_FILE_NAME,
    MLprojectError,
    find_project_dir,
    load_project,
    parse_kwargs,
)
from dioptra.contract.status import STATUS_VALUES, JobStatus
from dioptra.db.models import Job, Queue, utcnow
from dioptra.folders import temporary_folder
from dioptra.services import experiments, logs, queues, workers
from dioptra.services.context import ServiceContext
from dioptra.services.errors import BadRequest, NotFound
from dioptra.services.lifecycle import Transitions, locked, settle_children
from dioptra.timeouts import parse_timeout

NOT_FOUND = "The requested job does not exist"
WORKFLOW_BUCKET = "workflow"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Submission:
    experiment_name: str
    queue: str
    entry_point: str
    workflow_path: Path
    workflow_filename: str
    entry_point_kwargs: str | None = None
    depends_on: str | None = None
    timeout: str = "24h"


def secure_filename(name: str) -> str:
    """Keep the archive's file name readable but safe as an object key."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _UNSAFE_FILENAME.sub("_", base).strip("._")
    return cleaned or "workflow"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_mlproject(member: Member) -> bool:
    return (member.kind in ("file", "hardlink")
            and member.path.rsplit("/", 1)[-1].lower() == MLPROJECT_FILE_NAME.lower())


def validate_workflow(path: Path, entry_point: str, kwargs: str | None) -> None:
    """Reject at submission what the worker would reject anyway: a 400 now beats a
    failed job later."""
    with temporary_folder(prefix="dioptra-check-") as tmp:
        try:
            # Every member is checked, but only MLproject files are written.
            safe_extract(path, tmp, select=_is_mlproject)
        except ArchiveError as exc:
            raise BadRequest(f"The workflow archive was rejected: {exc}") from exc
        try:
            project = load_project(find_project_dir(tmp))
            project.validate(entry_point, parse_kwargs(kwargs))
        except MLprojectError as exc:
            raise BadRequest(f"The workflow does not fit its MLproject: {exc}") from exc


def _check_job_id(job_id: str, field: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError as exc:
        raise BadRequest(f"The field '{field}' must be a job id (a UUID), got {job_id!r}.") from exc


def submit(ctx: ServiceContext, sub: Submission) -> Job:
    try:
        timeout_seconds = parse_timeout(sub.timeout)
    except ValueError as exc:
        raise BadRequest(f"The field 'timeout' is invalid: {exc}") from exc
    depends_on = _check_job_id(sub.depends_on, "dependsOn") if sub.depends_on else None
    with ctx.db.session() as session:
        experiment = experiments.get_by_name(session, sub.experiment_name)
        queue = queues.get_for_submission(session, sub.queue)
        if depends_on and session.get(Job, depends_on) is None:
            raise NotFound("The job named in 'dependsOn' does not exist")
    validate_workflow(sub.workflow_path, sub.entry_point, sub.entry_point_kwargs)

    job_id = str(uuid.uuid4())
    uri = f"s3://{WORKFLOW_BUCKET}/{uuid.uuid4().hex}/{secure_filename(sub.workflow_filename)}"
    ctx.store.put_file(uri, sub.workflow_path)
    try:
        with ctx.db.session() as session:
            parent = session.get(Job, depends_on) if depends_on else None
            now = utcnow()
            job = Job(
                job_id=job_id,
                experiment_id=experiment.experiment_id,
                queue_id=queue.queue_id,
                created_on=now,
                last_modified=now,
                timeout=sub.timeout,
                timeout_seconds=timeout_seconds,
                workflow_uri=uri,
                workflow_sha256=_file_sha256(sub.workflow_path),
                entry_point=sub.entry_point,
                entry_point_kwargs=sub.entry_point_kwargs,
                depends_on=depends_on,
                status=JobStatus.DEFERRED if parent is not None else JobStatus.QUEUED,
            )
            session.add(job)
            session.flush()
            logs.note(session, job_id, f"job submitted to queue '{queue.name}'")
            if parent is not None:
                logs.note(session, job_id, f"waiting for job {depends_on} (dependsOn)")
            if not workers.queue_is_served(session, ctx.settings, queue.name):
                logs.note(
                    session,
                    job_id,
                    f"warning: no live worker is serving queue '{queue.name}'; "
                    "the job waits until one starts",
                )
    except Exception:
        ctx.store.delete(uri)
        raise
    if depends_on:
        # The parent may have ended between the check and the commit.
        settle_children(ctx, depends_on)
    else:
        ctx.dispatcher.job_ready(job_id, queue.name, timeout_seconds)
    return get(ctx, job_id)


def get(ctx: ServiceContext, job_id: str) -> Job:
    with ctx.db.session() as session:
        return _get(session, job_id)


def _get(session: Session, job_id: str, for_update: bool = False) -> Job:
    job = locked(session, job_id) if for_update else session.get(Job, job_id)
    if job is None:
        raise NotFound(NOT_FOUND)
    return job


def list_jobs(
    ctx: ServiceContext,
    status: str | None = None,
    experiment_id: int | None = None,
    queue: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Job]:
    query = select(Job)
    if status is not None:
        if status not in STATUS_VALUES:
            raise BadRequest(f"status must be one of: {', '.join(STATUS_VALUES)}.")
        query = query.where(Job.status == status)
    if experiment_id is not None:
        query = query.where(Job.experiment_id == experiment_id)
    if queue is not None:
        query = query.join(Queue, Queue.queue_id == Job.queue_id).where(Queue.name == queue)
    query = query.order_by(Job.created_on, Job.job_id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with ctx.db.session() as session:
        return list(session.scalars(query))


def set_status(ctx: ServiceContext, job_id: str, status: str) -> Job:
    """The v0 PUT: a manual status change, as the lifecycle's table allows it."""
    moves = Transitions()
    with ctx.db.session() as session:
        job = _get(session, job_id, for_update=True)
        moves.move(session, job, JobStatus(status), "status set through the API")
    moves.follow_up(ctx)
    return get(ctx, job_id)


def cancel(ctx: ServiceContext, job_id: str) -> Job:
    """Fail a job no worker holds at once; ask the worker holding one to stop it."""
    moves = Transitions()
    with ctx.db.session() as session:
        job = _get(session, job_id, for_update=True)
        if JobStatus(job.status).ended:
            raise BadRequest(f"The job has already ended with status '{job.status}'.")
        if job.claimed_by is None:
            moves.move(session, job, JobStatus.FAILED, "cancelled")
        elif not job.cancel_requested:
            job.cancel_requested = True
            job.last_modified = utcnow()
            logs.note(session, job_id, "cancel requested; stopping the entry point")
    moves.follow_up(ctx)
    return get(ctx, job_id)


def read_log(ctx: ServiceContext, job_id: str, offset: int = 0) -> tuple[Job, str]:
    with ctx.db.session() as session:
        job = _get(session, job_id)
        return job, logs.read(session, job_id, offset)
