"""The OME engine (standalone OME-XML, single-file OME-TIFF) against Bio-Formats 7.3.1's reference.

Evidence for the one document that differs from Bio-Formats' after normalisation
(``ome-xml-reference/xmlannotation-body-space.ome.xml``): Bio-Formats' ``XMLTools.indentXML`` trims the
text around inline elements of an XMLAnnotation ("There should be a <b>space</b>" is printed as
"There should be a<b>space</b>"), which changes the annotation's text; the engine keeps the mixed
content as written. Key fields agree there too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from metaextract import engines
from metaextract._extract import extract_file, read_head
from metaextract.engines.base import ExtractionError
from metaextract.engines.ome_files import OmeEngine, omexml_document
from metaextract.ome import key_fields, normalise, validate

OME_TIFF = ("ome-tiff/FOV7_HV110_P0500510000.ome.tiff", "ome-tiff/grey.ome.tiff", "ome-tiff/ome.tiff",
            "ome-tiff/rgb.ome.tiff")
LOSSY_IN_BIOFORMATS = "ome-xml-reference/xmlannotation-body-space.ome.xml"
DECLINED = (
    "ome-tiff/plane.ome.tiff",  # BinaryOnly, its companion is not in the corpus
    "ome-tiff-spec-samples/18x24y5z5t2c8b-text.ome.tiff",  # 2010-06: Bio-Formats upgrades it by XSLT
    "ome-tiff-spec-samples/6x4y1z1t1c8b-swatch-instrument.ome.tiff",
    "ome-tiff-spec-samples/single-channel.ome.tif",  # 2008-02
    "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-companion.ome",  # 2011-06 companion
    *(f"ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-split-Z{z}.ome.tiff" for z in range(1, 6)),
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif",  # Micro-Manager's reader
)
NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def _claimed(corpus: Path) -> list[str]:
    return [*OME_TIFF, *sorted(str(p.relative_to(corpus)) for p in (corpus / "ome-xml-reference").glob("*.ome.xml"))]


def _claim(path: Path) -> int:
    return OmeEngine().claim(str(path), read_head(str(path)))


def test_every_readable_ome_xml_file_is_claimed(corpus: Path) -> None:
    files = _claimed(corpus)
    assert len(files) == 4 + 32
    for rel in files:
        assert _claim(corpus / rel) > 0, rel


@pytest.mark.parametrize("kind", ["ome-xml", "ome-tiff"])
def test_claimed_corpus_files_agree_with_the_reference(kind: str, corpus: Path, reference: Path) -> None:
    engine = OmeEngine()
    for rel in _claimed(corpus):
        if ("tif" in rel) != (kind == "ome-tiff"):
            continue
        xml = engine.extract(str(corpus / rel))
        expected = (reference / f"{rel}.xml").read_text("utf-8")
        assert key_fields(xml) == key_fields(expected), rel
        if rel != LOSSY_IN_BIOFORMATS:
            assert normalise(xml) == normalise(expected), rel
        ok, why = validate(xml)
        assert ok, f"{rel}: {why}"


def test_where_bioformats_trims_annotation_text(corpus: Path, reference: Path) -> None:
    rel = LOSSY_IN_BIOFORMATS
    xml = OmeEngine().extract(str(corpus / rel))
    expected = (reference / f"{rel}.xml").read_text("utf-8")
    source = (corpus / rel).read_text("utf-8")
    assert "There should be a <b>space</b>" in source
    assert "There should be a<b>space</b>" in expected  # Bio-Formats lost the space
    assert "There should be a <b>space</b>" in xml
    assert key_fields(xml) == key_fields(expected)


@pytest.mark.parametrize("rel", DECLINED)
def test_declines_what_it_does_not_prove(rel: str, corpus: Path) -> None:
    assert _claim(corpus / rel) == 0


def test_companion_set_goes_to_bioformats_whole(corpus: Path, reference: Path) -> None:
    folder = corpus / "ome-tiff-spec-samples" / "meta-companion-set"
    for path in sorted(folder.iterdir()):
        assert engines.choose(str(path), read_head(str(path)), "auto").name == "bioformats"
    # Bio-Formats reports the whole set (five Z planes from five files) for the companion
    ref = key_fields((reference / "ome-tiff-spec-samples/meta-companion-set/18x24y5z1t1c8b-text-companion.ome.xml")
                     .read_text("utf-8"))
    assert ref["images"][0]["pixels"]["size_z"] == 5


def test_binary_only_is_declined(tmp_path: Path) -> None:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="urn:uuid:1"><BinaryOnly '
           'MetadataFile="set.companion.ome" UUID="urn:uuid:2"/></OME>')
    path = tmp_path / "part.ome.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), description=xml, metadata=None)
    assert _claim(path) == 0


def _set_xml(names: list[str]) -> str:
    tiffdata = "".join(f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1"><UUID FileName="{name}">urn:uuid:{z}</UUID>'
                       "</TiffData>" for z, name in enumerate(names))
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="urn:uuid:0"><Image ID="Image:0" '
            f'Name="set"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="4" SizeY="4" '
            f'SizeZ="{len(names)}" SizeC="1" SizeT="1"><Channel ID="Channel:0:0"/>{tiffdata}</Pixels></Image></OME>')


def test_planes_in_another_file_are_declined(tmp_path: Path) -> None:
    names = ["z0.ome.tif", "z1.ome.tif"]
    for name in names:
        tifffile.imwrite(tmp_path / name, np.zeros((4, 4), np.uint8), description=_set_xml(names), metadata=None)
    for name in names:
        assert _claim(tmp_path / name) == 0


def test_ome_tiff_written_by_tifffile(tmp_path: Path) -> None:
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 16, 8), np.uint16), ome=True,
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.5, "Channel": {"Name": ["g", "r"]}})
    xml = OmeEngine().extract(str(path))
    fields = key_fields(xml)["images"][0]
    assert fields["pixels"]["size_z"] == 3 and fields["pixels"]["size_c"] == 2
    assert fields["pixels"]["physical_size_x"] == [0.5, "µm"]
    assert [c["name"] for c in fields["channels"]] == ["g", "r"]
    assert 'Interleaved="false"' in xml and 'SignificantBits="16"' in xml and "<LightPath/>" in xml
    assert validate(xml)[0]


def test_forged_plane_size_is_declined(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "f.ome.tif", np.zeros((4, 4), np.uint8), ome=True)
    text = tifffile.TiffFile(tmp_path / "f.ome.tif").pages.first.description
    forged = tmp_path / "forged.ome.tif"
    tifffile.imwrite(forged, np.zeros((4, 4), np.uint8), metadata=None,
                     description=text.replace('SizeX="4"', 'SizeX="1048576"').replace("f.ome.tif", "forged.ome.tif"))
    assert _claim(forged) == 0


def test_truncated_ome_tiff_is_caught(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "ome-tiff/grey.ome.tiff").read_bytes()
    cut = tmp_path / "grey.ome.tiff"
    cut.write_bytes(data[: len(data) // 2])
    if _claim(cut) > 0:  # whichever engine answers, the damage is reported
        result = extract_file(str(cut), "ome-xml")
        assert result.status == "failed" and "truncated" in (result.error or "")


DTD = '<!DOCTYPE OME [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def test_entities_in_an_ome_tiff_are_refused(tmp_path: Path) -> None:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>{DTD}<OME xmlns="{NS}"><Image ID="Image:0" Name="&x;">'
           '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="4" SizeY="4" SizeZ="1" SizeC="1" '
           'SizeT="1"><Channel ID="Channel:0:0"/><TiffData/></Pixels></Image></OME>')
    path = tmp_path / "xxe.ome.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), description=xml, metadata=None)
    assert _claim(path) == 0
    with pytest.raises(ExtractionError, match="refused"):
        OmeEngine().extract(str(path))
    result = extract_file(str(path), "ome-xml")
    assert result.status == "failed" and "DTD" in (result.error or "")


def test_entities_in_an_ome_xml_file_are_refused(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/single-image.ome.xml").read_text("utf-8")
    path = tmp_path / "lol.ome.xml"
    path.write_text(text.replace("?>", '?><!DOCTYPE OME [<!ENTITY l "lol">]>', 1).replace(
        'Name="6x6x1x8-swatch.tif"', 'Name="&l;"'), "utf-8")
    assert _claim(path) == 0
    with pytest.raises(ExtractionError):
        OmeEngine().extract(str(path))  # the DOCTYPE pushes <OME out of the first 64 bytes: not claimed
    with pytest.raises(ExtractionError, match="refused"):
        omexml_document(path.read_bytes())


def test_a_rewritten_image_id_that_is_referred_to_is_declined(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/hcs.ome.xml").read_text("utf-8")
    path = tmp_path / "hcs.ome.xml"
    path.write_text(text.replace('"Image:0"', '"Image:7"'), "utf-8")
    assert _claim(path) == 0


def test_ome_xml_is_known_by_its_first_64_bytes(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/single-image.ome.xml").read_text("utf-8")
    late = tmp_path / "late.ome.xml"
    late.write_text(text.replace("?>", "?><!--" + "x" * 80 + "-->", 1), "utf-8")
    assert _claim(late) == 0  # Bio-Formats' OME-XML reader would not know it either
    renamed = tmp_path / "plain.xml"
    shutil.copy(corpus / "ome-xml-reference/single-image.ome.xml", renamed)
    assert _claim(renamed) == 0  # other readers take some .xml files by name


def test_other_schema_versions_are_declined(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "ome-xml-reference/single-image.ome.xml").read_text("utf-8")
    path = tmp_path / "old.ome.xml"
    path.write_text(text.replace("2016-06", "2015-01"), "utf-8")
    assert _claim(path) == 0


def test_auto_routes_the_claimed_files_to_this_engine(corpus: Path) -> None:
    for rel in _claimed(corpus):
        path = str(corpus / rel)
        assert engines.choose(path, read_head(path), "auto").name == "ome-xml", rel
