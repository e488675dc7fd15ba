"""The database: migrations from the first schema on, SQLite pragmas, URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from metaextract.store import Base, Store, open_store
from metaextract.store.db import default_url, normalise_url
from metaextract.store.models import experiments


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
    tables = set(inspect(store.engine).get_table_names())
    assert {"experiments", "plates", "acquisitions", "image_files", "metadata_files", "jobs", "job_runs",
            "submissions", "alembic_version"} <= tables


def test_open_store_twice_keeps_data(db_url: str) -> None:
    with open_store(db_url) as s, s.begin() as conn:
        conn.execute(experiments.insert().values(name="kept", created=__import__("datetime").datetime.now()))
    with open_store(db_url) as s, s.connect() as conn:
        assert conn.execute(select(experiments.c.name)).scalars().all() == ["kept"]


def test_sqlite_pragmas(sqlite_url: str) -> None:
    with open_store(sqlite_url) as s, s.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("METAEXTRACT_DB", "sqlite:///elsewhere.db")
    assert default_url() == "sqlite:///elsewhere.db"
    monkeypatch.delenv("METAEXTRACT_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_url().startswith("sqlite:///") and default_url().endswith("metaextract.db")


def test_default_database_is_created_in_the_user_data_directory(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METAEXTRACT_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with open_store() as s:
        assert s.dialect == "sqlite"
    assert list(tmp_path.rglob("metaextract.db"))


def test_unreachable_database_is_a_clear_error() -> None:
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
