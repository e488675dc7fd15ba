"""One job runner: the same jobs through `run --job N`, `submit --cluster local`, `submit --cluster dask` and
`MetadataExtractor.run_job` store the same rows and the same logs (issue 18, item 1).

Each way runs on a fresh database of its own, so even the ids match; every column of every image file is
compared (whatever columns the schema has) except the two times, and each job run's log after its place
and timing are normalised.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from metaextract.jobs.step import MetadataExtractor, MetaextractBatchArguments
from metaextract.store import open_store
from metaextract.store.holders import this_host
from metaextract.store.models import image_files, job_runs, jobs

from .conftest import PG_HOST, PG_PORT, _pg_connect, cli, new_experiment
from .hostile import tiff_bytes

BATCH = 10
TIMES = {"seconds", "extracted_at"}  # the only columns allowed to differ between two runs
BAD = {"f05_empty.tif": b"", "f17_truncated.tif": tiff_bytes(8, 8)[:40],
       "f33_garbage.tif": b"II*\x00" + b"text after a TIFF header, then nothing\n" * 3}
TEXT = b"this is a text file, named as if it were a TIFF\n"  # registered as a metadata file, not an image
WAYS = ("run", "submit-local", "submit-dask", "api")


def _experiment(root: Path) -> Path:
    """40 image files: 37 small TIFFs of different sizes (so each has its own OME-XML) and 3 that cannot be
    read, spread over the 4 jobs; and a text file named .tif."""
    root.mkdir()
    (root / "f99_text.tif").write_bytes(TEXT)
    for i in range(40):
        name = next((n for n in BAD if n.startswith(f"f{i:02d}_")), f"f{i:02d}.tif")
        (root / name).write_bytes(BAD.get(name, tiff_bytes(4 + i, 3 + i % 5)))
    return root


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A maker of fresh, empty databases of one kind (dropped after the test)."""
    made: list[str] = []

    def sqlite() -> str:
        return f"sqlite:///{tmp_path / f'db{uuid.uuid4().hex[:8]}.db'}"

    def postgres() -> str:
        name = f"metaextract_test_{uuid.uuid4().hex[:12]}"
        conn = _pg_connect(admin)
        try:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        finally:
            conn.close()  # type: ignore[attr-defined]
        made.append(name)
        return f"postgresql+psycopg://{admin}@{PG_HOST}:{PG_PORT}/{name}"

    if request.param == "sqlite":
        yield sqlite
        return
    admin = str(request.getfixturevalue("pg_admin"))
    yield postgres
    conn = _pg_connect(admin)
    try:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]


def _run(way: str, db: str, folder: Path) -> None:
    new_experiment(db, "one", folder)
    if way == "api":
        with MetadataExtractor("one", db=db, workers=2) as ext:
            args = MetaextractBatchArguments(batch_size=BATCH)
            assert ext.init(args) == 4
            codes = [ext.run_job(batch).exit_code for batch in ext.create_run_batches(args)]
        assert codes == [1, 1, 0, 1]  # the jobs of the three bad files
        return
    cli(db, "one", "init", "--batch-size", str(BATCH))
    if way == "run":
        for n in (1, 2, 3, 4):
            cli(db, "one", "run", "--job", str(n), "--workers", "2", expect=0 if n == 3 else 1)
        return
    cluster = way.removeprefix("submit-")
    out = cli(db, "one", "submit", "--cluster", cluster, "--max-jobs", "2", "--interval", "60", expect=1).stdout
    assert "submission 1 done: 37 file(s) ok, 3 failed" in out, out  # type: ignore[operator]


def _stored(db: str) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Every image file (all columns but the times) and each run job's one run (its log, code and host)."""
    with open_store(db) as store, store.connect() as conn:
        files = [{k: v for k, v in row._mapping.items() if k not in TIMES}
                 for row in conn.execute(select(image_files).order_by(image_files.c.id))]
        runs = {int(r.number): dict(r._mapping) for r in conn.execute(
            select(jobs.c.number, job_runs.c.log, job_runs.c.exit_code, job_runs.c.host, job_runs.c.state)
            .join(jobs, jobs.c.id == job_runs.c.job_id).where(jobs.c.phase == "run"))}
    return files, runs


_PLACE = re.compile(r" on .+? in \d+\.\d+ s")  # "N file(s) on HOST (where: pid, worker) in T s"


def _normalised(log: str) -> str:
    return _PLACE.sub(" on <place> in <t> s", log)


def test_the_four_ways_store_the_same_rows_and_logs(fresh_db: Callable[[], str], tmp_path: Path) -> None:
    folder = _experiment(tmp_path / "exp")
    stored = {}
    for way in WAYS:
        db = fresh_db()
        _run(way, db, folder)
        stored[way] = _stored(db)
    files, runs = stored["run"]
    assert len(files) == 40 and sorted(runs) == [1, 2, 3, 4]
    failed = {Path(f["location"]).name: f for f in files if f["status"] != "ok"}
    assert set(failed) == set(BAD), failed
    for name, f in failed.items():  # each bad file has its one-line error naming it
        assert f["error"] and name in f["error"] and "\n" not in f["error"], f
    assert all(f["omexml"] and f["engine"] for f in files if f["status"] == "ok")
    assert len({f["omexml"] for f in files if f["status"] == "ok"}) == 37
    for way in WAYS[1:]:
        other_files, other_runs = stored[way]
        assert other_files == files, way  # every column, statuses, errors, engine and its version included
        assert {n: _normalised(r["log"]) for n, r in other_runs.items()} == \
            {n: _normalised(r["log"]) for n, r in runs.items()}, way
        assert {n: r["exit_code"] for n, r in other_runs.items()} == {1: 1, 2: 1, 3: 0, 4: 1}
    for way, (_, way_runs) in stored.items():
        for n, r in way_runs.items():
            log = r["log"]
            assert r["host"] == this_host(), (way, r)  # where it ran: the host column ...
            assert (("tcp://" in log) if way == "submit-dask" else ("extraction processes of" in log)), log
            assert log.startswith("10 file(s) on ") and f"job {n}: " in log, log  # ... and the log's header
            bad = [name for name in BAD if f"f{(n - 1) * 10}" <= name < f"f{n * 10}"]
            assert [ln for ln in log.splitlines() if ln.startswith(("FAILED ", "UNSUPPORTED ", "TIMEOUT "))] \
                == [ln for ln in log.splitlines() if any(b in ln for b in bad)], log
    # how a job with a failing file ends differs on purpose: the seed's `run` fails it, a submission is done
    assert {r["state"] for way in ("run", "api") for r in stored[way][1].values() if r["exit_code"]} == {"failed"}
    assert {r["state"] for way in WAYS[1:3] for r in stored[way][1].values()} == {"done"}
