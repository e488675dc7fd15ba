"""The migrations' statements, recorded, so a new database is made without starting Alembic.

A new database is what the first command of every new plate opens (``experiment add --create``), and
importing Alembic and running its migrations is a fifth of a second of that command. The statements
Alembic runs from an empty database up to :data:`~metaextract.store.migrations.HEAD` are the same every
time; :func:`record` captures them (Alembic itself runs, on a scratch database), ``recorded.json`` keeps
them per dialect, and :func:`replay` runs them on an empty database. Nothing else is ever replayed: a
database that holds any table, or whose recording is not of this HEAD, goes through Alembic as before.

``tests/test_store.py`` records again on both dialects and compares: a new migration without a new
recording fails there, with the command that writes it::

    python -m metaextract.store.migrations.recorded postgresql+psycopg://USER@HOST/EMPTY_DB
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from metaextract.store.migrations import HEAD

RECORDED = Path(__file__).with_name("recorded.json")

#: What the recording keeps: the statements that make the schema and its version row (not Alembic's
#: reads of the catalogue, its transaction control, or our lock).
_KEPT = ("CREATE ", "ALTER ", "INSERT ", "UPDATE ", "DROP ", "COMMENT ")


def record(engine: Any) -> list[str]:
    """The statements Alembic runs to bring ``engine``'s database, which must be empty, to the head (they
    are run: the database is migrated)."""
    from sqlalchemy import event

    from metaextract.store.db import upgrade

    got: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        text = statement.strip()
        if text.upper().startswith(_KEPT):
            if params:
                raise ValueError(f"a migration statement with parameters cannot be recorded: {text[:200]}")
            got.append(text)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        upgrade(engine, replaying=False)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return got


@lru_cache(maxsize=1)
def _recorded() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def statements(dialect: str) -> list[str] | None:
    """The recorded statements for ``dialect`` (``sqlite``, ``postgresql``), None when there are none for
    this version's HEAD."""
    data = _recorded()
    if data.get("head") != HEAD or not isinstance(data.get(dialect), list):
        return None
    return [str(s) for s in data[dialect]]


def is_empty(conn: Any) -> bool:
    """Whether the connection's database (its current schema, on PostgreSQL) holds no table at all."""
    if conn.dialect.name == "sqlite":
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    return int(conn.exec_driver_sql(sql).scalar_one()) == 0


def replay(conn: Any) -> bool:
    """Run the recorded statements on ``conn`` (in its transaction, which the caller holds so no other
    process creates the schema meanwhile) when its database is empty and a recording of this HEAD exists
    for its dialect; returns whether it did."""
    todo = statements(conn.dialect.name)
    if todo is None or not is_empty(conn):
        return False
    for sql in todo:
        conn.exec_driver_sql(sql)
    return True


def write(postgresql_url: str) -> None:
    """Record on a scratch SQLite file and on the empty PostgreSQL database ``postgresql_url`` (migrated by
    this: drop it afterwards), and write ``recorded.json``."""
    import tempfile

    from metaextract.store.db import create_store_engine

    out: dict[str, Any] = {"head": HEAD}
    with tempfile.TemporaryDirectory() as tmp:
        for dialect, url in (("sqlite", f"sqlite:///{tmp}/scratch.db"), ("postgresql", postgresql_url)):
            engine = create_store_engine(url)
            try:
                out[dialect] = record(engine)
            finally:
                engine.dispose()
    RECORDED.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a developer's command
    if len(sys.argv) != 2:
        sys.exit("usage: python -m metaextract.store.migrations.recorded POSTGRESQL_URL_OF_AN_EMPTY_DATABASE")
    write(sys.argv[1])
    print(f"wrote {RECORDED}")
