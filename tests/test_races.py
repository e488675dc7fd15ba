"""Races between `init`, `cleanup` and `submit`, decided by the database (issue 17, item 3).

Real processes race on a real database. The window is made deterministic with the database's own lock:
the test holds the experiment's lock (as `init` and `submit` take it), starts the racers, waits until
they queue behind it (PostgreSQL says so in ``pg_stat_activity``; on SQLite both have opened the database
file, their order is then the database's), and lets go. Whatever the order, a submission either completes
coherently or stops with a one-line error and exit 1: never "0 ok, 0 failed" with exit 0 while files are
pending, never a job left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from metaextract.store import open_store
from metaextract.store.holders import lock_experiment
from metaextract.store.models import experiments, image_files, jobs, submissions

from .test_submit import EXE, _wait_for_progress, make_experiment

N_FILES, BATCH = 200, 10


@contextmanager
def experiment_locked(db_url: str) -> Iterator[None]:
    """Hold the experiment's lock (the one `init`, `cleanup` and `submit` take) until the block ends."""
    store = open_store(db_url)
    try:
        with store.begin() as conn:
            exp_id = conn.execute(select(experiments.c.id)).scalar_one()
            lock_experiment(conn, exp_id)
            yield
    finally:
        store.close()


def _start(db_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([EXE, "--db", db_url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _lock_waiters(db_url: str) -> int:
    store = open_store(db_url)
    try:
        with store.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                         " AND wait_event_type = 'Lock'")).scalar_one())
    finally:
        store.close()


def _has_open(proc: subprocess.Popen[str], path: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{proc.pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{proc.pid}/fd/{fd}") == path:
                return True
        except OSError:
            continue
    return False


def wait_queued(db_url: str, procs: list[subprocess.Popen[str]]) -> None:
    """Until ``procs`` wait on the lock (PostgreSQL: that many lock waiters) or, on SQLite, have the
    database file open (they then wait on its write lock)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        if db_url.startswith("sqlite"):
            if all(_has_open(p, db_url.removeprefix("sqlite:///")) for p in procs):
                return
        elif _lock_waiters(db_url) >= len(procs):
            return
        time.sleep(0.05)
    raise AssertionError("the racers never reached the lock")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def _state(db_url: str) -> tuple[dict[str, int], dict[str, int], list[str]]:
    store = open_store(db_url)
    try:
        with store.connect() as conn:
            files = dict(conn.execute(select(image_files.c.status, func.count()).group_by(image_files.c.status)).all())
            job_states = dict(conn.execute(select(jobs.c.state, func.count()).where(jobs.c.phase == "run")
                                           .group_by(jobs.c.state)).all())
            subs = list(conn.execute(select(submissions.c.state).order_by(submissions.c.id)).scalars())
    finally:
        store.close()
    return files, job_states, subs


def assert_coherent(db_url: str, code: int, out: str, err: str) -> None:
    """The promise: a submission that exits 0 did the work; one that did not says why in one line."""
    files, job_states, subs = _state(db_url)
    assert "running" not in job_states, (job_states, out, err)
    assert "running" not in subs, subs
    assert "Traceback" not in err, err
    if code == 0:
        assert files == {"ok": N_FILES}, (files, out, err)
        assert f"done: {N_FILES} file(s) ok, 0 failed" in out, out
    else:
        assert code == 1 and len(err.strip().splitlines()) == 1, (code, out, err)


@pytest.mark.parametrize("first", ["init", "submit"])
def test_init_and_submit_queued_on_the_lock(db_url: str, tmp_path: Path, first: str) -> None:
    name = make_experiment(db_url, tmp_path / "plate", N_FILES, batch=BATCH)
    args = {"init": (name, "init", "--batch-size", "7"),
            "submit": (name, "submit", "--max-jobs", "1", "--interval", "0.2")}
    second = "submit" if first == "init" else "init"
    with experiment_locked(db_url):
        procs = {first: _start(db_url, *args[first])}
        wait_queued(db_url, [procs[first]])
        procs[second] = _start(db_url, *args[second])
        wait_queued(db_url, list(procs.values()))
    init_code, _, init_err = _finish(procs["init"])
    code, out, err = _finish(procs["submit"])
    assert_coherent(db_url, code, out, err)
    assert "Traceback" not in init_err, init_err
    if db_url.startswith("postgresql"):  # the lock's queue is first come, first served: the order is known
        if first == "init":  # init replaced the jobs, then the submission ran the new ones
            assert init_code == 0, init_err
            assert code == 0, out + err
            assert f"{-(-N_FILES // 7)} job(s)" in out, out
        else:  # the submission opened first, so init was refused while it ran
            assert init_code == 1 and "still running" in init_err and "--force" in init_err, init_err
            assert code == 0, out + err
    if init_code == 0 and code != 0:
        assert _state(db_url)[0] == {"pending": N_FILES}


def test_init_and_submit_started_together(db_url: str, tmp_path: Path) -> None:
    """The issue's scene without a held lock: init started just before submit (the database orders them)."""
    name = make_experiment(db_url, tmp_path / "plate", N_FILES, batch=BATCH)
    init = _start(db_url, name, "init", "--batch-size", "7")
    sub = _start(db_url, name, "submit", "--max-jobs", "1", "--interval", "0.2")
    init_code, _, init_err = _finish(init)
    code, out, err = _finish(sub)
    assert_coherent(db_url, code, out, err)
    assert init_code in (0, 1) and "Traceback" not in init_err, init_err


def test_a_submission_whose_jobs_are_replaced_stops(db_url: str, tmp_path: Path) -> None:
    """`init --force` under a live submission replaces its jobs: the submission stops at once with one line and
    exit 1, leaves nothing running, and is recorded as failed with the reason."""
    name = make_experiment(db_url, tmp_path / "plate", 400, batch=10)
    proc = subprocess.Popen([EXE, "--db", db_url, name, "submit", "--max-jobs", "1", "--interval", "0.2",
                             "--engine", "bioformats"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for_progress(proc, 1)
        refused = subprocess.run([EXE, "--db", db_url, name, "init"], capture_output=True, text=True, timeout=300)
        assert refused.returncode == 1 and "still running" in refused.stderr, refused.stderr
        forced = subprocess.run([EXE, "--db", db_url, name, "init", "--force"], capture_output=True, text=True,
                                timeout=300)
        assert forced.returncode == 0, forced.stderr
        assert "taken over with --force" in forced.stderr, forced.stderr
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()  # the rest of its output; closes both pipes
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and "submission 1 failed:" in err, err
    assert "Traceback" not in err, err
    files, job_states, subs = _state(db_url)
    assert files == {"pending": 400} and job_states == {"pending": 4}, (files, job_states)
    assert subs == ["failed"]
    store = open_store(db_url)
    with store.connect() as conn:
        note = conn.execute(select(submissions.c.note)).scalar_one()
    store.close()
    assert "taken over with --force" in note, note
