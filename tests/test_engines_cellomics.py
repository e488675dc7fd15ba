"""The cellomics engine against Bio-Formats 7.3.1: the corpus C01 and renamed/synthetic copies checked live.

``iamac01file.c01`` (a name outside Cellomics' pattern: a plate with no name, well A01, field 0) is claimed
and gives the reference's whole document. Copies renamed to the pattern, alone in a folder or beside a
file of another plate, and synthetic headers (uint8 with 3 planes, uint32, 12 bits, no pixel size) were
each read once by live Bio-Formats 7.3.1 (showinf -omexml-only …, grouping on); the digest of its
normalised document is pinned with the readable fields. A sibling of the same plate (which Bio-Formats
groups into one plate of wells/fields/channels) is declined; names Bio-Formats fails on and streams it
refuses raise ExtractionError.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.engines.cellomics import CLAIM, CellomicsEngine, read_c01
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate

from ._corpus import corpus_files
from ._engines import damaged_copy_is_contained, reads_as_the_reference

REL = "cellomics-c01/iamac01file.c01"


def _digest(xml: str) -> str:
    return hashlib.sha256(normalise(xml).encode()).hexdigest()[:16]


def _copy(corpus: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus / REL, folder / name)
    return folder / name


def _synthetic(path: Path, x: int, y: int, planes: int, bits: int, ppm: tuple[int, int], extra: int = 0,
               trailing: bytes = b"") -> Path:
    header = struct.pack("<iiihhiiiiii", 40, x, y, planes, bits, 0, 0, ppm[0], ppm[1], 0, 0) + bytes(12)
    body = header + bytes(x * y * planes * (bits // 8) + extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x10" + zlib.compress(body) + trailing)
    return path


def test_the_corpus_c01_files_are_all_accounted_for(corpus: Path) -> None:
    assert [p for p in corpus_files(corpus) if p.startswith("cellomics-c01/")] == [REL]


def test_the_corpus_file_is_claimed_and_equals_the_reference(corpus: Path, reference: Path) -> None:
    xml = reads_as_the_reference(CellomicsEngine(), corpus, reference, REL, CLAIM)
    fields = key_fields(xml)
    assert fields["images"][0]["name"] == "Well A01, Field #00"
    assert fields["images"][0]["pixels"]["physical_size_x"] == [1.2900013287013685, "µm"]
    assert fields["plates"] == [{"name": None, "wells": [{"row": 0, "column": 0, "samples": ["Image:0"]}]}]


def test_extract_without_claim_reads_the_file_itself(corpus: Path) -> None:
    assert key_fields(CellomicsEngine().extract(str(corpus / REL)))["images"][0]["pixels"]["size_x"] == 512


def test_an_unmatched_name_is_never_grouped(corpus: Path, tmp_path: Path) -> None:
    """No plate name: Bio-Formats does not list the folder, so siblings change nothing."""
    path = _copy(corpus, tmp_path, "iamac01file.c01")
    _copy(corpus, tmp_path, "iamac01file_A01f00d1.c01")
    (tmp_path / "iamac01file.mdb").write_bytes(b"x")
    assert CellomicsEngine().claim(str(path), read_head(path)) == CLAIM


#: checked live once (grouping on): name -> (other files in its folder, digest of Bio-Formats' normalised
#: document, plate name, well row, well column, image name)
RENAMED = {
    "PLATE1_B03f02d0.c01": ((), "21dd1c8bf5b6c8dc", "PLATE1", 1, 2, "Well B03, Field #02"),
    "PLATE1_b03f102o2.c01": ((), "8e1430d7437cc959", "PLATE1", 1, 2, "Well B03, Field #102"),
    "a_b_P2_H12f00d3.c01": ((), "7c8d9c2264228718", "a_b_P2", 7, 11, "Well H12, Field #00"),
    "OTHER_B03f02d1.c01": (("PLATE1_B03f02d0.c01",), "9df2826efaa4f15c", "OTHER", 1, 2, "Well B03, Field #02"),
}


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_renamed_copies_give_the_document_live_bioformats_gave(corpus: Path, tmp_path: Path, name: str) -> None:
    others, digest, plate, row, column, image = RENAMED[name]
    path = _copy(corpus, tmp_path, name)
    for other in others:
        _copy(corpus, tmp_path, other)
    engine = CellomicsEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    fields = key_fields(xml)
    assert fields["plates"] == [{"name": plate, "wells": [{"row": row, "column": column, "samples": ["Image:0"]}]}]
    assert fields["images"][0]["name"] == image
    assert _digest(xml) == digest
    assert validate(xml, remember=False) == (True, None)


#: checked live once: synthetic headers -> (digest, type, significant bits, sizes, physical X, Y)
SYNTHETIC = {
    "syn8.c01": ((40, 30, 3, 8, (2000000, 1000000)), "c6cdad5fbda0e438", "uint8", 8, (40, 30, 3),
                 [0.5, "µm"], [1.0, "µm"]),
    "syn32.c01": ((7, 5, 1, 32, (3, 3)), "168bc8ab4253795f", "uint32", 32, (7, 5, 1),
                  [333333.3333333333, "µm"], [333333.3333333333, "µm"]),
    "syn12.c01": ((7, 5, 1, 12, (3, 3)), "c42ea5e7b8a35b96", "uint8", 8, (7, 5, 1),
                  [333333.3333333333, "µm"], [333333.3333333333, "µm"]),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_headers_give_the_document_live_bioformats_gave(tmp_path: Path, name: str) -> None:
    (x, y, planes, bits, ppm), digest, pixel_type, significant, sizes, phys_x, phys_y = SYNTHETIC[name]
    path = _synthetic(tmp_path / name, x, y, planes, bits, ppm)
    engine = CellomicsEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    pixels = key_fields(xml)["images"][0]["pixels"]
    assert (pixels["type"], pixels["significant_bits"]) == (pixel_type, significant)
    assert (pixels["size_x"], pixels["size_y"], pixels["size_z"]) == sizes
    assert (pixels["physical_size_x"], pixels["physical_size_y"]) == (phys_x, phys_y)
    assert len(key_fields(xml)["images"][0]["planes"]) == planes
    assert _digest(xml) == digest
    assert validate(xml, remember=False) == (True, None)


def test_no_pixel_size_when_zero(tmp_path: Path) -> None:
    path = _synthetic(tmp_path / "zero.c01", 4, 4, 1, 16, (0, 0))
    pixels = key_fields(CellomicsEngine().extract(str(path)))["images"][0]["pixels"]
    assert pixels["physical_size_x"] is None and pixels["physical_size_y"] is None


@pytest.mark.parametrize(("sibling", "reason"), [
    ("PLATE1_B03f02d1.c01", "sibling of its plate"),  # another channel: Bio-Formats makes SizeC 2 (live)
    ("PLATE1_C04f00d0.c01", "sibling of its plate"),  # another well: a 96-well plate
    ("PLATE1.mdb", "sibling of its plate"),  # channel names, colours, exposures
    ("PLATE1.txt", "sibling of its plate"),
])
def test_a_sibling_of_the_same_plate_is_declined(corpus: Path, tmp_path: Path, sibling: str, reason: str) -> None:
    path = _copy(corpus, tmp_path, "PLATE1_B03f02d0.c01")
    (tmp_path / sibling).write_bytes(b"x")
    engine = CellomicsEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


@pytest.mark.parametrize(("name", "reason"), [
    ("PLATE1_B03f02.c01", "without a channel"),  # live: IllegalArgumentException "Invalid series: 0"
    ("plate_A01.c01", "without a channel"),  # live: the same
    ("PLATE1_A00f00d0.c01", "column 00"),  # live: "-1 must be neither null nor strictly negative"
    ("PLATE1_A01f00d0.C01x", "not named .c01"),
    ("Plätte_A01f00d0.c01", "not printable ASCII"),
])
def test_names_bioformats_fails_on_or_not_checked_are_refused(corpus: Path, tmp_path: Path, name: str,
                                                             reason: str) -> None:
    path = _copy(corpus, tmp_path, name)
    engine = CellomicsEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


def test_streams_bioformats_refuses_or_not_checked_are_refused(corpus: Path, tmp_path: Path) -> None:
    engine = CellomicsEngine()
    cases = [
        # live: showinf exit 1 ("Compressed pixel data is not yet supported")
        (_synthetic(tmp_path / "short.c01", 40, 30, 2, 16, (1000, 1000), extra=-100), "short of"),
        (_synthetic(tmp_path / "negative.c01", 40, 30, 1, 16, (0, -5)), "negative pixels per metre"),
        (_synthetic(tmp_path / "bits24.c01", 4, 4, 1, 24, (1, 1)), "24 bits"),
        (_synthetic(tmp_path / "planes.c01", 4, 4, 0, 16, (1, 1)), "not positive"),
        (_synthetic(tmp_path / "trailing.c01", 4, 4, 1, 16, (1, 1), trailing=b"junk"), "after the zlib stream"),
    ]
    data = (corpus / REL).read_bytes()
    half = tmp_path / "half.c01"
    half.write_bytes(data[:len(data) // 2])  # live: showinf exit 1
    cases.append((half, "ends early"))
    broken = tmp_path / "broken.c01"
    broken.write_bytes(data[:4] + data[4:6] + b"\xff" * 64 + data[70:])
    cases.append((broken, "broken"))
    for path, reason in cases:
        assert engine.claim(str(path), read_head(path)) == 0, path.name
        with pytest.raises(ExtractionError, match=reason):
            engine.extract(str(path))
    other = tmp_path / "other.c01"
    other.write_bytes(b"II*\x00" + data[4:])
    assert engine.claim(str(other), read_head(other)) == 0
    with pytest.raises(ExtractionError, match="first int is not 16"):
        engine.extract(str(other))


def test_damaged_files_never_raise_anything_else(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    data = (corpus / REL).read_bytes()
    engine = CellomicsEngine()
    for i in range(60):
        raw = bytearray(data[:rng.choice([3, 40, 2000, len(data)])])
        for _ in range(4):
            raw[rng.randrange(0, len(raw))] = rng.randrange(256)
        damaged_copy_is_contained(engine, tmp_path / f"d{i}.c01", bytes(raw))


def test_read_c01_reports_the_header(corpus: Path) -> None:
    image = read_c01(str(corpus / REL))
    assert image.size == (512, 512, 1) and image.pixel_type == "uint16" and image.plate is None
