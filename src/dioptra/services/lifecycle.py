"""The job lifecycle: one table of allowed status changes, and the one door they go
through (``Transitions.move``): the manual PUT, worker reports, the reaper, restart
recovery, cancel and dependency settling all use it.

The table is keyed by the job's *phase*: its status, with ``queued`` split by whether a
worker has claimed the job, because what may happen next depends on it (a claimed job
must not be queued again: no worker would ever claim it; an unclaimed one cannot start:
no worker runs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from dioptra.contract.status import JobStatus
from dioptra.db.models import Job, Queue, utcnow
from dioptra.services import logs
from dioptra.services.context import ServiceContext
from dioptra.services.errors import Conflict


class Phase(StrEnum):
    DEFERRED = JobStatus.DEFERRED.value
    WAITING = "queued, not claimed by a worker"
    CLAIMED = "queued, claimed by a worker"
    STARTED = JobStatus.STARTED.value
    FINISHED = JobStatus.FINISHED.value
    FAILED = JobStatus.FAILED.value


def locked(session: Session, job_id: str) -> Job | None:
    """The job, its row locked until the commit (PostgreSQL; SQLite has one writer at a
    time anyway), so that two changes of one job (a worker's report and the reaper, say)
    apply one after the other and the second sees the first."""
    return session.get(Job, job_id, with_for_update=True, populate_existing=True)


def phase(job: Job) -> Phase:
    status = JobStatus(job.status)
    if status is JobStatus.QUEUED:
        return Phase.WAITING if job.claimed_by is None else Phase.CLAIMED
    return Phase(status.value)


S = JobStatus
# (phase, new status) -> why it is allowed. What is not here is refused (409).
# A change to the status the job already has is a no-op.
TRANSITIONS: dict[tuple[Phase, JobStatus], str] = {
    (Phase.DEFERRED, S.DEFERRED): "no change",
    (Phase.DEFERRED, S.QUEUED): "its dependency finished, or it was released by hand",
    (Phase.DEFERRED, S.FAILED): "its dependency failed, or it was cancelled or failed by hand",
    (Phase.DEFERRED, S.FINISHED): "set by hand",
    (Phase.WAITING, S.QUEUED): "no change (handed to the dispatcher again)",
    (Phase.WAITING, S.FAILED): "cancelled, or failed by hand",
    (Phase.WAITING, S.FINISHED): "set by hand",
    (Phase.CLAIMED, S.STARTED): "its worker started the entry point",
    (Phase.CLAIMED, S.FAILED): "its worker failed it, went silent, or the server restarted",
    (Phase.CLAIMED, S.FINISHED): "its worker finished it, or set by hand",
    (Phase.STARTED, S.STARTED): "no change (a repeated report)",
    (Phase.STARTED, S.FAILED): "its entry point failed, timed out or its worker went silent",
    (Phase.STARTED, S.FINISHED): "its entry point succeeded, or set by hand",
    (Phase.FINISHED, S.FINISHED): "no change",
    (Phase.FAILED, S.FAILED): "no change",
}


def refusal(job: Job, to: JobStatus) -> str | None:
    """Why the table refuses moving ``job`` to ``to``; None when it allows it."""
    now = phase(job)
    if (now, to) in TRANSITIONS:
        return None
    if now in (Phase.FINISHED, Phase.FAILED):
        return f"The job has already ended with status '{job.status}'; it cannot become '{to}'."
    if to is S.STARTED:
        return (f"The job is {now}: only the worker that claimed a queued job can mark it "
                "'started'.")
    if to is S.QUEUED:
        return (f"The job is {now} (worker {job.claimed_by!r}); queued again, no worker "
                "would ever take it. Cancel it or set it 'failed' instead.")
    if to is S.DEFERRED:
        return ("A job is 'deferred' only from its submission, while the job named in "
                f"'dependsOn' runs; this one is {now}.")
    return f"The job is {now}; it cannot become '{to}'."


@dataclass
class Transitions:
    """Status changes made in one database session, and what must follow their commit:
    jobs to hand to the dispatcher, ended parents whose children must be settled."""

    ready: list[tuple[str, str, int]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def move(self, session: Session, job: Job, to: JobStatus, reason: str | None = None) -> bool:
        """Move ``job`` to ``to`` as the table allows (else Conflict); return whether its
        status changed."""
        why_not = refusal(job, to)
        if why_not is not None:
            raise Conflict(why_not)
        now = utcnow()
        if to == job.status:
            if to is S.QUEUED:
                self.ready.append(_ready(session, job))
            return False
        job.status = to
        job.last_modified = now
        if to is S.STARTED:
            job.started_on = now
            logs.note(session, job.job_id, "entry point started")
        elif to is S.QUEUED:
            logs.note(session, job.job_id, f"job queued: {reason}" if reason else "job queued")
            self.ready.append(_ready(session, job))
        elif to.ended:
            job.reason = reason
            job.ended_on = now
            logs.note(session, job.job_id, f"job {to}: {reason}" if reason else f"job {to}")
            self.ended.append(job.job_id)
        return True

    def follow_up(self, ctx: ServiceContext) -> None:
        """After the commit: dispatch what became queued, settle the ended jobs' children."""
        for job_id, queue_name, timeout_seconds in self.ready:
            ctx.dispatcher.job_ready(job_id, queue_name, timeout_seconds)
        for job_id in self.ended:
            settle_children(ctx, job_id)


def _ready(session: Session, job: Job) -> tuple[str, str, int]:
    return job.job_id, session.get(Queue, job.queue_id).name, job.timeout_seconds


def settle_children(ctx: ServiceContext, parent_id: str) -> None:
    """Queue or fail the deferred children of a parent that has ended (idempotent)."""
    moves = Transitions()
    with ctx.db.session() as session:
        parent = session.get(Job, parent_id)
        if parent is None or not JobStatus(parent.status).ended:
            return
        children = session.scalars(
            select(Job)
            .where(Job.depends_on == parent_id, Job.status == S.DEFERRED)
            .with_for_update()
        )
        for child in children:
            if parent.status == S.FINISHED:
                moves.move(session, child, S.QUEUED, f"dependency {parent_id} finished")
            else:
                moves.move(session, child, S.FAILED,
                           f"dependency {parent_id} failed "
                           f"({parent.reason or 'no reason given'})")
    moves.follow_up(ctx)
