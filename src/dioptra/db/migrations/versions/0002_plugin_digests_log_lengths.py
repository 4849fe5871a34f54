"""custom plugin digests; the length of each job log chunk

Revision ID: 0002_plugin_digests_log_lengths
Revises: 0001_initial
Create Date: 2026-12-02 03:30:00

- custom_plugins: the SHA-256 of each uploaded plugin package, recorded at upload, so a
  claim no longer hashes every package (plugins uploaded before this revision are
  recorded when the server starts: the migration cannot read the object store).
- job_log_chunks.length: characters in the chunk, so a log is read from an offset and
  measured without reading the chunks' text.
"""

from alembic import op
import sqlalchemy as sa


revision = "0002_plugin_digests_log_lengths"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custom_plugins",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_on", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_custom_plugins")),
    )
    with op.batch_alter_table("job_log_chunks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("length", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.execute("UPDATE job_log_chunks SET length = length(data)")


def downgrade() -> None:
    with op.batch_alter_table("job_log_chunks", schema=None) as batch_op:
        batch_op.drop_column("length")
    op.drop_table("custom_plugins")
