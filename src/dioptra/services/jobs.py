"""Jobs: submission, the state machine, dependencies, cancellation and the worker side.

States: queued -> started -> finished | failed, and deferred while a parent named by
``dependsOn`` has not ended. A worker *claims* a queued job with a conditional UPDATE,
so one job never runs twice even when it was dispatched twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dioptra.archives import ArchiveError, safe_extract
from dioptra.db.models import ENDED_STATUSES, JOB_STATUSES, Job, Queue, utcnow
from dioptra.services import experiments, logs, plugins, queues, workers
from dioptra.services.context import ServiceContext
from dioptra.services.errors import BadRequest, Conflict, NotFound
from dioptra.timeouts import parse_timeout
from dioptra.worker.mlproject import MLprojectError, find_project_dir, load_project, parse_kwargs

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


def validate_workflow(path: Path, entry_point: str, kwargs: str | None) -> None:
    """Reject at submission what the worker would reject anyway: a 400 now beats a
    failed job later."""
    with tempfile.TemporaryDirectory(prefix="dioptra-check-") as tmp:
        try:
            safe_extract(path, Path(tmp))
        except ArchiveError as exc:
            raise BadRequest(f"The workflow archive was rejected: {exc}") from exc
        try:
            project = load_project(find_project_dir(Path(tmp)))
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
                status="deferred" if parent is not None else "queued",
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


def _get(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
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
        if status not in JOB_STATUSES:
            raise BadRequest(f"status must be one of: {', '.join(JOB_STATUSES)}.")
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


def _end(session: Session, job: Job, status: str, reason: str | None) -> None:
    now = utcnow()
    job.status = status
    job.reason = reason
    job.ended_on = now
    job.last_modified = now
    if reason:
        logs.note(session, job.job_id, f"job {status}: {reason}")
    else:
        logs.note(session, job.job_id, f"job {status}")


def set_status(ctx: ServiceContext, job_id: str, status: str) -> Job:
    """The v0 PUT: a manual status change."""
    with ctx.db.session() as session:
        job = _get(session, job_id)
        if status in ENDED_STATUSES:
            _end(session, job, status, "status set through the API")
        else:
            job.status = status
            job.last_modified = utcnow()
    if status in ENDED_STATUSES:
        settle_children(ctx, job_id)
    elif status == "queued":
        ctx.dispatcher.job_ready(job_id, _queue_name(ctx, job), job.timeout_seconds)
    return get(ctx, job_id)


def _queue_name(ctx: ServiceContext, job: Job) -> str:
    with ctx.db.session() as session:
        return session.get(Queue, job.queue_id).name


def cancel(ctx: ServiceContext, job_id: str) -> Job:
    with ctx.db.session() as session:
        job = _get(session, job_id)
        if job.status in ENDED_STATUSES:
            raise BadRequest(f"The job has already ended with status '{job.status}'.")
        ended_now = job.claimed_by is None
        if ended_now:
            _end(session, job, "failed", "cancelled")
        elif not job.cancel_requested:
            job.cancel_requested = True
            job.last_modified = utcnow()
            logs.note(session, job_id, "cancel requested; stopping the entry point")
    if ended_now:
        settle_children(ctx, job_id)
    return get(ctx, job_id)


def settle_children(ctx: ServiceContext, parent_id: str) -> None:
    """Queue or fail the deferred children of a parent that has ended (idempotent)."""
    ready: list[tuple[str, str, int]] = []
    failed: list[str] = []
    with ctx.db.session() as session:
        parent = session.get(Job, parent_id)
        if parent is None or parent.status not in ENDED_STATUSES:
            return
        children = session.scalars(
            select(Job).where(Job.depends_on == parent_id, Job.status == "deferred")
        )
        for child in children:
            if parent.status == "finished":
                child.status = "queued"
                child.last_modified = utcnow()
                logs.note(session, child.job_id, f"dependency {parent_id} finished; job queued")
                ready.append((child.job_id, session.get(Queue, child.queue_id).name,
                              child.timeout_seconds))
            else:
                _end(session, child, "failed",
                     f"dependency {parent_id} failed ({parent.reason or 'no reason given'})")
                failed.append(child.job_id)
    for job_id, queue_name, timeout_seconds in ready:
        ctx.dispatcher.job_ready(job_id, queue_name, timeout_seconds)
    for job_id in failed:
        settle_children(ctx, job_id)
    # The jobs of a pipeline wait for theirs (several, with references to resolve).
    _pipelines().job_ended(ctx, parent_id)


# Worker side ------------------------------------------------------------------------


def claim(
    ctx: ServiceContext, worker_id: str, queue_names: list[str] | None, job_id: str | None
) -> dict | None:
    """Atomically give one queued job (oldest first) to ``worker_id``; None if none."""
    now = utcnow()
    with ctx.db.session() as session:
        workers.seen(session, worker_id)
        query = select(Job.job_id).where(Job.status == "queued", Job.claimed_by.is_(None))
        if job_id is not None:
            query = query.where(Job.job_id == job_id)
        if queue_names is not None:
            query = query.join(Queue, Queue.queue_id == Job.queue_id).where(
                Queue.name.in_(queue_names)
            )
        candidates = session.scalars(query.order_by(Job.created_on, Job.job_id).limit(8)).all()
        for candidate in candidates:
            result = session.execute(
                update(Job)
                .where(Job.job_id == candidate, Job.claimed_by.is_(None), Job.status == "queued")
                .values(claimed_by=worker_id, claimed_on=now, heartbeat_on=now, last_modified=now)
            )
            if result.rowcount == 1:
                job = session.get(Job, candidate)
                session.refresh(job)
                logs.note(session, candidate, f"claimed by worker {worker_id}")
                return _spec(ctx, session, job)
    return None


def _spec(ctx: ServiceContext, session: Session, job: Job) -> dict:
    custom = [
        {"name": p.name, "sha256": plugins.custom_digest(ctx.store, p.name)}
        for p in plugins.list_custom(ctx.store)
    ]
    return {
        "jobId": job.job_id,
        "experimentId": job.experiment_id,
        "queue": session.get(Queue, job.queue_id).name,
        "entryPoint": job.entry_point,
        "entryPointKwargs": job.entry_point_kwargs,
        "dependsOn": job.depends_on,
        "timeout": job.timeout,
        "timeoutSeconds": job.timeout_seconds,
        "workflowUri": job.workflow_uri,
        "workflowFilename": job.workflow_uri.rsplit("/", 1)[-1],
        "workflowSha256": job.workflow_sha256,
        "mlflowTrackingUri": ctx.tracking.tracking_uri,
        "customPlugins": custom,
        "mlflowTags": _pipelines().run_tags(session, job.job_id),
    }


def _pipelines():
    from dioptra.services import pipelines  # imported late: pipelines builds on this module

    return pipelines


def _claimed(session: Session, job_id: str, worker_id: str) -> Job:
    job = _get(session, job_id)
    if job.claimed_by != worker_id:
        raise Conflict(f"The job is not claimed by worker {worker_id!r}.")
    return job


def report(
    ctx: ServiceContext,
    job_id: str,
    worker_id: str,
    mlflow_run_id: str | None = None,
    status: str | None = None,
    reason: str | None = None,
) -> bool:
    """A worker's news about its job; returns whether a cancel was requested."""
    ended = False
    with ctx.db.session() as session:
        job = _claimed(session, job_id, worker_id)
        now = utcnow()
        job.heartbeat_on = now
        if mlflow_run_id:
            job.mlflow_run_id = mlflow_run_id
            job.last_modified = now
            logs.note(session, job_id, f"MLflow run {mlflow_run_id}")
        if job.status not in ENDED_STATUSES:
            if status == "started":
                job.status = "started"
                job.started_on = now
                job.last_modified = now
                logs.note(session, job_id, "entry point started")
            elif status in ENDED_STATUSES:
                _end(session, job, status, reason)
                ended = True
        # A job that ended meanwhile (reaped, set through the API) must stop too.
        stop = job.cancel_requested or (job.status in ENDED_STATUSES and not ended)
    if ended:
        settle_children(ctx, job_id)
    return stop


def heartbeat(ctx: ServiceContext, job_id: str, worker_id: str) -> bool:
    with ctx.db.session() as session:
        job = _claimed(session, job_id, worker_id)
        job.heartbeat_on = utcnow()
        return job.cancel_requested or job.status in ENDED_STATUSES


def append_log(ctx: ServiceContext, job_id: str, worker_id: str, text: str) -> int:
    with ctx.db.session() as session:
        _claimed(session, job_id, worker_id)
        logs.append(session, job_id, text)
        session.flush()
        return logs.size(session, job_id)


def read_log(ctx: ServiceContext, job_id: str, offset: int = 0) -> tuple[Job, str]:
    with ctx.db.session() as session:
        job = _get(session, job_id)
        return job, logs.read(session, job_id)[offset:]


# Keeping the books ------------------------------------------------------------------


def reap(ctx: ServiceContext) -> list[str]:
    """Fail the jobs whose worker went silent or overran its timeout; returns their ids."""
    now = utcnow()
    silent_since = now - dt.timedelta(seconds=ctx.settings.heartbeat_timeout_s)
    failed = []
    with ctx.db.session() as session:
        running = session.scalars(
            select(Job).where(Job.claimed_by.is_not(None), Job.status.not_in(ENDED_STATUSES))
        )
        for job in running:
            if job.heartbeat_on is not None and job.heartbeat_on < silent_since:
                _end(session, job, "failed",
                     f"worker {job.claimed_by} stopped sending heartbeats "
                     f"for {ctx.settings.heartbeat_timeout_s:g}s (it crashed or was cut off)")
                failed.append(job.job_id)
            elif job.started_on is not None and job.started_on + dt.timedelta(
                seconds=job.timeout_seconds + 60
            ) < now:
                _end(session, job, "failed",
                     f"timed out after {job.timeout} (the worker did not stop it; "
                     "failed by the server)")
                failed.append(job.job_id)
    for job_id in failed:
        settle_children(ctx, job_id)
    return failed


def recover(ctx: ServiceContext, embedded_prefix: str) -> None:
    """After a restart: fail what ran on the previous embedded workers, settle deferred
    children of ended parents, and dispatch every queued job again."""
    lost, parents = [], set()
    with ctx.db.session() as session:
        running = session.scalars(
            select(Job).where(
                Job.claimed_by.like(f"{embedded_prefix}%"), Job.status.not_in(ENDED_STATUSES)
            )
        )
        for job in running:
            _end(session, job, "failed", "the server restarted while the job was running")
            lost.append(job.job_id)
        parents.update(
            session.scalars(select(Job.depends_on).where(
                Job.status == "deferred", Job.depends_on.is_not(None))).all()
        )
        queued = session.execute(
            select(Job.job_id, Queue.name, Job.timeout_seconds)
            .join(Queue, Queue.queue_id == Job.queue_id)
            .where(Job.status == "queued", Job.claimed_by.is_(None))
            .order_by(Job.created_on)
        ).all()
    for job_id in [*lost, *parents]:
        settle_children(ctx, job_id)
    for job_id, queue_name, timeout_seconds in queued:
        ctx.dispatcher.job_ready(job_id, queue_name, timeout_seconds)
