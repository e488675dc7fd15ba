"""OME-XML parsing is safe and offline; validation uses the shipped XSD; key fields are stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaextract.ome import UnsafeXMLError, key_fields, normalise, ome_block, parse, shape, validate


def test_reference_samples_validate_offline(corpus: Path) -> None:
    samples = sorted((corpus / "ome-xml-reference").glob("*.ome.xml"))
    assert len(samples) == 32
    results = {p.name: validate(p.read_bytes()) for p in samples}
    valid = [name for name, (ok, _) in results.items() if ok]
    assert len(valid) >= 28, {k: v for k, v in results.items() if not v[0]}


def test_invalid_xml_is_reported() -> None:
    ok, why = validate('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Bogus/></OME>')
    assert not ok and why and "Bogus" in why


@pytest.mark.parametrize(
    "xml",
    [
        '<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><OME>&b;</OME>',
        '<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY x SYSTEM "file:///etc/passwd">]><OME>&x;</OME>',
        '<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><OME>&x;</OME>',
    ],
    ids=["bomb", "file", "http"],
)
def test_entities_are_never_expanded(xml: str) -> None:
    with pytest.raises(UnsafeXMLError):
        parse(xml)
    ok, why = validate(xml)
    assert not ok and "DTD" in (why or "")


def test_normalise_ignores_uuid_and_whitespace() -> None:
    a = '<?xml version="1.0"?>\n<OME UUID="urn:uuid:1">\n   <Image ID="Image:0"/>\n</OME>'
    b = '<OME UUID="urn:uuid:2"><Image ID="Image:0"/></OME>'
    assert normalise(a) == normalise(b)
    assert normalise(a) != normalise(b.replace("Image:0", "Image:1"))
    assert ome_block("junk\n" + b + "\ntrailer") == b


def test_key_fields_of_hcs_sample(corpus: Path) -> None:
    fields = key_fields((corpus / "ome-xml-reference" / "hcs.ome.xml").read_bytes())
    assert fields["image_count"] == len(fields["images"]) >= 1
    assert fields["plates"] and fields["plates"][0]["wells"]
    px = fields["images"][0]["pixels"]
    assert {"size_x", "size_y", "size_z", "size_c", "size_t", "type", "dimension_order"} <= set(px)


_SHAPED = ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Instrument ID="Instrument:0">'
           '<Filter ID="Filter:0"><TransmittanceRange Transmittance="{tr}"/></Filter></Instrument>'
           '<Image ID="Image:0" Name="{name}"><Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="1" SizeT="1" '
           'SizeX="{x}" SizeY="4" SizeZ="1" Type="uint8" PhysicalSizeX="{px}"><Channel ID="Channel:0:0">'
           '<LightPath/></Channel><MetadataOnly/></Pixels></Image></OME>')


@pytest.mark.parametrize(("a", "b", "same"), [
    ({"name": "DAPI", "x": 6, "px": "0.65", "tr": "0.5"},
     {"name": "Cy5 &amp; more", "x": 9, "px": "0.1", "tr": "0.9"}, True),
    ({"name": "a", "x": 6, "px": "0.65", "tr": "0.5"}, {"name": "a", "x": 0, "px": "0.65", "tr": "0.5"}, False),
    ({"name": "a", "x": 6, "px": "0.65", "tr": "0.5"}, {"name": "a", "x": 6, "px": "0.0", "tr": "0.5"}, False),
    ({"name": "a", "x": 6, "px": "0.65", "tr": "0.5"}, {"name": "a", "x": 6, "px": "0.65", "tr": "1.5"}, False),
    ({"name": "a", "x": 6, "px": "0.65", "tr": "0.5"}, {"name": "a", "x": 6, "px": "-0.65", "tr": "0.5"}, False),
    ({"name": "a", "x": 6, "px": "0.65", "tr": "0.5"}, {"name": "a\x01", "x": 6, "px": "0.65", "tr": "0.5"}, False),
])
def test_documents_of_one_shape_are_valid_alike(a: dict[str, object], b: dict[str, object], same: bool) -> None:
    """The validation memo may answer for a document only when the schema would answer the same."""
    xa, xb = _SHAPED.format(**a), _SHAPED.format(**b)
    assert (shape(xa) == shape(xb)) is same
    assert validate(xa, remember=False)[0]
    fresh = validate(xb, remember=False)
    assert validate(xb) == fresh
    if not same:
        assert not fresh[0]  # each pair that differs in shape differs in validity too


_DATED = ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="a">'
          '<AcquisitionDate>{date}</AcquisitionDate><Description>{text}</Description>'
          '<Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="1" SizeT="1" SizeX="4" SizeY="4" SizeZ="1" '
          'Type="uint8"><Channel ID="Channel:0:0"><LightPath/></Channel><MetadataOnly/></Pixels></Image></OME>')


@pytest.mark.parametrize(("date", "text", "valid"), [
    ("2016-05-01T09:30:45", "Exposure: 20 ms", True),
    ("2024-12-31T23:59:59.123456", "", True),
    ("2016-05-01T09:30:45+02:00", "line one\nline two", True),
    ("2016-02-30T09:30:45", "x", False),  # no such day
    ("2016-05-01 09:30:45", "x", False),  # not xsd:dateTime
    ("0000-05-01T09:30:45", "x", False),  # no year zero
    ("2016-05-01T09:30:45", "a ]]&gt; b", True),  # a reference: compared as it is
    ("2016-05-01T09:30:45", "\x00date\x00", False),  # NUL: never well-formed, never equal to a class
])
def test_plate_dates_and_descriptions_share_a_shape_only_when_valid_alike(date: str, text: str, valid: bool) -> None:
    base = _DATED.format(date="2016-05-01T09:30:45", text="Exposure: 20 ms")
    doc = _DATED.format(date=date, text=text)
    assert validate(base, remember=False) == (True, None)
    fresh = validate(doc, remember=False)
    assert fresh[0] is valid, fresh
    assert validate(doc) == fresh  # the memo never answers otherwise than the schema
    if not valid:
        assert shape(doc) != shape(base)
    elif "&" not in text:
        assert shape(doc) == shape(base)  # a plate's dates and descriptions are validated once


def test_remembered_validation_agrees_on_the_reference(reference: Path) -> None:
    docs = [p.read_text(encoding="utf-8") for p in sorted(reference.rglob("*.xml"))]
    assert len(docs) >= 90
    for xml in docs + docs:  # the second pass answers from the memo
        assert validate(xml) == validate(xml, remember=False)


def _written_doc(name: str, x: str, px: str, date: str | None, text: str | None) -> tuple[str, object]:
    """A document from the native engines' writer, and the key it returned with it."""
    from metaextract.ome import writer as ox
    from metaextract.ome import written_key

    image = ox.El("Image", {"ID": "Image:0", "Name": name})
    if date is not None:
        image.add(ox.El("AcquisitionDate", text=date))
    if text is not None:
        image.add(ox.El("Description", text=text))
    pixels = image.add(ox.pixels(pixel_type="uint8", size=(int(x), 4, 1, 1, 1), big_endian=False, significant_bits=8,
                                 physical=(float(px), None, None)))
    pixels.add(ox.channel(0, 0, 1, Name=name))
    pixels.add(ox.El("MetadataOnly"))
    xml = ox.document(image)
    return xml, written_key(xml)


_VARIANTS = [
    ("DAPI", "6", "0.65", "2016-05-01T09:30:45", "Exposure: 20 ms"),
    ("Cy5 & more", "9", "0.1", "2024-12-31T23:59:59.123", "line one\nline two"),
    ("a", "1", "2.5", None, None),
    ("100%", "7", "0.3", "2016-05-01T09:30:45", 'x="y" & looks like an attribute'),
    ("b", "8", "0.25", "2016-05-01T09:30:45", 'z="w" & looks like an attribute'),
    ("c", "6", "0.65", "2016-02-30T09:30:45", "x"),  # no such day: invalid
    ("d", "6", "0.65", "2016-05-01 09:30:45", "x"),  # not xsd:dateTime: invalid
    ("e", "6", "0.65", "2016-05-01T09:30:45", "a ]]> b"),
    ("f\x01", "6", "0.65", None, None),  # not a character XML allows: dropped, as Bio-Formats drops it
    ("g", "6", "0.65", None, "bell\x07"),
    ("h", "6", "0.65", None, "nul\x00"),  # dropped too: the document is well-formed, its key told
]


def test_written_documents_share_a_key_only_when_their_shapes_are_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's key stands in for ome.shape in the validation memo: equal keys must mean equal shapes,
    and what the memo answers must be what the schema answers."""
    docs = [_written_doc(*v) for v in _VARIANTS]
    assert all(key is not None for _, key in docs)
    for xa, ka in docs:
        for xb, kb in docs:
            if ka is not None and ka == kb:
                assert shape(xa) == shape(xb)
    assert docs[0][1] == docs[1][1]  # a plate's names, numbers, dates and plain texts share one key
    assert docs[3][1] != docs[4][1]  # text with a reference is kept as it is, even where it looks like an attribute
    fresh = [validate(xml, remember=False) for xml, _ in docs]
    assert [ok for ok, _ in fresh] == [True, True, True, True, True, False, False, True, True, True, True]
    import metaextract.ome as ome_module

    def no_cutting(xml: str) -> object:
        raise AssertionError("a written document was cut up again")

    monkeypatch.setattr(ome_module, "_VALID_SHAPES", {})
    for i, (xml, key) in enumerate(docs[:-1]):
        again, told = _written_doc(*_VARIANTS[i])
        assert (again, told) == (xml, key)
        with monkeypatch.context() as m:
            m.setattr(ome_module, "shape", no_cutting)
            assert validate(xml, key=key) == fresh[i]  # answered from the key the writer returned, memo or not
