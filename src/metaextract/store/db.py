"""Opening the database: the engine, SQLite pragmas, and Alembic ``upgrade head`` on every open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from metaextract.closing import Closing

ENV_VAR = "METAEXTRACT_DB"
SQLITE_BUSY_TIMEOUT_MS = 60_000
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_url() -> str:
    """``METAEXTRACT_DB`` if set, else a SQLite file in the user data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    import platformdirs

    folder = Path(platformdirs.user_data_dir("metaextract"))
    return f"sqlite:///{folder / 'metaextract.db'}"


class StoreError(Exception):
    """The database cannot be used as given; the message is one line that says why and what to do."""


#: Driver modules per SQLAlchemy dialect+driver we accept, and the package that provides each.
_DRIVERS = {"sqlite": ("sqlite3", "a Python built with sqlite3"),
            "sqlite+pysqlite": ("sqlite3", "a Python built with sqlite3"),
            "postgresql+psycopg": ("psycopg", "pip install 'psycopg[binary]'"),
            "postgresql+psycopg2": ("psycopg2", "pip install psycopg2-binary"),
            "postgresql+pg8000": ("pg8000", "pip install pg8000"),
            "postgresql+asyncpg": ("asyncpg", "pip install asyncpg")}
_URL_FORMS = "sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB"


def check_url(url: str) -> str:
    """``url`` normalised (:func:`normalise_url`) once it is known to be usable, without creating anything.

    Accepted: ``sqlite:///PATH`` whose folder exists, ``postgresql[+driver]://…`` with that driver
    installed, and a bare file path that names an existing file or has a folder part that exists (``./x.db``;
    a lone word such as ``not-a-url`` is refused, so a mistyped URL never becomes a new empty database).

    Raises
    ------
    StoreError
        One line naming the URL (password hidden) and the fix.
    """
    from sqlalchemy.exc import ArgumentError

    if "://" not in url and os.sep not in url and not Path(url).expanduser().is_file():
        raise StoreError(f"--db {url!r} is not a database URL (use {_URL_FORMS})")
    url = normalise_url(url)
    try:
        u = make_url(url)
    except ArgumentError:
        raise StoreError(f"--db {url!r} is not a database URL (use {_URL_FORMS})") from None
    shown = u.render_as_string(hide_password=True)
    if u.drivername not in _DRIVERS:
        raise StoreError(f"--db {shown}: unsupported database {u.drivername!r} (use {_URL_FORMS})")
    module, install = _DRIVERS[u.drivername]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise StoreError(f"--db {shown}: the driver {module!r} is not installed ({install})")
    if u.drivername.startswith("sqlite") and u.database and u.database != ":memory:":
        folder = Path(u.database).expanduser().parent
        if not folder.is_dir():
            raise StoreError(f"--db {shown}: folder {folder} does not exist (create it first)")
    return url


def normalise_url(url: str) -> str:
    """Accept ``postgres://``/``postgresql://`` and a bare path; use psycopg 3 for PostgreSQL."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Store(Closing):
    """An open database: ``begin()`` for a transaction, ``connect()`` for reads.

    On SQLite every ``begin()`` transaction starts with ``BEGIN IMMEDIATE``, so two processes writing the
    same file wait for each other (up to the busy timeout) instead of failing with "database is locked";
    ``connect()`` transactions are plain deferred reads (WAL: they never block a writer).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading (on SQLite its transactions do not take the write lock)."""
        with self.engine.connect() as conn:
            yield conn.execution_options(metaextract_read_only=True)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


class StoreHolder(Closing):
    """An object that works on a :class:`Store`: closing it closes the store when it opened it itself."""

    store: Store
    _own_store: bool

    def close(self) -> None:
        if self._own_store:
            self.store.close()


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get("metaextract_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` once :func:`check_url` accepts it (nothing is created before that)."""
    url = check_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True)


#: The PostgreSQL advisory lock that serialises schema creation and migration between processes.
MIGRATION_LOCK = 726354


def at_head(engine: Engine) -> bool:
    """Whether the database's schema is already at this version's newest revision (one small read; a
    database without the version table, new or not ours, is not)."""
    from sqlalchemy.exc import DBAPIError

    from metaextract.store.migrations import HEAD

    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False
    return [r[0] for r in rows] == [HEAD]


def upgrade(engine: Engine, *, replaying: bool = True) -> None:
    """Run the Alembic migrations up to ``head`` (serialised between processes on both databases); a
    database already at the head is left as it is without starting Alembic, and an empty one gets the
    migrations' recorded statements (:mod:`~metaextract.store.migrations.recorded`; not with
    ``replaying=False``), also without Alembic."""
    if at_head(engine):
        return
    if replaying:
        from metaextract.store.migrations import recorded

        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            if recorded.replay(conn):
                return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        _refuse_newer(cfg, conn)
        command.upgrade(cfg, "head")


def _refuse_newer(cfg: Any, conn: Connection) -> None:
    """StoreError when the database's schema revision is one this version's migrations do not know (it
    was written by a newer metaextract): Alembic would otherwise fail with a traceback."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    known = {rev.revision for rev in script.walk_revisions()}
    for rev in MigrationContext.configure(conn).get_current_heads():
        if rev not in known:
            raise StoreError(f"the database's schema is at revision {rev!r}, newer than this metaextract "
                             f"{_version()} knows (its newest is {script.get_current_head()!r}): "
                             f"upgrade metaextract")


def _version() -> str:
    from metaextract import __version__

    return str(__version__)


def open_store(url: str | None = None) -> Store:
    """Open (and create or upgrade) the metaextract database.

    Parameters
    ----------
    url : str, optional
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``; ``postgresql://`` is
        taken as psycopg 3) or a file path for SQLite. Default: ``METAEXTRACT_DB``, else
        ``metaextract.db`` in the user data directory.

    Returns
    -------
    Store
        With the schema at the newest migration.

    Raises
    ------
    StoreError
        For a URL :func:`check_url` refuses (nothing is created then), and for a schema newer than this
        version's migrations.
    sqlalchemy.exc.OperationalError
        When the database cannot be reached.
    """
    if url is None and not os.environ.get(ENV_VAR):
        Path(default_url().removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(url or default_url())
    try:
        upgrade(engine)
    except Exception:
        engine.dispose()
        raise
    return Store(engine)


def open_existing(url: str | None = None) -> Store | None:
    """The database at ``url`` (default as :func:`open_store`) for reading, when it exists and its schema is
    this version's newest; None otherwise (a missing SQLite file, an older or newer schema, a URL refused, a
    server that cannot be reached). Nothing is created, upgraded or written: for commands that only look."""
    from sqlalchemy.exc import SQLAlchemyError

    url = url or default_url()
    try:
        url = check_url(url)
        if url.startswith("sqlite"):
            database = make_url(url).database
            if not database or database == ":memory:" or not Path(database).is_file():
                return None
        engine = create_store_engine(url)
    except (StoreError, SQLAlchemyError, ValueError):
        return None
    if not at_head(engine):  # at_head reads inside a try: an unreachable server is "not at head"
        engine.dispose()
        return None
    return Store(engine)


def database_error(exc: BaseException) -> str | None:
    """What went wrong, in one line, when ``exc`` is the database's (or its driver's) error; None otherwise.

    For the command line, which words every library error so (without importing SQLAlchemy itself).
    """
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    def first_line(e: BaseException) -> str:
        text = str(e.args[0] if len(e.args) == 1 else e).strip()
        return text.splitlines()[0] if text else type(e).__name__

    if isinstance(exc, DBAPIError):
        return f"database error: {first_line(exc.orig) if exc.orig else first_line(exc)}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {first_line(exc)}"
    return None
