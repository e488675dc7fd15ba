"""The Python API over stored results: open_experiment, FileResult (.ome, .images), rows, to_pandas."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from metaextract.experiment import NotFoundError, add_folder, create_experiment
from metaextract.jobs.step import MetadataExtractor, MetaextractBatchArguments
from metaextract.ome import UnsafeXMLError, image_summaries, key_fields, ome_block
from metaextract.store import open_store
from metaextract.store import results as results_mod
from metaextract.store.models import acquisitions, image_files, plates
from metaextract.store.results import ROW_COLUMNS, FileResult, open_experiment

from ._corpus import reference_rows

COPIED = ("name", "location", "size", "mtime", "status", "omexml", "error", "engine", "engine_version",
          "seconds", "valid", "validation_error", "extracted_at")


def extract_corpus(corpus: Path, folder: Path) -> str:
    """Register the corpus as plate "corpus" of experiment "c", extract it with Bio-Formats (as the
    reference did; workers=2) and return the database URL."""
    url = f"sqlite:///{folder / 'corpus.db'}"
    with open_store(url) as store:
        create_experiment(store, "c")
        add_folder(store, "c", corpus, plate="corpus")
        with MetadataExtractor("c", db=store, workers=2, engine="bioformats") as ext:
            ext.init(MetaextractBatchArguments(batch_size=10_000))
            ext.run_job(1)
    return url


def copy_results(src_url: str, dst_url: str, *, acquisitions_: int = 2) -> int:
    """Copy the corpus's results into a new experiment "x" on ``dst_url`` (the same files in several
    acquisitions of plate "P", plus one pending file); returns how many image files it holds."""
    with open_store(src_url) as src, src.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(*(image_files.c[c] for c in COPIED))
                                                       .order_by(image_files.c.id))]
    with open_store(dst_url) as dst:
        eid = create_experiment(dst, "x")
        with dst.begin() as conn:
            pid = conn.execute(plates.insert().values(experiment_id=eid, name="P").returning(plates.c.id)
                               ).scalar_one()
            for k in range(acquisitions_):
                aid = conn.execute(acquisitions.insert().values(plate_id=pid, name=f"a{k}", root="/data")
                                   .returning(acquisitions.c.id)).scalar_one()
                conn.execute(image_files.insert(), [{**r, "experiment_id": eid, "acquisition_id": aid}
                                                    for r in rows])
            conn.execute(image_files.insert().values(experiment_id=eid, acquisition_id=aid, name="new.tif",
                                                     location="/data/new.tif", size=1, mtime=0.0,
                                                     status="pending"))
    return len(rows) * acquisitions_ + 1


@pytest.fixture(scope="module")
def corpus_db(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return extract_corpus(corpus, tmp_path_factory.mktemp("results"))


def test_files_and_key_fields_match_the_reference(corpus_db: str, corpus: Path, reference: Path) -> None:
    exits = {r["path"]: r["showinf_exit"] for r in reference_rows(reference)}
    with open_experiment("c", db=corpus_db) as res:
        files = list(res)
        assert len(res) == len(files) == len({f.id for f in files})
        assert res.counts() == {s: sum(f.status == s for f in files) for s in {f.status for f in files}}
        checked = 0
        for f in files:
            assert Path(f.path) == corpus / f.name
            assert f.plate == "corpus" and f.acquisition == "default"
            if f.status != "ok":
                assert f.error and f.ome is None and f.images == []
                continue
            assert f.engine == "bioformats" and f.omexml
            if exits.get(f.name) == "0":  # Bio-Formats' own showinf output, key fields per image
                ref = ome_block((reference / f"{f.name}.xml").read_text("utf-8")) or ""
                got = [{k: v for k, v in im.items() if k not in ("plate", "well")} for im in f.images]
                assert got == image_summaries(ref), f.name
                assert len(f.images) == key_fields(ref)["image_count"] > 0
                checked += 1
        assert checked >= 90


def test_ome_is_parsed_on_demand_and_cached(corpus_db: str) -> None:
    with open_experiment("c", db=corpus_db) as res:
        f = next(f for f in res.files("ok") if f.name.endswith("hcs.ome.xml"))
    assert "ome" not in f.__dict__
    ome = f.ome
    assert ome is f.ome and ome is not None
    assert len(ome.images) == len(f.images) and ome.plates[0].name == "Control Plate"
    assert [im.pixels.size_x for im in ome.images] == [im["size_x"] for im in f.images]


def test_plate_and_well(corpus_db: str) -> None:
    with open_experiment("c", db=corpus_db) as res:
        by_name = {f.name: f for f in res.files("ok")}
    hcs = by_name["ome-xml-reference/hcs.ome.xml"].images[0]
    assert (hcs["plate"], hcs["well"]) == ("Control Plate", "01A")  # rows numbered, columns lettered
    four = by_name["ome-xml-reference/one-screen-one-plate-four-wells.ome.xml"].images
    assert [im["well"] for im in four][:5] == ["B02", "B02", "B03", "B03", "C02"]
    assert four[0]["plate"] == "corpus"  # the OME plate has no name: the registered one
    ixm = by_name["imagej-tiff/IXMtest_A02_s9.tif"].images[0]
    assert (ixm["plate"], ixm["well"]) == ("corpus", "A02")  # no OME plate: from the file name
    assert by_name["andor-sif/image.sif"].images[0]["well"] is None


def test_unsafe_xml_is_refused() -> None:
    evil = ('<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="&x;"/>'
            "</OME>")
    f = FileResult(id=1, plate="p", acquisition="a", name="x.tif", path="/x.tif", status="ok", omexml=evil)
    assert f.images == []
    with pytest.raises(UnsafeXMLError):
        _ = f.ome


def test_rows_and_to_pandas(corpus_db: str) -> None:
    with open_experiment("c", db=corpus_db) as res:
        rows = list(res.rows())
        n_images = sum(max(1, len(f.images)) for f in res)
        frame = res.to_pandas()
        failed = res.to_pandas(status="failed")
    assert len(rows) == n_images == len(frame)
    assert tuple(frame.columns) == ROW_COLUMNS and all(tuple(r) == ROW_COLUMNS for r in rows)
    assert str(frame["size_x"].dtype) == "Int64"
    sif = frame[frame["file"] == "andor-sif/image.sif"].iloc[0]
    assert (sif["size_x"], sif["size_y"], sif["pixel_type"], sif["status"]) == (512, 512, "float", "ok")
    assert set(failed["status"]) == {"failed"} and failed["error"].notna().all()
    assert failed["size_x"].isna().all()


def test_to_pandas_without_pandas_says_what_to_install(corpus_db: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with open_experiment("c", db=corpus_db) as res, pytest.raises(ImportError, match="pip install"):
        res.to_pandas()


def test_pages_and_status_filters(corpus_db: str, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    total = copy_results(corpus_db, db_url, acquisitions_=3)
    monkeypatch.setattr(results_mod, "PAGE", 7)
    seen: list[int] = []
    real = results_mod.ExperimentResults._page

    def spy(self: Any, conn: Any, where: Any, after: int, limit: int) -> list[Any]:
        page = real(self, conn, where, after, limit)
        seen.append(len(page))
        return page

    monkeypatch.setattr(results_mod.ExperimentResults, "_page", spy)
    with open_experiment("x", db=db_url) as res:
        files = list(res)
        ids = [f.id for f in files]
        assert ids == sorted(set(ids)) and len(ids) == total == res.count()
        assert max(seen) == 7 and len(seen) > total // 7
        ok, failed = list(res.files("ok")), list(res.files("failed"))
        assert {f.status for f in ok} == {"ok"} and {f.status for f in failed} <= {"failed", "timeout",
                                                                                  "unsupported"}
        assert len(ok) + len(failed) == total - 1 == res.count("ok") + res.count("failed")
        assert files[-1].status == "pending" and files[-1].images == []
        assert [f.acquisition for f in files[:: total // 3]][:3] == ["a0", "a1", "a2"]
        with pytest.raises(ValueError, match="status must be one of"):
            list(res.files("bogus"))


def test_unknown_experiment(sqlite_url: str) -> None:
    with pytest.raises(NotFoundError):
        open_experiment("nope", db=sqlite_url)
