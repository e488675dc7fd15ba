"""The spe and sif engines against Bio-Formats 7.3.1's reference for the corpus SPE and SIF files.

All three corpus files (one SPE stack, two SIF files) are claimed and give Bio-Formats' document, not
only its key fields. Two rules the corpus does not exercise were checked once against live Bio-Formats
7.3.1 on crafted variants and are pinned here without a JVM:

* SPE ROIs (float datatype, two ROIs): one ``ROI`` each with a Label and a Rectangle, whole document equal;
* SIF with C = 2, Z = 2, T = 3: channels and planes in XYCZT order, DeltaT 0.0 on every plane.

Kinds whose mapping is not checked are declined (claim 0), and ``extract`` on them raises ExtractionError.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.camera import CLAIM, SIFEngine, SPEEngine
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, parse, validate

from ._corpus import corpus_files

CLAIMED = {"spe/spestack_test.spe": SPEEngine, "andor-sif/image.sif": SIFEngine, "andor-sif/raman1.sif": SIFEngine}
ZERO_S = [0.0, "s"]
NS = {"o": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}
SIF_PIXEL = b"Pixel number65538 1 512 512 1 1 1 262144 262144\n65538 1 512 512 1 1 1 0\n"


def _spe(corpus: Path, tmp_path: Path, name: str, **fields: tuple[str, int, int]) -> Path:
    data = bytearray((corpus / "spe" / "spestack_test.spe").read_bytes())
    for fmt, at, value in fields.values():
        struct.pack_into(fmt, data, at, value)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def _sif(corpus: Path, tmp_path: Path, name: str, old: bytes, new: bytes) -> Path:
    data = (corpus / "andor-sif" / "image.sif").read_bytes()
    assert old in data  # image.sif holds a second (background) section: change only the first
    path = tmp_path / name
    path.write_bytes(data.replace(old, new, 1))
    return path


def _declined(engine: SPEEngine | SIFEngine, path: Path) -> str:
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError) as info:
        engine.extract(str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_corpus_spe_and_sif_files_are_all_accounted_for(corpus: Path) -> None:
    listed = sorted(p for p in corpus_files(corpus) if p.startswith(("spe/", "andor-sif/")))
    assert listed == sorted(CLAIMED)


@pytest.mark.parametrize("rel", sorted(CLAIMED))
def test_claimed_file_gives_the_reference_document(rel: str, corpus: Path, reference: Path) -> None:
    path = corpus / rel
    engine = CLAIMED[rel]()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    expected = (reference / f"{rel}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)
    assert normalise(xml) == normalise(expected)
    assert validate(xml) == (True, None)


@pytest.mark.parametrize("rel", sorted(CLAIMED))
def test_extract_without_a_prior_claim_reads_the_file_again(rel: str, corpus: Path, reference: Path) -> None:
    xml = CLAIMED[rel]().extract(str(corpus / rel))
    assert key_fields(xml) == key_fields((reference / f"{rel}.xml").read_text(encoding="utf-8"))


def test_sif_area_line_overrides_the_pixel_number_sizes(corpus: Path) -> None:
    # raman1: "Pixel number… 1 1024 1024 1 1 …" then "65538 1 600 1024 400 201 1 0" -> 1224 x 201
    pixels = parse(SIFEngine().extract(str(corpus / "andor-sif" / "raman1.sif"))).find("o:Image/o:Pixels", NS)
    assert pixels is not None
    assert (pixels.get("SizeX"), pixels.get("SizeY"), pixels.get("Type")) == ("1224", "201", "float")


def test_each_engine_claims_only_its_own_kind(corpus: Path) -> None:
    spe, sif = corpus / "spe" / "spestack_test.spe", corpus / "andor-sif" / "image.sif"
    assert SIFEngine().claim(str(spe), read_head(spe)) == 0
    assert SPEEngine().claim(str(sif), read_head(sif)) == 0
    with pytest.raises(UnsupportedFormatError):
        SIFEngine().extract(str(spe))


# -- rules checked once against live Bio-Formats --------------------------------------------------------
def test_spe_rois_and_float_datatype(corpus: Path, tmp_path: Path) -> None:
    path = _spe(corpus, tmp_path, "roi.spe", dt=("<H", 108, 0), n=("<H", 1510, 2),
                r1=("<Q", 1512, 0), r2=("<Q", 1524, 0))
    data = bytearray(path.read_bytes())
    struct.pack_into("<6H", data, 1512, 1, 100, 2, 3, 90, 1)
    struct.pack_into("<6H", data, 1524, 5, 20, 1, 6, 30, 4)
    path.write_bytes(bytes(data))
    engine = SPEEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    assert validate(xml) == (True, None)
    root = parse(xml)
    pixels = root.find("o:Image/o:Pixels", NS)
    assert pixels is not None and (pixels.get("Type"), pixels.get("SignificantBits")) == ("float", "32")
    assert [r.get("ID") for r in root.findall("o:Image/o:ROIRef", NS)] == ["ROI:0", "ROI:1"]
    labels = [lab.get("Text") for lab in root.findall("o:ROI/o:Union/o:Label", NS)]
    assert labels == ["ROI 1, X-Binning = 2, Y-Binning = 1", "ROI 2, X-Binning = 1, Y-Binning = 4"]
    rect = root.find("o:ROI/o:Union/o:Rectangle", NS)
    assert rect is not None
    assert [rect.get(a) for a in ("X", "Y", "Width", "Height")] == ["1.0", "3.0", "99.0", "87.0"]


def test_sif_channels_and_planes_are_in_xyczt_order(corpus: Path, tmp_path: Path) -> None:
    path = _sif(corpus, tmp_path, "czt.sif", SIF_PIXEL,
                SIF_PIXEL.replace(b"65538 1 512 512 1 1 1 262144", b"65538 2 512 512 2 3 1 262144"))
    xml = SIFEngine().extract(str(path))
    assert validate(xml) == (True, None)
    fields = key_fields(xml)["images"][0]
    assert [fields["pixels"][f"size_{a}"] for a in "xyzct"] == [512, 512, 2, 2, 3]
    assert len(fields["channels"]) == 2
    planes = [(p["the_c"], p["the_z"], p["the_t"]) for p in fields["planes"]]
    assert planes == [(c, z, t) for t in range(3) for z in range(2) for c in range(2)]
    assert all(p["delta_t"] == ZERO_S for p in fields["planes"])


# -- declined kinds -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "reason"), [
    ({"dt": ("<H", 108, 5)}, "datatype 5"),
    ({"nf": ("<i", 1446, 0)}, "NumFrames 0"),
    ({"x": ("<H", 42, 0)}, "zero dimension"),
    ({"n": ("<H", 1510, 11)}, "11 ROIs"),
])
def test_spe_kinds_not_checked_are_declined(fields: dict[str, tuple[str, int, int]], reason: str, corpus: Path,
                                            tmp_path: Path) -> None:
    assert reason in _declined(SPEEngine(), _spe(corpus, tmp_path, "x.spe", **fields))


def test_spe_needs_its_suffix_and_a_whole_header(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "spe" / "spestack_test.spe").read_bytes()
    renamed = tmp_path / "stack.dat"
    renamed.write_bytes(data)
    assert SPEEngine().claim(str(renamed), read_head(renamed)) == 0
    short = tmp_path / "short.spe"
    short.write_bytes(data[:4099])
    assert "truncated SPE" in _declined(SPEEngine(), short)


@pytest.mark.parametrize(("old", "new", "reason"), [
    (SIF_PIXEL, SIF_PIXEL.replace(b" 1 0\n", b" x 0\n"), "not a plain integer"),
    (SIF_PIXEL, SIF_PIXEL.replace(b" 1 1 0\n", b"\n"), "fewer than"),
    (SIF_PIXEL, SIF_PIXEL.replace(b"65538 1 512 512 1 1 1 262144", b"65538 1 512 512 0 1 1 262144"), "below 1"),
    (b"Counts12\n", b"Counts12 Pixel number\n", "inside an earlier"),
    (SIF_PIXEL, SIF_PIXEL.replace(b"262144 262144", b"262144 \xe9"), "not plain ASCII"),
])
def test_sif_kinds_not_checked_are_declined(old: bytes, new: bytes, reason: str, corpus: Path,
                                            tmp_path: Path) -> None:
    assert reason in _declined(SIFEngine(), _sif(corpus, tmp_path, "x.sif", old, new))


def test_sif_needs_its_suffix_and_magic(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "andor-sif" / "image.sif").read_bytes()
    renamed = tmp_path / "image.dat"
    renamed.write_bytes(data)
    assert SIFEngine().claim(str(renamed), read_head(renamed)) == 0
    other = tmp_path / "other.sif"
    other.write_bytes(b"Andor Technology Other File\n" + data[36:])
    assert SIFEngine().claim(str(other), read_head(other)) == 0
    with pytest.raises(UnsupportedFormatError):
        SIFEngine().extract(str(other))


@pytest.mark.parametrize("rel", sorted(CLAIMED))
def test_truncated_files_give_one_line_errors_or_the_same_answer(rel: str, corpus: Path, tmp_path: Path) -> None:
    data = (corpus / rel).read_bytes()
    whole = CLAIMED[rel]().extract(str(corpus / rel))
    limit = min(len(data), 6000)
    for cut in sorted({0, 1, 16, 35, 36, 37, *range(50, limit, 97), limit - 1}):
        path = tmp_path / Path(rel).name
        path.write_bytes(data[:cut])
        engine = CLAIMED[rel]()
        claimed = engine.claim(str(path), read_head(path))
        try:
            xml = engine.extract(str(path))
        except ExtractionError as exc:
            assert claimed == 0 and "\n" not in str(exc)
        else:  # the header was whole: the pixels are not read, so the answer is the same
            assert claimed == CLAIM and xml == whole


def test_claim_and_extract_take_under_ten_ms(corpus: Path) -> None:
    for rel, factory in CLAIMED.items():
        path = corpus / rel
        head = read_head(path)
        engine = factory()
        start = time.perf_counter()
        for _ in range(20):
            assert engine.claim(str(path), head) == CLAIM
            engine.extract(str(path))
        assert (time.perf_counter() - start) / 20 < 0.010
