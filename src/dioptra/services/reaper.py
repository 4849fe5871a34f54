"""Keeping the books: fail the jobs whose worker died or overran its timeout, and, after
a restart, the jobs the previous server's embedded workers held."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from dioptra.contract.status import ENDED_STATUSES, JobStatus
from dioptra.db.models import Job, Queue, utcnow
from dioptra.services.context import ServiceContext
from dioptra.services.lifecycle import Transitions, settle_children

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
    failed = []
    for job_id in running:
        try:
            moves, run_ids = Transitions(), []
            with ctx.db.session() as session:
                job = session.get(Job, job_id)
                reason = _why_reap(ctx, job, now) if job is not None else None
                if reason is not None and not JobStatus(job.status).ended:
                    moves.move(session, job, JobStatus.FAILED, reason)
                    run_ids.append(job.mlflow_run_id)
            failed.extend(moves.ended)
            _fail_runs(ctx, run_ids)
            moves.follow_up(ctx)
        except Exception:  # noqa: BLE001 - one job's problem must not shield the others
            log.exception("reaper: job %s could not be checked; skipped this round", job_id)
    return failed


def _fail_runs(ctx: ServiceContext, run_ids: list[str | None]) -> None:
    """The MLflow runs of jobs failed for their worker: end them FAILED, as the worker
    would have (else MLflow shows them RUNNING forever)."""
    for run_id in filter(None, run_ids):
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


def recover(ctx: ServiceContext, embedded_prefix: str) -> None:
    """After a restart: fail what ran on the previous embedded workers, settle deferred
    children of ended parents, and dispatch every queued job again."""
    moves = Transitions()
    with ctx.db.session() as session:
        running = session.scalars(
            select(Job).where(
                Job.claimed_by.like(f"{embedded_prefix}%"), Job.status.not_in(ENDED_STATUSES)
            )
        )
        lost_runs = []
        for job in running:
            moves.move(session, job, JobStatus.FAILED,
                       "the server restarted while the job was running")
            lost_runs.append(job.mlflow_run_id)
        parents = set(
            session.scalars(select(Job.depends_on).where(
                Job.status == JobStatus.DEFERRED, Job.depends_on.is_not(None)))
        )
        queued = session.execute(
            select(Job.job_id, Queue.name, Job.timeout_seconds)
            .join(Queue, Queue.queue_id == Job.queue_id)
            .where(Job.status == JobStatus.QUEUED, Job.claimed_by.is_(None))
            .order_by(Job.created_on)
        ).all()
    moves.follow_up(ctx)
    _fail_runs(ctx, lost_runs)
    for job_id in parents:
        settle_children(ctx, job_id)
    for job_id, queue_name, timeout_seconds in queued:
        ctx.dispatcher.job_ready(job_id, queue_name, timeout_seconds)


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
