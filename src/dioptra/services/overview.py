"""Summaries for people (the web interface): counts, last activity, who runs what.

Read-only: one query per summary, whatever the number of experiments or jobs.
"""

from __future__ import annotations

import json

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dioptra.config import Settings
from dioptra.contract.status import STATUS_VALUES, JobStatus
from dioptra.db.models import Experiment, Job, Queue
from dioptra.services import workers
from dioptra.services.errors import BadRequest

ACTIVE = (JobStatus.QUEUED.value, JobStatus.STARTED.value)


def experiments(session: Session) -> list[dict]:
    counts: dict[int, dict[str, int]] = {}
    last: dict[int, object] = {}
    query = (select(Job.experiment_id, Job.status, func.count(), func.max(Job.last_modified))
             .group_by(Job.experiment_id, Job.status))
    for experiment_id, status, count, latest in session.execute(query):
        counts.setdefault(experiment_id, {})[status] = count
        if latest is not None and (experiment_id not in last or latest > last[experiment_id]):
            last[experiment_id] = latest
    rows = session.scalars(
        select(Experiment).where(~Experiment.is_deleted).order_by(Experiment.experiment_id))
    return [{
        "experiment": e,
        "jobs": counts.get(e.experiment_id, {}),
        "lastActivity": max(filter(None, [last.get(e.experiment_id), e.last_modified])),
    } for e in rows]


def queues(session: Session, settings: Settings) -> list[dict]:
    counts: dict[int, dict[str, int]] = {}
    query = (select(Job.queue_id, Job.status, func.count())
             .where(Job.status.in_(ACTIVE)).group_by(Job.queue_id, Job.status))
    for queue_id, status, count in session.execute(query):
        counts.setdefault(queue_id, {})[status] = count
    live = workers.list_live(session, settings)
    embedded = settings.effective_workers
    found = []
    for q in session.scalars(select(Queue).where(~Queue.is_deleted).order_by(Queue.queue_id)):
        serving = [w.worker_id for w in live if workers.serves(w, q.name)]
        found.append({
            "queue": q,
            "queued": counts.get(q.queue_id, {}).get(JobStatus.QUEUED.value, 0),
            "running": counts.get(q.queue_id, {}).get(JobStatus.STARTED.value, 0),
            "workers": serving,
            "served": bool(serving) or embedded > 0,
        })
    return found


def live_workers(session: Session, settings: Settings) -> list[dict]:
    live = workers.list_live(session, settings)
    running: dict[str, list[str]] = {}
    query = select(Job.claimed_by, Job.job_id).where(
        Job.status == JobStatus.STARTED.value, Job.claimed_by.in_([w.worker_id for w in live]))
    for worker_id, job_id in session.execute(query):
        running.setdefault(worker_id, []).append(job_id)
    return [{
        "worker": w,
        "queues": None if w.queues is None else json.loads(w.queues),
        "running": running.get(w.worker_id, []),
    } for w in live]


def find_jobs(session: Session, status: str | None = None, experiment_id: int | None = None,
              queue: str | None = None, entry_point: str | None = None,
              text: str | None = None, depends_on: str | None = None,
              limit: int = 50, offset: int = 0, job_id: str | None = None,
              ) -> tuple[int, list[tuple[Job, str, str]]]:
    """Jobs newest first with their experiment's and queue's names, and the total."""
    query = (select(Job, Experiment.name, Queue.name)
             .join(Experiment, Experiment.experiment_id == Job.experiment_id)
             .join(Queue, Queue.queue_id == Job.queue_id))
    if status:
        if status not in STATUS_VALUES:
            raise BadRequest(f"status must be one of: {', '.join(STATUS_VALUES)}.")
        query = query.where(Job.status == status)
    if experiment_id is not None:
        query = query.where(Job.experiment_id == experiment_id)
    if queue:
        query = query.where(Queue.name == queue)
    if entry_point:
        query = query.where(Job.entry_point == entry_point)
    if depends_on:
        query = query.where(Job.depends_on == depends_on)
    if job_id:
        query = query.where(Job.job_id == job_id)
    if text:
        pattern = f"%{text.lower()}%"
        query = query.where(or_(
            func.lower(Job.job_id).like(pattern), func.lower(Job.entry_point).like(pattern),
            func.lower(Job.entry_point_kwargs).like(pattern),
            func.lower(Experiment.name).like(pattern), func.lower(Queue.name).like(pattern),
        ))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = session.execute(
        query.order_by(Job.created_on.desc(), Job.job_id).offset(offset).limit(limit))
    return total or 0, [tuple(row) for row in page]
