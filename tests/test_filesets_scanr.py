"""ScanR TIFFs without their experiment descriptor: one fileset per folder, the layout from the names (and
said so), each file's place agreeing with its name, the pixels agreeing with Bio-Formats' per-file reads."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from metaextract import ome
from metaextract.filesets import scanr
from metaextract.filesets.model import FilesetRead

from .conftest import corpus_hcs_root as _hcs
from .conftest import reference_hcs_root

SCANR = Path("scanr") / "plateviewer_SCANR-C2-S1-T1"
NAME = re.compile(r"([A-Z])(\d+)--W(\d+)--P(\d+)--Z(\d+)--T(\d+)--(\w+)\.tif")



def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


@pytest.fixture(scope="module")
def plate() -> FilesetRead:
    specs, rest = scanr.detect(_listing(_hcs() / SCANR))
    assert len(specs) == 1 and rest == []
    return scanr.read(specs[0])


def test_one_fileset_of_every_tiff_marked_as_laid_out_from_names(plate: FilesetRead) -> None:
    assert plate.spec.kind == "scanr-names"
    assert sorted(plate.spec.images) == sorted(str(p) for p in (_hcs() / SCANR).glob("*.tif"))
    assert plate.layout_from_names and any("names" in note for note in plate.notes)
    assert ome.validate(plate.omexml) == (True, None)


def test_every_file_place_agrees_with_its_name(plate: FilesetRead) -> None:
    """Well from the name's prefix (``B1`` -> ``B01``), field = position rank, channel ranked by name; the
    prefix and the well number agree on one column count (W00013 = B1 with 12 columns)."""
    parsed = {p: NAME.fullmatch(os.path.basename(p)).groups() for p in plate.places}  # type: ignore[union-attr]
    channels = sorted({g[6] for g in parsed.values()})
    doc = ome.parse(plate.omexml)
    images = doc.findall(f"{{{ome.OME_NS}}}Image")
    for path, (letter, col, number, position, z, t, channel) in parsed.items():
        [place] = plate.places[path]
        row = ord(letter) - ord("A")
        assert place.well == f"{letter}{int(col):02d}" and int(number) - 1 == row * 12 + int(col) - 1
        assert (place.field, place.z, place.t) == (int(position) - 1, int(z), int(t))
        assert place.c == channels.index(channel)
        image = images[place.image]
        assert image.get("Name") == f"Well {place.well}, Position {int(position)}"
        names = [c.get("Name") for c in image.findall(f"{{{ome.OME_NS}}}Pixels/{{{ome.OME_NS}}}Channel")]
        assert names[place.c] == channel
    assert len({(p.image, p.c) for ps in plate.places.values() for p in ps}) == len(parsed)


def test_pixels_agree_with_bioformats_reading_each_file_alone(plate: FilesetRead) -> None:
    """Bio-Formats' reference reads each of these TIFFs alone, one image and no plate (hence the note): its
    X/Y size, pixel type and bits are those of the file's image in the fileset."""
    ours = ome.key_fields(plate.omexml)
    reference = reference_hcs_root() / SCANR
    for path, [place] in plate.places.items():
        theirs = ome.key_fields((reference / (os.path.basename(path) + ".xml")).read_text())
        assert theirs["image_count"] == 1 and theirs["plates"] == []
        mine, alone = ours["images"][place.image]["pixels"], theirs["images"][0]["pixels"]
        for key in ("size_x", "size_y", "type", "significant_bits", "dimension_order"):
            assert mine[key] == alone[key], key


def test_names_without_the_well_keep_the_number_and_say_so(tmp_path: Path) -> None:
    for src in (_hcs() / SCANR).glob("*.tif"):
        shutil.copy(src, tmp_path / src.name.split("--", 1)[1])
    [spec], _ = scanr.detect(_listing(tmp_path))
    result = scanr.read(spec)
    assert all(p.well is None for ps in result.places.values() for p in ps)
    assert any("well numbers kept" in note for note in result.notes)
    assert "<Plate" not in result.omexml
    doc = ome.parse(result.omexml)
    names = {i.get("Name") for i in doc.findall(f"{{{ome.OME_NS}}}Image")}
    assert names == {f"Well number {n}, Position 1" for n in (1, 2, 13, 14)}


def test_an_experiment_descriptor_becomes_the_master(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    descriptor = tmp_path / "experiment_descriptor.xml"
    descriptor.write_text("<Experiment/>")
    tiffs = [str(tmp_path / "data" / f"--W00001--P0000{p}--Z00000--T00000--DAPI.tif") for p in (1, 2)]
    specs, rest = scanr.detect([str(descriptor), *tiffs])
    assert [(s.kind, s.master, s.images) for s in specs] == [("scanr", str(descriptor), tuple(sorted(tiffs)))]
    assert rest == []


def test_detect_on_a_10000_file_listing() -> None:
    """Names only, no file touched: 40 folders of 250 ScanR TIFFs, plus strays."""
    listing = [f"/plates/{f}/A{w % 12 + 1}--W{w + 1:05d}--P{p:05d}--Z00000--T00000--GFP.tif"
               for f in range(40) for w in range(25) for p in range(1, 11)]
    strays = ["/plates/0/notes.txt", "/plates/0/A1--W1.tif"]
    specs, rest = scanr.detect(listing[::-1] + strays)
    assert len(specs) == 40 and sum(len(s.images) for s in specs) == 10000
    assert rest == strays
