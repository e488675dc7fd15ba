"""Each HCS fileset read once, as one job, its document stored once: ``init`` makes one job per fileset
(an ``.HTD`` plate's or a Harmony index's TIFFs in it, not in per-file batches), the runner reads it in an
extraction process (natively, or by one Bio-Formats setId on the master), the database holds the document
once and every member's row points at it; readers of a member's document get the fileset's, derived."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from metaextract import extract, open_experiment
from metaextract.filesets.metaxpress import HEADS_NOTE
from metaextract.ome import key_fields, normalise
from metaextract.store import open_store
from metaextract.store.filesets import filesets
from metaextract.store.models import image_files, jobs

from ._plates import build_plate
from .conftest import cli, cli_json, corpus_hcs_root, reference_hcs_root
from .test_filesets_cellvoyager import _complete

P3433 = "metaxpress-htd/faim-ipa_9987_Plate_3433"
P3435 = "metaxpress-htd/faim-ipa_9987_Plate_3435"
PHENIX = "opera-phenix/pe2loaddata_Version1"
CV7000 = "yokogawa-cv7000/CV7000-example"


def _stored(db_url: str) -> dict[str, Any]:
    """What the database holds: the filesets' rows, the files' states and the OME-XML bytes stored."""
    store = open_store(db_url)
    try:
        with store.connect() as conn:
            sets = [dict(r._mapping) for r in conn.execute(select(filesets).order_by(filesets.c.id))]
            states = dict(conn.execute(select(image_files.c.status, func.count())
                                       .group_by(image_files.c.status)).all())
            file_bytes = conn.execute(select(func.coalesce(func.sum(func.length(image_files.c.omexml)), 0))
                                      ).scalar_one()
            n_jobs = conn.execute(select(func.count()).select_from(jobs).where(jobs.c.phase == "run")).scalar_one()
            notes = [n for (n,) in conn.execute(select(image_files.c.notes)) if n]
    finally:
        store.close()
    return {"filesets": sets, "states": states, "file_bytes": int(file_bytes), "run_jobs": int(n_jobs),
            "notes": notes}


def _add(db_url: str, name: str, folder: Path) -> None:
    cli(db_url, "experiment", "create", name)
    cli(db_url, "experiment", "add", name, str(folder))
    cli(db_url, name, "init")


def test_3433_one_job_read_natively_document_stored_once(db_url: str, tmp_path: Path) -> None:
    """An ``.HTD`` plate is one job, read once natively; its stored document's key fields are Bio-Formats'
    grouped read of the plate; the member rows hold no document, the API and the export give the
    fileset's."""
    folder = corpus_hcs_root() / P3433
    _add(db_url, "p", folder)
    before = _stored(db_url)
    assert before["run_jobs"] == 1  # the plate's 32 TIFFs are in no per-file batch
    (fs_before,) = before["filesets"]
    assert HEADS_NOTE in fs_before["notes"]  # the layout cannot say stage positions and times
    out = cli(db_url, "p", "submit", "--cluster", "local").stdout  # type: ignore[attr-defined]
    assert "0 failed" in out, out
    got = _stored(db_url)
    (fs,) = got["filesets"]
    assert fs["status"] == "ok" and fs["engine"] == "metaextract-metaxpress-htd" and fs["engine_version"]
    assert HEADS_NOTE not in fs["notes"]  # the read answered it: it is not shown as still open
    (shown,) = cli_json(db_url, "p", "plate", "--format", "json")  # type: ignore[misc]
    assert HEADS_NOTE not in shown["notes"]
    ref = key_fields((reference_hcs_root() / P3433 / "9987_Plate_3433" / "9987.HTD.xml").read_text())
    assert key_fields(fs["omexml"]) == ref
    assert got["states"] == {"ok": 32}
    assert got["file_bytes"] == 0  # the document is stored once, on the fileset
    assert all(f"fileset #{fs['id']}'s (metaxpress-htd, {fs['master']})" in n for n in got["notes"])
    with open_experiment("p", db_url) as exp:
        records = list(exp)
    assert len(records) == 32 and all(r.omexml == fs["omexml"] for r in records)
    assert all(r.images for r in records)
    rows = cli_json(db_url, "p", "summary", "--format", "json")
    assert all(row["images"] and row["status"] == "ok" for row in rows)  # type: ignore[union-attr]
    written = cli(db_url, "p", "export", str(tmp_path / "ex")).stdout  # type: ignore[attr-defined]
    assert "wrote 1 OME-XML" in written
    (doc,) = list((tmp_path / "ex").rglob("*.ome.xml"))
    assert doc.name == "9987.HTD.ome.xml" and key_fields(doc.read_text()) == ref
    per_file = cli(db_url, "p", "export", "--per-file", str(tmp_path / "ex2")).stdout  # type: ignore[attr-defined]
    assert "wrote 32 OME-XML" in per_file


def test_3435_through_run_job_native_with_a_note(db_url: str) -> None:
    """The plate Bio-Formats fails on, through ``run --job N``: read natively, every member ok, the
    fileset's note saying Bio-Formats fails; the read's places add stage positions and times."""
    _add(db_url, "q", corpus_hcs_root() / P3435)
    assert _stored(db_url)["run_jobs"] == 1
    out = cli(db_url, "q", "run", "--job", "1").stdout  # type: ignore[attr-defined]
    assert "job 1: done" in out, out
    got = _stored(db_url)
    (fs,) = got["filesets"]
    assert fs["status"] == "ok" and fs["engine"] == "metaextract-metaxpress-htd"
    assert any("Bio-Formats" in n and "fail" in n for n in fs["notes"]), fs["notes"]
    assert set(got["states"]) == {"ok"} and got["file_bytes"] == 0
    (m,) = cli_json(db_url, "q", "plate", "--format", "json")  # type: ignore[misc]
    assert m["fileset"]["status"] == "ok" and m["files"]["ok"] > 0 and m["files"]["pending"] == 0
    store = open_store(db_url)
    try:
        from metaextract.store.filesets import planes

        with store.connect() as conn:
            n, with_pos = conn.execute(select(func.count(), func.count(planes.c.pos_x))).one()
    finally:
        store.close()
    assert n > 0 and with_pos == n  # the read's places, from the TIFF headers, replaced the layout's


def test_harmony_through_dask(db_url: str) -> None:
    """An Opera Phenix (Harmony) index through ``submit --cluster dask``: one job, every member ok, the
    document once."""
    _add(db_url, "h", corpus_hcs_root() / PHENIX)
    assert _stored(db_url)["run_jobs"] == 1
    out = cli(db_url, "h", "submit", "--cluster", "dask", "--max-jobs", "1").stdout  # type: ignore[attr-defined]
    assert "0 failed" in out, out
    got = _stored(db_url)
    (fs,) = got["filesets"]
    assert fs["status"] == "ok" and fs["engine"] == "metaextract-harmony" and "<Plate" in fs["omexml"]
    assert set(got["states"]) == {"ok"} and got["file_bytes"] == 0


def test_cellvoyager_members_alone_and_the_plate_once(db_url: str, tmp_path: Path) -> None:
    """A CellVoyager set (view "own"): its TIFFs in per-file batches, each with its own small document, and
    one fileset job for the plate, read from the .mlf/.mrf; the plate document is stored once."""
    folder = _complete(corpus_hcs_root() / CV7000, tmp_path / "cv")
    _add(db_url, "cv", folder)
    before = _stored(db_url)
    n_tiffs = sum(before["states"].values())
    assert before["run_jobs"] == -(-n_tiffs // 100) + 1
    cli(db_url, "cv", "submit", "--cluster", "local")
    got = _stored(db_url)
    (fs,) = got["filesets"]
    assert fs["status"] == "ok" and fs["engine"] == "metaextract-cellvoyager" and "<Plate" in fs["omexml"]
    # status says what the job holding no file is: the plate's document, read (not an empty job)
    jobs = cli_json(db_url, "cv", "status", "--json")["jobs"]  # type: ignore[index]
    documents = [j for j in jobs if j["fileset"]]
    assert [(j["files"], j["fileset"]["kind"], j["fileset"]["status"]) for j in documents] == [(0, "cellvoyager",
                                                                                                 "ok")]
    assert all(j["files"] > 0 for j in jobs if not j["fileset"])
    text = cli(db_url, "cv", "status").stdout
    assert "cellvoyager plate document from " + os.path.basename(fs["master"]) + ": ok" in text
    assert got["states"] == {"ok": n_tiffs}
    assert got["file_bytes"] > 0  # each TIFF's own document ...
    store = open_store(db_url)
    try:
        with store.connect() as conn:
            largest = conn.execute(select(func.max(func.length(image_files.c.omexml)))).scalar_one()
            engines = dict(conn.execute(select(image_files.c.engine, func.count())
                                        .group_by(image_files.c.engine)).all())
            some = conn.execute(select(image_files.c.location, image_files.c.name, image_files.c.omexml)
                                .order_by(image_files.c.id).limit(3)).all()
    finally:
        store.close()
    assert largest < len(fs["omexml"])  # ... none of them the plate's
    # The .wpi beside them does not make Bio-Formats group the TIFFs (its CV7000 reader takes the .wpi
    # only): each is read natively, as fast as any plain TIFF, and says what Bio-Formats says of it there.
    assert engines == {"tifffile": n_tiffs}
    for location, name, omexml in some:
        live = extract(location, engine="bioformats")
        assert live.status == "ok" and normalise(omexml) == normalise(str(live.omexml)), (name, live.error)


def test_stored_bytes_per_file_flat_from_288_to_1152(tmp_path: Path) -> None:
    """A real-TIFF ImageXpress plate with its .HTD, 288 then 1,152 files: every file ok and the bytes stored
    per file within 20 % (the document once per plate, not once per file)."""
    per_file = []
    for name, wells in (("small", 24), ("big", 96)):
        master, tiffs = build_plate(corpus_hcs_root(), tmp_path / name, wells=wells, sites=4, waves=3)
        url = f"sqlite:///{tmp_path / (name + '.db')}"
        _add(url, name, master.parent)
        cli(url, name, "submit", "--cluster", "local")
        got = _stored(url)
        assert got["states"] == {"ok": len(tiffs)}, got["states"]
        (fs,) = got["filesets"]
        per_file.append((len(fs["omexml"]) + got["file_bytes"]) / len(tiffs))
    assert 0.8 <= per_file[1] / per_file[0] <= 1.2, per_file


def test_a_plate_whose_vendor_file_breaks_falls_back_to_one_bioformats_read(sqlite_url: str, tmp_path: Path
                                                                             ) -> None:
    """The ``.HTD`` broken after registration: the native read fails, ONE Bio-Formats read of the master
    is tried (the fileset's note says so); it fails too, so the fileset is failed and every member failed
    with the fileset's one-line error naming the master — a stored verdict for each, no crash."""
    master, tiffs = build_plate(corpus_hcs_root(), tmp_path / "plate", wells=2, sites=1, waves=2)
    cli(sqlite_url, "experiment", "create", "b")
    cli(sqlite_url, "experiment", "add", "b", str(master.parent))
    master.write_text("not an HTD\n")
    cli(sqlite_url, "b", "init")
    cli(sqlite_url, "b", "submit", "--cluster", "local", expect=None)
    got = _stored(sqlite_url)
    (fs,) = got["filesets"]
    assert fs["status"] != "ok" and fs["omexml"] is None and str(master) in fs["error"]
    assert any("one Bio-Formats setId" in n and "native metaxpress-htd reader failed" in n for n in fs["notes"])
    assert got["states"] == {"failed": len(tiffs)}
    store = open_store(sqlite_url)
    try:
        with store.connect() as conn:
            errors = [e for (e,) in conn.execute(select(image_files.c.error))]
    finally:
        store.close()
    assert all(str(master) in e and "fileset #" in e for e in errors)


def test_show_answers_a_plate_tiff_from_its_stored_read(db_url: str, tmp_path: Path) -> None:
    """``show FILE`` for a TIFF of an ``.HTD`` plate read and stored in the database: the stored fileset's
    document (the whole plate, as Bio-Formats gives it for the file), with a note saying so, and the plate is
    not read again; once the file changed, or with ``--engine bioformats``, it is read as before."""
    from metaextract import synth

    _, tiffs = synth.write_htd_plate(tmp_path / "plate", plate="p", wells=2, sites=2, channels=2)
    _add(db_url, "p", tmp_path / "plate")
    cli(db_url, "p", "submit", "--cluster", "local")
    (fs,) = _stored(db_url)["filesets"]
    assert fs["status"] == "ok" and fs["engine"] == "metaextract-metaxpress-htd"
    res: Any = cli(db_url, "show", str(tiffs[3]))
    assert res.stdout.rstrip("\n") == fs["omexml"].rstrip("\n")  # the stored bytes: no read
    assert f"its document is fileset #{fs['id']}'s (metaxpress-htd" in res.stderr
    assert len(key_fields(res.stdout)["images"]) == 4  # 2 wells x 2 sites: the plate's document
    by_bioformats: Any = cli(db_url, "show", "--engine", "bioformats", str(tiffs[3]))
    assert "fileset #" not in by_bioformats.stderr
    assert key_fields(by_bioformats.stdout) == key_fields(fs["omexml"])
    stamp = time.time() + 5
    os.utime(tiffs[3], (stamp, stamp))  # no longer the file that was registered and read
    again: Any = cli(db_url, "show", str(tiffs[3]))
    assert "fileset #" not in again.stderr and key_fields(again.stdout) == key_fields(fs["omexml"])
