"""The first schema: experiments, plates, acquisitions, image and metadata files, jobs, runs, submissions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _experiment_table(name: str, *columns: sa.Column[object] | sa.Constraint) -> None:
    """A table of an experiment's rows: its id, its experiment (the rows go with it; indexed), ``columns``."""
    op.create_table(
        name,
        _id(),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.id", ondelete="CASCADE"),
                  nullable=False),
        *columns,
    )
    op.create_index(f"ix_{name}_experiment_id", name, ["experiment_id"])


def upgrade() -> None:
    op.create_table(
        "experiments",
        _id(),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text()),
        sa.Column("created", _tz(), nullable=False),
    )
    _experiment_table(
        "plates",
        sa.Column("name", sa.String(255), nullable=False),
        sa.UniqueConstraint("experiment_id", "name", name="uq_plates_experiment_name"),
    )
    op.create_table(
        "acquisitions",
        _id(),
        sa.Column("plate_id", sa.Integer(), sa.ForeignKey("plates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("root", sa.Text()),
        sa.UniqueConstraint("plate_id", "name", name="uq_acquisitions_plate_name"),
    )
    op.create_index("ix_acquisitions_plate_id", "acquisitions", ["plate_id"])
    _experiment_table(
        "jobs",
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("batch", sa.JSON()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.Column("updated", _tz()),
        sa.UniqueConstraint("experiment_id", "phase", "number", name="uq_jobs_experiment_phase_number"),
    )
    def file_columns() -> list[sa.Column[object]]:
        return [
        sa.Column("acquisition_id", sa.Integer(), sa.ForeignKey("acquisitions.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        ]

    _experiment_table(
        "image_files",
        *file_columns(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("omexml", sa.Text()),
        sa.Column("error", sa.Text()),
        sa.Column("engine", sa.String(64)),
        sa.Column("engine_version", sa.String(64)),
        sa.Column("seconds", sa.Float()),
        sa.Column("valid", sa.Boolean()),
        sa.Column("validation_error", sa.Text()),
        sa.Column("extracted_at", _tz()),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="SET NULL")),
        sa.UniqueConstraint("acquisition_id", "name", name="uq_image_files_acquisition_name"),
    )
    op.create_index("ix_image_files_job_id", "image_files", ["job_id"])
    _experiment_table(
        "metadata_files",
        *file_columns(),
        sa.Column("kind", sa.String(64)),
        sa.UniqueConstraint("acquisition_id", "name", name="uq_metadata_files_acquisition_name"),
    )
    _experiment_table(
        "submissions",
        sa.Column("started", _tz(), nullable=False),
        sa.Column("finished", _tz()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("options", sa.JSON()),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
    )
    op.create_table(
        "job_runs",
        _id(),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("submissions.id", ondelete="SET NULL")),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("pid", sa.Integer()),
        sa.Column("started", _tz(), nullable=False),
        sa.Column("ended", _tz()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("log", sa.Text()),
    )
    op.create_index("ix_job_runs_job_id", "job_runs", ["job_id"])
    op.create_index("ix_job_runs_submission_id", "job_runs", ["submission_id"])


def downgrade() -> None:
    for table in ("job_runs", "submissions", "metadata_files", "image_files", "jobs", "acquisitions",
                  "plates", "experiments"):
        op.drop_table(table)
