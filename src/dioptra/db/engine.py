"""Engine and session factory; the schema is brought to the newest migration on open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ASSIGNED = r'^{}\s*(?::[^=]*)?=\s*["\']([^"\']+)["\']'


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers run while a writer commits; busy_timeout makes writers wait
    # for each other instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(uri: str) -> Engine:
    if uri.startswith("sqlite"):
        # One pooled connection per request thread (anyio's pool has 40): no overflow
        # connections opened and closed per request, each paying the pragmas again.
        engine = create_engine(
            uri, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40,
            max_overflow=0,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    return create_engine(uri, pool_size=16, max_overflow=16, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revisions(versions_dir: Path) -> set[str] | None:
    """The newest revisions of an Alembic versions folder, read from the files'
    ``revision``/``down_revision`` lines without importing Alembic; None when a file does
    not say its revision plainly."""
    revisions, parents = set(), set()
    for path in versions_dir.glob("*.py"):
        if path.name == "__init__.py":
            continue
        source = path.read_text()
        found = re.search(_ASSIGNED.format("revision"), source, re.MULTILINE)
        parent = re.search(_ASSIGNED.format("down_revision"), source, re.MULTILINE)
        if found is None:
            return None
        revisions.add(found.group(1))
        if parent is not None:
            parents.add(parent.group(1))
    return revisions - parents


class Database:
    """The database of one server: engine, sessions and migrations."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.engine = make_engine(uri)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self) -> None:
        if self._at_head():
            return  # the usual restart: Alembic (a second to import) is not needed
        from alembic import command

        command.upgrade(alembic_config(self.engine), "head")

    def _at_head(self) -> bool:
        """Whether the database is at the newest revision of the migration files (anything
        unclear says no, and Alembic decides)."""
        heads = head_revisions(MIGRATIONS_DIR / "versions")
        if not heads:
            return False
        try:
            with self.engine.connect() as connection:
                current = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
        except SQLAlchemyError:  # no such table: a fresh database
            return False
        return bool(current) and current == heads

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
