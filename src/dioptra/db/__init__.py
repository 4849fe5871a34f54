"""Database layer: SQLAlchemy 2 models, engine/session factory and Alembic migrations."""

from dioptra.db.engine import Database
from dioptra.db.models import Base, Experiment, Job, JobLogChunk, Queue, Worker

__all__ = ["Base", "Database", "Experiment", "Job", "JobLogChunk", "Queue", "Worker"]
