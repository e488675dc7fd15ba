"""The database schema: experiments → plates → acquisitions → image and metadata files; jobs, runs,
submissions; filesets, their members and planes.

SQLAlchemy Core tables on one :data:`metadata` (no ORM: the store's queries are Core, and importing
``sqlalchemy.orm`` would cost every command, ``status`` included, ~0.1 s). The tables are created and
upgraded only by the Alembic migrations in :mod:`metaextract.store.migrations`; these definitions describe
them for queries (a test checks that both agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: File states: pending until extracted, then one of the Result statuses.
FILE_STATES = ("pending", "ok", "failed", "timeout", "unsupported")
#: Job states.
JOB_STATES = ("pending", "running", "done", "failed", "cancelled")
#: Submission states.
SUBMISSION_STATES = ("running", "done", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = MetaData()


def _of_experiment() -> tuple[Column[int], Column[int]]:
    """A row of an experiment's: its id and its experiment (the rows go with it; indexed): the first columns
    of plates, files, jobs, submissions and filesets (fresh columns for each table)."""
    return (Column("id", Integer, primary_key=True),
            Column("experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False,
                   index=True))


def _registered_file() -> tuple[Column[Any], ...]:
    """A file registered in an acquisition: its experiment's columns, then where it is and its stamp."""
    return (*_of_experiment(),
            Column("acquisition_id", Integer, ForeignKey("acquisitions.id", ondelete="CASCADE"), nullable=False),
            Column("name", Text, nullable=False),  # relative to the acquisition's root
            Column("location", Text, nullable=False),  # absolute path
            Column("size", BigInteger, nullable=False),
            Column("mtime", Float, nullable=False))


experiments = Table(
    "experiments", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text),
    Column("created", DateTime(timezone=True), nullable=False, default=utcnow),
    #: Bumped by every ``init`` and ``cleanup``: a submission records it when it starts, and its claims
    #: and writes are refused once it changed (the jobs it selected were replaced or reset meanwhile).
    Column("generation", Integer, nullable=False, default=0, server_default="0"),
)

plates = Table(
    "plates", metadata,
    *_of_experiment(),
    Column("name", String(255), nullable=False),
    UniqueConstraint("experiment_id", "name", name="uq_plates_experiment_name"),
)

acquisitions = Table(
    "acquisitions", metadata,
    Column("id", Integer, primary_key=True),
    Column("plate_id", Integer, ForeignKey("plates.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("root", Text),
    UniqueConstraint("plate_id", "name", name="uq_acquisitions_plate_name"),
)

#: An image file and, once its job ran, its extraction result.
image_files = Table(
    "image_files", metadata,
    *_registered_file(),
    Column("status", String(16), nullable=False, default="pending"),
    Column("omexml", Text),
    Column("error", Text),
    Column("engine", String(64)),
    Column("engine_version", String(64)),
    Column("seconds", Float),
    Column("valid", Boolean),
    Column("validation_error", Text),
    #: :attr:`metaextract.result.Result.notes`, one a line (None: no notes)
    Column("notes", Text),
    Column("extracted_at", DateTime(timezone=True)),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="SET NULL"), index=True),
    UniqueConstraint("acquisition_id", "name", name="uq_image_files_acquisition_name"),
)

#: A sidecar that is not an image (``.mlf``, ``.nd``, ``_metadata.txt``, ...): registered, not extracted.
metadata_files = Table(
    "metadata_files", metadata,
    *_registered_file(),
    Column("kind", String(64)),
    UniqueConstraint("acquisition_id", "name", name="uq_metadata_files_acquisition_name"),
)

#: One job of the step: ``phase`` "init" (number 1) or "run" (numbers 1..N, one batch each).
jobs = Table(
    "jobs", metadata,
    *_of_experiment(),
    Column("phase", String(16), nullable=False),
    Column("number", Integer, nullable=False),
    Column("batch", JSON),
    Column("state", String(16), nullable=False, default="pending"),
    Column("host", String(255)),  # who holds it while running
    Column("pid", Integer),
    Column("updated", DateTime(timezone=True)),
    #: Written every few seconds by a ``run`` that holds the job (a submission beats its own row instead).
    Column("heartbeat", DateTime(timezone=True)),
    UniqueConstraint("experiment_id", "phase", "number", name="uq_jobs_experiment_phase_number"),
)

#: One ``submit``/``resubmit`` of an experiment's jobs (at most one running per experiment).
submissions = Table(
    "submissions", metadata,
    *_of_experiment(),
    Column("started", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("finished", DateTime(timezone=True)),
    Column("state", String(16), nullable=False, default="running"),
    Column("options", JSON),
    Column("host", String(255)),
    Column("pid", Integer),
    #: Written every few seconds while it runs: how any host tells a live submission from a dead one.
    Column("heartbeat", DateTime(timezone=True)),
    #: The experiment's generation when it started (see ``experiments.generation``).
    Column("generation", Integer),
    #: Why it ended when another process ended it (taken over, found dead).
    Column("note", Text),
)

#: One attempt at a job: where, when, how it ended, and its log.
job_runs = Table(
    "job_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("submission_id", Integer, ForeignKey("submissions.id", ondelete="SET NULL"), index=True),
    Column("attempt", Integer, nullable=False),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("started", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("ended", DateTime(timezone=True)),
    Column("state", String(16), nullable=False, default="running"),
    Column("exit_code", Integer),
    Column("log", Text),
)

# -- filesets (migration 0004; their queries are in :mod:`metaextract.store.filesets`) ----------------------
#: One per fileset :func:`metaextract.filesets.detect` found in an acquisition, and its one read's result.
filesets = Table(
    "filesets", metadata,
    *_of_experiment(),
    Column("acquisition_id", Integer, ForeignKey("acquisitions.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("kind", String(32), nullable=False),
    Column("view", String(8), nullable=False),
    Column("master", Text, nullable=False),
    Column("layout_from_names", Boolean, nullable=False, default=False),
    Column("notes", JSON),
    Column("status", String(16), nullable=False, default="pending"),
    Column("omexml", Text),
    Column("error", Text),
    Column("engine", String(64)),
    Column("engine_version", String(64)),
    Column("extracted_at", DateTime(timezone=True)),
)

#: Each registered file of a fileset once (image or metadata file), with its role.
fileset_members = Table(
    "fileset_members", metadata,
    Column("id", Integer, primary_key=True),
    Column("fileset_id", Integer, ForeignKey("filesets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("image_file_id", Integer, ForeignKey("image_files.id", ondelete="CASCADE")),
    Column("metadata_file_id", Integer, ForeignKey("metadata_files.id", ondelete="CASCADE")),
    Column("role", String(16), nullable=False),
    UniqueConstraint("image_file_id", name="uq_fileset_members_image_file"),
    UniqueConstraint("metadata_file_id", name="uq_fileset_members_metadata_file"),
)

#: Each plane an image member holds, with its place in the fileset's document.
planes = Table(
    "planes", metadata,
    Column("id", Integer, primary_key=True),
    Column("fileset_id", Integer, ForeignKey("filesets.id", ondelete="CASCADE"), nullable=False),
    Column("image_file_id", Integer, ForeignKey("image_files.id", ondelete="CASCADE"), nullable=False),
    Column("image", Integer, nullable=False),
    Column("plate", String(255)),
    Column("well", String(16)),
    Column("field", Integer),
    Column("z", Integer, nullable=False),
    Column("c", Integer, nullable=False),
    Column("t", Integer, nullable=False),
    Column("plane", Integer, nullable=False, default=0),
    Column("pos_x", Float),
    Column("pos_y", Float),
    Column("pos_z", Float),
    Column("time", Float),
    Index("ix_planes_fileset_well", "fileset_id", "well"),
    Index("ix_planes_image_file_id", "image_file_id"),
)
