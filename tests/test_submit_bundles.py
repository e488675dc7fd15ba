"""`submit` on a Dask LocalCluster sends whole jobs together in one Dask task when jobs are small; each job keeps
its own run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from metaextract.jobs.submission import SubmitOptions, submit
from metaextract.store import open_store
from metaextract.store.models import image_files, job_runs, jobs

from .test_submit import make_experiment, stored_once


def test_small_jobs_share_tasks_and_each_job_is_closed(sqlite_url: str, tmp_path: Path) -> None:
    # 240 files in jobs of 10: 24 jobs; 2 workers x 4 tasks each -> tasks of at least 30 files = 3 jobs
    name = make_experiment(sqlite_url, tmp_path / "plate", 240, batch=10)
    store = open_store(sqlite_url)
    lines: list[str] = []
    try:
        opts = SubmitOptions(cluster="dask", max_jobs=2, interval=60, timeout=60)
        code = submit(store, name, opts, echo=lines.append)
        with store.connect() as conn:
            states = [r.state for r in conn.execute(select(jobs.c.state).where(jobs.c.phase == "run"))]
            runs = conn.execute(select(jobs.c.number, job_runs.c.log, job_runs.c.state)
                                .join(jobs, jobs.c.id == job_runs.c.job_id).where(jobs.c.phase == "run")).all()
            statuses = [r.status for r in conn.execute(select(image_files.c.status))]
    finally:
        store.engine.dispose()
    assert code == 0, lines
    assert states == ["done"] * 24
    assert len(runs) == 24 and {r.state for r in runs} == {"done"}
    assert statuses == ["ok"] * 240
    for r in runs:  # every job's own log: its 10 files, read in a task shared with other jobs
        assert "10 file(s) on " in r.log and "(one task of 30 files for 3 jobs)" in r.log, r.log
        assert f"job {r.number}: 10 ok, 0 failed" in r.log, r.log
    stored_once(sqlite_url)
