"""A migrated, empty MLflow database to start a new data dir from.

MLflow migrates a new SQLite database at its first start (some 70 Alembic migrations: a
second or two on a quiet machine, several more while the workers import the ML stack
beside it). A new data dir gets instead a copy of an empty database that MLflow's own
code migrated once per MLflow schema (the template, in ``$DIOPTRA_CACHE_DIR``, else
``$XDG_CACHE_HOME/dioptra``, else ``~/.cache/dioptra``). MLflow takes it as it is: all its
tables exist and ``alembic_version`` is its newest revision, so it neither migrates nor
refuses it, and it adds its Default experiment at first start as on an empty database.

The template is named after that revision (read from MLflow's migration files, without
importing MLflow) and checked before every copy; any doubt and MLflow migrates as before.

    python -m dioptra.mlflow_db      # make the template now (make install does)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sqlite3
import sys
from pathlib import Path

from dioptra.db.engine import head_revisions

CACHE_ENV = "DIOPTRA_CACHE_DIR"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dioptra"


def mlflow_head() -> str | None:
    """The newest revision of the installed MLflow's schema (None if unclear)."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    versions = Path(spec.submodule_search_locations[0]) / "store" / "db_migrations" / "versions"
    heads = head_revisions(versions) if versions.is_dir() else None
    return next(iter(heads)) if heads and len(heads) == 1 else None


def template_path(head: str) -> Path:
    return cache_dir() / f"mlflow-{head}.db"


def revision_of(db: Path) -> str | None:
    """The schema revision of SQLite database ``db``, if it is an MLflow database that
    holds no experiment yet (a template), else None."""
    if not db.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return None
            if conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]:
                return None
            (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            return revision[0]
    except (sqlite3.Error, ValueError):
        return None


def make_template() -> Path | None:
    """The template for the installed MLflow, made now if missing (imports MLflow: a few
    seconds); None if MLflow's code did not bring an empty database to its head."""
    head = mlflow_head()
    if head is None:
        return None
    path = template_path(head)
    if revision_of(path) == head:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from mlflow.store.db import utils

        engine = utils.create_sqlalchemy_engine_with_retry(f"sqlite:///{tmp}")
        try:
            utils._initialize_tables(engine)  # what MLflow runs on an empty database
        finally:
            engine.dispose()
        if revision_of(tmp) != head:
            return None
        os.replace(tmp, path)  # atomic: another process sees no template or a whole one
        return path
    except Exception:  # noqa: BLE001 - no template then; MLflow migrates as before
        return None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def seed(db: Path) -> bool:
    """Copy the template to ``db`` when ``db`` does not exist and the template is at the
    installed MLflow's head; True if it did."""
    if db.exists():
        return False
    head = mlflow_head()
    if head is None or revision_of(template_path(head)) != head:
        return False
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template_path(head), tmp)
        if revision_of(tmp) != head:
            return False
        os.replace(tmp, db)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return True


def main() -> int:
    made = make_template()
    if made is None:
        print("no MLflow database template: MLflow will migrate each new database itself",
              file=sys.stderr)
        return 1
    print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main())
