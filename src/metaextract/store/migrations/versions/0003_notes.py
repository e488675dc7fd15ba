"""Notes: what an extraction found worth knowing about a file that is no error, stored with its result.

``image_files.notes`` holds :attr:`metaextract.result.Result.notes`, one note a line (each note is one
line); NULL when there are none, and for every file extracted before this revision.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_files") as batch:
        batch.add_column(sa.Column("notes", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("image_files") as batch:
        batch.drop_column("notes")
