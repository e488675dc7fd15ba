"""The czi engine's whole-document rule (issue 20): where it claims in ``auto`` and where it answers by name only.

The documents themselves are compared with Bio-Formats' in tests/test_conformance.py (the corpus) and
tests/test_differential_czi.py (edited copies against the live engine); here: the claim follows what
:mod:`metaextract.engines.czi_meta` reproduces, each reason to decline makes the claim key-fields-only (the
file goes to Bio-Formats in ``auto``, ``--engine czi`` still answers with the key fields), a DTD in the XML is
refused before any engine reads it, and the small conversions Bio-Formats makes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from metaextract import engines
from metaextract.engines.base import CLAIM, KeyFieldsOnly
from metaextract.engines.czi import inspect_czi
from metaextract.engines.czi_meta import _color, _detector_id
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields

from .test_differential_czi import metadata_segment, with_xml


def test_every_corpus_czi_the_engine_reads_is_claimed_whole(corpus: Path) -> None:
    # including the two naming a dichroic ``Beamsplitter.2076-903``, an ID the schema refuses: Bio-Formats
    # prints it as it is, and so does the engine (tests/test_conformance.py compares the documents)
    for path in sorted((corpus / "czi").glob("*.czi")):
        found = inspect_czi(str(path))
        assert found is not None and found.extras is not None
        score = engines.get("czi").claim(str(path), read_head(path))
        assert score == CLAIM
        assert not isinstance(score, KeyFieldsOnly) and found.whole, found.extras.partial
        assert engines.choose(str(path), read_head(path), "auto").name == "czi"
    tileregion = inspect_czi(str(corpus / "czi" / "1_tileregion.czi"))
    assert tileregion is not None and tileregion.extras is not None
    assert {"Dichroic": "Beamsplitter.2076-903"}.items() <= {
        el.tag: el.attrs.get("ID", "") for el in tileregion.extras.instrument.children}.items()


def edited_czi(corpus: Path, folder: Path, edit: str) -> Path:
    raw = (corpus / "czi" / "DAPI_GFP.czi").read_bytes()
    root = etree.fromstring(metadata_segment(raw)[2])
    meta, info = root.find("Metadata"), root.find(".//Information")
    assert meta is not None and info is not None
    instrument = info.find("Instrument")  # (DAPI_GFP has an empty one: Bio-Formats reads the first)
    assert instrument is not None
    if edit == "laser":
        sources = etree.SubElement(instrument, "LightSources")
        etree.SubElement(etree.SubElement(sources, "LightSource", Id="LightSource:1"), "LightSourceType").text = "Laser"
    elif edit == "roi":
        for old in meta.findall("Layers"):
            meta.remove(old)
        layer = etree.SubElement(etree.SubElement(meta, "Layers"), "Layer", Name="a")
        etree.SubElement(etree.SubElement(layer, "Elements"), "Circle")
    elif edit == "objective changer":
        hardware = etree.SubElement(meta, "HardwareSetting")
        etree.SubElement(etree.SubElement(hardware, "ObjectiveChanger"), "Objective", Model="x")
    elif edit == "microscope type":
        scopes = etree.SubElement(instrument, "Microscopes")
        etree.SubElement(etree.SubElement(scopes, "Microscope"), "Type").text = "Macroscope"  # (not seen: declined)
    elif edit == "humidity":
        etree.SubElement(etree.SubElement(info, "Environment"), "Humidity").text = "0.4"
    path = folder / edit.replace(" ", "-") / "DAPI_GFP.czi"
    path.parent.mkdir()
    path.write_bytes(with_xml(raw, etree.tostring(root)))
    return path


@pytest.mark.parametrize("edit", ["laser", "roi", "objective changer", "microscope type", "humidity"])
def test_what_is_not_reproduced_leaves_auto_to_bioformats_and_the_named_engine_to_the_key_fields(
        edit: str, corpus: Path, tmp_path: Path) -> None:
    path = edited_czi(corpus, tmp_path, edit)
    score = engines.get("czi").claim(str(path), read_head(path))
    assert score == CLAIM and isinstance(score, KeyFieldsOnly)
    assert engines.choose(str(path), read_head(path), "auto").name == "bioformats"
    named = extract_file(str(path), "czi")
    original = extract_file(str(corpus / "czi" / "DAPI_GFP.czi"), "czi")
    assert named.status == "ok" and named.engine == "czi" and named.valid
    assert key_fields(named.omexml or "") == key_fields(original.omexml or "")
    assert "<Experimenter" not in (named.omexml or "") and "<Experimenter" in (original.omexml or "")


def test_a_dtd_in_the_metadata_segment_is_refused_before_any_engine(corpus: Path, tmp_path: Path) -> None:
    raw = (corpus / "czi" / "DAPI_GFP.czi").read_bytes()
    xml = b'<!DOCTYPE ImageDocument [<!ENTITY e "boom">]>' + metadata_segment(raw)[2]
    path = tmp_path / "dtd.czi"
    path.write_bytes(with_xml(raw, xml))
    for engine in ("auto", "czi"):
        result = extract_file(str(path), engine)
        assert result.status == "failed" and "DTD" in (result.error or "") and result.omexml is None


def test_display_colours_and_detector_ids_as_bioformats_writes_them() -> None:
    assert _color("#FFFF7E00") == "-8519425"  # alpha dropped, then RGBA as a signed int
    assert _color("#00FF00") == "16711935"
    assert _color("#FFFFFFFF") == "-1"
    assert _color("not a colour") is None
    assert _detector_id("Detector:Axiocam 506") == "Detector:Axiocam506"
    assert _detector_id("Internal") == "Detector:Internal"
    assert _detector_id("Detector:1:0") == "Detector:1:0"
