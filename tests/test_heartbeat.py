"""Stale submissions told by their heartbeat in the database, whatever their host (issue 17, item 4).

A real submitter is killed with -9; the test then writes another host's name into its rows, which is what a
submitter that died on another host leaves behind. The threshold is the reader's
(``METAEXTRACT_HEARTBEAT_STALE``), so each command is run with the threshold it is meant to judge by.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, text, update

from metaextract.store import open_store
from metaextract.store.db import MIGRATIONS, create_store_engine
from metaextract.store.holders import STALE_ENV, age
from metaextract.store.jobs import begin_submission
from metaextract.store.migrations import HEAD
from metaextract.store.models import image_files, job_runs, jobs, submissions

from .test_submit import EXE, _wait_for_progress, make_experiment

OTHER_HOST = "elsewhere.example"
N_FILES = 300


def _env(stale: float) -> dict[str, str]:
    return {**os.environ, STALE_ENV: str(stale)}


def _cli(db_url: str, stale: float, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "--db", db_url, *args], capture_output=True, text=True, timeout=600,
                          env=_env(stale))


def _killed_elsewhere(db_url: str, folder: Path) -> str:
    """A submission that was reading when its process was killed -9, on "another host"."""
    name = make_experiment(db_url, folder, N_FILES, batch=10)
    proc = subprocess.Popen([EXE, "--db", db_url, name, "submit", "--max-jobs", "1", "--interval", "0.2",
                             "--engine", "bioformats"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True, env=_env(60))
    try:
        _wait_for_progress(proc, 1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()  # waits, and closes its stdout pipe
    store = open_store(db_url)
    with store.begin() as conn:
        conn.execute(update(submissions).values(host=OTHER_HOST))
        conn.execute(update(jobs).where(jobs.c.state == "running").values(host=OTHER_HOST))
        conn.execute(update(job_runs).where(job_runs.c.state == "running").values(host=OTHER_HOST))
        running = conn.execute(select(func.count()).select_from(jobs).where(jobs.c.state == "running")).scalar()
    store.close()
    assert running, "the killed submitter held no job"
    return name


def _submission(db_url: str) -> list[tuple[str, str | None, datetime | None]]:
    store = open_store(db_url)
    with store.connect() as conn:
        rows = [(r.state, r.note, r.heartbeat) for r in conn.execute(select(submissions).order_by(submissions.c.id))]
    store.close()
    return rows


def _no_job_running(db_url: str) -> None:
    store = open_store(db_url)
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs).where(jobs.c.state == "running")).scalar() == 0
    store.close()


def test_before_the_threshold_it_is_refused_and_force_takes_over(db_url: str, tmp_path: Path) -> None:
    name = _killed_elsewhere(db_url, tmp_path / "plate")
    beat = _submission(db_url)[0][2]
    assert beat is not None
    for args in (("resubmit",), ("cleanup",), ("init",)):
        res = _cli(db_url, 600, name, *args)
        assert res.returncode == 1, (args, res.stdout, res.stderr)
        err = res.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "still running" in err and OTHER_HOST in err, err
        assert f"`metaextract {name} {args[0]} --force`" in err, err
        # says when it will count as dead: its last heartbeat plus the threshold
        when = datetime.fromisoformat(err.split("stays silent until ")[1].split(" ")[0])
        expected = (beat if beat.tzinfo else beat.replace(tzinfo=when.tzinfo)) + timedelta(seconds=600)
        assert abs((when - expected).total_seconds()) <= 1, (when, expected)
    assert _submission(db_url)[0][0] == "running"
    forced = _cli(db_url, 600, name, "resubmit", "--force", "--interval", "1")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "taken over with --force" in forced.stdout and "looked alive" in forced.stdout, forced.stdout
    subs = _submission(db_url)
    assert [s[0] for s in subs] == ["failed", "done"], subs
    assert "taken over with --force" in (subs[0][1] or ""), subs
    _no_job_running(db_url)
    store = open_store(db_url)
    with store.connect() as conn:
        assert dict(conn.execute(select(image_files.c.status, func.count())
                                 .group_by(image_files.c.status)).all()) == {"ok": N_FILES}
    store.close()


@pytest.mark.parametrize("what", ["resubmit", "cleanup", "init"])
def test_after_the_threshold_any_host_proceeds(db_url: str, tmp_path: Path, what: str) -> None:
    name = _killed_elsewhere(db_url, tmp_path / "plate")
    stale = 3.0
    while (age(_submission(db_url)[0][2]) or 0) <= stale:  # the dead submitter's heartbeat grows old
        time.sleep(0.2)
    res = _cli(db_url, stale, name, what, "--interval", "1") if what == "resubmit" else _cli(db_url, stale, name, what)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "found dead" in res.stdout + res.stderr, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    subs = _submission(db_url)
    assert subs[0][0] == "failed" and "found dead" in (subs[0][1] or ""), subs
    _no_job_running(db_url)


def test_the_heartbeat_keeps_beating_through_a_jvm_start(sqlite_url: str, tmp_path: Path) -> None:
    """A submitter busy starting a JVM (every file through Bio-Formats) still beats: sampled all along, its
    heartbeat is never as old as the threshold, and a `cleanup` judging by that threshold is refused."""
    stale = 3.0
    name = make_experiment(sqlite_url, tmp_path / "plate", 60, batch=10)
    proc = subprocess.Popen([EXE, "--db", sqlite_url, name, "submit", "--max-jobs", "1", "--engine", "bioformats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(stale))
    store = open_store(sqlite_url)
    oldest, samples, refused = 0.0, 0, None
    try:
        while proc.poll() is None:
            with store.connect() as conn:
                row = conn.execute(select(submissions.c.state, submissions.c.heartbeat)).first()
            if row is not None and row.state == "running":
                oldest = max(oldest, age(row.heartbeat) or 0.0)
                samples += 1
                if refused is None:
                    refused = _cli(sqlite_url, stale, name, "cleanup")
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
        store.close()
    assert proc.returncode == 0
    assert samples >= 5, samples
    assert oldest < stale, oldest
    assert refused is not None and refused.returncode == 1 and "still running" in refused.stderr, refused


def test_a_database_of_the_first_schema_is_upgraded(db_url: str) -> None:
    """Revision 0001 with a submission left running (no heartbeat column yet): opening it upgrades it,
    and that submission is judged by when it started."""
    engine = create_store_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO experiments (id, name, created) VALUES (1, 'old', :t)"),
                     {"t": datetime.now() - timedelta(days=1)})
        conn.execute(text("INSERT INTO submissions (experiment_id, started, state, host, pid) "
                          "VALUES (1, :t, 'running', :h, 1)"), {"t": datetime.now() - timedelta(hours=2),
                                                                  "h": OTHER_HOST})
    engine.dispose()
    store = open_store(db_url)
    with store.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
        assert conn.execute(text("SELECT generation FROM experiments")).scalar_one() == 0
        assert conn.execute(text("SELECT heartbeat FROM submissions")).scalar_one() is None
    new = begin_submission(store, 1, {})  # the old one, started 2 h ago on another host, is found dead
    with store.connect() as conn:
        states = dict(conn.execute(select(submissions.c.id, submissions.c.state)).all())
    store.close()
    assert states[new] == "running" and sorted(states.values()) == ["failed", "running"], states


def test_a_run_of_one_job_on_another_host_is_judged_by_its_heartbeat(db_url: str, tmp_path: Path) -> None:
    """`run --job N` beats its job's row: held on another host, the job blocks `init` while its heartbeat is
    fresh, and is released once it is older than the threshold."""
    from metaextract.jobs.step import JobBusyError, MetadataExtractor, begin_job_run

    name = make_experiment(db_url, tmp_path / "plate", 4, batch=2)
    with MetadataExtractor(name, db=db_url) as ext:
        job = ext.job_id(1)
        begin_job_run(ext.store, job, host=OTHER_HOST, pid=4242)
        with pytest.raises(JobBusyError, match="counts as dead if it stays silent until .*--force"):
            ext.init()
        with ext.store.begin() as conn:  # its holder stopped beating two minutes ago
            conn.execute(update(jobs).where(jobs.c.id == job)
                         .values(heartbeat=datetime.now(UTC) - timedelta(minutes=2),
                                 updated=datetime.now(UTC) - timedelta(minutes=2)))
        told: list[str] = []
        assert ext.init(notify=told.append) == 1  # 4 files, batches of 100
    assert any("released" in t and OTHER_HOST in t for t in told), told
    _no_job_running(db_url)
