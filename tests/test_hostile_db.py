"""Database faults: a locked SQLite file, a full disk, a PostgreSQL backend terminated mid-job."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metaextract.store import db as store_db

from .conftest import _pg_connect
from .test_submit import EXE, cli, make_experiment, status, stored_once


def _integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_sqlite_locked_by_another_writer_waits_then_goes_on(tmp_path: Path) -> None:
    dbfile = tmp_path / "m.db"
    url = f"sqlite:///{dbfile}"
    name = make_experiment(url, tmp_path / "plate", 20, batch=20)
    holder = sqlite3.connect(dbfile, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock ...
    release = threading.Timer(3.0, lambda: holder.execute("COMMIT"))  # ... for 3 s
    release.start()
    t0 = time.monotonic()
    out = cli(url, name, "run", "--job", "1", "--workers", "1")
    release.join()
    holder.close()
    assert out.returncode == 0, out.stdout + out.stderr
    assert time.monotonic() - t0 >= 3.0  # it waited for the lock rather than failing
    assert status(url, name)["files"]["ok"] == 20
    assert _integrity(dbfile) == "ok"


def test_sqlite_locked_past_the_busy_timeout_is_a_clear_error(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import cli as inproc

    dbfile = tmp_path / "m.db"
    url = f"sqlite:///{dbfile}"
    name = make_experiment(url, tmp_path / "plate", 5, batch=5)
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    holder = sqlite3.connect(dbfile, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        res = inproc(url, name, "run", "--job", "1", "--workers", "1", expect=1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "database error: database is locked" in res.output  # type: ignore[attr-defined]
    assert "Traceback" not in res.output  # type: ignore[attr-defined]
    assert _integrity(dbfile) == "ok"
    res = inproc(url, name, "run", "--job", "1", "--workers", "1")
    assert "5 of 5 files ok" in res.stdout  # type: ignore[attr-defined]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs (the tests run as root, as CI does)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def test_full_disk_is_a_clear_error_and_the_job_resumes(tmp_path: Path, small_disk: Path) -> None:
    dbfile = small_disk / "m.db"
    url = f"sqlite:///{dbfile}"
    name = make_experiment(url, tmp_path / "plate", 300, batch=300)
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 96 * 1024))  # leave ~96 kB: room for a few results only
    out = cli(url, name, "run", "--job", "1", "--workers", "2")
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "disk is full" in text or "No space left" in text, text
    filler.unlink()
    assert _integrity(dbfile) == "ok"
    out = cli(url, name, "run", "--job", "1", "--workers", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "300 of 300 files ok" in out.stdout
    assert _integrity(dbfile) == "ok"


def test_postgres_backend_terminated_mid_job_then_resubmit_completes(pg_url: str, pg_admin: str,
                                                                      tmp_path: Path) -> None:
    # every file through Bio-Formats (a few ms a file), so the submit surely outlasts several progress lines:
    # natively, a quiet machine read 2,000 files within one interval and the backends were gone before they
    # could be terminated; the resubmit then reads what is left natively
    total = 400
    name = make_experiment(pg_url, tmp_path / "plate", total, batch=50)
    dbname = pg_url.rsplit("/", 1)[-1]
    proc = subprocess.Popen([EXE, "--db", pg_url, name, "submit", "--cores", "1", "--interval", "0.1",
                             "--engine", "bioformats"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    lines = []
    terminated = 0
    for line in proc.stdout:
        lines.append(line)
        if not terminated and " files " in line and 50 <= int(line.split("files ")[1].split(" ok")[0]) < total:
            admin = _pg_connect(pg_admin)
            try:
                terminated = len(admin.execute(  # type: ignore[attr-defined]
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()", (dbname,)).fetchall())
            finally:
                admin.close()  # type: ignore[attr-defined]
    proc.communicate(timeout=300)  # waits, and closes its stdout pipe
    code = proc.returncode
    text = "".join(lines)
    assert terminated >= 1, text
    assert code == 0, text  # a lost connection is retried: the submitter goes on to the end
    assert "Traceback" not in text, text
    out = cli(pg_url, name, "resubmit", "--cores", "2", "--interval", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(pg_url, name)
    assert st["files"]["ok"] == total and st["files"]["pending"] == 0
    stored_once(pg_url)


@pytest.mark.parametrize(("how", "what"), [("submit", "storing results"), ("run", "storing results"),
                                         ("run-clearing", "clearing the job's earlier results")])
def test_postgres_connection_lost_inside_a_write_is_retried(what: str, how: str, pg_url: str, pg_admin: str,
                                                            tmp_path: Path) -> None:
    """The writer's backend is terminated while its result write waits on a lock held here: the write's
    transaction is lost with the connection, and is written again on a fresh one."""
    name = make_experiment(pg_url, tmp_path / "plate", 300, batch=50 if how == "submit" else 300)
    dbname = pg_url.rsplit("/", 1)[-1]
    locker = _pg_connect(pg_admin, dbname)
    locker.autocommit = False  # type: ignore[attr-defined]
    locker.execute("LOCK TABLE image_files IN EXCLUSIVE MODE")  # type: ignore[attr-defined]  # reads go on
    args = {"submit": ["submit", "--interval", "0.2"], "run": ["run", "--job", "1", "--assume-clean-state"],
            "run-clearing": ["run", "--job", "1"]}[how]
    proc = subprocess.Popen([EXE, "--db", pg_url, name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    admin = _pg_connect(pg_admin)
    try:
        waiting: list[tuple[int]] = []
        for _ in range(600):  # until the submitter's write waits for the lock
            waiting = admin.execute(  # type: ignore[attr-defined]
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                (dbname,)).fetchall()
            if waiting or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert waiting, "the submitter never waited on the lock"
        admin.execute("SELECT pg_terminate_backend(%s)", (waiting[0][0],))  # type: ignore[attr-defined]
        time.sleep(0.5)
        locker.rollback()  # type: ignore[attr-defined]  # the lock goes
        out, _ = proc.communicate(timeout=300)
    finally:
        admin.close()  # type: ignore[attr-defined]
        locker.close()  # type: ignore[attr-defined]
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    told = out if how == "submit" else cli(pg_url, name, "log", "--job", "1").stdout  # run: in the job's log
    assert f"the database connection was lost while {what}" in told and "trying again" in told, told
    assert "Traceback" not in out, out
    st = status(pg_url, name)
    assert st["files"]["ok"] == 300 and st["files"]["pending"] == 0
    assert all(j["state"] == "done" for j in st["jobs"])
    stored_once(pg_url)
