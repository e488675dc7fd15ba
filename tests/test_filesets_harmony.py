"""Harmony (Opera Phenix) plates as filesets: key fields against Bio-Formats 7.3.1's reference for the corpus
plate and against its live grouped read of a larger plate written here; every TIFF's place against its name."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from lxml import etree

from metaextract import engines, ome
from metaextract.filesets import harmony
from metaextract.filesets._hcs import VendorFileError
from metaextract.filesets.model import FilesetRead

from .conftest import corpus_hcs_root as _hcs
from .conftest import reference_hcs_root

PHENIX = Path("opera-phenix") / "pe2loaddata_Version1" / "images"
NAME = re.compile(r"r(\d+)c(\d+)f(\d+)p(\d+)-ch(\d+)sk(\d+)fk1fl1\.tiff")
HARMONY_NS = "{http://www.perkinelmer.com/PEHH/HarmonyV5}"



def _listing(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir())


@pytest.fixture(scope="module")
def phenix() -> FilesetRead:
    specs, rest = harmony.detect(_listing(_hcs() / PHENIX))
    assert len(specs) == 1 and rest == []
    return harmony.read(specs[0])


def test_detect_takes_the_index_as_master_with_the_tiffs_it_names(phenix: FilesetRead) -> None:
    folder = _hcs() / PHENIX
    assert phenix.spec.kind == "harmony" and phenix.spec.master == str(folder / "Index.idx.xml")
    assert sorted(phenix.spec.images) == sorted(str(p) for p in folder.glob("*.tiff"))
    assert set(phenix.places) == set(phenix.spec.images)


def test_key_fields_equal_the_reference_for_the_index_and_every_tiff(phenix: FilesetRead) -> None:
    """Bio-Formats reads the index and each TIFF as the whole plate: one reference per file, all equal ours."""
    ours = ome.key_fields(phenix.omexml)
    reference = reference_hcs_root() / PHENIX
    files = sorted(reference.glob("*.xml"))
    assert len(files) == 7
    for ref in files:
        assert ours == ome.key_fields(ref.read_text()), ref.name
    assert ome.validate(phenix.omexml) == (True, None)


def _ranks(values: set[int]) -> dict[int, int]:
    return {v: i for i, v in enumerate(sorted(values))}


def _check_places_against_names(result: FilesetRead) -> int:
    """Every TIFF's place agrees with its name: row 1 = A, column, field/plane/channel/time point ranks."""
    parsed = {path: tuple(map(int, NAME.fullmatch(os.path.basename(path)).groups()))  # type: ignore[union-attr]
              for path in result.places}
    fields, planes, chans, sks = (_ranks({p[i] for p in parsed.values()}) for i in (2, 3, 4, 5))
    doc = ome.parse(result.omexml)
    names = [i.get("Name") for i in doc.findall(f"{{{ome.OME_NS}}}Image")]
    for path, (row, col, f, p, ch, sk) in parsed.items():
        [place] = result.places[path]
        assert place.well == f"{chr(ord('A') + row - 1)}{col:02d}"
        assert (place.field, place.z, place.c, place.t) == (fields[f], planes[p], chans[ch], sks[sk])
        assert names[place.image] == f"Well {chr(ord('A') + row - 1)}{col:02d}, Field {fields[f] + 1}"
    return len(parsed)


def test_every_tiff_place_agrees_with_its_name(phenix: FilesetRead) -> None:
    assert _check_places_against_names(phenix) == 6
    assert [p.c for ps in phenix.places.values() for p in ps] != [0] * 6


def _plate_from_the_corpus_index(folder: Path, skip: set[tuple[int, ...]]) -> Path:
    """A 2 x 2-well plate, 2 fields, 2 planes, 2 channels, 2 time points: the corpus index with its Image
    entries cloned and renumbered, 16x16 uint16 TIFFs (wells (row, col) and fields (row, col, field) in
    ``skip`` left out)."""
    tree = etree.parse(str(_hcs() / PHENIX / "Index.idx.xml"), ome.safe_parser())
    root = tree.getroot()
    images = root.find(f"{HARMONY_NS}Images")
    template = images[0]
    for el in list(images):
        images.remove(el)
    folder.mkdir()
    plane = np.zeros((16, 16), np.uint16)
    for row in (1, 2):
        for col in (1, 2):
            if (row, col) in skip:
                continue
            for f in (1, 2):
                if (row, col, f) in skip:
                    continue
                for sk in (1, 2):
                    for p in (1, 2):
                        for ch in (1, 2):
                            name = f"r{row:02d}c{col:02d}f{f:02d}p{p:02d}-ch{ch}sk{sk}fk1fl1.tiff"
                            entry = copy.deepcopy(template)
                            values = {"id": name, "URL": name, "Row": row, "Col": col, "FieldID": f, "PlaneID": p,
                                      "TimepointID": sk - 1, "ChannelID": ch, "ChannelName": f"dye {ch}",
                                      "ImageSizeX": 16, "ImageSizeY": 16, "PositionX": f * 1e-4,
                                      "PositionY": -f * 2e-4, "PositionZ": p * 1e-6,
                                      "MeasurementTimeOffset": sk * 60.5, "MainEmissionWavelength": 500 + ch,
                                      "AbsTime": f"2021-03-29T16:5{sk}:0{ch}.25-04:00"}
                            for child in entry:
                                key = etree.QName(child).localname
                                if key in values:
                                    child.text = str(values[key])
                            images.append(entry)
                            tifffile.imwrite(folder / name, plane, metadata=None)
    tree.write(str(folder / "Index.idx.xml"), xml_declaration=True, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("skip", "images", "files"), [(set(), 8, 64), ({(1, 2)}, 6, 48), ({(2, 1, 1)}, 8, 56)],
                         ids=["full", "a-well-missing", "a-field-missing"])
def test_a_larger_plate_equals_the_live_bioformats_read(tmp_path: Path, skip: set[tuple[int, ...]], images: int,
                                                        files: int) -> None:
    folder = _plate_from_the_corpus_index(tmp_path / "images", skip)
    [spec], rest = harmony.detect(_listing(folder))
    assert rest == []
    result = harmony.read(spec)
    ours = ome.key_fields(result.omexml)
    theirs = ome.key_fields(engines.get("bioformats").extract(spec.master))
    assert ours["image_count"] == images and ours["images"][0]["pixels"]["size_z"] == 2
    assert ours == theirs
    assert _check_places_against_names(result) == files


HOSTILE = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE x [ <!ENTITY secret SYSTEM "file:///etc/hostname"> ]>
<EvaluationInputData xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5"><User>&secret;</User></EvaluationInputData>
"""


def test_a_hostile_index_is_refused_with_a_clear_error_never_expanded(tmp_path: Path) -> None:
    index = tmp_path / "Index.idx.xml"
    index.write_text(HOSTILE)
    tiff = tmp_path / "r01c01f01p01-ch1sk1fk1fl1.tiff"
    tifffile.imwrite(tiff, np.zeros((4, 4), np.uint16), metadata=None)
    [spec], rest = harmony.detect([str(index), str(tiff)])
    assert spec.images == () and rest == [str(tiff)]
    with pytest.raises(VendorFileError, match="DTD or entities") as err:
        harmony.read(spec)
    assert str(index) in str(err.value)


def test_detect_on_a_10000_file_listing(tmp_path: Path) -> None:
    """O(N): 100 plate folders of 99 TIFFs and an index each (only the indexes are read)."""
    listing: list[str] = []
    for plate in range(100):
        folder = tmp_path / f"p{plate}"
        folder.mkdir()
        names = [f"r01c01f{f:02d}p01-ch1sk1fk1fl1.tiff" for f in range(1, 100)]
        entries = "".join(f"<Image Version='1'><URL>{n}</URL><Row>1</Row><Col>1</Col><FieldID>{i + 1}</FieldID>"
                          f"<PlaneID>1</PlaneID><TimepointID>0</TimepointID><ChannelID>1</ChannelID></Image>"
                          for i, n in enumerate(names))
        (folder / "Index.idx.xml").write_text(
            f"<EvaluationInputData xmlns='http://www.perkinelmer.com/PEHH/HarmonyV5'><Images>{entries}"
            "</Images></EvaluationInputData>")
        listing += [str(folder / "Index.idx.xml"), *(str(folder / n) for n in names)]
    listing.append(str(tmp_path / "stray.txt"))
    specs, rest = harmony.detect(listing[::-1])
    assert len(specs) == 100 and all(len(s.images) == 99 for s in specs)
    assert rest == [str(tmp_path / "stray.txt")]
