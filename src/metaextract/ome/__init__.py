"""Parse, validate, normalise and summarise OME-XML — safely.

Every parser here expands no entities, loads no DTD and opens no network; the OME 2016-06 schema is
the XSD that ``ome-types`` ships (its one network import, ``xml.xsd``, is not used by OME and is
dropped before the schema is compiled).
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Callable, Hashable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_NS = {"o": OME_NS}
_lock = threading.Lock()


class UnsafeXMLError(ValueError):
    """The XML declares a DTD or entities, which we never expand."""


def safe_parser(*, huge: bool = False) -> etree.XMLParser:
    """A parser that never loads a DTD, resolves an entity or touches the network. ``huge`` lifts libxml2's
    size limits (text nodes and attributes over 10 MB, depth over 256): for documents this tool wrote."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge,
        remove_comments=False,
    )


def parse(xml: str | bytes, *, huge: bool = False) -> etree._Element:
    """Parse untrusted XML: a DOCTYPE (the carrier of every entity trick) is refused outright, whatever
    ``huge`` says (see :func:`safe_parser`)."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    head = data[:4096]
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in data.upper():
        raise UnsafeXMLError("XML declares a DTD or entities; refused (no entity is ever expanded)")
    return etree.fromstring(data, safe_parser(huge=huge))


def parse_or(xml: str | bytes, refused: Callable[[str], Exception],
             malformed: Callable[[str], Exception]) -> etree._Element:
    """:func:`parse`, its failures raised as the caller's errors: ``refused(why)`` for unsafe XML,
    ``malformed(why)`` for XML that is not well-formed."""
    try:
        return parse(xml)
    except UnsafeXMLError as exc:
        raise refused(str(exc)) from None
    except etree.XMLSyntaxError as exc:
        raise malformed(str(exc)) from None


def xsd_path() -> Path:
    """The OME 2016-06 schema shipped in the ome-types wheel (found without importing ome_types, whose
    pydantic models take a second and a half to build in every extraction process)."""
    spec = importlib.util.find_spec("ome_types")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ome-types is not installed: it ships the OME 2016-06 schema")
    return Path(spec.origin).parent / "ome-2016-06.xsd"


@cache
def _schema() -> etree.XMLSchema:
    doc = etree.parse(str(xsd_path()), safe_parser())
    root = doc.getroot()
    for imp in root.findall("{http://www.w3.org/2001/XMLSchema}import"):
        if imp.get("namespace") == "http://www.w3.org/XML/1998/namespace":
            root.remove(imp)
    return etree.XMLSchema(doc)


_ATTRIBUTE = re.compile(r'(\s[\w:.-]+)="([^"]*)"')
_INT = re.compile(r"-?(?:0|[1-9]\d{0,8})")
_FLOAT = re.compile(r"-?\d{1,15}\.\d{1,17}(?:E-?\d{1,2})?")
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|apos);")
_VALID_SHAPES: dict[Hashable, None] = {}
MAX_SHAPES = 4096
_CLASSES: dict[tuple[str, str], str] = {}
MAX_CLASSES = 1 << 16


def _class(name: str, value: str) -> str:
    """An attribute value's validity class: every value of one class is valid or invalid alike there."""
    if name == " Name":  # xsd:string wherever OME 2016-06 declares it: any well-formed text is valid
        bare = _ENTITY.sub("", value)
        if "<" not in bare and "&" not in bare and bare.isprintable():
            return "S"
        return "=" + value
    if name in (" Index", " ID"):  # the schema's keys (uniqueness) look at these
        return "=" + value
    if _INT.fullmatch(value):
        return "0" if value == "0" else "-1" if value[0] == "-" else "1"
    if _FLOAT.fullmatch(value) and value[0] != "-":
        number = float(value)
        # the facets OME uses: > 0 (PositiveFloat), >= 0 (NonNegativeFloat), <= 1 (PercentFraction)
        if number == 0:
            return "0.0"
        if 1e-30 <= number <= 1:
            return "0.5"
        if 1 < number < 1e30:
            return "2.0"
    return "=" + value


# The text of these elements, when it is of a class whose every member the schema accepts, is replaced by
# that class in a shape: an ``xsd:dateTime`` that Python reads as a date and time too (so the day exists in
# its month), and plain ``xsd:string`` text (no reference, no CDATA end, nothing unprintable but white space).
_LEAF = re.compile(r">([^<>]*)</(AcquisitionDate|Description)>")
_DATETIME = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-](?:0\d|1[0-3]):[0-5]\d)?")


def leaf(text: str, tag: str) -> str | None:
    """The class marker standing for the text of an ``AcquisitionDate`` or ``Description`` element in a
    :func:`shape`, or None when the text is compared as it is."""
    if tag == "AcquisitionDate":
        if _DATETIME.fullmatch(text) is None:
            return None
        try:
            datetime.fromisoformat(text[:19])
        except ValueError:
            return None
        return "\x00date\x00"
    if "&" in text or "]]>" in text or not text.replace("\n", "").replace("\r", "").replace("\t", "").isprintable():
        return None
    return "\x00text\x00"


def _leaf_class(m: re.Match[str]) -> str:
    marker = leaf(m.group(1), m.group(2))
    return m.group(0) if marker is None else f">{marker}</{m.group(2)}>"


def value_class(name: str, value: str) -> str:
    """:func:`_class`, remembered (a plate's documents repeat most of their values)."""
    classes = _CLASSES
    cls = classes.get((name, value))
    if cls is None:
        if len(classes) > MAX_CLASSES:
            classes.clear()
        cls = classes[(name, value)] = _class(name, value)
    return cls


def known_classes() -> dict[tuple[str, str], str]:
    """The remembered classes of :func:`value_class`, by ``(name, value)``."""
    return _CLASSES


class Written(str):
    """A document as the native OME-XML writer (:mod:`metaextract.ome.writer`) returns it: the text, plus
    ``key``, its validity shape as worked out while it was written (pass it to :func:`validate`, so the
    document is not cut up again to find it).

    ``key`` stands for the document's :func:`shape`: documents with equal keys have equal shapes, and it
    never equals a :func:`shape` tuple. Every value in the text was cleaned of what XML 1.0 forbids, so
    it need not be searched again. Any operation on the text (slicing, concatenation, ``str()``) gives a
    plain ``str``: the key never outlives the very document it was worked out for.
    """

    key: Hashable

    def __new__(cls, xml: str, key: Hashable) -> Written:
        self = super().__new__(cls, xml)
        self.key = key
        return self


def written_key(xml: str | bytes) -> Hashable | None:
    """The key the writer returned with ``xml`` (a :class:`Written`), or None for any other document."""
    return xml.key if isinstance(xml, Written) else None


def shape(xml: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``xml``'s validity shape: its text cut at every attribute value, and each value's class.

    Two documents of the same shape are valid or invalid together against OME 2016-06: they differ only
    in ``Name`` values (``xsd:string`` everywhere in the schema, and free of markup here), in numbers
    of the same lexical kind, sign and facet range (0, (0, 1], > 1), in ``AcquisitionDate`` date-times
    and in plain ``Description`` text (a plate's files differ in these); IDs, indexes, every other value,
    text and structure are kept as they are.
    """
    raw = "\x00" in xml  # never well-formed; its shape is marked so it can equal no substituted one
    if not raw and ("</AcquisitionDate>" in xml or "</Description>" in xml):
        xml = _LEAF.sub(_leaf_class, xml)
    parts = _ATTRIBUTE.split(xml)  # text, name, value, text, name, value, ..., text
    get = _CLASSES.get
    out = [get(pair) or value_class(*pair) for pair in zip(parts[1::3], parts[2::3], strict=True)]
    del parts[2::3]
    return ("\x00raw", *parts) if raw else tuple(parts), tuple(out)


def validate(xml: str | bytes, *, key: Hashable | None = None, remember: bool = True) -> tuple[bool, str | None]:
    """Validate against OME 2016-06, offline. Returns ``(valid, first error or None)``.

    With ``remember`` a document whose :func:`shape` was seen valid before is not validated again: a
    plate's files differ in names and numbers, and validation is most of a warm read's cost. ``key``: the
    shape key the writer returned with ``xml`` (:attr:`Written.key`, :func:`written_key`), which then
    stands for its :func:`shape`; without it the shape is worked out from the text.
    """
    if not remember:
        key = None
    elif key is None and isinstance(xml, str):
        key = shape(xml)
    if key is not None and key in _VALID_SHAPES:
        return True, None
    ok, why = _validate(xml)
    if ok and key is not None:
        if len(_VALID_SHAPES) >= MAX_SHAPES:
            _VALID_SHAPES.clear()
        _VALID_SHAPES[key] = None
    return ok, why


def _validate(xml: str | bytes) -> tuple[bool, str | None]:
    try:
        tree = parse(xml, huge=True)  # a document an engine produced: a 10 MB text is no reason to fail
    except (etree.XMLSyntaxError, UnsafeXMLError) as exc:
        return False, f"not well-formed: {exc}"
    with _lock:  # lxml schema objects are not safe to share between threads
        schema = _schema()
        ok = schema.validate(tree)
        if ok:
            return True, None
        err = schema.error_log.last_error
    return False, f"line {err.line}: {err.message}" if err else "invalid"


_UUID = re.compile(r"\sUUID=\"[^\"]*\"")
_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def normalise(xml: str) -> str:
    """Whitespace- and UUID-insensitive form for comparing two OME-XML documents."""
    text = _DECL.sub("", _UUID.sub("", xml.strip()))
    text = " ".join(text.split())
    return re.sub(r">\s+<", "><", text)


def ome_block(text: str) -> str | None:
    """The text from ``<OME`` to ``</OME>``, as the seed kept it from showinf's output."""
    start = text.find("<OME")
    end = text.rfind("</OME>")
    if start < 0 or end < 0:
        return None
    return text[start : end + len("</OME>")]


# -- key fields ----------------------------------------------------------------------------------------
def _num(value: str | None) -> float | int | None:
    if value is None:
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    return int(f) if f.is_integer() and "." not in value and "E" not in value.upper() else f


def _with_unit(el: etree._Element, attr: str) -> Any:
    value = el.get(attr)
    if value is None:
        return None
    unit = el.get(attr + "Unit")
    return [_num(value), unit] if unit else _num(value)


def key_fields(omexml: str | bytes) -> dict[str, Any]:
    """The fields a native engine must agree with Bio-Formats on (see the native-engines issue)."""
    root = parse(omexml, huge=True)  # an OME-XML we produced: a 10 MB description is no reason to fail
    images = []
    for image in root.findall("o:Image", _NS):
        pixels = image.find("o:Pixels", _NS)
        date = image.find("o:AcquisitionDate", _NS)
        img: dict[str, Any] = {"name": image.get("Name"), "acquisition_date": date.text if date is not None else None}
        if pixels is not None:
            img["pixels"] = {
                "dimension_order": pixels.get("DimensionOrder"),
                "type": pixels.get("Type"),
                **{f"size_{d.lower()}": _num(pixels.get(f"Size{d}")) for d in "XYZCT"},
                **{f"physical_size_{d.lower()}": _with_unit(pixels, f"PhysicalSize{d}") for d in "XYZ"},
                "significant_bits": _num(pixels.get("SignificantBits")),
            }
            img["channels"] = [
                {
                    "name": ch.get("Name"),
                    "samples_per_pixel": _num(ch.get("SamplesPerPixel")),
                    "emission_wavelength": _with_unit(ch, "EmissionWavelength"),
                    "excitation_wavelength": _with_unit(ch, "ExcitationWavelength"),
                }
                for ch in pixels.findall("o:Channel", _NS)
            ]
            img["planes"] = [
                {
                    "the_z": _num(p.get("TheZ")),
                    "the_c": _num(p.get("TheC")),
                    "the_t": _num(p.get("TheT")),
                    **{f"position_{d.lower()}": _with_unit(p, f"Position{d}") for d in "XYZ"},
                    "delta_t": _with_unit(p, "DeltaT"),
                    "exposure_time": _with_unit(p, "ExposureTime"),
                }
                for p in pixels.findall("o:Plane", _NS)
            ]
        images.append(img)
    plates = [
        {
            "name": plate.get("Name"),
            "wells": [
                {
                    "row": _num(w.get("Row")),
                    "column": _num(w.get("Column")),
                    "samples": [
                        (ws.find("o:ImageRef", _NS).get("ID") if ws.find("o:ImageRef", _NS) is not None else None)
                        for ws in w.findall("o:WellSample", _NS)
                    ],
                }
                for w in plate.findall("o:Well", _NS)
            ],
        }
        for plate in root.findall("o:Plate", _NS)
    ]
    objectives = [
        {"nominal_magnification": _num(o.get("NominalMagnification")), "lens_na": _num(o.get("LensNA"))}
        for o in root.findall("o:Instrument/o:Objective", _NS)
    ]
    return {"image_count": len(images), "images": images, "plates": plates, "objectives": objectives}


def image_summaries(omexml: str | bytes) -> list[dict[str, Any]]:
    """One flat row per image: name, sizes, type, channel names, physical sizes."""
    rows = []
    for index, img in enumerate(key_fields(omexml)["images"]):
        px = img.get("pixels") or {}
        rows.append(
            {
                "image": index,
                "name": img.get("name"),
                **{k: px.get(k) for k in ("size_x", "size_y", "size_z", "size_c", "size_t", "type")},
                "channels": [c.get("name") for c in img.get("channels", [])],
                **{k: px.get(k) for k in ("physical_size_x", "physical_size_y", "physical_size_z")},
            }
        )
    return rows
