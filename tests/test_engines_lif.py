"""The lif engine against Bio-Formats 7.3.1's reference for every LIF file of the corpus.

Both corpus files (LAS X confocal XZ, XZT, XZY and XYZ series, one and two channels) are claimed and give
Bio-Formats' whole document. The rules the corpus does not exercise were checked once against live
Bio-Formats 7.3.1 on crafted variants of these files and are pinned here without a JVM
(tests/test_differential_lif.py compares whole documents with the live JVM on many more):

* stage positions: ``SwapXY`` exchanges X and Y first, then ``FlipX``/``FlipY`` negate each axis;
* the dimension order is the axes sorted by ``BytesInc`` (no C forced first when C and T are > 1);
* ``ChannelDescription/@Resolution`` does not change SignificantBits (8 for uint8);
* a channel's colour comes from its ``LUTName`` (any case; gray and unknown names are white), and only a
  coloured channel has an emission filter, numbered among the coloured channels;
* a detector switched on without a dye name of its own still leaves the channels their dye names;
* the description is the ``ContextDescription`` attachment's content, trimmed; Bio-Formats blanks control
  characters and the ``&`` of character references before it parses the XML (``&#10;`` reads " #10;").

Kinds whose mapping is not checked (tiles, extra dimensions, old LAS AF layouts,
widefield …) are declined, and ``extract`` on them raises ExtractionError with the reason.
"""

from __future__ import annotations

import copy
import struct
import time
from pathlib import Path

import pytest
from lxml import etree

from metaextract.engines.base import ExtractionError, UnsupportedFormatError
from metaextract.engines.lif import CLAIM, LifEngine, read_series
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate
from metaextract.ome.diff import first_difference

from ._corpus import corpus_files

CLAIMED = ("LeicaLASX_xz-plane_example.lif", "testdata_2channel_xz.lif")


def _split(path: Path) -> tuple[str, bytes]:
    data = path.read_bytes()
    length = struct.unpack_from("<i", data, 4)[0]
    chars = struct.unpack_from("<i", data, 9)[0]
    return data[13:13 + 2 * chars].decode("utf-16-le"), data[8 + length:]


def _build(xml: str, rest: bytes) -> bytes:
    body = b"\x2a" + struct.pack("<i", len(xml)) + xml.encode("utf-16-le")
    return struct.pack("<ii", 0x70, len(body)) + body + rest


def _variant(corpus: Path, tmp_path: Path, name: str, change: dict[str, str], source: str = CLAIMED[0]) -> Path:
    xml, rest = _split(corpus / "lif" / source)
    for old, new in change.items():
        assert old in xml
        xml = xml.replace(old, new)
    path = tmp_path / name
    path.write_bytes(_build(xml, rest))
    return path


def test_the_corpus_lif_files_are_all_accounted_for(corpus: Path) -> None:
    listed = sorted(p.rsplit("/", 1)[1] for p in corpus_files(corpus) if p.startswith("lif/"))
    assert listed == sorted(CLAIMED)


@pytest.mark.parametrize("name", CLAIMED)
def test_claimed_file_gives_the_reference_whole_document(name: str, corpus: Path, reference: Path) -> None:
    path = corpus / "lif" / name
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    expected = (reference / "lif" / f"{name}.xml").read_text(encoding="utf-8")
    assert first_difference(xml, expected) is None, str(first_difference(xml, expected))
    assert normalise(xml) == normalise(expected)
    assert validate(xml) == (True, None)


@pytest.mark.parametrize("name", CLAIMED)
def test_extract_without_a_prior_claim_reads_the_file_again(name: str, corpus: Path, reference: Path) -> None:
    xml = LifEngine().extract(str(corpus / "lif" / name))
    expected = (reference / "lif" / f"{name}.xml").read_text(encoding="utf-8")
    assert key_fields(xml) == key_fields(expected)


@pytest.mark.parametrize(("flags", "expected"), [
    # (FlipX, FlipY, SwapXY) -> (PositionX, PositionY), as live Bio-Formats 7.3.1 gave them
    (("0", "1", "1"), (0.01008600557815, -0.03522954250934)),
    (("0", "0", "1"), (0.01008600557815, 0.03522954250934)),
    (("1", "0", "1"), (-0.01008600557815, 0.03522954250934)),
    (("0", "1", "0"), (0.03522954250934, -0.01008600557815)),
    (("1", "0", "0"), (-0.03522954250934, 0.01008600557815)),
    (("1", "1", "0"), (-0.03522954250934, -0.01008600557815)),
])
def test_stage_position_is_swapped_then_flipped(flags: tuple[str, str, str], expected: tuple[float, float],
                                                corpus: Path, tmp_path: Path) -> None:
    flip_x, flip_y, swap = flags
    path = _variant(corpus, tmp_path, "flip.lif", {'FlipX="0"': f'FlipX="{flip_x}"', 'FlipY="1"': f'FlipY="{flip_y}"',
                                                  'SwapXY="1"': f'SwapXY="{swap}"'})
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    plane = key_fields(engine.extract(str(path)))["images"][0]["planes"][0]
    assert (plane["position_x"], plane["position_y"]) == ([expected[0], "m"], [expected[1], "m"])


def test_dimension_order_follows_bytes_inc_only(corpus: Path, tmp_path: Path) -> None:
    # the red channel stored after the time points: Bio-Formats 7.3.1 says XYTCZ
    path = _variant(corpus, tmp_path, "order.lif",
                    {'LUTName="Red" IsLUTInverted="0" BytesInc="16384"': 'LUTName="Red" IsLUTInverted="0" '
                                                                        'BytesInc="65536"'},
                    source=CLAIMED[1])
    images = key_fields(LifEngine().extract(str(path)))["images"]
    assert images[0]["pixels"]["dimension_order"] == "XYTCZ"
    assert [(p["the_c"], p["the_t"]) for p in images[0]["planes"][:3]] == [(0, 0), (0, 1), (0, 2)]


def test_channel_colours_and_filters_follow_the_lut_names(corpus: Path, tmp_path: Path) -> None:
    # as live Bio-Formats 7.3.1 gave it: gray is white (no filter), "blue" is blue with the first filter
    luts = {'LUTName="Green"': 'LUTName="Gray"', 'LUTName="Red"': 'LUTName="blue"'}
    path = _variant(corpus, tmp_path, "luts.lif", luts, source=CLAIMED[1])
    xml = LifEngine().extract(str(path))
    lines = [line.strip() for line in xml.splitlines()]
    channels = [line for line in lines if line.startswith("<Channel ")]
    assert [line.split('Color="')[1].split('"')[0] for line in channels] == ["-1", "65535"] * 3
    assert [line for line in lines if line.startswith("<Filter ")] == [f'<Filter ID="Filter:{i}:0"/>' for i in range(3)]
    assert [line for line in lines if line.startswith("<EmissionFilterRef")] == [
        f'<EmissionFilterRef ID="Filter:{i}:0"/>' for i in range(3)]


def test_a_detector_switched_on_without_a_dye_keeps_the_channel_names(corpus: Path, tmp_path: Path) -> None:
    path = _variant(corpus, tmp_path, "active.lif", {'ChannelName="Channel 2" IsActive="0"':
                                                    'ChannelName="Channel 2" IsActive="1"'})
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    images = key_fields(engine.extract(str(path)))["images"]
    assert [c["name"] for image in images for c in image["channels"]] == ["Leica/TRITC"] * 3


def test_characters_beyond_latin1_read_as_bioformats_mangles_them(corpus: Path, tmp_path: Path) -> None:
    # as live Bio-Formats 7.3.1 gave it: U+2013 is read as its two bytes, 0x13 (blanked) and 0x20
    path = _variant(corpus, tmp_path, "dash.lif", {'Name="x-z"': 'Name="x\u2013z"'})
    assert '<Image ID="Image:0" Name="x  z">' in LifEngine().extract(str(path))


def test_a_description_reads_as_bioformats_sanitises_it(corpus: Path, tmp_path: Path) -> None:
    # as live Bio-Formats 7.3.1 gave it
    path = _variant(corpus, tmp_path, "described.lif", {'<Attachment Name="PreviewMarker"':
                    '<Attachment Name="ContextDescription" Content="two&#10;lines  &#10;  three "/>'
                    '<Attachment Name="PreviewMarker"'})
    xml = LifEngine().extract(str(path))
    assert "<Description>two #10;lines   #10;  three</Description>" in xml
    assert xml.count("<Description>") == 3  # one for each image


def _sequential(xml: str, intensities: list[dict[int, str]]) -> str:
    """Every image made a sequential scan: a master and one sequence per entry of ``intensities`` (line
    number -> ``IntensityDev``; the others 0, unused)."""
    root = etree.fromstring(xml.encode("utf-8"))
    for hardware in [a for a in root.iter("Attachment") if a.get("Name") == "HardwareSetting"]:
        setting = hardware.find("ATLConfocalSettingDefinition")
        block = etree.SubElement(hardware, "LDM_Block_Sequential")
        etree.SubElement(block, "LDM_Block_Sequential_Master").append(copy.deepcopy(setting))
        sequences = etree.SubElement(block, "LDM_Block_Sequential_List")
        for lines in intensities:
            sequence = copy.deepcopy(setting)
            for n, line in enumerate(sequence.iter("LaserLineSetting")):
                line.set("IntensityDev", lines.get(n, "0"))
            sequences.append(sequence)
    return etree.tostring(root, encoding="unicode")


def test_a_sequential_scan_gives_lasers_and_keeps_every_other_master(corpus: Path, tmp_path: Path) -> None:
    # as live Bio-Formats 7.3.1 gave it: each sequence's one line in use excites the next channel; of the
    # three masters it prunes the 1st and 3rd only, so image 1 reads its master's detectors as blank names
    xml, rest = _split(corpus / "lif" / CLAIMED[1])
    path = tmp_path / "sequential.lif"
    path.write_bytes(_build(_sequential(xml, [{0: "12.5"}, {1: "30"}]), rest))
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    document = engine.extract(str(path))
    assert document.count("<Laser ") == 3 * 8  # one per line of the sequences, in every image
    assert document.count('<LightSourceSettings Attenuation="0.875" ID="LightSource:') == 3
    assert document.count('<LightSourceSettings Attenuation="0.7" ID="LightSource:') == 3
    assert document.count('ExcitationWavelength="552.0"') == 3
    images = key_fields(document)["images"]
    assert [[c["name"] for c in image["channels"]] for image in images] == \
        [["Leica/FITC", "Leica/TRITC"], ["", ""], ["Leica/FITC", "Leica/TRITC"]]


@pytest.mark.parametrize(("change", "reason"), [
    ({'DimID="2"': 'DimID="10"'}, "dimension 10"),  # a tile (mosaic) dimension
    ({'DimID="2"': 'DimID="5"'}, "dimension 5"),  # lambda / an extra dimension
    ({'SwapXY="1"': 'SwapXY="2"'}, "SwapXY"),
    ({'Pinhole="1.02765604860983E-04"': 'Pinhole="1,02765604860983E-04"'}, "Pinhole"),
    ({'<TimeStampList NumberOfTimeStamps="1">': '<TimeStampList>'}, "3.0 layout"),
    ({'BytesInc="1"': 'BytesInc="3"'}, "RGB"),
    ({'<Attachment Name="PreviewMarker"': '<Attachment Name="TileScanInfo"'}, "tile scan"),
])
def test_unsupported_features_are_not_claimed(change: dict[str, str], reason: str, corpus: Path,
                                              tmp_path: Path) -> None:
    path = _variant(corpus, tmp_path, "odd.lif", change)
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


@pytest.mark.parametrize("keep", [4, 12, 40, 2000, 0.5, 0.999])
def test_a_truncated_file_is_declined_and_reported_not_crashed(keep: float, corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "lif" / CLAIMED[1]).read_bytes()
    path = tmp_path / "cut.lif"
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    engine = LifEngine()
    started = time.monotonic()
    assert engine.claim(str(path), path.read_bytes()[:4096]) == 0
    with pytest.raises(ExtractionError):
        engine.extract(str(path))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("damage", [
    (9, struct.pack("<i", -5)),  # XML length
    (9, struct.pack("<i", 1 << 30)),  # XML length beyond the file
    (8, b"\x00"),  # the 0x2A marker
])
def test_a_corrupt_header_is_an_extraction_error(damage: tuple[int, bytes], corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / "lif" / CLAIMED[0]).read_bytes())
    at, patch = damage
    data[at:at + len(patch)] = patch
    path = tmp_path / "bad.lif"
    path.write_bytes(bytes(data))
    assert LifEngine().claim(str(path), bytes(data[:4096])) == 0
    with pytest.raises(ExtractionError):
        LifEngine().extract(str(path))


def test_a_corrupt_memory_block_is_an_extraction_error(corpus: Path, tmp_path: Path) -> None:
    xml, rest = _split(corpus / "lif" / CLAIMED[0])
    path = tmp_path / "block.lif"
    path.write_bytes(_build(xml, b"\x71" + rest[1:]))
    assert LifEngine().claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match="0x70"):
        LifEngine().extract(str(path))


def test_malformed_xml_is_an_extraction_error(corpus: Path, tmp_path: Path) -> None:
    path = _variant(corpus, tmp_path, "broken.lif", {"</LMSDataContainerHeader>": "</Nope>"})
    assert LifEngine().claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match="cannot be parsed"):
        LifEngine().extract(str(path))


def test_xml_with_a_dtd_is_refused_without_expansion(tmp_path: Path) -> None:
    hostile = ('<!DOCTYPE LMSDataContainerHeader [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
               '<LMSDataContainerHeader Version="2"><Element Name="&e;"/></LMSDataContainerHeader>')
    path = tmp_path / "dtd.lif"
    path.write_bytes(_build(hostile, b""))
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError) as caught:
        engine.extract(str(path))
    assert "passwd" not in str(caught.value) and "root:" not in str(caught.value)
    with pytest.raises(ExtractionError, match="DTD"):
        read_series('<LMSDataContainerHeader><!ENTITY x "y"></LMSDataContainerHeader>')


def test_other_formats_are_not_claimed(tmp_path: Path) -> None:
    path = tmp_path / "x.lif"
    path.write_bytes(b"II*\x00" + bytes(200))
    engine = LifEngine()
    assert engine.claim(str(path), path.read_bytes()) == 0
    with pytest.raises(UnsupportedFormatError):
        engine.extract(str(path))


def test_a_lof_file_is_not_claimed(tmp_path: Path) -> None:
    # LOF shares the 0x70 magic but its header text is the type name, not XML
    path = tmp_path / "x.lof"
    path.write_bytes(_build("LMS_Object_File", b""))
    engine = LifEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError):
        engine.extract(str(path))
