"""The pipelines migration upgrades a database made by the previous schema, data kept."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from dioptra.db import Database
from dioptra.db.engine import alembic_config
from dioptra.db.models import Base


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrade_from_the_previous_schema_keeps_jobs_and_matches_the_models(
        backend, tmp_path, request):
    uri = (request.getfixturevalue("postgres_uri") if backend == "postgres"
           else f"sqlite:///{tmp_path / 'old.db'}")
    db = Database(uri)
    try:
        command.upgrade(alembic_config(db.engine), "0002_plugin_digests_log_lengths")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO experiments (experiment_id, name, created_on, last_modified, "
                "is_deleted) VALUES (1, 'old', '2026-01-01', '2026-01-01', false)"))
            conn.execute(text(
                "INSERT INTO queues (name, created_on, last_modified, is_deleted) "
                "VALUES ('q', '2026-01-01', '2026-01-01', false)"))
            conn.execute(text(
                "INSERT INTO jobs (job_id, experiment_id, queue_id, created_on, last_modified,"
                " status, timeout_seconds, cancel_requested) VALUES ('j1', 1, "
                "(SELECT queue_id FROM queues), '2026-01-01', '2026-01-01', 'finished', 60, "
                "false)"))
        assert "pipelines" not in inspect(db.engine).get_table_names()
        db.upgrade()
        tables = inspect(db.engine).get_table_names()
        assert {"pipelines", "pipeline_jobs"} <= set(tables)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM jobs")).scalar_one() == "finished"
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
    finally:
        db.dispose()
