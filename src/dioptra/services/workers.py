"""Workers as the server knows them: whatever sent a heartbeat recently."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from dioptra.config import Settings
from dioptra.db.models import Worker, utcnow
from dioptra.dispatch.embedded import EMBEDDED_PREFIX
from dioptra.services.errors import Forbidden


def refuse_strangers(embedded_instance: str | None, worker_id: str) -> None:
    """An embedded worker's id names the server start that spawned it. One of an earlier
    start (an orphan of a server killed outright) must not take this start's jobs."""
    if not worker_id.startswith(EMBEDDED_PREFIX):
        return
    if embedded_instance and worker_id.startswith(f"{EMBEDDED_PREFIX}{embedded_instance}:"):
        return
    raise Forbidden(
        f"The worker {worker_id!r} was started by an earlier run of this server (or "
        f"claims a name starting with {EMBEDDED_PREFIX!r}, which is reserved); it may not "
        "take jobs."
    )


def touch(session: Session, worker_id: str, queues: list[str] | None, hostname: str | None) -> None:
    worker = session.get(Worker, worker_id)
    now = utcnow()
    if worker is None:
        worker = Worker(worker_id=worker_id, first_seen=now, hostname=hostname or "")
        session.add(worker)
    worker.queues = None if queues is None else json.dumps(sorted(queues))
    worker.last_seen = now
    if hostname:
        worker.hostname = hostname


def seen(session: Session, worker_id: str) -> None:
    """Any request of a worker proves it alive; only its heartbeat says what it serves."""
    worker = session.get(Worker, worker_id)
    if worker is not None:
        worker.last_seen = utcnow()


def list_live(session: Session, settings: Settings) -> list[Worker]:
    since = utcnow() - dt.timedelta(seconds=settings.heartbeat_timeout_s)
    query = select(Worker).where(Worker.last_seen >= since).order_by(Worker.worker_id)
    return list(session.scalars(query))


def serves(worker: Worker, queue_name: str) -> bool:
    return worker.queues is None or queue_name in json.loads(worker.queues)


def queue_is_served(session: Session, settings: Settings, queue_name: str) -> bool:
    if settings.effective_workers > 0:
        return True  # the embedded workers take every queue
    return any(serves(w, queue_name) for w in list_live(session, settings))
