"""The database: migrations from the first schema on, SQLite pragmas, URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from metaextract.store import Store, metadata, open_store
from metaextract.store.db import default_url, normalise_url
from metaextract.store.migrations import HEAD
from metaextract.store.models import experiments


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        assert MigrationContext.configure(conn).get_current_revision() == HEAD
    tables = set(inspect(store.engine).get_table_names())
    assert {"experiments", "plates", "acquisitions", "image_files", "metadata_files", "jobs", "job_runs",
            "submissions", "filesets", "fileset_members", "planes", "alembic_version"} <= tables


def test_the_head_known_without_alembic_is_alembics_head(store: Store) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from metaextract.store.db import MIGRATIONS, at_head
    from metaextract.store.migrations import HEAD

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD
    assert at_head(store.engine)
    with store.begin() as conn:  # a database one revision behind is not at the head: Alembic runs
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    assert not at_head(store.engine)


def _schema(conn: Any) -> list[tuple[Any, ...]]:
    """Everything a schema is made of, as the database itself tells it (tables, columns, types, defaults,
    constraints, indexes), in a fixed order."""
    if conn.dialect.name == "sqlite":
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").all()]
    columns = conn.exec_driver_sql(
        "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length "
        "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2").all()
    constraints = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2").all()
    indexes = conn.exec_driver_sql("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                   "WHERE schemaname = current_schema() ORDER BY 1, 2").all()
    return [tuple(r) for r in (*columns, *constraints, *indexes)]


def test_a_new_database_is_made_from_the_recorded_migrations_without_alembic(db_url: str, tmp_path: Path,
                                                                           request: pytest.FixtureRequest) -> None:
    """The recording is what Alembic runs today (a migration added without recording again fails here, with
    the command that records), and a database made from it equals one Alembic migrated, while the process
    that made it never imported Alembic."""
    import subprocess
    import sys

    from metaextract.store.db import create_store_engine
    from metaextract.store.migrations import recorded

    script = ("import sys; from metaextract.store import open_store; open_store(sys.argv[1]).close(); "
              "print('alembic' in sys.modules)")
    made = subprocess.run([sys.executable, "-c", script, db_url], capture_output=True, text=True, check=True)
    assert made.stdout.strip() == "False", made.stderr
    migrated_url = (f"sqlite:///{tmp_path / 'migrated.db'}" if db_url.startswith("sqlite")
                    else str(request.getfixturevalue("pg_url_2")))
    engine = create_store_engine(migrated_url)
    try:
        got = recorded.record(engine)
        dialect = engine.dialect.name
        assert got == recorded.statements(dialect), (
            "the migrations changed: record them again with `python -m metaextract.store.migrations.recorded "
            "postgresql+psycopg://USER@HOST/AN_EMPTY_DATABASE`")
        with engine.connect() as conn:
            by_alembic = _schema(conn)
    finally:
        engine.dispose()
    with open_store(db_url) as store, store.connect() as conn:
        assert _schema(conn) == by_alembic and len(by_alembic) > 30
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD


def test_processes_making_one_new_database_at_once_make_it_once(db_url: str) -> None:
    """Four commands opening the same new database together: one makes the schema (SQLite's immediate
    transaction, PostgreSQL's advisory lock), the others find it made; all of them work."""
    import subprocess
    import sys

    script = ("import sys; from metaextract.store import open_store; from metaextract.experiment import "
              "create_experiment; s = open_store(sys.argv[1]); create_experiment(s, sys.argv[2]); s.close()")
    procs = [subprocess.Popen([sys.executable, "-c", script, db_url, f"e{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    with open_store(db_url) as store, store.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(HEAD,)]
        names = sorted(r[0] for r in conn.execute(select(experiments.c.name)))
    assert names == ["e0", "e1", "e2", "e3"]


def test_a_database_holding_other_tables_is_migrated_by_alembic_not_replayed(sqlite_url: str) -> None:
    """Only an empty database gets the recording: one with a table of someone else's goes through Alembic."""
    import sqlite3

    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE theirs (x INTEGER)")
    raw.close()
    from metaextract.store.migrations import recorded

    with open_store(sqlite_url) as store, store.connect() as conn:
        assert not recorded.is_empty(conn)
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"theirs", "experiments", "planes", "alembic_version"} <= names


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


def test_results_written_by_the_driver_read_back_as_the_orm_writes_them(store: Store, tmp_path: Path) -> None:
    # the submitter stores results with the driver's executemany (store.jobs._write_results); every column
    # must come back exactly as a SQLAlchemy UPDATE of the same values stores it, on SQLite and PostgreSQL
    from sqlalchemy import update

    from metaextract.experiment import add_folder, create_experiment
    from metaextract.result import Result
    from metaextract.store.jobs import RESULT_COLUMNS, result_values, store_completed
    from metaextract.store.models import image_files

    folder = tmp_path / "plate"
    folder.mkdir()
    results = [
        Result(path="a", status="ok", omexml="<OME>é ü \u2603 'quote' \\ back</OME>", engine="tifffile",
               engine_version="2026.3.3", valid=True, seconds=0.00025),
        Result(path="b", status="ok", omexml="<OME/>", engine="ome-xml", engine_version="0.1.0", valid=False,
               validation_error="cvc-complex-type: 'x'", seconds=1.5),
        Result(path="c", status="failed", error="c: damaged or truncated TIFF", engine="bioformats", seconds=0.0),
        Result(path="d", status="unsupported", error="d: not an image", engine="sidecar",
               engine_version="0.1.0-sidecar"),
    ]
    for i in range(2 * len(results)):
        (folder / f"f{i}.tif").write_bytes(b"II*\x00" + bytes(64))
    create_experiment(store, "roundtrip")
    add_folder(store, "roundtrip", folder)
    with store.connect() as conn:
        ids = [int(r[0]) for r in conn.execute(select(image_files.c.id).order_by(image_files.c.id))]
    driver, orm = ids[:len(results)], ids[len(results):]
    store_completed(store, list(zip(driver, results, strict=True)), [])
    with store.begin() as conn:
        for file_id, result in zip(orm, results, strict=True):
            conn.execute(update(image_files).where(image_files.c.id == file_id).values(**result_values(result)))
    columns = [image_files.c[c] for c in RESULT_COLUMNS]
    with store.connect() as conn:
        got = {int(r[0]): r[1:] for r in conn.execute(select(image_files.c.id, *columns))}
    at = RESULT_COLUMNS.index("extracted_at")
    for a, b, result in zip(driver, orm, results, strict=True):
        mine, theirs = list(got[a]), list(got[b])
        assert type(mine[at]) is type(theirs[at]) and abs((mine[at] - theirs[at]).total_seconds()) < 60
        mine[at] = theirs[at] = None
        assert mine == theirs, result.path
        assert mine[RESULT_COLUMNS.index("status")] == result.status
        assert mine[RESULT_COLUMNS.index("valid")] is result.valid
        assert mine[RESULT_COLUMNS.index("engine")] == result.engine
        assert mine[RESULT_COLUMNS.index("engine_version")] == (result.engine_version or None)


def test_jobs_are_claimed_and_closed_in_batches_as_one_by_one(store: Store, tmp_path: Path) -> None:
    # the submitters claim (begin_job_runs) and close (store_completed) many jobs in a few statements; the
    # jobs they cannot take the common way still get the per-job rules: a live holder refuses, a dead
    # holder's job is taken over, a job that does not exist is refused
    import os
    import subprocess
    import sys

    from sqlalchemy import update

    from metaextract.experiment import add_folder, create_experiment
    from metaextract.jobs.step import MetadataExtractor, MetaextractBatchArguments
    from metaextract.store.jobs import begin_job_runs, store_completed, this_host
    from metaextract.store.models import job_runs, jobs

    folder = tmp_path / "plate"
    folder.mkdir()
    for i in range(6):
        (folder / f"f{i}.tif").write_bytes(b"II*\x00" + bytes(64))
    create_experiment(store, "claims")
    add_folder(store, "claims", folder)
    with MetadataExtractor("claims", db=store) as ex:
        ex.init(MetaextractBatchArguments(batch_size=1))
    with store.connect() as conn:
        ids = [int(r[0]) for r in conn.execute(select(jobs.c.id).where(jobs.c.phase == "run").order_by(jobs.c.id))]
    assert len(ids) == 6
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    with store.begin() as conn:  # job 2: held by a live process; job 3: by one that is gone
        conn.execute(update(jobs).where(jobs.c.id == ids[1]).values(state="running", host=this_host(), pid=1))
        conn.execute(update(jobs).where(jobs.c.id == ids[2])
                     .values(state="running", host=this_host(), pid=int(dead.stdout)))
    first, refused = begin_job_runs(store, [ids[0], ids[1], ids[2], ids[3], 10**9], submission_id=None)
    assert list(first) == [ids[0], ids[2], ids[3]]  # in the order asked
    assert set(refused) == {ids[1], 10**9}
    assert "already running" in refused[ids[1]] and "does not exist" in refused[10**9]
    store_completed(store, [], [(first[ids[0]], "done", 0, "log 1", "node-a"),
                                (first[ids[2]], "done", 1, "log 3", None),
                                (10**9, "done", 0, "a run that is gone", None)])
    again, refused = begin_job_runs(store, [ids[0], ids[3]])
    assert set(again) == {ids[0]} and ids[3] in refused  # job 4 is still held, by this process
    with store.connect() as conn:
        state = dict(conn.execute(select(jobs.c.id, jobs.c.state)).all())
        runs = {int(r.id): r for r in conn.execute(select(job_runs))}
    assert state[ids[0]] == "running" and state[ids[2]] == "done" and state[ids[3]] == "running"
    assert state[ids[1]] == "running" and state[ids[4]] == state[ids[5]] == "pending"
    closed = runs[first[ids[0]]]
    assert (closed.state, closed.exit_code, closed.log, closed.host) == ("done", 0, "log 1", "node-a")
    assert closed.attempt == 1
    kept = runs[first[ids[2]]]
    assert (kept.state, kept.exit_code, kept.host) == ("done", 1, this_host())  # host None keeps the run's own
    assert runs[again[ids[0]]].attempt == 2 and runs[again[ids[0]]].pid == os.getpid()
