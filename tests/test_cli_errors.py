"""Every listed mistake answers in one line, exit 1 (2 for usage), never a traceback (issue 17, items 7 and 9)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from metaextract.store import open_store

from .conftest import ROOT, cli, new_experiment, small_plate


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m metaextract ARGS`` in a real process: what a user sees on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("METAEXTRACT_DB", None)
    return subprocess.run([sys.executable, "-m", "metaextract", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, check=False)


def _one_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("url", "said"), [
    ("bogus://x", "unsupported database 'bogus'"),
    ("mysql://u@localhost/db", "unsupported database 'mysql'"),
    ("not-a-url", "'not-a-url' is not a database URL"),
    ("sqlite:///{tmp}/nonexistent/dir/x.db", "nonexistent/dir does not exist"),
    ("{tmp}/nonexistent/x.db", "nonexistent does not exist"),
])
def test_bad_db_is_one_line_and_creates_nothing(tmp_path: Path, url: str, said: str) -> None:
    url = url.format(tmp=tmp_path)
    before = _tree(tmp_path)
    res = _run("--db", url, "experiment", "list", cwd=tmp_path)
    assert res.returncode == 1 and res.stdout == ""
    assert said in _one_error(res.stderr)
    assert _tree(tmp_path) == before  # no file, no folder made for a mistyped database


def test_missing_driver_names_what_to_install(tmp_path: Path) -> None:
    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    res = _run("--db", "postgresql+psycopg2://u@localhost/db", "experiment", "list", cwd=tmp_path)
    assert res.returncode == 1
    assert "the driver 'psycopg2' is not installed (pip install psycopg2-binary)" in _one_error(res.stderr)


def test_a_newer_schema_is_named_in_one_line(db_url: str) -> None:
    with open_store(db_url) as store, store.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    res = cli(db_url, "experiment", "list", expect=1)
    out = res.output.strip()  # type: ignore[attr-defined]
    assert len(out.splitlines()) == 1
    assert "'9999_from_the_future', newer than this metaextract" in out and out.endswith("upgrade metaextract")


def test_huge_batch_size_is_refused_and_the_largest_works(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", 2, 2))
    res = cli(db_url, "e", "init", "--batch-size", "100000000000000000000", expect=2)
    assert "batch_size must be a positive integer of at most 2147483647" in res.output  # type: ignore[attr-defined]
    assert "Traceback" not in res.output  # type: ignore[attr-defined]
    assert "4 image files are in no job yet" in cli(db_url, "e", "status").stdout  # type: ignore[attr-defined]
    out = cli(db_url, "e", "init", "--batch-size", "2147483647").stdout  # type: ignore[attr-defined]
    assert out == "e: 1 run job\n"


def test_first_word_typos_suggest_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    res = _run("--db", url, "sumbit")
    assert res.returncode == 2
    line = _one_error(res.stderr)
    assert "did you mean submit?" in line and "'sumbit' would be taken as the experiment EXP" in line
    res = _run("shwo", "x.tif")
    assert res.returncode == 2 and "did you mean show?" in _one_error(res.stderr)
    res = _run("--db", url, "lonely")
    assert res.returncode == 2
    assert "'lonely' was taken as the experiment EXP, and no command follows it" in _one_error(res.stderr)


def test_an_experiment_named_like_a_typo_still_works(sqlite_url: str, tmp_path: Path) -> None:
    new_experiment(sqlite_url, "sumbit", small_plate(tmp_path / "p", 1, 1))
    assert "experiment 1 'sumbit'" in cli(sqlite_url, "sumbit", "status").stdout  # type: ignore[attr-defined]


def test_run_of_a_missing_job_lists_the_jobs(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", 2, 2))
    cli(db_url, "e", "init", "--batch-size", "2")
    res = cli(db_url, "e", "run", "--job", "999", expect=1)
    assert res.output.strip() == "Error: 'e' has no run job 999: its run jobs are 1-2"  # type: ignore[attr-defined]


def test_zero_workers_is_a_usage_error(sqlite_url: str, tmp_path: Path) -> None:
    new_experiment(sqlite_url, "e", small_plate(tmp_path / "p", 1, 1))
    cli(sqlite_url, "e", "init")
    res = cli(sqlite_url, "e", "run", "--job", "1", "--workers", "0", expect=2)
    assert "--workers" in res.output  # type: ignore[attr-defined]


def test_export_with_pending_files_says_what_to_run(db_url: str, tmp_path: Path) -> None:
    new_experiment(db_url, "e", small_plate(tmp_path / "p", 1, 2))
    res = cli(db_url, "e", "export", str(tmp_path / "out"))
    assert "wrote 0" in res.stdout  # type: ignore[attr-defined]
    assert ("note: 2 image files are still pending (not extracted, so not exported): run `metaextract e submit`"
            in res.stderr)  # type: ignore[attr-defined]


def test_a_non_utf8_file_name_is_read(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "plate"
    data.mkdir()
    raw = os.fsencode(data) + b"/caf\xe9.tif"
    tifffile.imwrite(os.fsdecode(raw), np.zeros((4, 4), np.uint8))
    new_experiment(db_url, "e", data)
    cli(db_url, "e", "init")
    res = cli(db_url, "-v", "e", "run", "--job", "1", "--workers", "1")
    assert "1 of 1 files ok" in res.stdout  # type: ignore[attr-defined]
    rows = [line.split("\t") for line in cli(db_url, "e", "summary", "--format", "csv").stdout.splitlines()]  # type: ignore[attr-defined]
    assert any("caf\\xe9.tif" in cell for row in rows[1:] for cell in row)  # the stored \xNN name, kept


def test_extraction_processes_of_a_killed_pool_leave_no_traceback(tmp_path: Path) -> None:
    """The pool's process killed while its extraction processes still work (here: start a JVM): they find
    nobody to answer and exit quietly."""
    for i in range(4):
        tifffile.imwrite(tmp_path / f"f{i}.tif", np.zeros((4, 4), np.uint8))
    script = ("import glob, os, sys\nfrom metaextract.extraction.pool import ExtractionPool\n"
              "with ExtractionPool(2, engine='bioformats') as pool:\n"
              f"    for r in pool.map(sorted(glob.glob({str(tmp_path)!r} + '/*.tif'))):\n        pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, env=env) as proc:
        time.sleep(1.0)  # the pool is up, its processes are starting their JVMs
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.stderr is not None
        err = proc.stderr.read()  # EOF once every extraction process (which inherited stderr) has ended
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
