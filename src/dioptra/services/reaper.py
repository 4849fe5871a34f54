"""Keeping the books: fail the jobs whose worker died or overran its timeout, and, after
a restart, the jobs the previous server's embedded workers held."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import select

from dioptra.contract.status import ENDED_STATUSES, JobStatus
from dioptra.db.models import Job, Queue, utcnow
from dioptra.services.context import ServiceContext
from dioptra.services.lifecycle import Transitions, locked, settle_children

log = logging.getLogger("dioptra.reaper")


def reap(ctx: ServiceContext) -> list[str]:
    """Fail the jobs whose worker went silent or overran its timeout; returns their ids.

    Each job is judged and failed on its own: an error on one (a row this version cannot
    read, say) is logged and the others are still reaped.
    """
    now = utcnow()
    with ctx.db.session() as session:
        running = session.scalars(
            select(Job.job_id).where(
                Job.claimed_by.is_not(None), Job.status.not_in(ENDED_STATUSES)
            )
        ).all()
    return [job_id for job_id in running
            if _fail_one(ctx, job_id, lambda job: _why_reap(ctx, job, now))]


def recover(ctx: ServiceContext, embedded_prefix: str) -> None:
    """After a restart: fail what ran on the previous embedded workers, settle deferred
    children of ended parents, and dispatch every queued job again."""
    with ctx.db.session() as session:
        lost = session.scalars(
            select(Job.job_id).where(
                Job.claimed_by.like(f"{embedded_prefix}%"), Job.status.not_in(ENDED_STATUSES)
            )
        ).all()
    for job_id in lost:
        _fail_one(ctx, job_id, lambda job: "the server restarted while the job was running")
    with ctx.db.session() as session:
        parents = set(
            session.scalars(select(Job.depends_on).where(Job.status == JobStatus.DEFERRED))
        )
        queued = session.execute(
            select(Job.job_id, Queue.name, Job.timeout_seconds)
            .join(Queue, Queue.queue_id == Job.queue_id)
            .where(Job.status == JobStatus.QUEUED, Job.claimed_by.is_(None))
            .order_by(Job.created_on)
        ).all()
    for job_id in parents:
        try:
            settle_children(ctx, job_id)
        except Exception:  # noqa: BLE001 - as in reap: one job never blocks the others
            log.exception("recovery: the children of job %s could not be settled", job_id)
    for job_id, queue_name, timeout_seconds in queued:
        ctx.dispatcher.job_ready(job_id, queue_name, timeout_seconds)


def _fail_one(ctx: ServiceContext, job_id: str, why: Callable[[Job], str | None]) -> bool:
    """Fail the job for its worker if ``why`` gives a reason, in a transaction of its
    own; end its MLflow run FAILED too (its worker cannot). Errors are logged: one job's
    problem must not shield the others. Returns whether the job was failed."""
    try:
        moves, run_id = Transitions(), None
        with ctx.db.session() as session:
            job = locked(session, job_id)
            if job is None or JobStatus(job.status).ended:
                return False
            reason = why(job)
            if reason is None:
                return False
            moves.move(session, job, JobStatus.FAILED, reason)
            run_id = job.mlflow_run_id
        _fail_run(ctx, run_id)
        moves.follow_up(ctx)
        return True
    except Exception:  # noqa: BLE001
        log.exception("job %s could not be checked; skipped this round", job_id)
        return False


def _fail_run(ctx: ServiceContext, run_id: str | None) -> None:
    """End FAILED the MLflow run of a job failed for its worker (else MLflow shows it
    RUNNING forever)."""
    if not run_id:
        return
    try:
        ctx.tracking.fail_run(run_id)
    except Exception as exc:  # noqa: BLE001 - MLflow away: the job's status holds
        log.warning("could not end MLflow run %s as FAILED: %s", run_id, exc)


def _why_reap(ctx: ServiceContext, job: Job, now: dt.datetime) -> str | None:
    silence = ctx.settings.heartbeat_timeout_s
    if job.heartbeat_on is not None and (now - job.heartbeat_on).total_seconds() > silence:
        return (f"worker {job.claimed_by} stopped sending heartbeats for {silence:g}s "
                "(it crashed or was cut off)")
    # Elapsed time against the timeout, rather than a deadline: no date overflows.
    if job.started_on is not None and (
        (now - job.started_on).total_seconds() > job.timeout_seconds + 60
    ):
        return f"timed out after {job.timeout} (the worker did not stop it; failed by the server)"
    return None


def redispatch(ctx: ServiceContext, min_age_s: float) -> None:
    """Let the dispatcher hand over again the queued jobs it lost. Jobs changed in the
    last ``min_age_s`` seconds are being handed over right now: left out."""
    settled_before = utcnow() - dt.timedelta(seconds=min_age_s)
    with ctx.db.session() as session:
        waiting = session.execute(
            select(Job.job_id, Queue.name, Job.timeout_seconds)
            .join(Queue, Queue.queue_id == Job.queue_id)
            .where(Job.status == JobStatus.QUEUED, Job.claimed_by.is_(None),
                   Job.last_modified < settled_before)
            .order_by(Job.created_on)
        ).all()
    ctx.dispatcher.redispatch([tuple(row) for row in waiting])
