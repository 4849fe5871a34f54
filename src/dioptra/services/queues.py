"""Queues: named lines of jobs; a locked queue refuses new submissions."""

from __future__ import annotations

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from dioptra.db.models import Queue, utcnow
from dioptra.services.errors import BadRequest, Forbidden, NotFound
from dioptra.services.names import check_name, flush_named, name_taken

NOT_FOUND = "The requested queue does not exist"


def list_unlocked(session: Session) -> list[Queue]:
    query = (
        select(Queue)
        .where(~Queue.is_deleted, Queue.locked_on.is_(None))
        .order_by(Queue.queue_id)
    )
    return list(session.scalars(query))


def rows(session: Session, unlocked_only: bool):
    """The queues' fields the API shows, by id, as plain rows (queue_id, created_on,
    last_modified, name): no ORM objects, and the times as the driver gives them (SQLite:
    its text; PostgreSQL: datetimes), unparsed. The hot list and lookup renderings read
    thousands of them (restapi/fast_json.py turns either form into the API's)."""
    query = select(Queue.queue_id, type_coerce(Queue.created_on, String).label("created_on"),
                   type_coerce(Queue.last_modified, String).label("last_modified"),
                   Queue.name).where(~Queue.is_deleted).order_by(Queue.queue_id)
    if unlocked_only:
        query = query.where(Queue.locked_on.is_(None))
    # On the session's connection, past the ORM's row loading: plain Core rows.
    return session.connection().execute(query).all()


def get_by_id(session: Session, queue_id: int) -> Queue:
    queue = session.get(Queue, queue_id)
    if queue is None or queue.is_deleted:
        raise NotFound(NOT_FOUND)
    return queue


def find_by_name(session: Session, name: str) -> Queue | None:
    # Exact match, as the original: the name is the one the queue was registered under.
    return session.scalars(select(Queue).where(Queue.name == name, ~Queue.is_deleted)).first()


def get_by_name(session: Session, name: str) -> Queue:
    queue = find_by_name(session, name)
    if queue is None:
        raise NotFound(NOT_FOUND)
    return queue


def get_for_submission(session: Session, name: str) -> Queue:
    queue = get_by_name(session, name)
    if queue.locked_on is not None:
        raise Forbidden("The requested queue is locked.")
    return queue


def _check_free(session: Session, name: str) -> None:
    if find_by_name(session, name) is not None:
        raise BadRequest(name_taken("queue"))


def create(session: Session, name: str) -> Queue:
    name = check_name("queue", name)
    _check_free(session, name)
    now = utcnow()
    queue = Queue(name=name, created_on=now, last_modified=now)
    session.add(queue)
    flush_named(session, "queue")
    return queue


def rename(session: Session, queue_id: int, name: str) -> Queue:
    queue = get_by_id(session, queue_id)
    name = check_name("queue", name)
    if name != queue.name:
        _check_free(session, name)
        queue.name = name
    queue.last_modified = utcnow()
    flush_named(session, "queue")
    return queue


def delete(queue: Queue | None) -> bool:
    if queue is None or queue.is_deleted:
        return False
    queue.is_deleted = True
    queue.last_modified = utcnow()
    return True


def lock(queue: Queue) -> None:
    """Idempotent: locking a locked queue keeps its first lock time."""
    if queue.locked_on is None:
        queue.locked_on = utcnow()


def unlock(queue: Queue) -> None:
    queue.locked_on = None
