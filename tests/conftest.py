"""Shared fixtures: the corpus and its Bio-Formats reference, and a fresh database per test.

``db_url`` is parametrized over a fresh SQLite file and a fresh PostgreSQL database on
127.0.0.1:5432 (started here when it is down). With ``CI=true`` a missing corpus or an unreachable
PostgreSQL fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_HOST, PG_PORT = os.environ.get("METAEXTRACT_PG_HOST", "127.0.0.1"), 5432
IN_CI = os.environ.get("CI") == "true"


def _need(path: Path, what: str) -> Path:
    if not path.is_dir():
        if IN_CI:
            pytest.fail(f"{what} not found at {path}")
        pytest.skip(f"{what} not found at {path}")
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus of real microscope files (``../shared/corpus`` or ``$METAEXTRACT_CORPUS``)."""
    return _need(Path(os.environ.get("METAEXTRACT_CORPUS", ROOT.parent / "shared" / "corpus")).resolve(),
                 "corpus")


@pytest.fixture(scope="session")
def reference(corpus: Path) -> Path:
    """What Bio-Formats 7.3.1's showinf printed for each corpus file."""
    return _need(corpus.parent / "reference" / "bioformats-7.3.1", "Bio-Formats reference")


def corpus_hcs_root() -> Path:
    """The shared plate datasets (``../shared/corpus-hcs`` or ``$METAEXTRACT_CORPUS_HCS``)."""
    return _need(Path(os.environ.get("METAEXTRACT_CORPUS_HCS", ROOT.parent / "shared" / "corpus-hcs")).resolve(),
                 "corpus-hcs")


def reference_hcs_root() -> Path:
    """What Bio-Formats 7.3.1's showinf printed for each file of the plate datasets, run in its folder."""
    return _need(corpus_hcs_root().parent / "reference" / "bioformats-7.3.1-hcs", "Bio-Formats plate reference")


@pytest.fixture(scope="session")
def corpus_hcs() -> Path:
    return corpus_hcs_root()


@pytest.fixture(scope="session")
def reference_hcs() -> Path:
    return reference_hcs_root()


# -- PostgreSQL ---------------------------------------------------------------------------------------------
def _pg_connect(user: str, dbname: str = "postgres") -> object:
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=user, dbname=dbname, autocommit=True,
                           connect_timeout=3)


def _pg_admin() -> str | None:
    """A user that can create databases, or None when the server cannot be reached."""
    for user in ("postgres", "root"):
        for dbname in ("postgres", "test"):
            try:
                conn = _pg_connect(user, dbname)
            except Exception:  # noqa: BLE001 - any failure means "try the next"
                continue
            conn.close()  # type: ignore[attr-defined]
            return user
    return None


def _start_postgres() -> None:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                       capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The PostgreSQL user that creates the test databases (the server is started when down)."""
    user = _pg_admin()
    if user is None:
        _start_postgres()
        for _ in range(30):
            user = _pg_admin()
            if user is not None:
                break
            time.sleep(0.5)
    if user is None:
        msg = f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return user


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    yield from _fresh_pg(pg_admin)


@pytest.fixture
def pg_url_2(pg_admin: str) -> Iterator[str]:
    """Another fresh PostgreSQL database, for a test that compares two."""
    yield from _fresh_pg(pg_admin)


def _fresh_pg(pg_admin: str) -> Iterator[str]:
    name = f"metaextract_test_{uuid.uuid4().hex[:12]}"
    conn = _pg_connect(pg_admin)
    try:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]
    yield f"postgresql+psycopg://{pg_admin}@{PG_HOST}:{PG_PORT}/{name}"
    conn = _pg_connect(pg_admin)
    try:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file."""
    return f"sqlite:///{tmp_path / 'metaextract.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL: one SQLite file and one PostgreSQL database (the test runs on both)."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[object]:
    """An open :class:`metaextract.store.Store` on ``db_url``."""
    from metaextract.store import open_store

    s = open_store(db_url)
    yield s
    s.close()


# -- helpers for the step tests (import them with ``from .conftest import ...``) ------------------------------
def small_plate(root: Path, wells: int = 2, channels: int = 2, *, bad: int = 0) -> Path:
    """``wells x channels`` tiny TIFFs in one folder per well, ``bad`` broken TIFFs, and two sidecars."""
    import numpy as np
    import tifffile

    for w in range(wells):
        folder = root / f"well{w:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for c in range(channels):
            tifffile.imwrite(folder / f"w{w:02d}_c{c}.tif", np.full((8, 8), w * 10 + c, np.uint8))
    for b in range(bad):
        (root / f"broken{b}.tif").write_bytes(b"II*\x00" + b"\x00" * 4)
    (root / "plate.nd").write_text('"NDInfoFile", Version 1.0\n')
    (root / "run_metadata.txt").write_text('{"Summary": {}}\n')
    return root


def cli(db_url: str, *args: str, expect: int | None = 0) -> object:
    """Run ``metaextract --db URL ARGS`` in-process; check the exit code unless ``expect`` is None."""
    from click.testing import CliRunner

    from metaextract.cli import main

    res = CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)
    if expect is not None:
        assert res.exit_code == expect, f"exit {res.exit_code}: {res.output}"
    return res


def cli_json(db_url: str, *args: str) -> object:
    import json

    return json.loads(cli(db_url, *args).stdout)  # type: ignore[attr-defined]


def new_experiment(db_url: str, name: str, folder: Path, *extra: str) -> int:
    """``experiment create NAME`` + ``experiment add NAME FOLDER``; returns the id."""
    out = cli(db_url, "experiment", "create", name).stdout  # type: ignore[attr-defined]
    cli(db_url, "experiment", "add", name, str(folder), *extra)
    return int(out.strip().splitlines()[-1])
