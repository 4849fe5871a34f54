"""Tables of the testbed. Names follow the original v0 schema where it had one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dioptra.contract.status import JobStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

def utcnow() -> dt.datetime:
    """Naive UTC: the v0 wire format has no offset, so the stored value has none."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Experiment(Base):
    __tablename__ = "experiments"

    # The MLflow experiment id: assigned by MLflow, not by us.
    experiment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    __table_args__ = (
        # Unique among live rows only, so a deleted name does not block forever.
        Index(
            "uq_experiments_live_name",
            "name",
            unique=True,
            sqlite_where=text("NOT is_deleted"),
            postgresql_where=text("NOT is_deleted"),
        ),
    )


class Queue(Base):
    __tablename__ = "queues"

    queue_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                          primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Set while the queue is locked (the original kept a separate lock table).
    locked_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        Index(
            "uq_queues_live_name",
            "name",
            unique=True,
            sqlite_where=text("NOT is_deleted"),
            postgresql_where=text("NOT is_deleted"),
        ),
    )


class Job(Base):
    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("experiments.experiment_id"), index=True
    )
    queue_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("queues.queue_id"), index=True)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    timeout: Mapped[str | None] = mapped_column(Text, nullable=True)
    workflow_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    entry_point: Mapped[str | None] = mapped_column(Text, nullable=True)
    entry_point_kwargs: Mapped[str | None] = mapped_column(Text, nullable=True)
    depends_on: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(
        String(255), default=JobStatus.QUEUED.value, index=True
    )

    # Beyond v0: what the dispatcher and the reaper need.
    timeout_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=86400)
    workflow_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    claimed_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    started_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    ended_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobLogChunk(Base):
    """A job's log is the concatenation of its chunks in id order."""

    __tablename__ = "job_log_chunks"

    chunk_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.job_id"), index=True)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    # Characters in ``data``: a log is measured and read from an offset with these alone.
    length: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))


class CustomPlugin(Base):
    """An uploaded task plugin package's digest, recorded once at upload (the package
    itself lives in the object store)."""

    __tablename__ = "custom_plugins"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    uploaded_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Worker(Base):
    """A worker process seen through its heartbeats."""

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(Text, default="")
    # JSON list of queue names, or null for "every queue".
    queues: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Pipeline(Base):
    """A pipeline: a definition of stages carried out by the server as ordinary jobs."""

    __tablename__ = "pipelines"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    experiment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("experiments.experiment_id"), index=True
    )
    # The definition as submitted (JSON), for the report and for reading back.
    definition: Mapped[str] = mapped_column(Text, nullable=False)
    workflow_uri: Mapped[str] = mapped_column(Text, nullable=False)
    # "started" until every job has ended, then "finished" or "failed".
    status: Mapped[str] = mapped_column(String(32), default="started", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The parent MLflow run that every job's run is nested under.
    mlflow_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    last_modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ended_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # When the ended pipeline's run was closed and its report logged (null: still to do).
    finalized_on: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class PipelineJob(Base):
    """A job of a pipeline: its stage, its parameters before and after resolving the
    references, and the jobs it comes after."""

    __tablename__ = "pipeline_jobs"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.job_id"), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("pipelines.pipeline_id"), index=True
    )
    stage: Mapped[str] = mapped_column(Text, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # order within the stage
    # JSON: {name: value} with ${...} references as written; defaults filled in.
    params: Mapped[str] = mapped_column(Text, nullable=False)
    # JSON: the grid values of this job ({name: value}, "entryPoint" when a list).
    varying: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    # JSON: ids of the jobs this one comes after (empty for a first stage).
    parents: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    # JSON: the parameters as released (references resolved); null until then.
    resolved: Mapped[str | None] = mapped_column(Text, nullable=True)
