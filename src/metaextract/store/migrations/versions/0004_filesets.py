"""Filesets: each acquisition's filesets, their members and every image member's planes.

``filesets`` (kind, view, master, layout_from_names, notes; and the one read's status, OME-XML, error,
engine, engine_version, extracted_at), ``fileset_members`` (a registered image or metadata file and its
role; each file in one fileset at most) and ``planes`` (each plane's place: image, plate, well, field, z,
c, t, plane, stage position, time). New tables only: a database at 0002 gains them empty, and its next
``experiment add`` of a folder fills them.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filesets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("acquisition_id", sa.Integer(), sa.ForeignKey("acquisitions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("view", sa.String(8), nullable=False),
        sa.Column("master", sa.Text(), nullable=False),
        sa.Column("layout_from_names", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.JSON()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("omexml", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("engine", sa.String(64)),
        sa.Column("engine_version", sa.String(64)),
        sa.Column("extracted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_filesets_experiment_id", "filesets", ["experiment_id"])
    op.create_index("ix_filesets_acquisition_id", "filesets", ["acquisition_id"])
    op.create_table(
        "fileset_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fileset_id", sa.Integer(), sa.ForeignKey("filesets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_file_id", sa.Integer(), sa.ForeignKey("image_files.id", ondelete="CASCADE")),
        sa.Column("metadata_file_id", sa.Integer(), sa.ForeignKey("metadata_files.id", ondelete="CASCADE")),
        sa.Column("role", sa.String(16), nullable=False),
        sa.UniqueConstraint("image_file_id", name="uq_fileset_members_image_file"),
        sa.UniqueConstraint("metadata_file_id", name="uq_fileset_members_metadata_file"),
    )
    op.create_index("ix_fileset_members_fileset_id", "fileset_members", ["fileset_id"])
    op.create_table(
        "planes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fileset_id", sa.Integer(), sa.ForeignKey("filesets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_file_id", sa.Integer(), sa.ForeignKey("image_files.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("image", sa.Integer(), nullable=False),
        sa.Column("plate", sa.String(255)),
        sa.Column("well", sa.String(16)),
        sa.Column("field", sa.Integer()),
        sa.Column("z", sa.Integer(), nullable=False),
        sa.Column("c", sa.Integer(), nullable=False),
        sa.Column("t", sa.Integer(), nullable=False),
        sa.Column("plane", sa.Integer(), nullable=False),
        sa.Column("pos_x", sa.Float()),
        sa.Column("pos_y", sa.Float()),
        sa.Column("pos_z", sa.Float()),
        sa.Column("time", sa.Float()),
    )
    op.create_index("ix_planes_fileset_well", "planes", ["fileset_id", "well"])
    op.create_index("ix_planes_image_file_id", "planes", ["image_file_id"])


def downgrade() -> None:
    op.drop_table("planes")
    op.drop_table("fileset_members")
    op.drop_table("filesets")
