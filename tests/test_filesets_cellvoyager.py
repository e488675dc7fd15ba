"""CellVoyager measurements as filesets: the corpus-hcs sets completed with TIFFs in tmp_path, compared with
the live Bio-Formats grouped read of the ``.wpi``; every TIFF's place checked against its ``.mlf`` record."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from lxml import etree

from metaextract import engines, ome
from metaextract.filesets import cellvoyager
from metaextract.filesets._hcs import VendorFileError
from metaextract.filesets.model import FilesetRead

from .conftest import corpus_hcs_root as _hcs

SETS = ["CV7000-example", "CV7000_z_processed"]
BTS = "{http://www.yokogawa.co.jp/BTS/BTSSchema/1.0}"
OME = {"o": ome.OME_NS}



def _mlf_records(mlf: Path) -> list[dict[str, str]]:
    """The .mlf's IMG records, read here with lxml alone (not through the module under test)."""
    root = etree.parse(str(mlf), ome.safe_parser()).getroot()
    rows = []
    for el in root.iter(f"{BTS}MeasurementRecord"):
        if el.get(f"{BTS}Type") == "IMG":
            rows.append({k.replace(BTS, ""): v for k, v in el.attrib.items()} | {"file": el.text or ""})
    return rows


def _complete(source: Path, into: Path) -> Path:
    """Copy a metadata-only measurement into ``into`` and write every TIFF its .mlf names: 16x16 uint16
    planes, plain TIFF without metadata, as ``metaextract.synth`` writes CellVoyager TIFFs."""
    into.mkdir(parents=True)
    for f in source.iterdir():
        shutil.copy(f, into / f.name)
    plane = np.zeros((16, 16), np.uint16)
    for record in _mlf_records(source / "MeasurementData.mlf"):
        tifffile.imwrite(into / record["file"], plane, metadata=None)
    return into


def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


@pytest.fixture(scope="module", params=SETS)
def completed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FilesetRead]:
    source = _hcs() / "yokogawa-cv7000" / request.param
    folder = _complete(source, tmp_path_factory.mktemp("cv") / request.param)
    specs, rest = cellvoyager.detect(_listing(folder))
    assert len(specs) == 1 and rest == []
    return folder, cellvoyager.read(specs[0])


def test_detect_takes_the_wpi_as_master_with_its_vendor_files_and_every_named_tiff(
        completed: tuple[Path, FilesetRead]) -> None:
    folder, result = completed
    spec = result.spec
    assert spec.kind == "cellvoyager" and spec.master.endswith(".wpi")
    assert sorted(os.path.splitext(m)[1] for m in spec.metadata) == [".mes", ".mlf", ".mrf", ".wpp"]
    named = [str(folder / r["file"]) for r in _mlf_records(folder / "MeasurementData.mlf")]
    assert sorted(spec.images) == sorted(named)
    assert set(result.places) == set(named)


def test_key_fields_equal_the_live_bioformats_grouped_read(completed: tuple[Path, FilesetRead]) -> None:
    _, result = completed
    theirs = engines.get("bioformats").extract(result.spec.master)
    ours = ome.key_fields(result.omexml)
    assert ours["plates"][0]["wells"], "a plate with wells"
    assert ours == ome.key_fields(theirs)
    assert ome.validate(result.omexml) == (True, None)


def _image_planes(doc: etree._Element) -> list[tuple[str, list[Any], dict[tuple[int, int, int], Any]]]:
    out = []
    for image in doc.findall("o:Image", OME):
        channels = [c.get("Name") for c in image.findall("o:Pixels/o:Channel", OME)]
        planes = {(int(p.get("TheC")), int(p.get("TheZ")), int(p.get("TheT"))): p
                  for p in image.findall("o:Pixels/o:Plane", OME)}
        out.append((image.get("Name"), channels, planes))
    return out


def test_every_tiff_place_agrees_with_its_mlf_record(completed: tuple[Path, FilesetRead]) -> None:
    """Well, field, channel, stage position and time of every TIFF's place, against its own .mlf record and
    the document's Image name, Channel name and Plane."""
    folder, result = completed
    doc = ome.parse(result.omexml)
    images = _image_planes(doc)
    records = _mlf_records(folder / "MeasurementData.mlf")
    assert len(records) == len(result.places)
    for r in records:
        [place] = result.places[str(folder / r["file"])]
        row, column, field = int(r["Row"]) - 1, int(r["Column"]) - 1, int(r["FieldIndex"]) - 1
        assert place.well == f"{chr(ord('A') + row)}{column + 1:02d}"
        assert place.field == field
        name, channels, planes = images[place.image]
        assert name == f"Well {chr(ord('A') + row)}{column + 1}, Field {field + 1}"
        assert channels[place.c].startswith(f"Action #{r['ActionIndex']}, Channel #{r['Ch']},")
        plane = planes[(place.c, place.z, place.t)]
        assert float(plane.get("PositionX")) == float(r["X"]) and float(plane.get("PositionZ")) == float(r["Z"])
        assert place.position == (float(r["X"]), float(r["Y"]), float(r["Z"]))
        assert place.time is not None and place.time >= 0
    zs = {(p.image, p.z) for ps in result.places.values() for p in ps}
    assert len(zs) == len({(r["Row"], r["Column"], r["FieldIndex"], r["ZIndex"]) for r in records})


def test_metadata_only_gives_the_plate_layout_with_a_note(completed: tuple[Path, FilesetRead]) -> None:
    """The corpus folder itself (no TIFFs): the same plate, images, channels and planes, a note on the
    missing images, and the X/Y sizes of the .mrf's camera frame."""
    folder, with_tiffs = completed
    source = _hcs() / "yokogawa-cv7000" / folder.name
    [spec], _ = cellvoyager.detect(_listing(source))
    assert spec.images == ()
    result = cellvoyager.read(spec)
    assert any("absent" in note for note in result.notes)
    ours, full = ome.key_fields(result.omexml), ome.key_fields(with_tiffs.omexml)
    assert ours["plates"] == full["plates"] and ours["image_count"] == full["image_count"]
    for mine, theirs in zip(ours["images"], full["images"], strict=True):
        assert (mine["name"], mine["channels"], mine["planes"]) == (theirs["name"], theirs["channels"],
                                                                   theirs["planes"])
        assert (mine["pixels"]["size_x"], mine["pixels"]["size_y"]) == (2560, 2160)
    assert result.places == {}


def test_without_a_wpi_each_mlf_is_a_master_with_a_note(corpus: Path) -> None:
    """``../corpus/yokogawa-cv7000`` holds two renamed .mlf/.mrf pairs and no .wpi."""
    folder = corpus / "yokogawa-cv7000"
    specs, rest = cellvoyager.detect(_listing(folder))
    assert sorted(os.path.basename(s.master) for s in specs) == sorted(
        p.name for p in folder.iterdir() if p.suffix == ".mlf")
    assert rest == []
    for spec in specs:
        result = cellvoyager.read(spec)
        assert any("no .wpi" in note for note in result.notes)
        records = _mlf_records(Path(spec.master))
        wells = {(int(r["Row"]) - 1, int(r["Column"]) - 1) for r in records}
        plate = ome.key_fields(result.omexml)["plates"][0]
        assert {(w["row"], w["column"]) for w in plate["wells"] if w["samples"]} == wells


HOSTILE = """<?xml version="1.0"?>
<!DOCTYPE x [ <!ENTITY secret SYSTEM "file:///etc/hostname"> ]>
<bts:MeasurementData xmlns:bts="http://www.yokogawa.co.jp/BTS/BTSSchema/1.0">
<bts:MeasurementRecord bts:Type="IMG" bts:Row="1" bts:Column="1" bts:TimePoint="1" bts:FieldIndex="1"
 bts:ZIndex="1" bts:Ch="1">&secret;.tif</bts:MeasurementRecord>
</bts:MeasurementData>
"""


def test_a_hostile_mlf_is_refused_with_a_clear_error_never_expanded(tmp_path: Path) -> None:
    mlf = tmp_path / "MeasurementData.mlf"
    mlf.write_text(HOSTILE)
    tiff = tmp_path / "plate_A01_T0001F001L01A01Z01C01.tif"
    tifffile.imwrite(tiff, np.zeros((4, 4), np.uint16), metadata=None)
    specs, rest = cellvoyager.detect([str(mlf), str(tiff)])
    assert [s.master for s in specs] == [str(mlf)] and rest == [str(tiff)]
    with pytest.raises(VendorFileError, match="DTD or entities") as err:
        cellvoyager.read(specs[0])
    assert str(mlf) in str(err.value)
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    assert not hostname or hostname not in str(err.value)


def test_detect_on_a_10000_file_listing_takes_exactly_the_named_tiffs(tmp_path: Path) -> None:
    """O(N) grouping: one .mlf naming 9,000 TIFFs, 1,000 strays in other folders; no TIFF is opened."""
    records = "\n".join(
        f'<bts:MeasurementRecord bts:Type="IMG" bts:Row="{1 + i // 3000}" bts:Column="{1 + i % 3000 // 250}" '
        f'bts:TimePoint="1" bts:FieldIndex="{1 + i % 250}" bts:ZIndex="1" bts:Ch="1">f{i}.tif</bts:MeasurementRecord>'
        for i in range(9000))
    mlf = tmp_path / "MeasurementData.mlf"
    mlf.write_text(f'<bts:MeasurementData xmlns:bts="{BTS[1:-1]}">\n{records}\n</bts:MeasurementData>')
    named = [str(tmp_path / f"f{i}.tif") for i in range(9000)]
    strays = [f"/elsewhere/{i // 100}/x{i}.tif" for i in range(1000)]
    listing = [*reversed(named), str(mlf), *strays]
    specs, rest = cellvoyager.detect(listing)
    assert len(specs) == 1 and specs[0].master == str(mlf)
    assert sorted(specs[0].images) == sorted(named)
    assert rest == strays


def test_the_synthetic_measurement_of_make_demo_is_one_bioformats_reads_alike(tmp_path: Path) -> None:
    """``synth.write_cellvoyager_measurement`` (what ``make demo`` writes, no corpus needed) is a CellVoyager
    measurement Bio-Formats' CV7000 reader reads as a plate, and the native read equals it on the key fields."""
    from metaextract import synth

    wpi, tiffs = synth.write_cellvoyager_measurement(tmp_path / "cv", plate="p", wells=3, sites=2, channels=3)
    (spec,), rest = cellvoyager.detect(_listing(tmp_path / "cv"))
    assert rest == [] and spec.master == str(wpi) and sorted(spec.images) == sorted(map(str, tiffs))
    result = cellvoyager.read(spec)
    ours = ome.key_fields(result.omexml)
    assert len(ours["images"]) == 6 and {i["pixels"]["size_c"] for i in ours["images"]} == {3}
    assert ours == ome.key_fields(engines.get("bioformats").extract(str(wpi)))
    assert ome.validate(result.omexml) == (True, None)


def test_a_measurement_widened_to_more_columns_reads_as_bioformats_reads_it(tmp_path: Path) -> None:
    """``synth.complete_cellvoyager(columns=2)`` (the bench's larger CellVoyager plate): every well measured
    again one plate column to the right, its TIFFs named for the new well; Bio-Formats' CV7000 reader and
    ours agree on the key fields, and the plate has twice the measured wells and images."""
    from metaextract import synth

    source = _hcs() / "yokogawa-cv7000" / "CV7000-example"
    tiffs = synth.complete_cellvoyager(source, tmp_path / "cv", columns=2)
    before, after = _mlf_records(source / "MeasurementData.mlf"), _mlf_records(tmp_path / "cv" / "MeasurementData.mlf")
    assert len(after) == len(tiffs) == 2 * len(before) and len({t.name for t in tiffs}) == len(tiffs)
    for old, new in zip(before, after[len(before):], strict=True):
        assert int(new["Column"]) == int(old["Column"]) + 1 and new["Row"] == old["Row"]
        assert new["file"] == old["file"].replace(f"{int(old['Column']):02d}_T", f"{int(new['Column']):02d}_T", 1)
    (spec,), rest = cellvoyager.detect(_listing(tmp_path / "cv"))
    assert rest == [] and len(spec.images) == len(tiffs)
    result = cellvoyager.read(spec)
    ours = ome.key_fields(result.omexml)
    assert ours == ome.key_fields(engines.get("bioformats").extract(spec.master))
    measured = {(w["row"], w["column"]) for w in ours["plates"][0]["wells"] if w["samples"]}
    assert len(measured) == 2 * len({(r["Row"], r["Column"]) for r in before})
    assert len(result.places) == len(tiffs)
