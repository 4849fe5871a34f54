"""Job logs: append-only text kept in the database, read from an offset."""

from __future__ import annotations

from sqlalchemy import BigInteger, func, literal, select
from sqlalchemy.orm import Session

from dioptra.db.models import JobLogChunk, utcnow
from dioptra.services.names import printable


def append(session: Session, job_id: str, text: str) -> None:
    """Keep what was printed; only NUL and lone surrogates, which no database stores,
    become U+FFFD (one character for one: offsets into the log stay true)."""
    if text:
        text = printable(text)
        session.add(JobLogChunk(job_id=job_id, data=text, length=len(text)))


def note(session: Session, job_id: str, message: str) -> None:
    """A line written by the testbed itself (not by the entry point)."""
    stamp = utcnow().isoformat(timespec="seconds")
    append(session, job_id, f"[dioptra {stamp}Z] {message}\n")


def read(session: Session, job_id: str, offset: int = 0) -> str:
    """The log from character ``offset`` on. Only the chunks that reach past the offset
    are fetched: a log followed while it grows costs its new part per poll."""
    chunk = JobLogChunk
    ends = (
        select(chunk.chunk_id, chunk.length,
               func.sum(chunk.length).over(order_by=chunk.chunk_id).label("end"))
        .where(chunk.job_id == job_id)
        .subquery()
    )
    rows = session.execute(
        select(chunk.data, ends.c.end, ends.c.length)
        .join(ends, ends.c.chunk_id == chunk.chunk_id)
        # A 64-bit offset: typed after the 32-bit length column, PostgreSQL overflows.
        .where(ends.c.end > literal(offset, BigInteger))
        .order_by(chunk.chunk_id)
    ).all()
    if not rows:
        return ""
    first, end, length = rows[0]
    skip = max(0, offset - (end - length))
    return "".join([first[skip:], *(data for data, _, _ in rows[1:])])


def size(session: Session, job_id: str) -> int:
    """Length of the log in characters, counted by the database (no log is read)."""
    query = select(func.coalesce(func.sum(JobLogChunk.length), 0))
    return int(session.scalar(query.where(JobLogChunk.job_id == job_id)))
