"""Filesets registered by ``experiment add``: each real plate dataset one fileset of its kind, its vendor files
members, every image member's planes stored and agreeing with the vendor's naming; shown by ``summary``,
``plate`` and the Python API; the layout equal to the read's places; a 0002 database upgraded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from metaextract import filesets, open_experiment
from metaextract.filesets.model import FilesetRead, Place
from metaextract.store import open_store
from metaextract.store.filesets import fileset_places, record_read

from ._plates import build_plate
from .conftest import cli, cli_json, corpus_hcs_root
from .test_filesets_cellvoyager import _complete
from .test_filesets_cellvoyager import test_every_tiff_place_agrees_with_its_mlf_record as cellvoyager_check
from .test_filesets_harmony import _check_places_against_names as harmony_check
from .test_filesets_metaxpress import _check_places as metaxpress_check
from .test_filesets_metaxpress import _vendor as metaxpress_vendor
from .test_filesets_scanr import test_every_file_place_agrees_with_its_name as scanr_check

ROOT = Path(__file__).resolve().parents[1]
#: dataset folder under corpus-hcs -> its fileset kind (CellVoyager sets are completed with TIFFs first)
DATASETS = {
    "metaxpress-htd/faim-ipa_9987_Plate_3433": "metaxpress-htd",
    "metaxpress-htd/faim-ipa_9987_Plate_3435": "metaxpress-htd",
    "metaxpress-tiff/plateviewer_MD-MULTISITE-TIF": "metaxpress-names",
    "opera-phenix/pe2loaddata_Version1": "harmony",
    "scanr/plateviewer_SCANR-C2-S1-T1": "scanr-names",
    "yokogawa-cv7000/CV7000-example": "cellvoyager",
    "yokogawa-cv7000/CV7000_z_processed": "cellvoyager",
}
P3435 = "metaxpress-htd/faim-ipa_9987_Plate_3435"


def _folder(dataset: str, tmp: Path) -> Path:
    source = corpus_hcs_root() / dataset
    return _complete(source, tmp / source.name) if dataset.startswith("yokogawa") else source


def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())


def _without_heads(places: dict[str, list[Place]]) -> dict[str, list[Place]]:
    return {path: [replace(p, position=None, time=None) for p in ps] for path, ps in places.items()}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_layout_equals_the_reads_places(dataset: str, tmp_path: Path) -> None:
    """The layout (no image opened) gives the read's places; MetaXpress' stage positions and times come
    from the TIFF headers, so there the layout leaves them out and says so."""
    specs, _ = filesets.detect(_listing(_folder(dataset, tmp_path)))
    (spec,) = specs
    layout, read = filesets.layout(spec), filesets.read(spec)
    assert set(layout.places) == set(spec.images) and layout.layout_from_names == read.layout_from_names
    if spec.kind.startswith("metaxpress"):
        assert layout.places == _without_heads(read.places)
        assert any(p.position is not None for ps in read.places.values() for p in ps)  # the control
        assert any("TIFF's header" in n for n in layout.notes)
    else:
        assert layout.places == read.places


def _check_vendor_naming(kind: str, folder: Path, stored: FilesetRead) -> None:
    """Every stored place against the vendor's naming of its file, by the readers' own tests' checks."""
    if kind == "metaxpress-htd":
        assert metaxpress_check(stored, ["B02", "B03"], 2) in (24, 96)
    elif kind == "metaxpress-names":
        for path, (place,) in stored.places.items():
            v = metaxpress_vendor(path)
            assert (place.well, place.field, place.c, place.t, place.z) == (v["well"], v["site"] - 1, v["wave"] - 1,
                                                                            0, 0)
    elif kind == "harmony":
        assert harmony_check(stored) == 6
    elif kind == "scanr-names":
        scanr_check(stored)
    else:
        cellvoyager_check((folder, stored))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_add_registers_each_dataset_as_one_fileset_with_its_planes(dataset: str, db_url: str,
                                                                   tmp_path: Path) -> None:
    folder = _folder(dataset, tmp_path)
    cli(db_url, "experiment", "create", "hcs")
    out = cli(db_url, "experiment", "add", "hcs", str(folder)).stdout  # type: ignore[attr-defined]
    assert "in 1 fileset (" in out
    with open_experiment("hcs", db_url) as exp:
        (fs,) = exp.filesets()
        rows = list(exp.files())
    assert fs["kind"] == DATASETS[dataset] and fs["view"] == filesets.kind(fs["kind"]).view
    specs, rest = filesets.detect(_listing(folder))
    (spec,) = specs
    assert fs["master"] == spec.master
    # every vendor file is a member; nothing of the dataset is a stray (the corpus README is not the plate's)
    assert fs["counts"]["metadata"] == len(set(spec.members()) - set(spec.images))
    assert [os.path.basename(p) for p in rest] in ([], ["README.md"])
    assert fs["counts"]["images"] == len(spec.images) == len(rows)
    assert all(r.fileset == {"id": fs["id"], "kind": fs["kind"], "master": spec.master} for r in rows)
    projections = [r for r in rows if "/ZStep_0/" in r.path]  # 3433's projections: no plane of the plate
    assert all(r.planes for r in rows if r not in projections) and not any(r.planes for r in projections)
    with open_store(db_url) as store, store.connect() as conn:
        stored = fileset_places(conn, fs["id"])
    assert set(stored) == set(spec.images) and fs["counts"]["planes"] == sum(map(len, stored.values()))
    _check_vendor_naming(fs["kind"], folder, FilesetRead(spec, filesets.read(spec).omexml, stored))
    # re-adding re-detects and replaces: still one fileset, the same planes
    out = cli(db_url, "experiment", "add", "hcs", str(folder)).stdout  # type: ignore[attr-defined]
    assert "0 image files and 0 metadata files added" in out and "in 1 fileset (" in out
    with open_experiment("hcs", db_url) as exp:
        (again,) = exp.filesets()
    assert again["counts"] == fs["counts"] and again["kind"] == fs["kind"]


def test_add_leaves_postgresql_statistics_of_the_plate_tables(pg_url: str) -> None:
    """A plate's tables are analysed once filled, so the planner knows their sizes (autovacuum may be off,
    as on this machine's server: without statistics a plate map joins by nested loops, 10x slower)."""
    cli(pg_url, "experiment", "add", "--create", "p3435", str(corpus_hcs_root() / P3435))
    with open_store(pg_url) as store, store.connect() as conn:
        analysed = dict(conn.exec_driver_sql(
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname IN "
            "('image_files', 'filesets', 'fileset_members', 'planes')").all())
        planes = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'planes'").scalar_one()
    assert analysed == dict.fromkeys(("image_files", "filesets", "fileset_members", "planes"), True)
    assert planes > 0  # the planner's row estimate: the plate's planes, not "never analysed" (-1)


def test_3435_plate_map_summary_and_api(db_url: str) -> None:
    folder = corpus_hcs_root() / P3435
    cli(db_url, "experiment", "create", "p3435")
    cli(db_url, "experiment", "add", "p3435", str(folder))
    (m,) = cli_json(db_url, "p3435", "plate", "--format", "json")  # type: ignore[misc]
    assert m["wells"] == ["B02", "B03"] and m["plate_names"] == ["9987"]
    assert m["axes"] == {"fields": 2, "channels": 4, "z": 1, "t": 6}
    assert m["planes"] == m["expected"] == 2 * 2 * 4 * 6 and m["missing"]["count"] == 0
    assert m["files"] == {"ok": 0, "failed": 0, "pending": 96}
    assert [(w["well"], w["planes"], w["files"]["pending"]) for w in m["per_well"]] == [("B02", 48, 48),
                                                                                         ("B03", 48, 48)]
    assert any("Bio-Formats 7.3.1 fails on this plate" in n for n in m["notes"])
    # the fileset's one read (the next step's job) adds what only the TIFF headers say: the wavelengths not
    # collected at some time points (the .HTD's description: FITC at the first, Texas Red at the first and last)
    with open_experiment("p3435", db_url) as exp:
        (fs,) = exp.filesets()
        read = filesets.read(filesets.detect(_listing(folder))[0][0])
        record_read(exp.store, fs["id"], status="ok", omexml=read.omexml, notes=read.notes, engine="native")
    (m,) = cli_json(db_url, "p3435", "plate", "9987", "--format", "json")  # type: ignore[misc]
    (missing,) = [n for n in m["notes"] if n.startswith("not collected")]
    assert "w2 FITC at TimePoint 2,3,4,5,6" in missing and "w3 Texas Red at TimePoint 2,3,4,5" in missing
    assert "w1" not in missing  # DAPI: at all time points
    assert m["fileset"]["status"] == "ok"
    table = cli(db_url, "p3435", "plate").stdout  # type: ignore[attr-defined]
    assert "2 wells x 2 fields x 4 channels x 1 Z x 6 T: 96 of 96 planes" in table and "not collected" in table
    csv_lines = cli(db_url, "p3435", "plate", "--format", "csv").stdout.splitlines()  # type: ignore[attr-defined]
    assert len(csv_lines) == 3 and csv_lines[1].split(",")[5:11] == ["B02", "2", "4", "1", "6", "48"]
    assert cli(db_url, "p3435", "plate", "nosuch", expect=1).exit_code == 1  # type: ignore[attr-defined]
    rows = cli_json(db_url, "p3435", "summary", "--format", "json")
    assert len(rows) == 96  # type: ignore[arg-type]
    for row in rows:  # type: ignore[attr-defined]
        v = metaxpress_vendor(row["path"])
        assert row["fileset"]["kind"] == "metaxpress-htd" and row["fileset"]["master"].endswith("9987.HTD")
        (plane,) = row["planes"]
        assert (plane["well"], plane["field"], plane["c"], plane["t"], plane["z"], plane["plate"]) == (
            v["well"], v["site"] - 1, v["wave"] - 1, v["t"] - 1, 0, "9987")


def test_a_lone_file_is_a_fileset_of_one_and_a_bad_vendor_file_is_noted(db_url: str, tmp_path: Path) -> None:
    from .conftest import small_plate

    folder = small_plate(tmp_path / "p", 1, 1)
    (folder / "MeasurementData.mlf").write_text("<not xml")
    cli(db_url, "experiment", "create", "lone")
    cli(db_url, "experiment", "add", "lone", str(folder))
    rows = cli_json(db_url, "lone", "summary", "--format", "json")
    assert [r["fileset"] for r in rows] == [{"id": None, "kind": "single", "master": r["path"]}  # type: ignore[index]
                                            for r in rows]  # type: ignore[attr-defined]
    assert all(r["planes"] == [] for r in rows)  # type: ignore[attr-defined, index]
    with open_experiment("lone", db_url) as exp:
        sets = exp.filesets()
    assert [(s["kind"], s["counts"]["planes"]) for s in sets] == [("cellvoyager", 0)]
    assert "MeasurementData.mlf" in sets[0]["notes"][0] and sets[0]["notes"][0].startswith("no layout")


def test_a_0002_database_is_upgraded(db_url: str, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from metaextract.store.db import MIGRATIONS
    from metaextract.store.migrations import HEAD

    engine = create_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.exec_driver_sql("INSERT INTO experiments (name, created, generation) VALUES ('old', CURRENT_TIMESTAMP, 0)")
    assert "filesets" not in inspect(engine).get_table_names()
    engine.dispose()
    with open_store(db_url) as store, store.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
        assert {"filesets", "fileset_members", "planes"} <= set(inspect(conn).get_table_names())
    cli(db_url, "experiment", "add", "old", str(corpus_hcs_root() / P3435))
    with open_experiment("old", db_url) as exp:
        assert [s["counts"]["planes"] for s in exp.filesets()] == [96]


def test_a_4608_file_imagexpress_plate(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """384 wells x 4 sites x 3 wavelengths of real TIFFs with an .HTD: one fileset, a plane per TIFF; the add
    timed in-process and as a CLI process (reported, not asserted)."""
    master, files = build_plate(corpus_hcs_root(), tmp_path / "plate", wells=384, sites=4, waves=3)
    assert len(files) == 4608
    cli(db_url, "experiment", "create", "big")
    t0 = time.perf_counter()
    out = cli(db_url, "experiment", "add", "big", str(master.parent)).stdout  # type: ignore[attr-defined]
    inproc = time.perf_counter() - t0
    assert "4608 image files" in out and "in 1 fileset (" in out
    cli(db_url, "experiment", "create", "big2")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "metaextract", "--db", db_url, "experiment", "add", "big2",
                           str(master.parent), "--plate", "big2"], capture_output=True, text=True, env=env,
                          timeout=600, check=True)
    process = time.perf_counter() - t0
    assert "in 1 fileset (" in proc.stdout
    for name in ("big", "big2"):
        with open_experiment(name, db_url) as exp:
            (fs,) = exp.filesets()
            (m,) = exp.plate_map()
        assert fs["kind"] == "metaxpress-htd" and fs["counts"]["images"] == fs["counts"]["planes"] == 4608
        assert len(m["wells"]) == 384 and m["axes"] == {"fields": 4, "channels": 3, "z": 1, "t": 1}
        assert m["planes"] == m["expected"] == 4608 and m["files"]["pending"] == 4608
    table = cli(db_url, "big", "plate").stdout  # type: ignore[attr-defined]
    with capsys.disabled():
        dialect = db_url.split(":")[0]
        print(f"\n[4608-file plate, {dialect}] add in-process {inproc:.2f} s; add as a CLI process {process:.2f} s")
        print("\n".join(table.splitlines()[:6]))
