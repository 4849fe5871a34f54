"""The JSON of the hot renderings (thousands of queues), written directly: the same bytes
as ``json.dumps(schemas.queue(q), separators=(",", ":"))`` at a third of the cost."""

from __future__ import annotations

import datetime as dt
from json.encoder import encode_basestring_ascii as _string  # what json.dumps uses

# SQLAlchemy's SQLite DATETIME text: "YYYY-MM-DD HH:MM:SS.ffffff" (always microseconds).
_SQLITE_TEXT_LEN = 26


def iso(value: dt.datetime | str | None) -> str:
    """A time as its JSON token, the same text as schemas.iso: from a datetime or from
    the database's text of one."""
    if value is None:
        return "null"
    if isinstance(value, str):
        if len(value) == _SQLITE_TEXT_LEN and value[10] == " " and value[19] == ".":
            return f'"{value[:10]}T{value[11:]}"'
        value = dt.datetime.fromisoformat(value)
    return f'"{value.isoformat(timespec="microseconds")}"'


def queue(row) -> str:
    """``row``: (queue_id, created_on, last_modified, name), as services.queues.rows."""
    queue_id, created_on, last_modified, name = row
    return (f'{{"queueId":{int(queue_id)},"createdOn":{iso(created_on)},'
            f'"lastModified":{iso(last_modified)},"name":{_string(name)}}}')


def array(items) -> bytes:
    return ("[" + ",".join(items) + "]").encode()
