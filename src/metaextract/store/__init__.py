"""The metaextract database: SQLAlchemy models, :func:`open_store`, Alembic migrations."""

from __future__ import annotations

from metaextract.store import filesets as _filesets  # noqa: F401  (its tables join the models' metadata)
from metaextract.store.db import Store, StoreError, StoreHolder, default_url, open_store
from metaextract.store.models import (
    Acquisition,
    Base,
    Experiment,
    ImageFile,
    Job,
    JobRun,
    MetadataFile,
    Plate,
    Submission,
)

__all__ = [
    "Acquisition",
    "Base",
    "Experiment",
    "ImageFile",
    "Job",
    "JobRun",
    "MetadataFile",
    "Plate",
    "Store",
    "StoreError",
    "StoreHolder",
    "Submission",
    "default_url",
    "open_store",
]
