"""MetaXpress plates as one fileset: detection by names, the native plate read against Bio-Formats (its
stored reference and the live engine), every file's place against the vendor's own naming of it."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from metaextract import engines
from metaextract.filesets import metaxpress as mx
from metaextract.filesets.model import FilesetRead
from metaextract.ome import key_fields, parse

from ._plates import build_plate
from .conftest import corpus_hcs_root, reference_hcs_root

HTD = "metaxpress-htd"
P3433 = f"{HTD}/faim-ipa_9987_Plate_3433/9987_Plate_3433"
P3435 = f"{HTD}/faim-ipa_9987_Plate_3435/9987_Plate_3435"
#: the vendor's naming, written out here independently of the code under test
VENDOR = re.compile(r"(?P<plate>.+)_(?P<row>[A-P])(?P<col>\d\d)_s(?P<site>\d+)_w(?P<wave>\d+)\.TIF")
NS = {"o": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}


@pytest.fixture(scope="module")
def hcs() -> Path:
    return corpus_hcs_root()


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())


def _one(paths: list[str], kind: str) -> FilesetRead:
    specs, rest = mx.detect(paths)
    assert rest == [] and [s.kind for s in specs] == [kind]
    assert set(specs[0].images + specs[0].metadata + (specs[0].master,)) == set(paths)
    return mx.read(specs[0])


def _vendor(path: str) -> dict[str, Any]:
    """What the vendor's name and folders say of a file (TimePoint, ZStep 1-based as the folders are)."""
    m = VENDOR.fullmatch(Path(path).name)
    assert m is not None, path
    parts = Path(path).parts
    t = next((int(p[10:]) for p in parts if p.startswith("TimePoint_")), 1)
    z = next((int(p[6:]) for p in parts if p.startswith("ZStep_")), None)
    return {"well": f"{m['row']}{m['col']}", "site": int(m["site"]), "wave": int(m["wave"]), "t": t, "z": z}


def _check_places(read: FilesetRead, wells: list[str], sites: int) -> int:
    """Every file's place agrees with its name and folders; returns how many files have a plane."""
    placed = 0
    for path in read.spec.images:
        v, places = _vendor(path), read.places[path]
        if v["z"] == 0:
            assert places == []  # a ZStep_0 projection: not a plane of the plate (nor of Bio-Formats' read)
            continue
        (p,) = places
        assert (p.well, p.field, p.c, p.t) == (v["well"], v["site"] - 1, v["wave"] - 1, v["t"] - 1)
        assert p.z == (0 if v["z"] is None else v["z"] - 1)
        assert p.image == wells.index(v["well"]) * sites + v["site"] - 1
        placed += 1
    return placed


def test_3433_equals_bioformats_read_of_the_master(hcs: Path) -> None:
    read = _one(_files(hcs / P3433), "metaxpress-htd")
    ref = reference_hcs_root() / P3433
    ours = key_fields(read.omexml)
    assert ours == key_fields((ref / "9987.HTD.xml").read_text())
    assert ours["image_count"] == 4 and ours["images"][0]["pixels"]["size_z"] == 3
    # a TIFF's reference is the same plate (images, plate, channels, sizes); Bio-Formats, given a TIFF,
    # reads it through the .HTD copy in the TIFF's folder and misses other sites' stage positions
    tiff = key_fields((ref / "TimePoint_1/ZStep_1/9987_B03_s1_w1.TIF.xml").read_text())
    strip = [{k: v for k, v in im.items() if k != "planes"} for im in ours["images"]]
    assert strip == [{k: v for k, v in im.items() if k != "planes"} for im in tiff["images"]]
    assert ours["plates"] == tiff["plates"]
    assert [[(p["the_z"], p["the_c"]) for p in im["planes"]] for im in ours["images"]] == \
        [[(p["the_z"], p["the_c"]) for p in im["planes"]] for im in tiff["images"]]


def test_3433_every_file_placed_as_named(hcs: Path) -> None:
    read = _one(_files(hcs / P3433), "metaxpress-htd")
    assert _check_places(read, ["B02", "B03"], 2) == 24
    assert len(read.spec.images) == 32 and len(read.spec.metadata) == 5  # 8 projections; 5 .HTD copies
    assert any("ZStep_0" in n for n in read.notes)


def test_3435_read_natively_with_its_notes(hcs: Path) -> None:
    with open(reference_hcs_root() / "summary.tsv", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if "Plate_3435" in r[0]]
    assert len(rows) == 103 and all(r[1] != "0" for r in rows)  # Bio-Formats fails on every file
    read = _one(_files(hcs / P3435), "metaxpress-htd")
    assert any(n.startswith("Bio-Formats 7.3.1 fails on this plate") for n in read.notes)
    k = key_fields(read.omexml)
    assert k["image_count"] == 4
    for image in k["images"]:
        px = image["pixels"]
        assert (px["size_z"], px["size_c"], px["size_t"]) == (1, 4, 6)
        assert [c["name"] for c in image["channels"]] == ["DAPI", "FITC", "Texas Red", "Cy5"]
        assert len(image["planes"]) == 24  # every plane has a file (the vendor repeats uncollected ones)
    assert _check_places(read, ["B02", "B03"], 2) == 96
    # the .HTD's description: FITC at the first TP only, Texas Red first and last, Cy5 every 3rd
    (repeats,) = [n for n in read.notes if n.startswith("not collected")]
    assert "w2 FITC at TimePoint 2,3,4,5,6" in repeats and "w3 Texas Red at TimePoint 2,3,4,5" in repeats
    assert "w4 Cy5 at TimePoint 2,3,5,6" in repeats and "DAPI" not in repeats
    times = {p.t: p.time for path, ps in read.places.items() for p in ps if "B02_s1_w1" in path}
    assert times[0] is not None and times[5] is not None and 140 < times[5] - times[0] < 160  # 30 s apart


def test_names_only_layout(hcs: Path) -> None:
    read = _one(_files(hcs / "metaxpress-tiff"), "metaxpress-names")
    assert read.layout_from_names and any("file names only" in n for n in read.notes)
    for path, (place,) in read.places.items():
        v = _vendor(path)
        assert (place.well, place.field, place.c, place.t, place.z) == (v["well"], v["site"] - 1, v["wave"] - 1, 0, 0)
    k = key_fields(read.omexml)
    assert k["plates"][0]["name"] == "IM-Assays-EXP2" and k["image_count"] == 8  # A01, A02 x sites 1..4
    assert sum(len(im["planes"]) for im in k["images"]) == 4


def test_detect_groups_only_what_belongs(tmp_path: Path, hcs: Path) -> None:
    master, files = build_plate(hcs, tmp_path / "p", wells=2, sites=1, waves=1)
    extra = [tmp_path / "p/TimePoint_1/plate_A01_w1_thumb.TIF", tmp_path / "p/notes.txt",
             tmp_path / "p/other_A01_s1_w1.TIF"]
    paths = [str(master), str(master.parent / "TimePoint_1" / master.name)] + [str(f) for f in files + extra]
    specs, rest = mx.detect(list(reversed(paths)))
    htd = [s for s in specs if s.kind == "metaxpress-htd"]
    assert [s.master for s in htd] == [str(master)] and sorted(htd[0].images) == sorted(map(str, files))
    assert sorted(rest) == sorted(str(p) for p in extra[:2])
    assert [s.images for s in specs if s.kind == "metaxpress-names"] == [(str(extra[2]),)]


def test_1152_file_plate_and_linear_document(tmp_path: Path, hcs: Path) -> None:
    sizes = {}
    for wells in (8, 16, 96):
        master, files = build_plate(hcs, tmp_path / f"p{wells}", wells=wells, sites=4, waves=3)
        read = _one([str(master), str(master.parent / "TimePoint_1" / master.name)] + [str(f) for f in files],
                    "metaxpress-htd")
        wells_named = [f"{chr(65 + i // 24)}{i % 24 + 1:02d}" for i in range(wells)]
        assert _check_places(read, wells_named, 4) == len(files) == wells * 12
        root = parse(read.omexml)
        assert len(root.findall("o:Image", NS)) == wells * 4
        assert len(root.findall("o:Image/o:Pixels/o:Plane", NS)) == wells * 12
        sizes[wells] = len(read.omexml.encode())
    per_image_small = (sizes[16] - sizes[8]) / (8 * 4)
    per_image_large = (sizes[96] - sizes[16]) / (80 * 4)
    assert abs(per_image_large / per_image_small - 1) < 0.05  # bytes grow linearly with the plate


def test_live_bioformats_agrees_on_a_built_plate(tmp_path: Path, hcs: Path) -> None:
    master, files = build_plate(hcs, tmp_path / "p", wells=2, sites=2, waves=2, zsteps=2, columns=12, rows=8)
    specs, rest = mx.detect([str(master)] + [str(f) for f in files])
    assert rest == [] and len(specs) == 1
    ours = mx.read(specs[0])
    theirs = engines.get("bioformats").extract(str(master))
    assert key_fields(ours.omexml) == key_fields(theirs)
    assert key_fields(theirs)["images"][1]["planes"][1]["position_x"] is not None  # positions: every plane
