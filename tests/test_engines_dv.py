"""The dv engine against Bio-Formats 7.3.1's reference for the DeltaVision file of the corpus.

``toxo.dv`` (old header layout, 2 channels x 17 sections, no extended header: Bio-Formats reads the
per-plane floats from the first pixel bytes, and so does this engine) is claimed and gives Bio-Formats'
whole document. Kinds whose mapping is not checked (a companion .log, the new header layout, unknown lens
IDs, truncated files) are declined, and ``extract`` on them raises ExtractionError with the reason.
"""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.engines.dv import CLAIM, DvEngine, read_dv
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise
from metaextract.ome.writer import jfloat

from ._corpus import corpus_files
from ._engines import damaged_copy_is_contained, reads_as_the_reference

REL = "dv/toxo.dv"


def _variant(corpus: Path, tmp_path: Path, name: str, patch: dict[int, bytes] | None = None,
             cut: int | None = None) -> Path:
    data = bytearray((corpus / REL).read_bytes())
    for at, raw in (patch or {}).items():
        data[at:at + len(raw)] = raw
    path = tmp_path / name
    path.write_bytes(bytes(data[:cut] if cut is not None else data))
    return path


def test_the_corpus_dv_files_are_all_accounted_for(corpus: Path) -> None:
    assert [p for p in corpus_files(corpus) if p.startswith("dv/")] == [REL]


def test_toxo_is_claimed_and_equals_the_reference(corpus: Path, reference: Path) -> None:
    xml = reads_as_the_reference(DvEngine(), corpus, reference, REL, CLAIM)
    fields = key_fields(xml)["images"][0]
    assert fields["pixels"]["size_z"] == 17 and fields["pixels"]["size_c"] == 2
    assert fields["pixels"]["dimension_order"] == "XYZTC"
    assert [c["emission_wavelength"] for c in fields["channels"]] == [[525.0, "nm"], [632.0, "nm"]]
    assert key_fields(xml)["objectives"] == [{"nominal_magnification": 100.0, "lens_na": 1.35}]


def test_extract_without_claim_reads_the_file_itself(corpus: Path) -> None:
    assert key_fields(DvEngine().extract(str(corpus / REL)))["images"][0]["name"] == "toxo.dv"


def test_java_float_spelling() -> None:
    value = struct.unpack("<f", struct.pack("<f", 1.2122465e-38))[0]
    assert jfloat(value) == "1.2122465E-38"
    assert jfloat(struct.unpack("<f", struct.pack("<f", 0.1))[0]) == "0.1"
    assert jfloat(0.0) == "0.0"


def test_a_companion_log_is_declined(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "toxo.dv"
    shutil.copy(corpus / REL, path)
    (tmp_path / "toxo.dv.log").write_text("Objective: Olympus 60X/1.42, Plan Apo\n")
    engine = DvEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match="companion log"):
        engine.extract(str(path))


@pytest.mark.parametrize(("name", "patch", "reason"), [
    ("new.dv", {160: struct.pack("<h", 100)}, "new header layout"),
    ("lens.dv", {162: struct.pack("<h", 12345)}, "lens ID 12345"),
    ("complex.dv", {12: struct.pack("<i", 3)}, "pixel type 3"),
    ("planes.dv", {8: struct.pack("<i", 33)}, "not Z x 2 channels"),
])
def test_unchecked_kinds_are_declined(corpus: Path, tmp_path: Path, name: str, patch: dict[int, bytes],
                                      reason: str) -> None:
    path = _variant(corpus, tmp_path, name, patch)
    engine = DvEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


def test_truncated_files_are_declined_or_refused(corpus: Path, tmp_path: Path) -> None:
    engine = DvEngine()
    short = _variant(corpus, tmp_path, "short.dv", cut=1024 + 128 * 128 * 2 * 20)
    assert engine.claim(str(short), read_head(short)) == 0
    with pytest.raises(ExtractionError, match="truncated"):
        engine.extract(str(short))
    header = _variant(corpus, tmp_path, "header.dv", cut=500)
    assert engine.claim(str(header), read_head(header)) == 0
    with pytest.raises(ExtractionError, match="truncated DV"):
        engine.extract(str(header))


def test_other_names_and_formats_are_not_claimed(corpus: Path, tmp_path: Path) -> None:
    engine = DvEngine()
    renamed = tmp_path / "toxo.r3d"
    shutil.copy(corpus / REL, renamed)
    assert engine.claim(str(renamed), read_head(renamed)) == 0
    tiff = tmp_path / "x.dv"
    tiff.write_bytes(b"II*\x00" + bytes(2000))
    assert engine.claim(str(tiff), read_head(tiff)) == 0
    with pytest.raises(ExtractionError):
        engine.extract(str(tiff))


def test_damaged_headers_never_raise_anything_else(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    data = (corpus / REL).read_bytes()
    engine = DvEngine()
    for i in range(120):
        raw = bytearray(data[:rng.choice([300, 1024, 4096, 40000, len(data)])])
        for _ in range(8):
            at = rng.randrange(0, 300)
            raw[at] = rng.randrange(256)
        raw[96:98] = data[96:98]
        damaged_copy_is_contained(engine, tmp_path / f"d{i}.dv", bytes(raw))


@pytest.mark.parametrize(("title", "description"), [
    (b"", None), (b"Decon: 10 cycles", "Decon: 10 cycles"), (b"caf\xe9", "caf\u00e9"),
    (b"\xc3\xa9t\xc3\xa9", "\u00c3\u00a9t\u00c3\u00a9"), (b" a b\n", "a b"), (b"x\x00y\rz", "xyz"),
    (b"\x01\x02", ""), (b"  ", "  "), (b"\x85 \xa0nbsp\x7f", "\u00a0nbsp"),
])
def test_the_first_title_reads_as_bioformats_reads_it(corpus: Path, tmp_path: Path, title: bytes,
                                                        description: str | None) -> None:
    # as live Bio-Formats 7.3.1 gave it for these titles (tests/test_differential_dv.py draws them too)
    path = _variant(corpus, tmp_path, "title.dv", {224: title.ljust(80, b"\x00")})
    assert read_dv(str(path)).description == description


def test_read_dv_reports_the_header(corpus: Path) -> None:
    image = read_dv(str(corpus / REL))
    assert image.size == (128, 128, 17, 2, 1)
    assert image.big_endian is False and image.pixel_type == "uint16" and image.bits == 16
    assert len(image.planes) == 34


@pytest.mark.slow
def test_an_extended_header_agrees_with_live_bioformats(corpus: Path, tmp_path: Path) -> None:
    """toxo.dv has no extended header; a copy given one (per-plane times, stage positions, exposure and
    wavelengths where DeltaVision writes them) must read as the live Bio-Formats engine reads it."""
    from metaextract import engines

    src = (corpus / REL).read_bytes()
    e = "<" if struct.unpack_from("<H", src, 96)[0] == 0xC0A0 else ">"
    count = struct.unpack_from(e + "i", src, 8)[0]
    old_ext = struct.unpack_from(e + "i", src, 92)[0]
    ints, floats = 8, 32
    block = b""
    for i in range(count):
        values = [0.0] * floats
        values[2], values[3], values[4], values[5] = 0.5 * i, 100.0 + i, -200.5, 12.25 + 0.1 * i
        values[9], values[11], values[12] = 0.05, 488.0, 525.0
        block += struct.pack(e + f"{ints}i", *([0] * ints)) + struct.pack(e + f"{floats}f", *values)
    header = bytearray(src[:1024])
    struct.pack_into(e + "i", header, 92, len(block))
    struct.pack_into(e + "hh", header, 128, ints, floats)
    path = tmp_path / "extended.dv"
    path.write_bytes(bytes(header) + block + src[1024 + old_ext:])
    engine = DvEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    ours, theirs = engine.extract(str(path)), engines.get("bioformats").extract(str(path))
    assert key_fields(ours) == key_fields(theirs)
    assert normalise(ours) == normalise(theirs)
    planes = key_fields(ours)["images"][0]["planes"]
    assert {p["position_x"][0] for p in planes} != {planes[0]["position_x"][0]}  # real per-plane values
