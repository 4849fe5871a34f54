"""Keeping the books: fail the jobs whose worker died or overran its timeout, and, after
a restart, the jobs the previous server's embedded workers held."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from dioptra.contract.status import ENDED_STATUSES, JobStatus
from dioptra.db.models import Job, Queue, utcnow
from dioptra.services.context import ServiceContext
from dioptra.services.lifecycle import Transitions, settle_children


def reap(ctx: ServiceContext) -> list[str]:
    """Fail the jobs whose worker went silent or overran its timeout; returns their ids."""
    now = utcnow()
    silent_since = now - dt.timedelta(seconds=ctx.settings.heartbeat_timeout_s)
    moves = Transitions()
    with ctx.db.session() as session:
        running = session.scalars(
            select(Job).where(Job.claimed_by.is_not(None), Job.status.not_in(ENDED_STATUSES))
        )
        for job in running:
            if job.heartbeat_on is not None and job.heartbeat_on < silent_since:
                moves.move(session, job, JobStatus.FAILED,
                           f"worker {job.claimed_by} stopped sending heartbeats "
                           f"for {ctx.settings.heartbeat_timeout_s:g}s "
                           "(it crashed or was cut off)")
            elif job.started_on is not None and job.started_on + dt.timedelta(
                seconds=job.timeout_seconds + 60
            ) < now:
                moves.move(session, job, JobStatus.FAILED,
                           f"timed out after {job.timeout} (the worker did not stop it; "
                           "failed by the server)")
    moves.follow_up(ctx)
    return list(moves.ended)


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
        for job in running:
            moves.move(session, job, JobStatus.FAILED,
                       "the server restarted while the job was running")
        parents = set(
            session.scalars(select(Job.depends_on).where(Job.status == JobStatus.DEFERRED))
        )
        queued = session.execute(
            select(Job.job_id, Queue.name, Job.timeout_seconds)
            .join(Queue, Queue.queue_id == Job.queue_id)
            .where(Job.status == JobStatus.QUEUED, Job.claimed_by.is_(None))
            .order_by(Job.created_on)
        ).all()
    moves.follow_up(ctx)
    for job_id in parents:
        settle_children(ctx, job_id)
    for job_id, queue_name, timeout_seconds in queued:
        ctx.dispatcher.job_ready(job_id, queue_name, timeout_seconds)
