"""The metaextract database: the schema (:mod:`.models`, SQLAlchemy Core), :func:`open_store`, Alembic migrations.

Importing the package is light (the engine code and SQLAlchemy's Core, no ORM): ``metaextract EXP status``
needs no more.
"""

from __future__ import annotations

from metaextract.store.db import Store, StoreError, StoreHolder, default_url, open_store
from metaextract.store.models import metadata

__all__ = ["Store", "StoreError", "StoreHolder", "default_url", "metadata", "open_store"]
