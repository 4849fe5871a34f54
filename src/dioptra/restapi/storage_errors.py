"""Full or read-only storage is the server's condition, not a bug: answer it as such.

Disk full (object store, job folders, SQLite) is 507 Insufficient Storage, read-only
storage 503; the message says what happened and that nothing was saved (the stores write
through temporary files and the database rolls back, so nothing is half-written). Any
other OSError or database error goes on to the handler that would have taken it.
"""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("dioptra.restapi")

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS}
# How the databases say the same: SQLite in words, PostgreSQL by SQLSTATE (disk_full,
# read_only_sql_transaction).
_SQLITE_FULL = ("database or disk is full",)
_SQLITE_READ_ONLY = ("attempt to write a readonly database",)
_PG_FULL = {"53100"}
_PG_READ_ONLY = {"25006"}


def storage_failure(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) when ``exc`` means full or read-only storage, else None."""
    if isinstance(exc, OSError):
        if exc.errno in _FULL:
            return 507, _FULL_MESSAGE
        if exc.errno in _READ_ONLY:
            return 503, _READ_ONLY_MESSAGE
    if isinstance(exc, DBAPIError):
        text = str(exc.orig)
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code in _PG_FULL or any(s in text for s in _SQLITE_FULL):
            return 507, _FULL_MESSAGE
        if code in _PG_READ_ONLY or any(s in text for s in _SQLITE_READ_ONLY):
            return 503, _READ_ONLY_MESSAGE
    return None


_FULL_MESSAGE = (
    "Insufficient Storage - The server's storage is full; nothing was saved. "
    "Try again once space has been freed."
)
_READ_ONLY_MESSAGE = (
    "Service Unavailable - The server's storage is read-only; nothing was saved."
)


def install(app: FastAPI) -> None:
    async def storage_error(request: Request, exc: Exception):
        failure = storage_failure(exc)
        if failure is not None:
            log.error("%s %s: %s", request.method, request.url.path, exc)
            return JSONResponse({"message": failure[1]}, status_code=failure[0])
        for cls in type(exc).__mro__:  # the handler this one stands in front of
            handler = app.exception_handlers.get(cls)
            if handler is not None and handler is not storage_error:
                return await handler(request, exc)
        raise exc

    for cls in (OSError, DBAPIError):
        app.add_exception_handler(cls, storage_error)
