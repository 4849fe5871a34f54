"""What the database says when its disk is full or read-only is recognised as such
(issue 7, item 9; the HTTP answers on a real full / read-only store are tested in
tests/test_limits_server.py)."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from dioptra.restapi.storage_errors import storage_failure


def test_sqlite_full_and_read_only_are_storage_failures(tmp_path) -> None:
    path = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with pytest.raises(DBAPIError) as full, engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
        conn.execute(text("PRAGMA max_page_count = 8"))  # a disk of 8 pages
        for _ in range(100):
            conn.execute(text("INSERT INTO t VALUES (zeroblob(4096))"))
    assert storage_failure(full.value)[0] == 507
    engine.dispose()

    read_only = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(DBAPIError) as refused, read_only.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert storage_failure(refused.value)[0] == 503
    read_only.dispose()


def test_only_storage_conditions_are_storage_failures() -> None:
    assert storage_failure(OSError(errno.ENOSPC, "No space left on device"))[0] == 507
    assert storage_failure(OSError(errno.EROFS, "Read-only file system"))[0] == 503
    assert storage_failure(OSError(errno.ENOENT, "No such file")) is None
    assert storage_failure(DBAPIError("x", {}, sqlite3.OperationalError("no such table"))) is None
