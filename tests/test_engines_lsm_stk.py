"""The Zeiss LSM (``tifffile-lsm``) and MetaMorph (``tifffile-stk``) engines against the corpus reference and
live Bio-Formats.

Each corpus file must give the reference's key fields. With one sample per format, the evidence is widened
with byte-edited copies (scan type, voxel sizes, stage positions, date, objective, exposure, calibration,
file name) checked against the live Bio-Formats engine (``slow``: one JVM). Variants outside the proven
kind must be declined, and a damaged file must give a claim of 0 or an ``ExtractionError``.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import tifffile

from metaextract.engines import ExtractionError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.tiff.zeiss_mm import (
    CLAIM,
    LSM,
    STK,
    LsmEngine,
    StkEngine,
    description_exposure,
    microsoft_date,
    parse_objective,
    physical_size,
)
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate

LSM_FILE = "zeiss-lsm/test.lsm"
STK_FILE = "metamorph-stk/MetamorphImage.tif"


def _claim(engine: LsmEngine | StkEngine, path: Path) -> int:
    return engine.claim(str(path), read_head(str(path)))


def _copy(corpus: Path, rel: str, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(corpus / rel, target)
    target.chmod(0o644)
    return target


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _cz_offset(path: Path) -> int:
    with tifffile.TiffFile(path) as tf:
        return int(tf.pages.first.tags[34412].valueoffset)


def _uic1_value(path: Path, ident: int) -> int:
    """Where UIC1 entry ``ident`` points (its value offset)."""
    with tifffile.TiffFile(path) as tf:
        tag = tf.pages.first.tags[33628]
        start, count = tag.valueoffset, tag.count
    data = path.read_bytes()
    for i in range(count):
        code, value = struct.unpack_from("<iI", data, start + 8 * i)
        if code == ident:
            return int(value)
    raise AssertionError(f"UIC1 entry {ident} not found")


@pytest.mark.parametrize(("rel", "engine"), [(LSM_FILE, LsmEngine), (STK_FILE, StkEngine)])
def test_corpus_file_agrees_with_the_reference(rel: str, engine: Callable[[], LsmEngine | StkEngine],
                                               corpus: Path, reference: Path) -> None:
    eng = engine()
    path = corpus / rel
    assert _claim(eng, path) == CLAIM
    ours = eng.extract(str(path))
    expected = (reference / f"{rel}.xml").read_text(encoding="utf-8")
    assert key_fields(ours) == key_fields(expected)
    assert validate(ours, remember=False) == (True, None)
    assert normalise(ours) == normalise(expected)  # Bio-Formats' whole document
    # extract without a claim first gives the same document
    assert engine().extract(str(path)) == ours


def test_each_engine_declines_the_others_file_and_plain_tiffs(corpus: Path, tmp_path: Path) -> None:
    assert _claim(LsmEngine(), corpus / STK_FILE) == 0
    assert _claim(StkEngine(), corpus / LSM_FILE) == 0
    assert _claim(StkEngine(), corpus / "imagej-tiff" / "HeLa00.tif") == 0
    renamed = _copy(corpus, LSM_FILE, tmp_path, "test.tif")
    assert _claim(LsmEngine(), renamed) == 0  # Bio-Formats' LSM reader is chosen by the .lsm suffix


def _lsm_variant(corpus: Path, folder: Path) -> Path:
    """The corpus LSM with another scan type, voxel sizes, origin, stage position, date and objective."""
    path = _copy(corpus, LSM_FILE, folder, "my.sample.lsm")
    cz = _cz_offset(path)
    _patch(path, cz + 40, struct.pack("<ddd", 2.5e-7, 1e-12, 1.5e-6))  # voxel X, Y (tiny), Z
    _patch(path, cz + 64, struct.pack("<ddd", 2e-6, -3e-6, 0.0))  # origin
    _patch(path, cz + 88, struct.pack("<h", 3))  # time series x-y: XYTCZ
    data = path.read_bytes()
    positions = struct.unpack_from("<i", data, cz + 376)[0]
    _patch(path, positions + 4, struct.pack("<ddd", 1.25e-3, 4e-4, -2e-5))
    at = data.index(struct.pack("<Ii", 0x10000004, 2))  # the recording's objective text
    assert data[at + 12:at + 49] == b"EC Plan-Neofluar 40x/1.30 Oil DIC M27"
    _patch(path, at + 12, b"EC Plan-Neofluar 63x/1.40 Oil DIC M27")
    start = data.index(struct.pack("<Iii", 0x10000036, 5, 8)) + 12  # the recording's Sample 0Time
    assert struct.unpack_from("<d", data, start)[0] == pytest.approx(41732.6559837963)
    _patch(path, start, struct.pack("<d", 40000.123456789))
    return path


def test_lsm_variant_fields(corpus: Path, tmp_path: Path) -> None:
    path = _lsm_variant(corpus, tmp_path)
    engine = LsmEngine()
    assert _claim(engine, path) == CLAIM
    fields = key_fields(engine.extract(str(path)))
    image = fields["images"][0]
    assert image["name"] == "my.sample"
    assert image["pixels"]["dimension_order"] == "XYTCZ"
    assert image["pixels"]["physical_size_y"] is None  # exactly Bio-Formats' epsilon: neither walked nor kept
    assert image["pixels"]["physical_size_z"] == [1.5, "µm"]
    assert fields["objectives"] == [{"nominal_magnification": 63.0, "lens_na": 1.4}]


@pytest.mark.slow
def test_lsm_variant_agrees_with_live_bioformats(corpus: Path, tmp_path: Path) -> None:
    path = _lsm_variant(corpus, tmp_path)
    ours = LsmEngine().extract(str(path))
    theirs = BioFormatsEngine().extract(str(path))
    assert key_fields(ours) == key_fields(theirs)


LSM_DECLINED: dict[str, Callable[[Path, int], None]] = {
    "z-stack": lambda p, cz: _patch(p, cz + 16, struct.pack("<i", 2)),
    "time-series": lambda p, cz: _patch(p, cz + 24, struct.pack("<i", 3)),
    "positions": lambda p, cz: _patch(p, cz + 264, struct.pack("<ii", 2, 1)),
    "rotations": lambda p, cz: _patch(p, cz + 272, struct.pack("<i", 2)),
    "not-lsm-magic": lambda p, cz: _patch(p, cz, struct.pack("<I", 0x12345678)),
    "no-scan-information": lambda p, cz: _patch(p, cz + 124, struct.pack("<i", 0)),
}


@pytest.mark.parametrize("case", sorted(LSM_DECLINED))
def test_lsm_outside_the_proven_kind_is_declined(case: str, corpus: Path, tmp_path: Path) -> None:
    path = _copy(corpus, LSM_FILE, tmp_path, "x.lsm")
    LSM_DECLINED[case](path, _cz_offset(path))
    assert _claim(LsmEngine(), path) == 0
    with pytest.raises(ExtractionError):
        LsmEngine().extract(str(path))


def test_lsm_next_to_an_mdb_is_declined(corpus: Path, tmp_path: Path) -> None:
    path = _copy(corpus, LSM_FILE, tmp_path / "set", "a.lsm")
    assert _claim(LsmEngine(), path) == CLAIM
    (tmp_path / "set" / "set.mdb").write_bytes(b"")
    assert _claim(LsmEngine(), path) == 0  # a fresh engine: folder listings are cached


def _stk_variant(corpus: Path, folder: Path, name: str = "variant.stk") -> Path:
    """The corpus MetaMorph TIFF with another calibration, a negative stage position and another exposure."""
    path = _copy(corpus, STK_FILE, folder, name)
    _patch(path, _uic1_value(path, 4), struct.pack("<ii", 1301, 1000))  # XCalibration 1.301
    _patch(path, _uic1_value(path, 28), struct.pack("<iiii", -12345, 100, 77, 4))  # stage -123.45, 19.25
    data = path.read_bytes()
    _patch(path, data.index(b"Exposure: 300 ms"), b"Exposure: 125 ms")
    return path


def test_stk_variant_fields(corpus: Path, tmp_path: Path) -> None:
    path = _stk_variant(corpus, tmp_path)
    engine = StkEngine()
    assert _claim(engine, path) == CLAIM
    fields = key_fields(engine.extract(str(path)))
    pixels, plane = fields["images"][0]["pixels"], fields["images"][0]["planes"][0]
    assert pixels["physical_size_x"] == [1.301, "µm"]
    assert plane["position_x"] == [-123.45, "reference frame"] and plane["exposure_time"] == [0.125, "s"]


@pytest.mark.slow
def test_stk_variant_agrees_with_live_bioformats(corpus: Path, tmp_path: Path) -> None:
    path = _stk_variant(corpus, tmp_path)
    ours = StkEngine().extract(str(path))
    theirs = BioFormatsEngine().extract(str(path))
    assert key_fields(ours) == key_fields(theirs)
    assert normalise(ours) == normalise(theirs)


def test_stk_outside_the_proven_kind_is_declined(corpus: Path, tmp_path: Path) -> None:
    nd = _copy(corpus, STK_FILE, tmp_path / "nd", "MetamorphImage.tif")
    assert _claim(StkEngine(), nd) == CLAIM
    (tmp_path / "nd" / "MetamorphImage.nd").write_text('"NDInfoFile", Version 1.0\n')
    assert _claim(StkEngine(), nd) == 0
    units = _copy(corpus, STK_FILE, tmp_path / "mm", "a.tif")
    _patch(units, _uic1_value(units, 6) + 4, b"\xb5m")  # a unit that is not UTF-8 (any other is read as µm)
    assert _claim(StkEngine(), units) == 0
    bits = _copy(corpus, STK_FILE, tmp_path / "bits", "a.tif")
    _patch(bits, bits.read_bytes().index(b"Subtract: Off"), b"Bit Depth: 12")
    assert _claim(StkEngine(), bits) == 0
    software = _copy(corpus, STK_FILE, tmp_path / "sw", "a.tif")
    _patch(software, software.read_bytes().index(b"MetaMorph 3.1"), b"Other App 3.1")
    assert _claim(StkEngine(), software) == 0
    with pytest.raises(ExtractionError):
        StkEngine().extract(str(software))


@pytest.mark.parametrize("rel", [LSM_FILE, STK_FILE])
@pytest.mark.parametrize("keep", [0.02, 0.5, 0.99])
def test_truncated_file_is_declined_or_an_extraction_error(rel: str, keep: float, corpus: Path,
                                                          tmp_path: Path) -> None:
    data = (corpus / rel).read_bytes()
    path = tmp_path / Path(rel).name
    path.write_bytes(data[: int(len(data) * keep)])
    for engine in (LsmEngine(), StkEngine()):
        claim = _claim(engine, path)
        if claim == 0:
            with pytest.raises(ExtractionError):
                engine.extract(str(path))
        else:
            assert validate(engine.extract(str(path)), remember=False)[0]


@pytest.mark.parametrize("rel", [LSM_FILE, STK_FILE])
def test_corrupt_bytes_never_raise_another_exception(rel: str, corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / rel).read_bytes())
    path = tmp_path / Path(rel).name
    for seed in range(12):
        broken = bytearray(data)
        step = 7919 * (seed + 1)
        for at in range(8 + seed, len(broken), step):
            broken[at] ^= 0x5A
        path.write_bytes(bytes(broken))
        for engine in (LsmEngine(), StkEngine()):
            claim = _claim(engine, path)
            try:
                xml = engine.extract(str(path))
            except ExtractionError:
                continue
            assert claim in (0, CLAIM) and validate(xml, remember=False)[0]
    (tmp_path / "junk.lsm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert _claim(LsmEngine(), tmp_path / "junk.lsm") == 0
    with pytest.raises(ExtractionError):
        LsmEngine().extract(str(tmp_path / "junk.lsm"))


def test_helpers() -> None:
    assert physical_size(0.6918881841365326) == (0.6918881841365326, "µm")
    assert physical_size(1e-13) == (9.999999999999999e-05, "fm")  # the corpus LSM's Z (Bio-Formats' walk)
    assert physical_size(0.0) is None and physical_size(-1.0) is None and physical_size(1e-6) is None
    assert physical_size(5e-7) == (0.0005, "nm")
    assert parse_objective("EC Plan-Neofluar 40x/1.30 Oil DIC M27") == (40.0, 1.3)
    assert parse_objective("Plan 40/1.3 Oil") == (4.0, 1.3)  # Bio-Formats drops the character before "/"
    assert parse_objective("no objective") == (None, None)
    assert microsoft_date(41732.6559837963) == "2014-04-03T20:44:37"  # the reference's date
    assert microsoft_date(0.0) is None
    assert description_exposure("a\r\nExposure: 300 ms\r\nGain: 2") == 0.3
    assert description_exposure("Exposure: 1,5 ms") == 0.0015
    assert description_exposure("no exposure") is None


def test_engine_names_and_versions() -> None:
    lsm, stk = LsmEngine(), StkEngine()
    assert (lsm.name, stk.name) == (LSM, STK)
    assert lsm.version() == stk.version() == tifffile.__version__
