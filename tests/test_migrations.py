"""A database made by the previous schema upgrades to the newest, keeping its data."""

import datetime as dt

import pytest
from sqlalchemy import text

from dioptra.db import Database
from dioptra.db.engine import alembic_config
from dioptra.services import logs


@pytest.fixture(params=["sqlite", "postgres"])
def database_uri(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres_uri")
    return f"sqlite:///{tmp_path / 'old.db'}"


def test_0001_database_upgrades_with_log_lengths_and_plugin_digests(database_uri):
    from alembic import command

    db = Database(database_uri)
    try:
        command.upgrade(alembic_config(db.engine), "0001_initial")
        now = dt.datetime(2026, 11, 30)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO experiments (experiment_id, name, created_on, last_modified, "
                "is_deleted) VALUES (1, 'e', :now, :now, false)"), {"now": now})
            conn.execute(text(
                "INSERT INTO queues (name, created_on, last_modified, is_deleted) "
                "VALUES ('q', :now, :now, false)"), {"now": now})
            conn.execute(text(
                "INSERT INTO jobs (job_id, experiment_id, queue_id, created_on, "
                "last_modified, status, timeout_seconds, cancel_requested) VALUES ('j', 1, "
                "(SELECT queue_id FROM queues), :now, :now, 'finished', 60, false)"),
                {"now": now})
            for chunk in ("héllo ", "wörld\n", "ünd mehr"):
                conn.execute(text("INSERT INTO job_log_chunks (job_id, data) VALUES ('j', :d)"),
                             {"d": chunk})
        db.upgrade()
        with db.session() as session:
            assert logs.size(session, "j") == len("héllo wörld\nünd mehr")
            assert logs.read(session, "j") == "héllo wörld\nünd mehr"
            assert logs.read(session, "j", 8) == "rld\nünd mehr"
            assert session.execute(text("SELECT count(*) FROM custom_plugins")).scalar() == 0
    finally:
        db.dispose()
