"""``Result.notes`` stored with the file and shown everywhere a result is (issue 18, item 3): ``summary``
(table, JSON, CSV), ``export`` (JSON, CSV, Parquet), the job's ``log``, the Python API and ``show``.

The noted file is an ICS header whose ``.ids`` is missing: Bio-Formats fails on it, the ICS engine reads
the header and says so in two notes (see tests/test_engines_ics.py). No JVM is started: the engine claims
such a header itself. A plain TIFF beside it has no notes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from metaextract.extraction.pipeline import extract_file
from metaextract.store.migrations import HEAD
from metaextract.store.results import open_experiment

from .conftest import cli, new_experiment
from .test_engines_ics import XY, ics_lines, write_ics


def _folder(tmp_path: Path) -> tuple[Path, str, str]:
    """A folder with an ICS header missing its .ids (noted) and a plain TIFF (no notes)."""
    root = tmp_path / "plate"
    root.mkdir()
    ics = write_ics(root, "noids", ics_lines([*XY, "z"], [16, 8, 6, 2]), data=False)
    tif = root / "plain.tif"
    tifffile.imwrite(tif, np.zeros((4, 5), np.uint8))
    return root, str(ics), str(tif)


@pytest.fixture
def extracted(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    root, ics, tif = _folder(tmp_path)
    new_experiment(db_url, "n", root)
    cli(db_url, "n", "init", "--batch-size", "10")
    how = getattr(request, "param", "run")
    if how == "run":
        cli(db_url, "n", "run", "--job", "1")
    else:
        cli(db_url, "n", "submit", "--max-jobs", "1", "--interval", "0.2")
    direct = extract_file(ics, "auto")
    assert direct.status == "ok" and len(direct.notes) == 2, direct  # the fixture's premise
    assert "IDS file not found" in direct.notes[0] and "pixel data not found" in direct.notes[1]
    assert extract_file(tif, "auto").notes == []
    return {"db": db_url, "ics": ics, "tif": tif, "notes": direct.notes, "tmp": tmp_path}


@pytest.mark.parametrize("extracted", ["run", "submit"], indirect=True)
def test_notes_reach_the_log_of_every_runner(extracted: dict[str, Any]) -> None:
    log = cli(extracted["db"], "n", "log", "--job", "1").stdout  # type: ignore[attr-defined]
    for note in extracted["notes"]:
        assert f"note {extracted['ics']}: {note}" in log.splitlines()
    assert f"note {extracted['tif']}:" not in log


def test_notes_in_summary_json_csv_and_table(extracted: dict[str, Any]) -> None:
    db, notes = extracted["db"], extracted["notes"]
    data = {d["path"]: d for d in json.loads(cli(db, "n", "summary", "--format", "json").stdout)}  # type: ignore[attr-defined]
    assert data[extracted["ics"]]["notes"] == notes
    assert data[extracted["tif"]]["notes"] == []
    rows = list(csv.DictReader(cli(db, "n", "summary", "--format", "csv").stdout.splitlines()))  # type: ignore[attr-defined]
    by_path = {r["path"]: r for r in rows}
    assert by_path[extracted["ics"]]["notes"] == "|".join(notes)
    assert by_path[extracted["tif"]]["notes"] == ""
    table = cli(db, "n", "summary").stdout  # type: ignore[attr-defined]
    assert table.splitlines()[0].rstrip().endswith("notes")
    line = next(ln for ln in table.splitlines() if ln.startswith("noids/"))
    assert notes[0][:40] in line


def test_notes_in_every_export_format(extracted: dict[str, Any]) -> None:
    db, notes, out = extracted["db"], extracted["notes"], extracted["tmp"] / "out"
    for fmt in ("json", "csv", "parquet"):
        cli(db, "n", "export", str(out), "--format", fmt)
    data = {d["path"]: d for d in json.loads((out / "summary.json").read_text("utf-8"))}
    assert data[extracted["ics"]]["notes"] == notes and data[extracted["tif"]]["notes"] == []
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        by_path = {r["path"]: r for r in csv.DictReader(fh)}
    assert by_path[extracted["ics"]]["notes"] == "|".join(notes)
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "summary.parquet").to_pylist()
    got = {r["path"]: r["notes"] for r in table}
    assert got[extracted["ics"]] == notes and got[extracted["tif"]] == []


def test_notes_in_the_api_and_show(extracted: dict[str, Any]) -> None:
    with open_experiment("n", db=extracted["db"]) as exp:
        files = {f.path: f for f in exp.files()}
        frame = exp.to_pandas() if _has_pandas() else None
    assert files[extracted["ics"]].notes == extracted["notes"]
    assert files[extracted["tif"]].notes == []
    assert files[extracted["ics"]].to_dict()["notes"] == extracted["notes"]
    if frame is not None:
        assert list(frame.loc[frame.path == extracted["ics"], "notes"].iloc[0]) == extracted["notes"]
    shown = cli(extracted["db"], "show", extracted["ics"])
    for note in extracted["notes"]:
        assert f"metaextract: note {extracted['ics']}: {note}" in shown.stderr  # type: ignore[attr-defined]
    assert shown.stdout.lstrip().startswith("<")  # type: ignore[attr-defined]  # stdout: the OME-XML alone


def test_a_new_run_forgets_old_notes(extracted: dict[str, Any]) -> None:
    """Notes are part of a file's result: ``cleanup`` clears them with it."""
    db = extracted["db"]
    cli(db, "n", "cleanup", "--force")
    with open_experiment("n", db=db) as exp:
        assert all(f.notes == [] and f.status == "pending" for f in exp.files())


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_database_of_revision_0002_is_upgraded_and_keeps_its_results(db_url: str, tmp_path: Path) -> None:
    """A 0002 database with an extracted file: opening it adds ``notes`` (NULL for the old result, which is
    kept whole), and results with notes are then stored and read back."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from metaextract.result import Result
    from metaextract.store import open_store
    from metaextract.store.db import MIGRATIONS, create_store_engine
    from metaextract.store.jobs import record_results

    engine = create_store_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text("INSERT INTO experiments (id, name, created) VALUES (1, 'old', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO plates (id, experiment_id, name) VALUES (1, 1, 'p')"))
        conn.execute(text("INSERT INTO acquisitions (id, plate_id, name, root) VALUES (1, 1, 'a', '/d')"))
        for fid in (1, 2):
            conn.execute(text("INSERT INTO image_files (id, experiment_id, acquisition_id, name, location, size, "
                              "mtime, status, engine, engine_version, error) VALUES (:i, 1, 1, :n, :l, 1, 0, "
                              "'failed', 'bioformats', '7.3.1', 'old error')"),
                         {"i": fid, "n": f"f{fid}.tif", "l": f"/d/f{fid}.tif"})
    engine.dispose()
    store = open_store(db_url)
    try:
        with store.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
        with open_experiment("old", db=store) as exp:
            old = {f.id: f for f in exp.files()}
        assert [(f.status, f.engine, f.engine_version, f.error, f.notes) for f in old.values()] == [
            ("failed", "bioformats", "7.3.1", "old error", [])] * 2
        notes = ["read alone: the grouped read failed (x)", "a second note"]
        record_results(store, [(2, Result(path="/d/f2.tif", status="ok", omexml="<OME/>", engine="ics",
                                          engine_version="1.0", notes=notes))])
        with open_experiment("old", db=store) as exp:
            new = {f.id: f for f in exp.files()}
        assert new[1].notes == [] and new[1].error == "old error"
        assert (new[2].notes, new[2].engine, new[2].engine_version) == (notes, "ics", "1.0")
    finally:
        store.close()
