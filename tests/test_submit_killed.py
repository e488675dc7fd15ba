"""`submit` when a job's Dask task keeps killing its Dask worker (``distributed.KilledWorker``), end to end.

A plug-in engine, registered for this test only through the ``metaextract.engines`` entry-point group (a
``*.dist-info`` on a ``PYTHONPATH`` directory, which the Dask workers and their extraction processes
inherit), claims one "poison" file and, when asked to read it, SIGKILLs its parent: the Dask worker
process (the extraction pool alone would contain the death of the extraction process itself). A real
LocalCluster runs the job (workers in their own processes, restarted by their nannies); the scheduler
gives up on a task after its first worker death (``allowed-failures`` 0 instead of 3), so the whole path
takes seconds, not minutes.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import dask
import distributed  # noqa: F401 - its config defaults must be loaded before dask.config.set below
import pytest
from sqlalchemy import select

from metaextract.jobs.submission import SubmitOptions, submit
from metaextract.store import open_store
from metaextract.store.models import image_files, job_runs, jobs

from ._engines import install_plugin_engine
from ._files import tiny_tiff
from .test_submit import make_experiment

# First in its job's batch order: with ``allowed-failures`` 0 every task merely waiting on a worker when that
# worker dies is given up as well (the scheduler counts a death against each task it had sent there), so the
# healthy files queued behind it are given up by Dask too; the submitter reads each such file once more
# alone, in its own extraction process, and only the poison file fails.
POISON = "a_poison.tif"

_ENGINE = '''
"""A metaextract engine for tests: reading a file named *poison* SIGKILLs the Dask worker process."""
import os
import signal
import time



class PoisonEngine:
    name = "poison"

    def version(self):
        return "1"

    def claim(self, path, head):
        return 1_000_000 if "poison" in os.path.basename(path) else 0

    def extract(self, path):
        parent = os.getppid()
        try:
            with open(f"/proc/{parent}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            cmdline = b""
        # only ever a Dask worker (a multiprocessing child of its nanny), never a test runner or a shell:
        # elsewhere (the submitter's last try alone) the file crashes its own extraction process
        if b"multiprocessing" not in cmdline:
            os.kill(os.getpid(), signal.SIGKILL)
        # first let the worker tell the scheduler about the tasks it finished just before this one (a
        # result still in its send buffer would be lost with it, and its task counted as killed too)
        time.sleep(1.0)
        os.kill(parent, signal.SIGKILL)
        time.sleep(0.5)
        os._exit(0)


def factory():
    return PoisonEngine()
'''


@pytest.fixture
def poison_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The ``poison`` engine on a PYTHONPATH directory, with an entry point every new interpreter finds."""
    return install_plugin_engine(tmp_path / "site", "poison", _ENGINE, monkeypatch)


def test_a_file_that_kills_its_dask_worker_fails_alone(sqlite_url: str, tmp_path: Path,
                                                       poison_engine: Path) -> None:
    folder = tmp_path / "plate"
    folder.mkdir()
    poison = tiny_tiff(folder / POISON)
    name = make_experiment(sqlite_url, folder, 3, batch=4)  # one job: the poison file and 3 healthy TIFFs
    store = open_store(sqlite_url)
    lines: list[str] = []
    # should the submitter ever wait forever again, SIGTERM cancels it (exit 130) instead of hanging the run
    watchdog = threading.Timer(150, os.kill, (os.getpid(), signal.SIGTERM))
    watchdog.start()
    try:
        # the LocalCluster's scheduler runs in this process and reads this when it starts
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            opts = SubmitOptions(cluster="dask", max_jobs=2, interval=0.5, timeout=60)
            code = submit(store, name, opts, echo=lines.append)
        watchdog.cancel()
        with store.connect() as conn:
            files = {Path(r.location).name: r for r in conn.execute(
                select(image_files.c.location, image_files.c.status, image_files.c.error, image_files.c.engine))}
            job_states = [r.state for r in conn.execute(select(jobs.c.state).where(jobs.c.phase == "run"))]
            logs = [r.log for r in conn.execute(select(job_runs.c.log).join(jobs, jobs.c.id == job_runs.c.job_id)
                                                .where(jobs.c.phase == "run"))]
    finally:
        watchdog.cancel()
        store.engine.dispose()
    out = "\n".join(lines)
    assert code == 1, out
    assert len(files) == 4 and job_states == ["done"] and len(logs) == 1, (files, job_states, out)
    bad = files[POISON]
    assert bad.status == "failed", bad
    assert bad.error.startswith(f"{poison}: its extraction process died while reading it"), bad.error
    assert "it also killed its Dask worker" in bad.error, bad.error
    assert "on 1 different workers" in bad.error, bad.error  # allowed-failures 0 was honoured
    healthy = {n: (r.status, r.error) for n, r in files.items() if n != POISON}
    assert healthy == {n: ("ok", None) for n in healthy}, (healthy, logs[0])
    log = logs[0]
    assert "a task of 4 files killed its workers" in log and "retrying each file alone" in log, log
    assert "'metaextract-s1-j1' on 1 different workers" in log, log
    assert f"{poison}: its Dask workers died while it was queued or read" in log, log
    assert "read again alone on the submitter: failed" in log, log
    assert "job 1: 3 ok, 1 failed" in log, log
    assert "submission 1 done: 3 file(s) ok, 1 failed" in out, out
