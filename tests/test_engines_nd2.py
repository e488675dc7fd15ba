"""ND2: the kind of ``nd2/cluster.nd2`` read by Bio-Formats' rules, proven against the 7.3.1 reference.

Evidence for the two fields that used to differ (``nd2`` package against the reference):

- ``planes[].delta_t``: Bio-Formats reads the ``CustomData|AcqTimesCache`` frame times (ms / 1000) but
  indexes them, for plane (Z=z, T=t), by ``z * SizeC + t * SizeZ`` (``getIndex(z, 0, 0)`` of the
  channel-split order plus ``t * SizeZ``) where the frame is ``z + t * SizeZ``: plane (z=1, t=0) gets frame
  2's 2.474 s (nd2: 1.459 s), (t=1, z=0) repeats (t=0, z=5), and the planes of t=2, z>=5 get none. That is
  demonstrably wrong, but the rule is exact, so the engine reproduces it (users compare against it).
- ``planes[].position_z``: Bio-Formats takes Z from the first ``CustomData|Z…`` block (here ``Z1``, the
  "Ti ZDrive" reading, 3916.725 µm; ``nd2`` exposes it as the events' ``Ti ZDrive [µm]``), ``nd2``'s OME
  from the frame metadata's stage position (3912.3375 µm): two stored values, 4.3875 µm apart; the engine
  takes Bio-Formats' source.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nd2
import pytest

from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.nd2 import (
    Declined,
    Nd2Engine,
    _channel_colors,
    _color,
    _spacing_kept,
    _stamp_index,
    _text_number,
    _text_value,
    _xml_start,
    inspect_nd2,
)
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise, validate
from metaextract.ome.diff import first_difference

from ._corpus import corpus_files, reference_rows

REL = "nd2/cluster.nd2"
CLAIMED = {REL}
CHUNK_HEAD = b"\xda\xce\xbe\x0a" + b"\x20\x00\x00\x00"  # a chunk magic and a name length, nothing more


@pytest.fixture(scope="module")
def both(corpus: Path, reference: Path) -> tuple[str, str]:
    path = str(corpus / REL)
    engine = Nd2Engine()
    assert engine.claim(path, read_head(path)) > 0
    return engine.extract(path), (reference / f"{REL}.xml").read_text("utf-8")


def _planes(xml: str) -> dict[tuple[int, int, int], dict[str, object]]:
    return {(p["the_z"], p["the_c"], p["the_t"]): p for p in key_fields(xml)["images"][0]["planes"]}


def test_claims_exactly_the_proven_corpus_files(corpus: Path, reference: Path) -> None:
    engine = Nd2Engine()
    claimed = {rel for rel in corpus_files(corpus) if engine.claim(str(corpus / rel), read_head(str(corpus / rel)))}
    assert claimed == CLAIMED
    exits = {row["path"]: row["showinf_exit"] for row in reference_rows(reference)}
    assert all(exits[rel] == "0" for rel in claimed)


@pytest.mark.parametrize("rel", sorted(CLAIMED))
def test_the_whole_document_equals_the_reference(rel: str, corpus: Path, reference: Path) -> None:
    result = extract_file(str(corpus / rel), "auto")  # whole document: auto answers natively (issue 20)
    assert result.status == "ok", result.error
    assert result.engine == "nd2"
    assert result.omexml is not None and result.valid, result.validation_error
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    assert first_difference(result.omexml, expected) is None, str(first_difference(result.omexml, expected))
    assert normalise(result.omexml) == normalise(expected)
    assert validate(result.omexml) == (True, None)


def test_the_instrument_bioformats_writes(both: tuple[str, str]) -> None:
    # the detector is the XML's CameraUniqueName (not the text's "Camera Name: Nikon A1plus"), the objective
    # model the LV sObjective, the refractive index the text's "Refractive Index: 1", and each channel's
    # colour the XML's CH<n>ChannelColor of the dye that names it (0xBBGGRR -> signed RGBA)
    mine, _ = both
    assert '<Detector ID="Detector:0:0" Model="Nikon_A1_New" Type="Other"/>' in mine
    assert 'Model="Plan Apo λ 60x"' in mine and 'RefractiveIndex="1.0"' in mine
    assert re.findall(r'Color="(-?[0-9]+)"', mine) == [str(_color(1042808)), str(_color(510))]
    assert _color(1042808) == 0x78E90FFF and _color(510) == 0xFE0100FF - (1 << 32)
    assert _color(0) is None and _color(-1) == -1  # black is left out; all bits set is opaque white
    assert mine.count('<DetectorSettings ID="Detector:0:0"/>') == 2


def test_channel_colours_follow_bioformats_rules() -> None:
    colors = {"GFP": 0x00FF00, "dark": 0}
    assert _channel_colors(colors, ["GFP", "dark", "other"], []) == [_color(0x00FF00), None, None]
    # a channel past the emission wavelengths is white (Bio-Formats sets that after the colour)
    assert _channel_colors(colors, ["GFP", "dark"], [510.0]) == [_color(0x00FF00), -1]
    with pytest.raises(Declined, match="no XML channel colours"):
        _channel_colors({}, ["GFP"], [])


def test_xml_is_taken_where_bioformats_takes_it() -> None:
    # after the name's "!" or the last NUL byte, and only if "<?xml" starts there
    assert _xml_start(b"ataVar|X!<?xml version") == 9
    assert _xml_start(b"ataVar|X!\x00\x00<?xml version") == 11
    assert _xml_start(b"ataVar|X! <?xml version") is None
    assert _xml_start(b"ataVar|X!<?xml a\x00") is None  # a NUL after it: Bio-Formats drops the XML


def test_text_numbers_as_bioformats_parses_them() -> None:
    assert _text_number(None) is None and _text_number("x") is None and _text_number("") is None
    assert _text_number("1") == 1.0 and _text_number(" 1.33 ") == 1.33
    with pytest.raises(Declined):
        _text_number("1,33")


def test_the_bioformats_isms_it_reproduces(both: tuple[str, str]) -> None:
    mine, _ = both
    image = key_fields(mine)["images"][0]
    assert image["name"] == "cluster.nd2 (series 1)" and image["acquisition_date"] is None
    assert key_fields(mine)["objectives"] == [{"nominal_magnification": None, "lens_na": 0.95}]
    assert [(c["name"], c["emission_wavelength"], c["excitation_wavelength"]) for c in image["channels"]] == [
        ("5-FAM/pH 9.0", [525.0, "nm"], None), ("FM 4-64/2% CHAPS", [700.0, "nm"], None)]
    assert image["pixels"]["dimension_order"] == "XYCZT" and image["pixels"]["physical_size_z"] == [0.5, "µm"]
    assert {tuple(p["exposure_time"]) for p in image["planes"]} == {(0.9969975547008216, "s")}  # dExposureTime / 1000


def test_plane_times_follow_bioformats_index_not_the_frame(both: tuple[str, str], corpus: Path) -> None:
    mine, ref = both
    ours, theirs = _planes(mine), _planes(ref)
    with nd2.ND2File(str(corpus / REL)) as f:
        frame_s = [f.frame_metadata(i).channels[0].time.relativeTimeMs / 1000 for i in range(30)]
    assert frame_s[1] == pytest.approx(1.459, abs=1e-3)  # the true time of (z=1, t=0)
    for (z, c, t), plane in ours.items():
        stamp = z * 2 + t * 10
        assert plane["delta_t"] == theirs[(z, c, t)]["delta_t"]
        if stamp < 30:
            assert plane["delta_t"] == [pytest.approx(frame_s[stamp]), "s"]
        else:
            assert plane["delta_t"] is None  # Bio-Formats' index runs past the 30 frames
    assert ours[(1, 0, 0)]["delta_t"][0] == pytest.approx(frame_s[2])  # another frame's time, as Bio-Formats
    assert ours[(0, 0, 1)]["delta_t"] == ours[(5, 0, 0)]["delta_t"]
    assert sum(p["delta_t"] is None for p in ours.values()) == 10


def test_stage_z_is_the_zdrive_custom_data_not_the_frame_position(both: tuple[str, str], corpus: Path) -> None:
    mine, ref = both
    with nd2.ND2File(str(corpus / REL)) as f:
        frame_z = f.frame_metadata(0).channels[0].position.stagePositionUm.z
        zdrive = {e["Ti ZDrive [µm]"] for e in f.events()}
    assert frame_z == pytest.approx(3912.3375)
    assert [float(z) for z in zdrive] == [pytest.approx(3916.725)]
    zs = {p["position_z"][0] for p in _planes(mine).values()}
    assert zs == {p["position_z"][0] for p in _planes(ref).values()} == {float(z) for z in zdrive}
    assert zs.pop() - frame_z == pytest.approx(4.3875)


def test_declines_what_it_has_not_proven(corpus: Path, tmp_path: Path) -> None:
    engine = Nd2Engine()
    broken = tmp_path / "no_chunk_map.nd2"
    data = bytearray((corpus / REL).read_bytes())
    data[-40:-8] = b"X" * 32  # no chunk map signature: Bio-Formats scans, this engine declines
    broken.write_bytes(bytes(data))
    assert engine.claim(str(broken), read_head(str(broken))) == 0
    with pytest.raises(Declined, match="chunk map"):
        inspect_nd2(str(broken))
    not_nd2 = tmp_path / "x.nd2"
    not_nd2.write_bytes(b"\x00" * 64)
    assert engine.claim(str(not_nd2), read_head(str(not_nd2))) == 0
    with pytest.raises(UnsupportedFormatError):
        engine.extract(str(not_nd2))
    cut = tmp_path / "cut.nd2"
    cut.write_bytes(CHUNK_HEAD + b"\x00" * 8)
    assert engine.claim(str(cut), read_head(str(cut))) == 0
    with pytest.raises(ExtractionError) as info:
        engine.extract(str(cut))
    assert "\n" not in str(info.value)


def test_text_info_parse_mirrors_bioformats_space_split() -> None:
    text = "Dimensions: T(3) x Z(10)\r\nNumerical Aperture: 0.95\r\nRefractive Index: 1\r\n"
    assert _text_value(text, "Numerical Aperture") == "0.95"
    assert _text_value(text, "Refractive Index") == "1"
    assert _text_value("Camera Name: A1\r\n", "Numerical Aperture") is None


def test_rescue_gives_the_proven_document(corpus: Path, tmp_path: Path) -> None:
    engine = Nd2Engine()
    path = str(corpus / REL)
    assert engine.rescues(path, read_head(path)) > 0
    xml, notes = engine.rescue(path)
    assert key_fields(xml) == key_fields(engine.extract(path)) and "proven" in notes[0]
    copy = tmp_path / "copy.nd2"
    shutil.copyfile(path, copy)
    data = bytearray(copy.read_bytes())
    data[-40:-8] = b"X" * 32
    copy.write_bytes(bytes(data))
    # a declined ND2 still gets nd2's own mapping when forced (the nd2 package scans without the map)
    try:
        forced = engine.extract(str(copy))
    except ExtractionError as exc:
        assert re.match(r"nd2 cannot read the file: \w+", str(exc))
    else:
        assert validate(forced)[0] and key_fields(forced)["images"][0]["name"] != "copy.nd2 (series 1)"


def test_frame_spacing_as_bioformats_guesses_sizes_from_it() -> None:
    # the corpus file: 4712-byte frames 12288 bytes apart; one channel of it: 2356 bytes 8192 apart (more
    # than three planes: Bio-Formats says three channels), or 4096 apart (it drops a 4 KiB "block of zeros"
    # and is left with no row: it fails)
    assert _spacing_kept(12288, 4712, 30)
    assert not _spacing_kept(8192, 2356, 30) and not _spacing_kept(4096, 2356, 30)
    assert not _spacing_kept(4000, 4712, 30)  # less than a plane: it re-guesses the channel count
    assert _spacing_kept(10 ** 6, 4712, 1)  # one frame: up to the end of the file, no three-plane guess


def test_plane_times_by_bioformats_index() -> None:
    size = (38, 31, 10, 2, 3)
    assert [_stamp_index(z, 0, size, 30) for z in range(3)] == [0, 2, 4]  # z * SizeC + t * SizeZ
    assert _stamp_index(0, 1, size, 30) == 10
    assert _stamp_index(3, 0, (38, 31, 10, 2, 1), 10) == 3  # one time point: one time per Z plane
    assert _stamp_index(3, 2, (38, 31, 10, 1, 3), 30) == 23  # one channel: the plane's own time
