"""`submit` / `resubmit` for real: here (extraction processes of the submitter), on a Dask LocalCluster, on an
external Dask scheduler with workers; faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from metaextract.experiment import add_folder, create_experiment
from metaextract.jobs.step import MetadataExtractor, MetaextractBatchArguments
from metaextract.store import open_store
from metaextract.store.models import image_files, job_runs, jobs, submissions

from ._files import big_omexml, tiny_tiff

BIN = Path(sys.executable).parent
EXE = str(BIN / "metaextract")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metaextract.db'}"


def make_experiment(db_url: str, folder: Path, n: int, batch: int, name: str = "plate-1",
                    extra: list[Path] | None = None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    first = tiny_tiff(folder / "f00000.tif")
    for i in range(1, n):
        os.link(first, folder / f"f{i:05d}.tif")
    store = open_store(db_url)
    create_experiment(store, name)
    add_folder(store, name, folder)
    with MetadataExtractor(name, db=store) as ex:
        ex.init(MetaextractBatchArguments(batch_size=batch))
    store.engine.dispose()
    return name


def cli(db_url: str, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "--db", db_url, *args], capture_output=True, text=True, timeout=600, **kw)


def status(db_url: str, name: str) -> dict:
    out = cli(db_url, name, "status", "--json")
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def stored_once(db_url: str) -> None:
    store = open_store(db_url)
    with store.connect() as conn:
        total, distinct = conn.execute(select(func.count(image_files.c.id),
                                              func.count(func.distinct(image_files.c.location)))).one()
        running = conn.execute(select(func.count()).select_from(jobs).where(jobs.c.state == "running")).scalar()
    store.engine.dispose()
    assert total == distinct
    assert running == 0


@pytest.mark.parametrize("cluster", ["local", "dask"])
def test_submit_here_and_on_a_dask_local_cluster(cluster: str, db_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAEXTRACT_JAVA_HEAP_MB", "128")  # the big XML then fails fast (OOM)
    folder = tmp_path / "plate"
    folder.mkdir()
    big_omexml(folder / "zz_big.ome.xml")
    name = make_experiment(db_url, folder, 119, batch=20)
    args = ["--cluster", "dask"] if cluster == "dask" else []  # local is the default
    out = cli(db_url, name, "submit", *args, "--max-jobs", "2", "--interval", "0.2", "--depth", "2")
    assert out.returncode == 1, out.stdout + out.stderr  # one file failed
    assert ("Dask dashboard: http" in out.stdout) == (cluster == "dask"), out.stdout
    assert "jobs 6/6 done" in out.stdout
    assert "job     6" in out.stdout  # depth 2 rows
    st = status(db_url, name)
    assert st["files"]["total"] == 120 and st["files"]["ok"] == 119 and st["files"]["failed"] == 1
    assert all(j["state"] == "done" for j in st["jobs"])
    log = cli(db_url, name, "log", "--job", "6").stdout
    assert "zz_big.ome.xml" in log and "OutOfMemoryError" in log
    assert "job 6: 19 ok, 1 failed" in log, log
    assert ("extraction processes of the submitter" in log) == (cluster == "local"), log
    stored_once(db_url)


def test_a_killed_local_submitter_leaves_no_extraction_process_behind(sqlite_url: str, tmp_path: Path) -> None:
    name = make_experiment(sqlite_url, tmp_path / "plate", 3000, batch=50)
    proc = _start_submit(sqlite_url, name)  # --max-jobs 1
    _wait_for_progress(proc, 1)
    children = psutil.Process(proc.pid).children()
    assert len(children) == 1, children  # one extraction process per --max-jobs, and no Dask
    proc.kill()  # the submitter alone, not its process group
    proc.communicate()  # waits, and closes its stdout pipe
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, alive  # each saw its socket close and left
    out = cli(sqlite_url, name, "resubmit", "--interval", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert status(sqlite_url, name)["files"]["ok"] == 3000
    stored_once(sqlite_url)


@pytest.fixture
def dask_cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    address = None
    for _ in range(150):  # the scheduler may be caught writing its file: wait for a whole one
        try:
            address = json.loads(sched_file.read_text())["address"]
            break
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    assert address, "the Dask scheduler did not write its address within 30 s"
    for w in ("w1", "w2"):
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                                       "--no-dashboard", "--name", w, "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    from distributed import Client

    with Client(address, timeout="30s") as c:
        c.wait_for_workers(2, timeout=60)
    yield address, procs[1], procs[2]
    for p in procs:
        for child in psutil.Process(p.pid).children(recursive=True) if p.poll() is None else []:
            child.kill()
        p.kill()
        p.wait()


def test_scheduler_with_a_worker_killed_mid_run(sqlite_url: str, tmp_path: Path, dask_cluster) -> None:  # type: ignore[no-untyped-def]
    address, w1, _w2 = dask_cluster
    name = make_experiment(sqlite_url, tmp_path / "plate", 2000, batch=50)
    sub = subprocess.Popen([EXE, "--db", sqlite_url, name, "submit", "--scheduler", address, "--interval", "0.3"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert sub.stdout is not None
    killed = False
    lines = []
    for line in sub.stdout:
        lines.append(line)
        if not killed and " files " in line:
            ok = int(line.split("files ")[1].split(" ok")[0])
            if ok >= 200:
                w1.kill()  # kill -9 of a whole Dask worker, mid-run
                killed = True
    sub.communicate(timeout=300)  # waits, and closes its stdout pipe
    assert sub.returncode == 0, "".join(lines)
    assert killed, "".join(lines)
    st = status(sqlite_url, name)
    assert st["files"] == {**st["files"], "total": 2000, "ok": 2000, "failed": 0, "pending": 0}
    stored_once(sqlite_url)
    with open_store(sqlite_url) as store, store.connect() as conn:
        states = conn.execute(select(jobs.c.state, func.count()).where(jobs.c.phase == "run")
                              .group_by(jobs.c.state)).all()
    assert dict(states) == {"done": 40}


def _start_submit(db_url: str, name: str, *extra: str) -> subprocess.Popen[str]:
    """A submit that is surely still busy when the test acts on it: one process, every file through
    Bio-Formats (a few ms a file, where the native engine would read thousands a second)."""
    return subprocess.Popen([EXE, "--db", db_url, name, "submit", "--max-jobs", "1", "--interval", "0.2",
                             "--engine", "bioformats", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for_progress(proc: subprocess.Popen[str], minimum: int) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if " files " in line and int(line.split("files ")[1].split(" ok")[0]) >= minimum:
            return lines
    raise AssertionError("submit ended before making progress:\n" + "".join(lines))


def test_resubmit_finishes_after_the_submitter_is_killed(db_url: str, tmp_path: Path) -> None:
    # the submitter reads through Bio-Formats (_start_submit), so it is still busy when it is killed at its
    # first progress line; resubmit then reads the rest natively
    n = 2000
    name = make_experiment(db_url, tmp_path / "plate", n, batch=50)
    proc = _start_submit(db_url, name)
    _wait_for_progress(proc, 50)
    os.killpg(proc.pid, signal.SIGKILL)  # the submitter and its local cluster, all at once
    proc.communicate()  # waits, and closes its stdout pipe
    assert status(db_url, name)["files"]["pending"] > 0
    out = cli(db_url, name, "resubmit", "--max-jobs", "2", "--interval", "0.5")
    assert out.returncode == 0, out.stdout + out.stderr
    st = status(db_url, name)
    assert st["files"]["ok"] == n and st["files"]["pending"] == 0
    stored_once(db_url)
    with open_store(db_url) as store, store.connect() as conn:
        subs = dict(conn.execute(select(submissions.c.id, submissions.c.state).order_by(submissions.c.id)).all())
    assert list(subs.values()) == ["failed", "done"]


def test_sigterm_cancels_and_a_second_submit_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    name = make_experiment(sqlite_url, tmp_path / "plate", 1500, batch=50)
    proc = _start_submit(sqlite_url, name)
    _wait_for_progress(proc, 1)
    second = cli(sqlite_url, name, "submit", "--max-jobs", "1")
    assert second.returncode == 1
    assert "still running" in second.stderr
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)  # waits, and closes its stdout pipe
    assert proc.returncode == 130
    with open_store(sqlite_url) as store, store.connect() as conn:
        sub_state = conn.execute(select(submissions.c.state)).scalar_one()
        job_states = dict(conn.execute(select(jobs.c.state, func.count()).where(jobs.c.phase == "run")
                                       .group_by(jobs.c.state)).all())
        open_runs = conn.execute(select(func.count()).select_from(job_runs)
                                 .where(job_runs.c.state == "running")).scalar()
    assert sub_state == "cancelled"
    assert "running" not in job_states and job_states.get("cancelled", 0) >= 1
    assert open_runs == 0
    out = cli(sqlite_url, name, "resubmit", "--max-jobs", "2", "--interval", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert status(sqlite_url, name)["files"]["ok"] == 1500
