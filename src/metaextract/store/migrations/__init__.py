"""Alembic migrations of the metaextract database (run by :func:`metaextract.store.open_store`)."""

#: The newest revision of ``versions/`` (``tests/test_store.py`` checks it is Alembic's head): a database
#: already there is opened without importing Alembic (a tenth of a second of every command's start).
HEAD = "0004"
