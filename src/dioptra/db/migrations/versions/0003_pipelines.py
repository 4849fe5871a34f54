"""pipelines: a pipeline's definition and parent run, and which jobs belong to it

Revision ID: 0003_pipelines
Revises: 0002_plugin_digests_log_lengths
Create Date: 2026-12-02 03:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_pipelines"
down_revision = "0002_plugin_digests_log_lengths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("workflow_uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(length=36), nullable=True),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("last_modified", sa.DateTime(), nullable=False),
        sa.Column("ended_on", sa.DateTime(), nullable=True),
        sa.Column("finalized_on", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.experiment_id"],
                                name=op.f("fk_pipelines_experiment_id_experiments")),
        sa.PrimaryKeyConstraint("pipeline_id", name=op.f("pk_pipelines")),
    )
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipelines_experiment_id"), ["experiment_id"])
        batch_op.create_index(batch_op.f("ix_pipelines_status"), ["status"])
        batch_op.create_index(batch_op.f("ix_pipelines_created_on"), ["created_on"])

    op.create_table(
        "pipeline_jobs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("varying", sa.Text(), nullable=False),
        sa.Column("parents", sa.Text(), nullable=False),
        sa.Column("resolved", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"],
                                name=op.f("fk_pipeline_jobs_job_id_jobs")),
        sa.ForeignKeyConstraint(["pipeline_id"], ["pipelines.pipeline_id"],
                                name=op.f("fk_pipeline_jobs_pipeline_id_pipelines")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_pipeline_jobs")),
    )
    with op.batch_alter_table("pipeline_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipeline_jobs_pipeline_id"), ["pipeline_id"])


def downgrade() -> None:
    op.drop_table("pipeline_jobs")
    op.drop_table("pipelines")
