"""Time-boxed fuzzing (hypothesis) of the native TIFF path (sanity's IFD walk, the tifffile engine's
claim/extract) and of OME-XML parsing; each test is bounded to ~15 s so the whole run stays near a minute."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from metaextract import ome
from metaextract.engines.base import ExtractionError
from metaextract.extraction import sanity

from .hostile import ome_xml, tiff_bytes

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SEED_TIFFS = [tiff_bytes(), tiff_bytes(pages=3), tiff_bytes(description=ome_xml(size_z=2))]


@st.composite
def mutated_tiff(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_TIFFS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["byte", "u32", "cut"]))
        if kind == "byte":
            data[at] = draw(st.integers(0, 255))
        elif kind == "u32" and at + 4 <= len(data):
            data[at:at + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 8, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                                                                     len(data), len(data) - 2])))
        else:
            del data[max(8, at):]
    return bytes(data)


@FUZZ
@given(data=mutated_tiff())
def test_sanity_never_raises_on_mutated_tiffs(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.tif"
    path.write_bytes(data)
    for verdict in (sanity.check(str(path), data[:4096], ""), sanity.refuse(str(path), data[:4096])):
        assert verdict is None or (isinstance(verdict, str) and "\n" not in verdict)


@FUZZ
@given(data=mutated_tiff())
def test_tifffile_engine_never_crashes_its_caller(tmp_path: Path, data: bytes) -> None:
    from metaextract import engines

    if "tifffile" not in engines.available():  # the native engine is optional
        return
    eng = engines.get("tifffile")
    path = tmp_path / "f.tif"
    path.write_bytes(data)
    claim = eng.claim(str(path), data[:4096])  # must not raise (the worker dies if it does)
    assert isinstance(claim, int)
    if claim > 0:
        try:
            xml = eng.extract(str(path))
        except ExtractionError:
            return
        ome.parse(xml)


XML_PIECES = st.sampled_from([
    "<OME>", "</OME>", "<Image ID='Image:0'>", "</Image>", "<!DOCTYPE OME [", "<!ENTITY x SYSTEM 'file:///etc/passwd'>",
    "]>", "&x;", "&amp;", "<![CDATA[", "]]>", "<?xml version='1.0'?>", "<!--", "-->", "\x00", "\udcff", "é",
    "<a>" * 50, "</a>" * 50, " xmlns='http://www.openmicroscopy.org/Schemas/OME/2016-06'", "<Pixels SizeX='-1'/>",
])


@FUZZ
@given(parts=st.lists(XML_PIECES | st.text(max_size=20), max_size=30))
def test_ome_parsing_refuses_or_parses_never_crashes(parts: list[str]) -> None:
    text = "".join(parts)
    data = text.encode("utf-8", "replace")
    try:
        root = ome.parse(data)
    except (etree.XMLSyntaxError, ome.UnsafeXMLError):
        pass
    else:
        assert "root:x:0" not in etree.tostring(root).decode()  # no entity was expanded
    valid, why = ome.validate(data)
    assert valid or why


def test_regression_first_ifd_beyond_the_end(tmp_path: Path) -> None:
    """Found while building the hostile corpus: the IFD offset points past the end of the file."""
    path = tmp_path / "f.tif"
    data = b"II*\x00" + struct.pack("<I", 1 << 30) + bytes(64)
    path.write_bytes(data)
    assert "beyond the end of the file" in (sanity.check(str(path), data, "") or "")


def test_regression_tifffile_claim_on_a_tiff_cut_after_its_header(tmp_path: Path) -> None:
    """Found by the fuzz run: an 8-byte TIFF (first IFD at the end of the file) made the tifffile engine's
    ``claim`` raise IndexError, which killed the extraction process (``engines.choose`` is unguarded)."""
    from metaextract import engines

    path = tmp_path / "cut.tif"
    path.write_bytes(b"II*\x00\x08\x00\x00\x00")
    for name in engines.available():
        assert engines.get(name).claim(str(path), path.read_bytes()) >= 0
