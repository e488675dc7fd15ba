"""The database schema: experiments → plates → acquisitions → image and metadata files; jobs, runs, submissions.

The tables are created and upgraded only by the Alembic migrations in :mod:`metaextract.store.migrations`;
these models describe them for queries (a test checks that both agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: File states: pending until extracted, then one of the Result statuses.
FILE_STATES = ("pending", "ok", "failed", "timeout", "unsupported")
#: Job states.
JOB_STATES = ("pending", "running", "done", "failed", "cancelled")
#: Submission states.
SUBMISSION_STATES = ("running", "done", "failed", "cancelled")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class _OfExperiment:
    """A row of an experiment's: its id and its experiment (the rows go with it; indexed), the table's first
    columns (``sort_order``: a mixin's columns would otherwise come after the class's own)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-2)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True,
                                               sort_order=-2)


class _RegisteredFile(_OfExperiment):
    """A file registered in an acquisition (these columns follow the experiment's)."""

    acquisition_id: Mapped[int] = mapped_column(ForeignKey("acquisitions.id", ondelete="CASCADE"), sort_order=-1)
    name: Mapped[str] = mapped_column(Text, sort_order=-1)  # relative to the acquisition's root
    location: Mapped[str] = mapped_column(Text, sort_order=-1)  # absolute path
    size: Mapped[int] = mapped_column(BigInteger, sort_order=-1)
    mtime: Mapped[float] = mapped_column(Float, sort_order=-1)


class Experiment(Base):
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Bumped by every ``init`` and ``cleanup``: a submission records it when it starts, and its claims
    #: and writes are refused once it changed (the jobs it selected were replaced or reset meanwhile).
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Plate(_OfExperiment, Base):
    __tablename__ = "plates"
    __table_args__ = (UniqueConstraint("experiment_id", "name", name="uq_plates_experiment_name"),)
    name: Mapped[str] = mapped_column(String(255))


class Acquisition(Base):
    __tablename__ = "acquisitions"
    __table_args__ = (UniqueConstraint("plate_id", "name", name="uq_acquisitions_plate_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate_id: Mapped[int] = mapped_column(ForeignKey("plates.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    root: Mapped[str | None] = mapped_column(Text)


class ImageFile(_RegisteredFile, Base):
    """An image file and, once its job ran, its extraction result."""

    __tablename__ = "image_files"
    __table_args__ = (UniqueConstraint("acquisition_id", "name", name="uq_image_files_acquisition_name"),)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    omexml: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(String(64))
    engine_version: Mapped[str | None] = mapped_column(String(64))
    seconds: Mapped[float | None] = mapped_column(Float)
    valid: Mapped[bool | None] = mapped_column(Boolean)
    validation_error: Mapped[str | None] = mapped_column(Text)
    #: :attr:`metaextract.result.Result.notes`, one a line (None: no notes)
    notes: Mapped[str | None] = mapped_column(Text)
    extracted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)


class MetadataFile(_RegisteredFile, Base):
    """A sidecar that is not an image (``.mlf``, ``.nd``, ``_metadata.txt``, ...): registered, not extracted."""

    __tablename__ = "metadata_files"
    __table_args__ = (UniqueConstraint("acquisition_id", "name", name="uq_metadata_files_acquisition_name"),)
    kind: Mapped[str | None] = mapped_column(String(64))


class Job(_OfExperiment, Base):
    """One job of the step: ``phase`` "init" (number 1) or "run" (numbers 1..N, one batch each)."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("experiment_id", "phase", "number", name="uq_jobs_experiment_phase_number"),)
    phase: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    batch: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    host: Mapped[str | None] = mapped_column(String(255))  # who holds it while running
    pid: Mapped[int | None] = mapped_column(Integer)
    updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Written every few seconds by a ``run`` that holds the job (a submission beats its own row instead).
    heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Submission(_OfExperiment, Base):
    """One ``submit``/``resubmit`` of an experiment's jobs (at most one running per experiment)."""

    __tablename__ = "submissions"
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="running")
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    #: Written every few seconds while it runs: how any host tells a live submission from a dead one.
    heartbeat: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The experiment's generation when it started (see :attr:`Experiment.generation`).
    generation: Mapped[int | None] = mapped_column(Integer)
    #: Why it ended when another process ended it (taken over, found dead).
    note: Mapped[str | None] = mapped_column(Text)


class JobRun(Base):
    """One attempt at a job: where, when, how it ended, and its log."""

    __tablename__ = "job_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"),
                                                      index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="running")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    log: Mapped[str | None] = mapped_column(Text)


#: The tables, for SQLAlchemy Core queries (a declarative class's ``__table__`` is typed as a ``FromClause``;
#: it is a Table).
experiments = cast(Table, Experiment.__table__)
plates = cast(Table, Plate.__table__)
acquisitions = cast(Table, Acquisition.__table__)
image_files = cast(Table, ImageFile.__table__)
metadata_files = cast(Table, MetadataFile.__table__)
jobs = cast(Table, Job.__table__)
job_runs = cast(Table, JobRun.__table__)
submissions = cast(Table, Submission.__table__)
