"""``metaextract EXP summary`` and ``EXP export DIR`` over the extracted corpus: every format, the
OME-XML companions against the schema, overwriting, paths that try to leave DIR, symlinks, streaming."""

from __future__ import annotations

import csv
import json
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from metaextract.export import ExportError, export
from metaextract.ome import validate
from metaextract.store import open_store
from metaextract.store import results as results_mod
from metaextract.store.models import acquisitions, image_files, plates
from metaextract.store.results import ROW_COLUMNS, open_experiment

from .conftest import cli
from .test_results import copy_results, extract_corpus


@pytest.fixture(scope="module")
def corpus_db(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return extract_corpus(corpus, tmp_path_factory.mktemp("export"))


def _stored(url: str) -> dict[str, Any]:
    with open_store(url) as s, s.connect() as conn:
        return {r.name: r for r in conn.execute(select(image_files))}


def test_ome_xml_export_mirrors_the_folders_and_validates(corpus_db: str, tmp_path: Path) -> None:
    stored = _stored(corpus_db)
    with_xml = {n: r for n, r in stored.items() if r.omexml}
    out = cli(corpus_db, "c", "export", str(tmp_path / "out")).stdout
    assert f"wrote {len(with_xml)} OME-XML files" in out
    written = {p.relative_to(tmp_path / "out").as_posix(): p for p in (tmp_path / "out").rglob("*.ome.xml")}
    assert set(written) == {f"corpus/default/{n}.ome.xml" for n in with_xml}
    for name, row in with_xml.items():
        text = written[f"corpus/default/{name}.ome.xml"].read_text("utf-8")
        assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>') and row.omexml.strip() in text
        ok, error = validate(text)
        assert ok is bool(row.valid), (name, error)  # valid as extracted: the export changes nothing
    assert sum(bool(r.valid) for r in with_xml.values()) >= 90

    out = cli(corpus_db, "c", "export", str(tmp_path / "valid"), "--valid-only").stdout
    valid = list((tmp_path / "valid").rglob("*.ome.xml"))
    assert len(valid) == sum(bool(r.valid) for r in with_xml.values()) and "skipped" in out
    assert all(validate(p.read_bytes())[0] for p in valid)


def test_table_formats_hold_every_image(corpus_db: str, tmp_path: Path) -> None:
    with open_experiment("c", db=corpus_db) as res:
        rows = list(res.rows())
        n_files = len(res)
    for fmt in ("json", "csv", "parquet"):
        out = cli(corpus_db, "c", "export", str(tmp_path), "--format", fmt).stdout
        assert f"summary.{fmt}" in os.listdir(tmp_path) and str(tmp_path) in out
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]

    data = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert len(data) == n_files
    assert {"path", "status", "engine", "error", "images"} <= set(data[0])
    assert sum(max(1, len(d["images"])) for d in data) == len(rows)
    sif = next(d for d in data if d["name"] == "andor-sif/image.sif")
    assert sif["images"][0]["size_x"] == 512 and sif["status"] == "ok" and sif["engine"] == "bioformats"

    with open(tmp_path / "summary.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows) and tuple(table[0]) == ROW_COLUMNS
    assert [r["file"] for r in table] == [r["file"] for r in rows]
    assert cli(corpus_db, "c", "summary", "--format", "csv").stdout == (tmp_path / "summary.csv").read_text(
        "utf-8")

    import pyarrow.parquet as pq

    pt = pq.read_table(tmp_path / "summary.parquet")
    assert pt.num_rows == len(rows) and tuple(pt.column_names) == ROW_COLUMNS
    assert pt.column("channels").to_pylist() == [r["channels"] for r in rows]
    assert pt.column("size_x").to_pylist() == [r["size_x"] for r in rows]


def test_summary_table_and_json(corpus_db: str) -> None:
    with open_experiment("c", db=corpus_db) as res:
        n_rows, failed = sum(1 for _ in res.rows()), [f.name for f in res.files("failed")]
    lines = cli(corpus_db, "c", "summary").stdout.splitlines()
    assert lines[0].split()[:5] == ["file", "#", "image", "plate", "well"] and set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + n_rows
    assert any(line.startswith("andor-sif/image.sif") and " 512 " in line and " ok" in line for line in lines)
    bad = cli(corpus_db, "c", "summary", "--status", "failed").stdout.splitlines()[2:]
    assert len(bad) == len(failed) > 0 and all(" failed " in line for line in bad)
    data = json.loads(cli(corpus_db, "c", "summary", "--format", "json", "--status", "failed").stdout)
    assert sorted(d["name"] for d in data) == sorted(failed)
    assert all(d["status"] == "failed" and d["error"] and d["images"] == [] for d in data)
    assert "no experiment" in cli(corpus_db, "nope", "summary", expect=1).output


def test_refuses_to_overwrite_without_force(corpus_db: str, tmp_path: Path) -> None:
    cli(corpus_db, "c", "export", str(tmp_path / "x"))
    companion = next((tmp_path / "x").rglob("*.ome.xml"))
    companion.write_text("mine")
    assert "use --force" in cli(corpus_db, "c", "export", str(tmp_path / "x"), expect=1).output
    assert companion.read_text() == "mine"
    cli(corpus_db, "c", "export", str(tmp_path / "x"), "--force")
    assert companion.read_text().startswith("<?xml")

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "summary.csv").write_text("mine")
    assert "use --force" in cli(corpus_db, "c", "export", str(tmp_path / "t"), "--format", "csv",
                                expect=1).output
    assert (tmp_path / "t" / "summary.csv").read_text() == "mine"
    cli(corpus_db, "c", "export", str(tmp_path / "t"), "--format", "csv", "--force")
    assert (tmp_path / "t" / "summary.csv").read_text().startswith("plate,acquisition,file")


def _hostile_experiment(url: str) -> None:
    """Names that try to leave DIR: a plate "../..", an acquisition "a/../../b", relative names with
    ``..`` and an absolute one, next to one ordinary file."""
    xml = '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"/>'
    with open_store(url) as s, s.begin() as conn:
        from metaextract.store.models import experiments

        eid = conn.execute(experiments.insert().values(name="h").returning(experiments.c.id)).scalar_one()
        pid = conn.execute(plates.insert().values(experiment_id=eid, name="../..").returning(plates.c.id)
                           ).scalar_one()
        aid = conn.execute(acquisitions.insert().values(plate_id=pid, name="a/../../b", root="/d")
                           .returning(acquisitions.c.id)).scalar_one()
        for name in ("ok.tif", "../../escape.tif", "sub/../../../up.tif", "/tmp/abs.tif", "."):
            conn.execute(image_files.insert().values(experiment_id=eid, acquisition_id=aid, name=name,
                                                     location="/d/" + name, size=1, mtime=0.0, status="ok",
                                                     omexml=xml))


def test_never_writes_outside_dir(sqlite_url: str, tmp_path: Path) -> None:
    _hostile_experiment(sqlite_url)
    dest = tmp_path / "deep" / "out"
    before = set(tmp_path.rglob("*"))
    with open_experiment("h", db=sqlite_url) as res:
        report = export(res, dest)
    assert report.records == 1 and report.skipped_count == 4
    assert {p for p in set(tmp_path.rglob("*")) - before if not p.is_relative_to(dest)} == {tmp_path / "deep"}
    assert [p.relative_to(dest).parts for p in dest.rglob("*.ome.xml")] == [(".._..", "a_.._.._b",
                                                                             "ok.tif.ome.xml")]
    assert sorted(s.split(":")[0] for s in report.skipped) == sorted(["../../escape.tif", "sub/../../../up.tif",
                                                                      "/tmp/abs.tif", "."])
    assert not Path("/tmp/abs.tif.ome.xml").exists()


def test_symlinks_in_dir_are_not_followed(corpus_db: str, tmp_path: Path) -> None:
    outside, dest = tmp_path / "outside", tmp_path / "out"
    outside.mkdir()
    dest.mkdir()
    (dest / "corpus").symlink_to(outside, target_is_directory=True)
    res = cli(corpus_db, "c", "export", str(dest), "--force", expect=1)
    assert "symlinks are not followed" in res.output and list(outside.iterdir()) == []

    (dest / "corpus").unlink()
    cli(corpus_db, "c", "export", str(dest))
    target = next(dest.rglob("*.ome.xml"))
    victim = outside / "victim.txt"
    victim.write_text("keep")
    target.unlink()
    target.symlink_to(victim)
    cli(corpus_db, "c", "export", str(dest), "--force")
    assert victim.read_text() == "keep" and not target.is_symlink() and target.read_text().startswith("<?xml")

    (dest / "summary.csv").symlink_to(victim)
    cli(corpus_db, "c", "export", str(dest), "--format", "csv", "--force")
    assert victim.read_text() == "keep" and not (dest / "summary.csv").is_symlink()


def test_parquet_without_pyarrow_says_what_to_install(corpus_db: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    out = cli(corpus_db, "c", "export", str(tmp_path / "p"), "--format", "parquet", expect=1).output
    assert "pip install" in out and "pyarrow" in out and not (tmp_path / "p").exists()


def test_export_streams_in_bounded_memory(corpus_db: str, db_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory while exporting does not grow with the number of files (pages of PAGE files)."""
    copy_results(corpus_db, db_url, acquisitions_=1)
    monkeypatch.setattr(results_mod, "PAGE", 50)

    def peak(fmt: str, dest: Path) -> tuple[int, int]:
        with open_experiment("x", db=db_url) as res:
            tracemalloc.start()
            report = export(res, dest, fmt)
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return report.records, top

    small = peak("json", tmp_path / "one")
    with open_store(db_url) as store, store.begin() as conn:  # ten times the files
        rows = [dict(r._mapping) for r in conn.execute(select(image_files))]
        for i in range(9):
            conn.execute(image_files.insert(), [{k: v for k, v in r.items() if k not in ("id", "name")}
                                                | {"name": f"{i}/{r['name']}"} for r in rows])
    big = peak("json", tmp_path / "ten")
    assert big[0] == 10 * small[0]
    assert big[1] < 2 * small[1] + 2**20, (small, big)
    data = json.loads((tmp_path / "ten" / "summary.json").read_text("utf-8"))
    assert len(data) == big[0]


def test_unknown_format_and_status(corpus_db: str, tmp_path: Path) -> None:
    with open_experiment("c", db=corpus_db) as res:
        with pytest.raises(ValueError, match="format"):
            export(res, tmp_path, "xlsx")
        with pytest.raises(ValueError, match="status"):
            export(res, tmp_path, "csv", status="done")
        (tmp_path / "f.txt").write_text("")
        with pytest.raises(ExportError, match="not a directory"):
            export(res, tmp_path / "f.txt", "csv")
