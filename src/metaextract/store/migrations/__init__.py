"""Alembic migrations of the metaextract database (run by :func:`metaextract.store.open_store`)."""
