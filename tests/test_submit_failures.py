"""A submission whose scheduler fails stops at once, and what its progress says (issue 17, items 7, 8, 9).

The failing ``sbatch`` is a real program on ``PATH`` that fails as an unconfigured SLURM installation does
(exit 1, ``sbatch: error: …`` on stderr); the unreachable scheduler is a closed port. Either way the
submission must stop within seconds, with its reason in one line and exit 1, leaving its jobs pending and
the submission recorded as failed.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from metaextract.store import open_store
from metaextract.store.models import image_files, job_runs, jobs, submissions

from .test_submit import EXE, make_experiment

BOUND = 40.0  # seconds: a refused or unreachable scheduler is reported well within this (it used to be never)
SBATCH_ERROR = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"


def _fake_sbatch(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "sbatch"
    script.write_text(f"#!/bin/sh\necho '{SBATCH_ERROR}' >&2\nexit 1\n")
    script.chmod(0o755)
    return folder


def _assert_stopped_cleanly(db_url: str, res: subprocess.CompletedProcess[str], took: float, reason: str) -> None:
    assert res.returncode == 1, res.stdout + res.stderr
    assert took < BOUND, took
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr and len(err.splitlines()) == 1, res.stderr
    assert err.startswith("metaextract: submission 1 failed: ") and reason in err, err
    store = open_store(db_url)
    with store.connect() as conn:
        job_states = set(conn.execute(select(jobs.c.state).where(jobs.c.phase == "run")).scalars())
        files = set(conn.execute(select(image_files.c.status)).scalars())
        runs = conn.execute(select(func.count()).select_from(job_runs)
                            .join(jobs, jobs.c.id == job_runs.c.job_id).where(jobs.c.phase == "run")).scalar()
        sub = conn.execute(select(submissions.c.state, submissions.c.note)).one()
    store.close()
    assert job_states == {"pending"} and files == {"pending"} and runs == 0, (job_states, files, runs)
    assert sub.state == "failed" and reason in (sub.note or ""), sub


def test_unreachable_scheduler_stops_at_once(db_url: str, tmp_path: Path) -> None:
    name = make_experiment(db_url, tmp_path / "plate", 20, batch=5)
    t0 = time.monotonic()
    res = subprocess.run([EXE, "--db", db_url, name, "submit", "--scheduler", "tcp://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=300)
    _assert_stopped_cleanly(db_url, res, time.monotonic() - t0, "cannot reach the Dask scheduler tcp://127.0.0.1:1")


def test_failing_sbatch_stops_at_once(db_url: str, tmp_path: Path) -> None:
    pytest.importorskip("dask_jobqueue")
    name = make_experiment(db_url, tmp_path / "plate", 20, batch=5)
    path = f"{_fake_sbatch(tmp_path / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}"
    t0 = time.monotonic()
    res = subprocess.run([EXE, "--db", db_url, name, "submit", "--cluster", "slurm", "--max-jobs", "3"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": path})
    _assert_stopped_cleanly(db_url, res, time.monotonic() - t0, SBATCH_ERROR)


_LINE = re.compile(r"jobs (\d+)/(\d+) done, (\d+) running, \d+ failed \| files (\d+) ok, (\d+) failed of (\d+) "
                   r"\| [\d.]+ files/s \| ETA (\S+)")


def _progress(out: str) -> list[tuple[int, int, int, int, int, str]]:
    """(jobs done, jobs, files ok, files failed, files, ETA) of every progress line."""
    return [(int(m[1]), int(m[2]), int(m[4]), int(m[5]), int(m[6]), m[7]) for m in _LINE.finditer(out)]


def test_a_short_run_shows_a_first_and_a_final_line(db_url: str, tmp_path: Path) -> None:
    name = make_experiment(db_url, tmp_path / "plate", 30, batch=10)
    res = subprocess.run([EXE, "--db", db_url, name, "submit"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = _progress(res.stdout)
    assert len(lines) >= 2, res.stdout  # default --interval 10, a run of a few seconds: still two lines
    assert lines[0][:3] == (0, 3, 0) and lines[0][5] == "-", res.stdout
    assert lines[-1][:5] == (3, 3, 30, 0, 30), res.stdout


@pytest.mark.parametrize("cluster", ["local", "dask"])
def test_resubmit_all_counts_only_its_own_work(sqlite_url: str, tmp_path: Path, cluster: str) -> None:
    n = 600
    name = make_experiment(sqlite_url, tmp_path / "plate", n, batch=20)
    first = subprocess.run([EXE, "--db", sqlite_url, name, "submit"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    res = subprocess.run([EXE, "--db", sqlite_url, name, "resubmit", "--all", "--cluster", cluster, "--max-jobs", "1",
                          "--interval", "0.05"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = _progress(res.stdout)
    assert len(lines) >= 2, res.stdout
    assert lines[0][:3] == (0, 30, 0) and lines[0][5] == "-", res.stdout  # every file was ok before: not counted
    done = [line[0] for line in lines]
    ok = [line[2] for line in lines]
    assert done == sorted(done) and ok == sorted(ok), res.stdout  # never goes back
    assert lines[-1][:5] == (30, 30, n, 0, n), res.stdout
    for _jobs_done, _jobs, files_ok, _failed, files, eta in lines:
        if 0 < files_ok < files:  # mid-run: an ETA from this submission's own rate and the files it has left
            assert eta.isdigit(), res.stdout
