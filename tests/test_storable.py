"""What is stored is always well-formed and storable (issue 17, item 2): characters XML 1.0 forbids never
reach a document, the native writer drops what Bio-Formats drops, and a result the database refuses fails
its own file only, never its neighbours, the submission or the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from lxml import etree
from sqlalchemy import select, text

from metaextract import ome
from metaextract.experiment import add_folder, create_experiment
from metaextract.extraction.pipeline import extract_file
from metaextract.result import Result
from metaextract.store import open_store
from metaextract.store.jobs import record_results, store_completed
from metaextract.store.models import image_files, jobs

from ._files import tiny_tiff

EXE = str(Path(sys.executable).parent / "metaextract")

#: file name -> the raw bytes of its ImageDescription: one NUL-split description, names and descriptions
#: with C0 and C1 controls, and a description with U+0085, U+FFFE and U+FFFF (UTF-8)
HOSTILE = {
    "nul.tif": b"a\x00b",
    "ctl\x01name.tif": b"hello",
    "esc\x1bname.tif": b"x\x1by",
    "del\x7fname.tif": b"d\x7fe\x01f",
    "c1.tif": "p\x85q\x9fr\ufffes\uffffe".encode(),
    "cr\rname.tif": b"plain",
}


def hostile_tiff(path: Path, description: bytes) -> Path:
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), extratags=[(270, "s", 0, description, True)],
                     metadata=None)
    return path


def hostile_folder(folder: Path, healthy: int = 30) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    first = tiny_tiff(folder / "h00.tif")
    for i in range(1, healthy):
        os.link(first, folder / f"h{i:02d}.tif")
    return [hostile_tiff(folder / name, desc) for name, desc in HOSTILE.items()]


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "--db", db_url, *args], capture_output=True, text=True, timeout=600)


def stored(db_url: str) -> tuple[dict[str, tuple[str, str | None, bool | None, str | None]], int]:
    """Per file name: (status, omexml, valid, error); and how many jobs are still running."""
    store = open_store(db_url)
    with store.connect() as conn:
        rows = conn.execute(select(image_files.c.name, image_files.c.status, image_files.c.omexml,
                                   image_files.c.valid, image_files.c.error)).all()
        running = conn.execute(select(jobs.c.id).where(jobs.c.state == "running")).all()
    store.engine.dispose()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}, len(running)


def check_stored(db_url: str, code: int, names: list[str]) -> None:
    files, running = stored(db_url)
    assert sorted(files) == sorted(names)
    assert running == 0
    statuses = {name: row[0] for name, row in files.items()}
    assert "pending" not in statuses.values(), statuses
    assert code == (0 if set(statuses.values()) == {"ok"} else 1)
    for name, (status, xml, valid, error) in files.items():
        if name.startswith("h"):
            assert status == "ok", (name, error)
        if status == "ok":
            assert xml is not None
            root = etree.fromstring(xml.encode("utf-8"))  # parses: no character XML forbids
            assert root.tag == f"{{{ome.OME_NS}}}OME"
            assert valid == ome.validate(xml, remember=False)[0], name
        else:
            assert error and name in error and "\n" not in error, (name, error)


def experiment(db_url: str, folder: Path, batch: int) -> list[str]:
    hostile_folder(folder)
    store = open_store(db_url)
    create_experiment(store, "hostile")
    add_folder(store, "hostile", folder)
    store.engine.dispose()
    out = cli(db_url, "hostile", "init", "--batch-size", str(batch))
    assert out.returncode == 0, out.stdout + out.stderr
    return sorted(p.name for p in folder.iterdir())


def test_submit_stores_every_file_well_formed(db_url: str, tmp_path: Path) -> None:
    names = experiment(db_url, tmp_path / "plate", batch=6)
    out = cli(db_url, "hostile", "submit", "--max-jobs", "2", "--interval", "0.5")
    assert out.returncode in (0, 1), out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    check_stored(db_url, out.returncode, names)
    status = json.loads(cli(db_url, "hostile", "status", "--json").stdout)
    assert status, "status answers"


def test_run_job_stores_every_file_well_formed(db_url: str, tmp_path: Path) -> None:
    names = experiment(db_url, tmp_path / "plate", batch=100)  # one job holds every file
    out = cli(db_url, "hostile", "run", "--job", "1")
    assert "Traceback" not in out.stderr, out.stderr
    check_stored(db_url, out.returncode, names)


# -- the cleaning matches Bio-Formats ---------------------------------------------------------------------
def test_native_answer_equals_bioformats_on_control_characters(tmp_path: Path) -> None:
    """Each hostile file as the live Bio-Formats engine writes it; the native answer (``auto``) the same
    document after normalisation, or a clear failure where Bio-Formats itself cannot write XML."""
    for path in hostile_folder(tmp_path / "f", healthy=1):
        bf = extract_file(str(path), "bioformats")
        native = extract_file(str(path), "auto")
        assert native.status == "ok", native.error
        etree.fromstring(native.omexml.encode("utf-8"))
        if bf.status != "ok":  # U+FFFE/U+FFFF: Bio-Formats' serialiser gives null: a failure, never "None"
            assert bf.status == "failed" and "could not write its metadata as XML" in (bf.error or "")
            assert native.engine.startswith("tifffile")
            continue
        assert ome.normalise(native.omexml) == ome.normalise(bf.omexml), path.name
        if "\x00" not in HOSTILE[path.name].decode("utf-8"):
            assert native.engine.startswith("tifffile"), (path.name, native.engine)


def test_ome_xml_passthrough_spaces_c1_controls_as_bioformats(tmp_path: Path) -> None:
    path = tmp_path / "c1.ome.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0" Name="n\x7fm\x85o"><Description>d\x7fe\x9ff</Description>'
        '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="4" SizeY="4" SizeZ="1" SizeC="1" '
        'SizeT="1" BigEndian="false"><Channel ID="Channel:0:0" SamplesPerPixel="1"/><MetadataOnly/></Pixels>'
        "</Image></OME>", encoding="utf-8")
    bf = extract_file(str(path), "bioformats")
    native = extract_file(str(path), "auto")
    assert native.engine.startswith("ome-xml") and bf.status == native.status == "ok"
    assert ome.normalise(native.omexml) == ome.normalise(bf.omexml)


# -- a row the database refuses ---------------------------------------------------------------------------
def _files(store: object, folder: Path, n: int) -> list[tuple[int, str]]:
    folder.mkdir()
    for i in range(n):
        tiny_tiff(folder / f"r{i}.tif")
    create_experiment(store, "rows")  # type: ignore[arg-type]
    add_folder(store, "rows", folder)  # type: ignore[arg-type]
    with store.connect() as conn:  # type: ignore[attr-defined]
        return [(r[0], r[1]) for r in conn.execute(select(image_files.c.id, image_files.c.location)
                                                   .order_by(image_files.c.id))]


def _rows(store: object) -> dict[int, tuple[str, str | None, str | None, str | None]]:
    with store.connect() as conn:  # type: ignore[attr-defined]
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(
            select(image_files.c.id, image_files.c.status, image_files.c.error, image_files.c.engine,
                   image_files.c.omexml))}


def _ok(path: str) -> Result:
    return Result(path=path, status="ok", omexml=extract_file(path, "tifffile").omexml, engine="tifffile 1",
                  valid=True)


def test_unstorable_text_is_stored_escaped(store: object, tmp_path: Path) -> None:
    """NUL in an error, a lone surrogate, an engine name of 500 characters: stored, escaped or cut; the
    neighbours stored ok."""
    files = _files(store, tmp_path / "d", 5)
    results = [_ok(p) for _, p in files]
    results[1] = Result(path=files[1][1], status="failed", engine="tifffile 1", error=f"{files[1][1]}: bad\x00byte")
    results[2] = Result(path=files[2][1], status="failed", engine="x" * 500 + " 1", error="lone \udcff")
    results[3].omexml = (results[3].omexml or "").replace("<Pixels", "<!-- \x00 --><Pixels")
    record_results(store, zip([f for f, _ in files], results, strict=True))  # type: ignore[arg-type]
    rows = _rows(store)
    ids = [f for f, _ in files]
    assert rows[ids[1]][:2] == ("failed", f"{files[1][1]}: bad\\x00byte")
    assert rows[ids[2]][1] == "lone \\udcff" and len(rows[ids[2]][2] or "") == 64
    assert "\\x00" in (rows[ids[3]][3] or "")
    for i in (0, 3, 4):
        assert rows[ids[i]][0] == "ok"


def _poison(store: object) -> None:
    """Make the database itself refuse any result whose error holds the marker ZQZQ (a real refusal, from a
    constraint the sanitising cannot know)."""
    with store.begin() as conn:  # type: ignore[attr-defined]
        if conn.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER poison BEFORE UPDATE ON image_files WHEN NEW.error LIKE '%ZQZQ%' "
                              "BEGIN SELECT RAISE(ABORT, 'row refused by trigger no_marker'); END"))
        else:
            conn.execute(text("ALTER TABLE image_files ADD CONSTRAINT no_marker "
                              "CHECK (error IS NULL OR error NOT LIKE '%ZQZQ%')"))


@pytest.mark.parametrize("writer", ["record_results", "store_completed"])
def test_a_refused_row_fails_its_file_only(store: object, tmp_path: Path, writer: str) -> None:
    files = _files(store, tmp_path / "d", 6)
    _poison(store)
    results = [_ok(p) for _, p in files]
    results[2] = Result(path=files[2][1], status="failed", engine="tifffile 1", error="ZQZQ")
    results[4] = Result(path=files[4][1], status="ok", omexml=results[4].omexml, seconds=10**400)  # type: ignore[arg-type]
    pairs = list(zip([f for f, _ in files], results, strict=True))
    if writer == "record_results":
        record_results(store, pairs)  # type: ignore[arg-type]
    else:
        store_completed(store, pairs, [])  # type: ignore[arg-type]
    rows = _rows(store)
    ids = [f for f, _ in files]
    for i in (0, 1, 3, 5):
        assert rows[ids[i]][0] == "ok", rows[ids[i]]
    for i in (2, 4):
        status, error, _engine, xml = rows[ids[i]]
        assert status == "failed" and xml is None
        assert error is not None and error.startswith(f"{files[i][1]}: its result could not be stored (")
        assert "\n" not in error
    assert "no_marker" in (rows[ids[2]][1] or "")
    assert "OverflowError" in (rows[ids[4]][1] or "")
