"""The czi engine against Bio-Formats 7.3.1's reference for every CZI file of the corpus.

Every file it claims must give Bio-Formats' key fields (image count and names, dates, pixels, channels,
planes with positions, DeltaT and exposure, plates, objectives). It claims all 17 corpus CZIs:

Claimed since the pyramid and plate kinds: ``1_tileregion`` and ``WellD6_S1`` (a half-size pyramid level,
flattened into a second image; WellD6 also in well D6), ``CD_s_1_t_3_c_2_z_5`` (well I12 from the regions'
``TemplateShapeId``), ``nuc_small`` (well A1 from its scene's shape) and
``CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD`` (same carrier as CD_s_1 but an empty ``<S/>``: no Plate).

Claimed since the scene and phase kinds: ``S3_1Pos_2Mosaic_T1_Z1_CH1`` (three scenes, mosaics of 10, 1 and
17 tiles: three stitched images, the one-tile scene placed by its ``CenterPosition`` in X) and
``LSM880_AiryScan`` (32 phases of 4 channels folded into T, 4 unphased channels: 256 Planes, 132 placed).
Variants of them with edited dimension entries were checked once against live Bio-Formats 7.3.1 and their
results are pinned below; other edits are declined with the reason.

Here the key fields are pinned; the whole document (Experimenter, instrument, settings, stage labels, and
IDs the schema refuses printed as Bio-Formats prints them) is compared with Bio-Formats' in
tests/test_conformance.py (every corpus CZI is answered whole in ``auto``) and tests/test_differential_czi.py.
"""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.czi import CLAIM, CziEngine, read_document, stage_positions
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, validate

CLAIMED = ("100x100.czi", "Al2O3_SE_020_sp.czi", "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi", "DAPI_GFP.czi",
           "FOV7_HV110_P0500510000.czi", "RGB-8bit.czi", "mosaic_test.czi", "s_1_t_1_c_1_z_1.czi", "tiles.czi",
           "tiles_z.czi", "1_tileregion.czi", "WellD6_S1.czi", "CD_s_1_t_3_c_2_z_5.czi", "nuc_small.czi",
           "CellDivision_T3_Z6_CH1_X300_Y200_DCV_ZSTD.czi", "S3_1Pos_2Mosaic_T1_Z1_CH1.czi",
           "LSM880_AiryScan.czi")

#: corpus CZIs naming a dichroic with an ID the schema refuses, which Bio-Formats prints as it is (and so its
#: document, and the engine's, is not valid OME)
REFUSED_IDS = {"1_tileregion.czi": "Beamsplitter.2076-903", "WellD6_S1.czi": "Beamsplitter.2076-903"}


def test_the_corpus_czi_files_are_all_accounted_for(corpus: Path) -> None:
    assert sorted(p.name for p in (corpus / "czi").glob("*.czi")) == sorted(CLAIMED)


@pytest.mark.parametrize("name", CLAIMED)
def test_claimed_file_gives_the_reference_key_fields(name: str, corpus: Path, reference: Path) -> None:
    path = corpus / "czi" / name
    engine = CziEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    expected = (reference / "czi" / f"{name}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)
    # valid, except where Bio-Formats' own document is not: a dichroic ID the schema refuses, printed as it is
    assert validate(xml, remember=False)[0] == (name not in REFUSED_IDS)
    assert validate(expected, remember=False)[0] == (name not in REFUSED_IDS)
    if name in REFUSED_IDS:
        assert "DichroicIDKey" in (validate(xml, remember=False)[1] or "")
        assert f'<Dichroic ID="{REFUSED_IDS[name]}"' in xml


@pytest.mark.parametrize("name", CLAIMED[:3])
def test_extract_without_a_prior_claim_reads_the_file_again(name: str, corpus: Path, reference: Path) -> None:
    xml = CziEngine().extract(str(corpus / "czi" / name))
    expected = (reference / "czi" / f"{name}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)


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
    assert engine.claim(str(main), read_head(main)) == CLAIM
    shutil.copyfile(main, tmp_path / "scan (1).czi")
    assert CziEngine().claim(str(main), read_head(main)) == 0
    assert CziEngine().claim(str(tmp_path / "scan (1).czi"), read_head(main)) == 0


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
    assert engine.claim(str(path), read_head(path)) == CLAIM
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
    valid, why = validate(xml, remember=False)
    assert valid if name not in REFUSED_IDS else "DichroicIDKey" in (why or ""), why  # the plate is valid


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


# -- scenes and phases ------------------------------------------------------------------------------------
def _edit_dims(source: Path, target: Path, edit: object) -> Path:
    """A copy of ``source`` whose subblocks' dimension starts (``"X:size"``: sizes) ``edit(index, starts)`` rewrites."""
    data = bytearray(source.read_bytes())
    pos = index = 0
    while pos + 32 <= len(data):
        sid = bytes(data[pos:pos + 16]).rstrip(b"\x00 ")
        allocated = struct.unpack_from("<q", data, pos + 16)[0]
        if not sid and pos:
            break
        if sid == b"ZISRAWSUBBLOCK":
            entry = pos + 32 + 16
            where = {}
            for i in range(struct.unpack_from("<i", data, entry + 28)[0]):
                at = entry + 32 + 20 * i
                where[bytes(data[at:at + 4]).rstrip(b"\x00 ").decode()] = at
            starts = {d: struct.unpack_from("<i", data, at + 4)[0] for d, at in where.items()}
            for dim, value in edit(index, starts).items():  # type: ignore[operator]
                if dim.endswith(":size"):  # size and stored size
                    struct.pack_into("<i", data, where[dim[0]] + 8, value)
                    struct.pack_into("<i", data, where[dim[0]] + 16, value)
                else:
                    struct.pack_into("<i", data, where[dim] + 4, value)
            index += 1
        pos += 32 + allocated
        pos += (32 - pos % 32) % 32
    target.write_bytes(bytes(data))
    return target


def _keys(path: Path) -> dict:  # type: ignore[type-arg]
    xml = _extract(path)
    assert validate(xml) == (True, None)
    return key_fields(xml)


def test_three_scenes_are_three_stitched_images(corpus: Path) -> None:
    images = _keys(corpus / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi")["images"]
    assert [(i["pixels"]["size_x"], i["pixels"]["size_y"]) for i in images] == [(295, 122), (64, 64), (352, 237)]
    assert [i["name"] for i in images] == [f"S3_1Pos_2Mosaic_T1_Z1_CH1.czi #{n}" for n in (1, 2, 3)]
    # the one-tile scene has no stage X of its own: its scene's CenterPosition stands in
    assert images[1]["planes"][0]["position_x"] == [37980.0, "µm"]


def test_airyscan_phases_are_folded_into_t(corpus: Path) -> None:
    (image,) = _keys(corpus / "czi" / "LSM880_AiryScan.czi")["images"]
    assert (image["pixels"]["size_c"], image["pixels"]["size_t"], len(image["planes"])) == (8, 32, 256)
    placed = [(p["the_c"], p["the_t"]) for p in image["planes"] if p["position_x"] is not None]
    assert len(placed) == 4 * 32 + 4 and (3, 31) in placed and (4, 1) not in placed


def test_one_scene_per_tile_checked_live(corpus: Path, tmp_path: Path) -> None:
    # checked against live Bio-Formats 7.3.1 (key fields equal): 28 scenes of one 64x64 tile, no mosaic
    path = _edit_dims(corpus / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi", tmp_path / "tiles.czi",
                      lambda k, d: {"S": k, "M": 0})
    images = _keys(path)["images"]
    assert len(images) == 28 and images[0]["name"] == "tiles.czi #01"
    assert {(i["pixels"]["size_x"], i["pixels"]["size_y"]) for i in images} == {(64, 64)}
    assert images[3]["planes"][0]["position_x"] == [38397.296, "µm"]
    assert images[10]["planes"][0]["position_x"] == [0, "reference frame"]  # no stage X, no slot left
    assert images[10]["planes"][0]["position_y"] == [13122.058, "µm"]
    assert (images[24]["planes"][0]["position_x"], images[24]["planes"][0]["position_y"]) == (
        [523, "reference frame"], [450, "reference frame"])


def test_two_complete_mosaics_checked_live(corpus: Path, tmp_path: Path) -> None:
    # checked against live Bio-Formats 7.3.1 (key fields equal): 2 scenes of 14 tiles each (M 0…13)
    path = _edit_dims(corpus / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi", tmp_path / "two.czi",
                      lambda k, d: {"S": k % 2, "M": k // 2})
    images = _keys(path)["images"]
    assert [(i["pixels"]["size_x"], i["pixels"]["size_y"]) for i in images] == [(645, 514), (500, 514)]
    assert [i["planes"][0]["position_x"] for i in images] == [[38653.554000000004, "µm"]] * 2


def test_phases_with_two_time_points_checked_live(corpus: Path, tmp_path: Path) -> None:
    # checked against live Bio-Formats 7.3.1 (key fields equal): the unphased channels moved to T=1, so
    # SizeT = 2 time points x 32 phases and phase h of time t is at T = 2h + t
    path = _edit_dims(corpus / "czi" / "LSM880_AiryScan.czi", tmp_path / "t2.czi",
                      lambda k, d: {"T": 1} if d["C"] >= 4 else {})
    (image,) = _keys(path)["images"]
    assert (image["pixels"]["size_t"], len(image["planes"])) == (64, 512)
    assert image["planes"][4]["position_x"] is None  # C4 at T0: no block
    assert image["planes"][12]["position_x"] == [-3991.26, "µm"]  # C4 at T1


@pytest.mark.parametrize(("name", "edit", "why"), [
    ("S3_1Pos_2Mosaic_T1_Z1_CH1.czi", lambda k, d: {"H": 1} if k == 0 else {}, "scenes with phases"),
    ("S3_1Pos_2Mosaic_T1_Z1_CH1.czi", lambda k, d: {"S": 2} if d["S"] == 1 else {}, "a scene index missing"),
    ("S3_1Pos_2Mosaic_T1_Z1_CH1.czi", lambda k, d: {"X:size": 65} if k == 3 else {}, "a tile of another size"),
    ("S3_1Pos_2Mosaic_T1_Z1_CH1.czi", lambda k, d: {"M": 0} if d["S"] == 2 else {}, "two tiles on one spot"),
    ("S3_1Pos_2Mosaic_T1_Z1_CH1.czi", lambda k, d: {"T": 1} if k == 27 else {}, "a scene without some plane"),
    ("LSM880_AiryScan.czi", lambda k, d: {"H": 40} if k == 5 else {}, "a phase index missing"),
    ("LSM880_AiryScan.czi", lambda k, d: {"M": 1} if k == 5 else {}, "phases with a mosaic"),
    ("LSM880_AiryScan.czi", lambda k, d: {"Z": 100000} if k == 5 else {}, "far more planes than blocks"),
])
def test_unchecked_scene_and_phase_variants_are_declined(name: str, edit: object, why: str, corpus: Path,
                                                         tmp_path: Path) -> None:
    path = _edit_dims(corpus / "czi" / name, tmp_path / "edited.czi", edit)
    engine = CziEngine()
    assert engine.claim(str(path), read_head(path)) == 0, why
    with pytest.raises(ExtractionError, match="does not read"):
        engine.extract(str(path))


def _doc(experiment: bytes, scenes: bytes) -> bytes:
    return (b"<ImageDocument><Metadata><Experiment><ExperimentBlocks><AcquisitionBlock>" + experiment +
            b"</AcquisitionBlock></ExperimentBlocks></Experiment><Information><Image><Dimensions><S><Scenes>" +
            scenes + b"</Scenes></S></Dimensions></Image></Information></Metadata></ImageDocument>")


def test_stage_positions_follow_bioformats_slots() -> None:
    regions = (b"<RegionsSetup><SampleHolder><SingleTileRegionArray><SingleTileRegion><X>1</X><Y>2</Y><Z>3</Z>"
               b"</SingleTileRegion></SingleTileRegionArray></SampleHolder></RegionsSetup>")
    scenes = (b"<Scene><CenterPosition>10,20</CenterPosition></Scene>"
              b'<Scene><Positions><Position X="4" Y="5" Z="6"/></Positions></Scene>'
              b"<Scene><CenterPosition>7,8</CenterPosition></Scene>")
    # the region fills slot 0; the first scene's centre overwrites its X/Y (Z stays the region's); the
    # Position fills the next empty slot; the last centre goes past the two slots
    assert stage_positions(read_document(_doc(regions, scenes)), 2) == ([10.0, 4.0], [20.0, 5.0], [3.0, 6.0])
    # a Position only fills an empty slot, and only then moves on: with the region in slot 0 it is dropped
    only = b'<Scene><Positions><Position X="4" Y="5" Z="6"/></Positions></Scene>'
    assert stage_positions(read_document(_doc(regions, only)), 2) == ([1.0, None], [2.0, None], [3.0, None])
    # PositionGroups switch the regions off; a group with its own position and tile counts is declined
    groups = b"<TilesSetup><PositionGroups><PositionGroup/></PositionGroups></TilesSetup>" + regions
    assert stage_positions(read_document(_doc(groups, b"")), 1) == ([None], [None], [None])
    placed = (b"<TilesSetup><PositionGroups><PositionGroup><Position X='1' Y='1' Z='1'/><TilesX>2</TilesX>"
              b"<TilesY>1</TilesY></PositionGroup></PositionGroups></TilesSetup>")
    assert stage_positions(read_document(_doc(placed, b"")), 1) is None
    # numbers Java would not read the same way are declined
    assert stage_positions(read_document(_doc(b"", b"<Scene><CenterPosition>1e3,nan</CenterPosition></Scene>")),
                           1) is None
