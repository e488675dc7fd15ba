"""Heartbeats and generations: liveness of submissions and job holders told by the database.

``experiments.generation`` (bumped by ``init`` and ``cleanup``), ``submissions.heartbeat``,
``submissions.generation``, ``submissions.note`` and ``jobs.heartbeat``. Existing rows get generation 0
and no heartbeat (a holder without one is judged by when it started or last changed).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("heartbeat", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("generation", sa.Integer()))
        batch.add_column(sa.Column("note", sa.Text()))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("heartbeat", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("heartbeat")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("note")
        batch.drop_column("generation")
        batch.drop_column("heartbeat")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("generation")
