"""The step from the command line: init, run, info, log, status, cleanup, and the concurrency guards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from metaextract.jobs.step import JobBusyError, MetadataExtractor, begin_job_run, finish_job_run
from metaextract.store import open_store
from metaextract.store.models import image_files, jobs

from .conftest import cli, cli_json, new_experiment, small_plate


def test_init_cuts_batches_per_acquisition(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "a", wells=2, channels=3), "--acquisition", "a")
    cli(db_url, "experiment", "add", "e", str(small_plate(tmp_path / "b", wells=1, channels=2)),
        "--plate", "a", "--acquisition", "b")
    out = cli(db_url, "e", "init", "--batch-size", "4").stdout
    assert out.strip().endswith("e: 3 run jobs")  # 6 files -> 4 + 2, then 2: never across acquisitions
    st = cli_json(db_url, "e", "status", "--json")
    assert [(j["id"], j["state"], j["files_pending"]) for j in st["jobs"]] == [(1, "pending", 4),
                                                                              (2, "pending", 2),
                                                                              (3, "pending", 2)]
    assert st["files"] == {**st["files"], "total": 8, "ok": 0, "failed": 0, "pending": 8}
    assert "e: 2 run jobs" in cli(db_url, "e", "init").stdout
    assert "init: 2 run jobs" in cli(db_url, "e", "log", "--phase", "init").stdout
    assert "batch size must" not in cli(db_url, "e", "init", "--batch-size", "0", expect=2).output
    assert "batch_size must be a positive integer" in cli(db_url, "e", "init", "--batch-size", "0",
                                                          expect=2).output


def test_run_stores_results_and_reports(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", wells=1, channels=2, bad=1))
    cli(db_url, "e", "init", "--batch-size", "2")
    res = cli(db_url, "-v", "e", "run", "--job", "1", "--workers", "1", expect=1)
    assert "job 1: failed; 1 of 2 files ok, 1 failed" in res.stdout
    assert "broken0.tif" in res.stdout  # -v lists every file
    assert "job 2: done; 1 of 1 files ok" in cli(db_url, "e", "run", "--job", "2", "--workers", "1").stdout
    st = cli_json(db_url, "e", "status", "--json")
    assert st["experiment"] == {"id": 1, "name": "e"}
    assert {k: st["files"][k] for k in ("total", "ok", "failed", "pending")} == {"total": 3, "ok": 2,
                                                                                 "failed": 1, "pending": 0}
    assert [(j["id"], j["state"], j["files_ok"], j["files_failed"], j["files_pending"])
            for j in st["jobs"]] == [(1, "failed", 1, 1, 0), (2, "done", 1, 0, 0)]
    log = cli(db_url, "e", "log", "--job", "1").stdout
    assert "FAILED" in log and "broken0.tif" in log and "1 of 2 files ok" in log
    info = cli_json(db_url, "e", "info", "--job", "1", "--json")
    assert info["state"] == "failed" and len(info["runs"]) == 1 and info["runs"][0]["exit_code"] == 1
    bad = [f for f in info["files"] if f["status"] != "ok"]
    assert len(bad) == 1 and bad[0]["error"] and "broken0.tif" in bad[0]["name"]
    assert "run 1: failed" in cli(db_url, "e", "info", "--job", "1").stdout
    assert "no collect phase" in cli(db_url, "e", "info", "--job", "1", "--phase", "collect", expect=2).output
    assert "no collect phase" in cli(db_url, "e", "log", "--phase", "collect", expect=2).output
    with open_store(db_url) as s, s.connect() as conn:
        row = conn.execute(select(image_files).where(image_files.c.status == "ok").limit(1)).one()
    assert row.omexml.lstrip().startswith("<") and "OME" in row.omexml
    assert row.engine and row.engine_version  # e.g. "bioformats", "7.3.1"
    assert row.extracted_at is not None and row.seconds is not None and row.valid is not None
    out = cli(db_url, "e", "cleanup").stdout
    assert "cleared the results of 3 files" in out
    st = cli_json(db_url, "e", "status", "--json")
    assert (st["files"]["pending"], {j["state"] for j in st["jobs"]}) == (3, {"pending"})


def test_unknown_job_and_experiment(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", 1, 1))
    assert "run init first" in cli(db_url, "e", "run", "--job", "1", expect=1).output
    assert "no experiment" in cli(db_url, "nope", "status", expect=1).output
    cli(db_url, "e", "init")
    assert "has not run yet" in cli(db_url, "e", "log", "--job", "1", expect=1).output
    assert "has no run job 7" in cli(db_url, "e", "info", "--job", "7", expect=1).output


def test_second_run_and_init_while_running_are_refused(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", 1, 2))
    cli(db_url, "e", "init")
    with MetadataExtractor("e", db=db_url) as ext:
        job = ext.job_id(1)
        # another live process (our parent) holds the job
        run_id = begin_job_run(ext.store, job, pid=os.getppid())
        with pytest.raises(JobBusyError, match="already running"):
            begin_job_run(ext.store, job)
        res = cli(db_url, "e", "run", "--job", "1", expect=1)
        assert "already running" in res.output and f"pid {os.getppid()}" in res.output
        assert "not initialising while it runs" in cli(db_url, "e", "init", expect=1).output
        assert "not cleaning up" in cli(db_url, "e", "cleanup", expect=1).output
        finish_job_run(ext.store, run_id, "cancelled", None, "stopped")
        assert cli_json(db_url, "e", "status", "--json")["jobs"][0]["state"] == "cancelled"
        # a holder that is gone from this host does not lock the job forever
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
        begin_job_run(ext.store, job, pid=int(dead.stdout))
        assert cli_json(db_url, "e", "status", "--json")["jobs"][0]["stale"] is True
        second = begin_job_run(ext.store, job)
        finish_job_run(ext.store, second, "done", 0, "")
        info = ext.info(1)
        assert [r["attempt"] for r in info["runs"]] == [1, 2, 3]
        assert [r["state"] for r in info["runs"]] == ["cancelled", "failed", "done"]
        with ext.store.begin() as conn:  # a stale holder does not block init either
            conn.execute(update(jobs).where(jobs.c.id == job).values(state="running", pid=int(dead.stdout)))
        assert ext.init() == 1


# A run whose 8th file never finishes: the real pool, wrapped to stall there (as a file that hangs would).
_STALLING_RUN = """
import sys, time
from metaextract.extraction.pool import ExtractionPool
from metaextract.jobs.step import MetadataExtractor

class Stalling:
    def __init__(self, pool, after):
        self.pool, self.after = pool, after

    def map(self, paths):
        for i, result in enumerate(self.pool.map(paths)):
            if i == self.after:
                print("stalled", flush=True)
                time.sleep(600)
            yield result

with ExtractionPool(1) as pool, MetadataExtractor("e", db=sys.argv[1]) as ext:
    ext.run_job(1, pool=Stalling(pool, 7))
"""


def test_killed_run_keeps_finished_files_and_can_be_rerun(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", wells=4, channels=5))
    cli(db_url, "e", "init")
    proc = subprocess.Popen([sys.executable, "-c", _STALLING_RUN, db_url], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stalled"
    finally:
        os.killpg(proc.pid, 9)  # kill -9 the run and its extraction process
        proc.communicate(timeout=10)  # waits, and closes its stdout pipe
    st = cli_json(db_url, "e", "status", "--json")
    assert (st["files"]["ok"], st["files"]["pending"]) == (7, 13)
    assert st["jobs"][0]["state"] == "running" and st["jobs"][0]["stale"] is True
    with open_store(db_url) as s, s.connect() as conn:
        rows = conn.execute(select(image_files.c.status, image_files.c.omexml, image_files.c.engine,
                                   image_files.c.extracted_at)).all()
    for status, omexml, engine, at in rows:  # every row is whole: a result, or nothing at all
        assert (status == "ok") == (omexml is not None) == (engine is not None) == (at is not None)
    res = cli(db_url, "e", "run", "--job", "1", "--workers", "2", "--assume-clean-state")
    assert "20 of 20 files ok" in res.stdout
    info = cli_json(db_url, "e", "info", "--job", "1", "--json")
    assert [r["state"] for r in info["runs"]] == ["failed", "done"]
