"""Job logs: append-only text kept in the database, read from an offset."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dioptra.db.models import JobLogChunk, utcnow
from dioptra.services.names import printable


def append(session: Session, job_id: str, text: str) -> None:
    """Keep what was printed; only NUL and lone surrogates, which no database stores,
    become U+FFFD (one character for one: offsets into the log stay true)."""
    if text:
        session.add(JobLogChunk(job_id=job_id, data=printable(text)))


def note(session: Session, job_id: str, message: str) -> None:
    """A line written by the testbed itself (not by the entry point)."""
    stamp = utcnow().isoformat(timespec="seconds")
    append(session, job_id, f"[dioptra {stamp}Z] {message}\n")


def read(session: Session, job_id: str) -> str:
    query = select(JobLogChunk.data).where(JobLogChunk.job_id == job_id)
    return "".join(session.scalars(query.order_by(JobLogChunk.chunk_id)))


def size(session: Session, job_id: str) -> int:
    """Length of the log in characters, counted by the database (no log is read)."""
    query = select(func.coalesce(func.sum(func.length(JobLogChunk.data)), 0))
    return int(session.scalar(query.where(JobLogChunk.job_id == job_id)))
