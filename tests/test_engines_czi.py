"""The czi engine against Bio-Formats 7.3.1's reference for every CZI file of the corpus.

Every file it claims must give Bio-Formats' key fields (image count and names, dates, pixels, channels,
planes with positions, DeltaT and exposure, plates, objectives). The files it declines are asserted with
the reason, and each reason is a difference the engine does not reproduce:

* ``S3_1Pos_2Mosaic_T1_Z1_CH1``: three scenes (S index > 0); Bio-Formats makes three images.
* ``LSM880_AiryScan``: Airyscan phases (H index > 0), which Bio-Formats folds into C/T its own way.

Claimed since the pyramid and plate kinds: ``1_tileregion`` and ``WellD6_S1`` (a half-size pyramid level,
flattened into a second image; WellD6 also in well D6), ``CD_s_1_t_3_c_2_z_5`` (well I12 from the regions'
``TemplateShapeId``), ``nuc_small`` (well A1 from its scene's shape) and
``CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD`` (same carrier as CD_s_1 but an empty ``<S/>``: no Plate).

The engine writes the key fields, not Bio-Formats' whole document (no Experimenter, detectors, filter
sets or stage labels), so only key-field equality is required (see ``WHOLE_DOCUMENT`` in
tests/test_conformance.py).
"""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.czi import CLAIM, CziEngine, read_document
from metaextract.ome import key_fields, validate

CLAIMED = ("100x100.czi", "Al2O3_SE_020_sp.czi", "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi", "DAPI_GFP.czi",
           "FOV7_HV110_P0500510000.czi", "RGB-8bit.czi", "mosaic_test.czi", "s_1_t_1_c_1_z_1.czi", "tiles.czi",
           "tiles_z.czi", "1_tileregion.czi", "WellD6_S1.czi", "CD_s_1_t_3_c_2_z_5.czi", "nuc_small.czi",
           "CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi")
DECLINED = {
    "S3_1Pos_2Mosaic_T1_Z1_CH1.czi": "scenes",
    "LSM880_AiryScan.czi": "phases",
}


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4096)


def test_the_corpus_czi_files_are_all_accounted_for(corpus: Path) -> None:
    assert sorted(p.name for p in (corpus / "czi").glob("*.czi")) == sorted((*CLAIMED, *DECLINED))


@pytest.mark.parametrize("name", CLAIMED)
def test_claimed_file_gives_the_reference_key_fields(name: str, corpus: Path, reference: Path) -> None:
    path = corpus / "czi" / name
    engine = CziEngine()
    assert engine.claim(str(path), _head(path)) == CLAIM
    xml = engine.extract(str(path))
    expected = (reference / "czi" / f"{name}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)
    assert validate(xml) == (True, None)


@pytest.mark.parametrize("name", CLAIMED[:3])
def test_extract_without_a_prior_claim_reads_the_file_again(name: str, corpus: Path, reference: Path) -> None:
    xml = CziEngine().extract(str(corpus / "czi" / name))
    expected = (reference / "czi" / f"{name}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_kinds_with_other_layouts_are_left_to_bioformats(name: str, corpus: Path) -> None:
    path = corpus / "czi" / name
    engine = CziEngine()
    assert engine.claim(str(path), _head(path)) == 0
    with pytest.raises(ExtractionError, match="does not read"):
        engine.extract(str(path))


def test_other_formats_are_not_claimed(tmp_path: Path) -> None:
    path = tmp_path / "x.czi"
    path.write_bytes(b"II*\x00" + bytes(200))
    engine = CziEngine()
    assert engine.claim(str(path), path.read_bytes()) == 0
    with pytest.raises(UnsupportedFormatError):
        engine.extract(str(path))


def test_a_part_of_a_multi_file_czi_is_declined(corpus: Path, tmp_path: Path) -> None:
    main = tmp_path / "scan.czi"
    shutil.copyfile(corpus / "czi" / "100x100.czi", main)
    engine = CziEngine()
    assert engine.claim(str(main), _head(main)) == CLAIM
    shutil.copyfile(main, tmp_path / "scan (1).czi")
    assert CziEngine().claim(str(main), _head(main)) == 0
    assert CziEngine().claim(str(tmp_path / "scan (1).czi"), _head(main)) == 0


@pytest.mark.parametrize("keep", [16, 40, 600, 0.5, 0.9])
def test_a_truncated_file_is_declined_and_reported_not_crashed(keep: float, corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "czi" / "DAPI_GFP.czi").read_bytes()
    path = tmp_path / "cut.czi"
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    engine = CziEngine()
    started = time.monotonic()
    assert engine.claim(str(path), path.read_bytes()[:4096]) == 0
    with pytest.raises(ExtractionError):
        engine.extract(str(path))
    assert time.monotonic() - started < 5


def test_an_impossible_segment_size_is_an_extraction_error(corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / "czi" / "100x100.czi").read_bytes())
    struct.pack_into("<q", data, 16, 1 << 60)  # the file header's allocated size
    path = tmp_path / "bad.czi"
    path.write_bytes(bytes(data))
    assert CziEngine().claim(str(path), bytes(data[:4096])) == 0
    with pytest.raises(ExtractionError, match="runs past the end"):
        CziEngine().extract(str(path))


def test_metadata_xml_with_a_dtd_is_refused() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(ExtractionError, match="DTD"):
        read_document(hostile)


def test_channel_names_follow_the_display_settings_as_bioformats_does() -> None:
    xml = (b"<ImageDocument><Metadata><Information><Image><Dimensions><Channels>"
           b'<Channel Name="from image"><EmissionWavelength>509</EmissionWavelength></Channel>'
           b"</Channels></Dimensions></Image></Information>"
           b"<DisplaySetting><Channels><Channel><DyeMaxEmission>520</DyeMaxEmission></Channel></Channels>"
           b"</DisplaySetting></Metadata></ImageDocument>")
    doc = read_document(xml)
    assert doc.channels[0].name == ""  # a display channel without a Name attribute clears the name
    assert doc.channels[0].emission == "520"


def _extract(path: Path) -> str:
    engine = CziEngine()
    assert engine.claim(str(path), _head(path)) == CLAIM
    return engine.extract(str(path))


@pytest.mark.parametrize(("name", "sizes"), [("1_tileregion.czi", [(1480, 570), (740, 285)]),
                                             ("WellD6_S1.czi", [(544, 440), (272, 220)])])
def test_a_pyramid_level_is_an_image_of_its_own(name: str, sizes: list[tuple[int, int]], corpus: Path) -> None:
    images = key_fields(_extract(corpus / "czi" / name))["images"]
    assert [(i["pixels"]["size_x"], i["pixels"]["size_y"]) for i in images] == sizes
    assert [i["name"] for i in images] == [f"{name} #1", f"{name} #2"]
    full, half = (i["planes"][0] for i in images)
    # the level reuses the first image's stage centre, has no focus of its own and its own acquisition time
    assert (half["position_x"], half["position_y"]) == (full["position_x"], full["position_y"])
    assert full["position_z"] is not None and half["position_z"] is None
    assert half["delta_t"] != full["delta_t"]


@pytest.mark.parametrize(("name", "well"), [("CD_s_1_t_3_c_2_z_5.czi", (8, 11)), ("nuc_small.czi", (0, 0)),
                                            ("WellD6_S1.czi", (3, 5))])
def test_a_well_grid_puts_the_image_in_its_well(name: str, well: tuple[int, int], corpus: Path) -> None:
    xml = _extract(corpus / "czi" / name)
    (plate,) = key_fields(xml)["plates"]
    assert plate["wells"] == [{"row": well[0], "column": well[1], "samples": ["Image:0"]}]
    assert validate(xml) == (True, None)


def test_an_empty_scene_list_leaves_the_carrier_without_a_plate(corpus: Path) -> None:
    xml = _extract(corpus / "czi" / "CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi")
    assert key_fields(xml)["plates"] == []


def _patched(corpus: Path, tmp_path: Path, old: bytes, new: bytes) -> Path:
    assert len(old) == len(new)
    data = (corpus / "czi" / "CD_s_1_t_3_c_2_z_5.czi").read_bytes()
    assert old in data
    path = tmp_path / "patched.czi"
    path.write_bytes(data.replace(old, new, 1))  # the first occurrence: the experiment's template
    return path


def test_a_shape_id_below_one_leaves_the_plate_without_wells(corpus: Path, tmp_path: Path) -> None:
    # checked against live Bio-Formats 7.3.1: Plate Rows/Columns written, no Well
    path = _patched(corpus, tmp_path, b"<TemplateShapeId>9-12<", b"<TemplateShapeId>0-12<")
    assert key_fields(_extract(path))["plates"] == [{"name": None, "wells": []}]


def test_unparsable_plate_rows_mean_no_plate(corpus: Path, tmp_path: Path) -> None:
    # checked against live Bio-Formats 7.3.1: no Plate at all
    path = _patched(corpus, tmp_path, b"<ShapeRows>16<", b"<ShapeRows>1x<")
    assert key_fields(_extract(path))["plates"] == []


def test_a_compressed_pyramid_level_is_declined(corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / "czi" / "WellD6_S1.czi").read_bytes())
    # the first subblock is the half-size level; its directory entry's compression field is at +32+16+18
    at = data.find(b"ZISRAWSUBBLOCK")
    struct.pack_into("<i", data, at + 32 + 16 + 18, 2)  # LZW: Bio-Formats decodes it and drops it
    path = tmp_path / "lzw.czi"
    path.write_bytes(bytes(data))
    assert CziEngine().claim(str(path), bytes(data[:4096])) == 0
