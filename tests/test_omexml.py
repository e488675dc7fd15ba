"""The native engines' OME-XML writer: a templated document is the document its builder writes, and the
validity shape it tells validation stands for the document's own."""

from __future__ import annotations

import itertools

import pytest

from metaextract import ome
from metaextract.ome import writer as ox


def _build(v: ox.Values) -> ox.El:
    attrs = {"ID": "Image:0"}
    if v["name"] is not None:
        attrs["Name"] = str(v["name"])
    image = ox.El("Image", attrs)
    if v["date"] is not None:
        image.add(ox.El("AcquisitionDate", text=str(v["date"])))
    if v["text"] is not None:
        image.add(ox.El("Description", text=str(v["text"])))
    pixels = image.add(ox.pixels(pixel_type="uint8", size=(str(v["x"]), "4", 1, 1, 1), big_endian=False,
                                 significant_bits=8, physical=(None if v["px"] is None else str(v["px"]), None, None)))
    pixels.add(ox.channel(0, 0, 1))
    pixels.add(ox.El("MetadataOnly"))
    if v["plane"]:
        pixels.add(ox.El("Plane", {"TheC": "0", "TheT": "0", "TheZ": "0"}))
    return image


NAMES = ["DAPI", "Cy5 & more", 'say "hi"', "100%", "%s %d", "tab\there", "a\x01b", None, ""]
DATES = ["2016-05-01T09:30:45", "2016-02-30T09:30:45", "2016-05-01 09:30:45", None]
TEXTS = ["Exposure: 20 ms", "line one\nline two", 'x="y" & z', "a ]]> b", "<b>", "", None, "bell\x07"]
NUMBERS = [("6", "0.65"), ("9", "0.1"), ("0", "2.5"), ("12", None), ("7", "-1.0")]


def _variants() -> list[ox.Values]:
    out = []
    for name, date, text, (x, px), plane in itertools.product(NAMES, DATES, TEXTS, NUMBERS, (False, True)):
        out.append({"name": name, "date": date, "text": text, "x": x, "px": px, "plane": plane})
    return out[::7]  # a spread over all of them, every value of each list included


def test_a_templated_document_is_the_document_its_builder_writes() -> None:
    variants = _variants()
    assert len(variants) > 300
    seen: dict[object, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for values in variants:
        xml = ox.templated(_build, values)
        told = ome.written_key(xml)
        assert xml == ox.document(_build(values)), values
        assert told is not None
        shape = ome.shape(xml)
        if told in seen:
            assert seen[told] == shape, values  # one key, one shape: the memo answers for both alike
        seen[told] = shape
        assert ome.validate(xml, key=told) == ome.validate(xml, remember=False), values
    plate = [{"name": name, "date": f"2016-05-0{day}T09:30:45", "text": f"Exposure: {ms} ms", "x": x, "px": px,
              "plane": True} for name, day, ms, x, px in (("DAPI", 1, 20, "6", "0.65"), ("FITC", 2, 35, "9", "0.1"))]
    keys = []
    for values in plate:
        xml = ox.templated(_build, values)
        keys.append(ome.written_key(xml))
    assert keys[0] is not None and keys[0] == keys[1]  # a plate's documents share one key: validated once


def test_a_builder_that_changes_repeats_or_drops_a_value_is_refused() -> None:
    def extends(v: ox.Values) -> ox.El:
        return ox.El("Image", {"ID": "Image:0", "Name": f"{v['name']}!"})

    def repeats(v: ox.Values) -> ox.El:
        return ox.El("Image", {"ID": "Image:0", "Name": str(v["name"])}, [ox.El("Description", text=str(v["name"]))])

    def drops(v: ox.Values) -> ox.El:
        return ox.El("Image", {"ID": "Image:0"})

    with pytest.raises(ValueError, match="as it is"):
        ox.templated(extends, {"name": "a"})
    for build in (repeats, drops):
        with pytest.raises(ValueError, match="each value once"):
            ox.templated(build, {"name": "a"})
