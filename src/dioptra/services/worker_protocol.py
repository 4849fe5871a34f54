"""The worker protocol: how workers claim jobs and report on them (docs/ARCHITECTURE.md).

A worker *claims* a queued job with a conditional UPDATE, so one job never runs twice
even when it was dispatched twice. Every status a worker reports goes through the
lifecycle's table (services/lifecycle.py).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dioptra.contract.messages import CustomPlugin, JobSpec
from dioptra.contract.status import JobStatus
from dioptra.db.models import Job, Queue, utcnow
from dioptra.services import job_tokens, logs, plugins, workers
from dioptra.services.context import ServiceContext
from dioptra.services.errors import Conflict, NotFound
from dioptra.services.jobs import NOT_FOUND
from dioptra.services.lifecycle import Transitions, locked


def claim(
    ctx: ServiceContext, worker_id: str, queue_names: list[str] | None, job_id: str | None
) -> JobSpec | None:
    """Atomically give one queued job (oldest first) to ``worker_id``; None if none."""
    now = utcnow()
    with ctx.db.session() as session:
        workers.seen(session, worker_id)
        query = select(Job.job_id).where(
            Job.status == JobStatus.QUEUED, Job.claimed_by.is_(None)
        )
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
                .where(Job.job_id == candidate, Job.claimed_by.is_(None),
                       Job.status == JobStatus.QUEUED)
                .values(claimed_by=worker_id, claimed_on=now, heartbeat_on=now, last_modified=now)
            )
            if result.rowcount == 1:
                job = session.get(Job, candidate)
                session.refresh(job)
                logs.note(session, candidate, f"claimed by worker {worker_id}")
                return _spec(ctx, session, job)
    return None


def _spec(ctx: ServiceContext, session: Session, job: Job) -> JobSpec:
    custom = [CustomPlugin(name=name, sha256=digest)
              for name, digest in plugins.digests(session).items()]
    return JobSpec(
        job_id=job.job_id,
        experiment_id=job.experiment_id,
        queue=session.get(Queue, job.queue_id).name,
        entry_point=job.entry_point,
        entry_point_kwargs=job.entry_point_kwargs,
        depends_on=job.depends_on,
        timeout=job.timeout,
        timeout_seconds=job.timeout_seconds,
        workflow_uri=job.workflow_uri,
        workflow_filename=job.workflow_uri.rsplit("/", 1)[-1],
        workflow_sha256=job.workflow_sha256,
        mlflow_tracking_uri=ctx.tracking.tracking_uri,
        mlflow_tracking_token=job_tokens.for_job(ctx, job.job_id),
        custom_plugins=custom,
    )


def _claimed(session: Session, job_id: str, worker_id: str, for_update: bool = False) -> Job:
    job = locked(session, job_id) if for_update else session.get(Job, job_id)
    if job is None:
        raise NotFound(NOT_FOUND)
    if job.claimed_by != worker_id:
        raise Conflict(f"The job is not claimed by worker {worker_id!r}.")
    return job


def report(
    ctx: ServiceContext,
    job_id: str,
    worker_id: str,
    mlflow_run_id: str | None = None,
    status: JobStatus | None = None,
    reason: str | None = None,
) -> bool:
    """A worker's news about its job; returns whether the worker must stop it."""
    moves = Transitions()
    with ctx.db.session() as session:
        job = _claimed(session, job_id, worker_id, for_update=True)
        now = utcnow()
        job.heartbeat_on = now
        if mlflow_run_id:
            job.mlflow_run_id = mlflow_run_id
            job.last_modified = now
            logs.note(session, job_id, f"MLflow run {mlflow_run_id}")
        # A job that ended meanwhile (reaped, set through the API) keeps its status: the
        # worker cannot know, and learns it from the answer.
        ended_before = JobStatus(job.status).ended
        if status is not None and not ended_before:
            moves.move(session, job, JobStatus(status), reason)
        stop = job.cancel_requested or ended_before
    moves.follow_up(ctx)
    return stop


def heartbeat(ctx: ServiceContext, job_id: str, worker_id: str) -> bool:
    with ctx.db.session() as session:
        job = _claimed(session, job_id, worker_id)
        job.heartbeat_on = utcnow()
        return job.cancel_requested or JobStatus(job.status).ended


def append_log(ctx: ServiceContext, job_id: str, worker_id: str, text: str) -> int:
    with ctx.db.session() as session:
        _claimed(session, job_id, worker_id)
        logs.append(session, job_id, text)
        session.flush()
        return logs.size(session, job_id)
