"""The OME engine: standalone OME-XML files, OME-TIFFs and OME-TIFF sets, as Bio-Formats 7.3.1 reports them.

Bio-Formats does not echo an OME document: its reader parses the XML into the OME model, copies that
model into a fresh metadata store (``MetadataConverter``) and then overwrites what the reader's core
metadata says (``MetadataTools.populatePixels``). This engine reproduces that round trip on the
parsed tree, driven by the OME 2016-06 schema that ``ome-types`` ships:

* comments and processing instructions are dropped; children are written in schema order (members
  of a substitution group - light sources, shapes - alphabetically, as the Java model lists them);
* every ``xsd:float``/``xsd:double`` attribute is spelled as Java's ``Double.toString`` spells it, a
  unit attribute with a schema default is added next to its value, timestamps are written in UTC;
* Image, Pixels and Channel IDs become ``Image:i``, ``Pixels:i`` and ``Channel:i:c``; ``Pixels`` gets
  ``BigEndian``, ``Interleaved="false"`` and ``SignificantBits``; each image gets ``SizeC /
  samples`` channels with ``SamplesPerPixel`` and an empty ``LightPath``; a plate without a name gets
  ``Name=""``;
* OME-XML: ``BinData`` in ``Pixels`` keeps its attributes but loses its content and gets
  ``Length="0"`` (the first one's ``BigEndian`` is the reader's byte order: the ``Pixels``
  ``BigEndian``, else the first ``BinData``'s, else false; with no ``BinData`` in the file at all
  Bio-Formats says big-endian);
* OME-TIFF: the byte order of every image, and image 0's pixel type where it differs, come from the first
  IFD of the TIFF that was opened (for a ``.companion.ome``, of the file the first image's first ``TiffData``
  names), so a file of a set that holds only another image's planes reports image 0 in that image's type;
  samples per pixel come from each image's ``Channel``, except where the reader "adjusts" them to that IFD
  (image 0 disagreeing with it, and the image after an adjusted one of several channels): SizeC is then
  recounted as the reader does (``_adjusted_core``); the description is first sanitised as
  ``XMLTools.sanitizeXML`` does (the ``&`` of every ``&#`` becomes a space);
* text as the printer (``XMLTools.indentXML``) leaves it: every text between two tags cut with Java's
  ``String.trim()`` (mixed text in an XMLAnnotation's Value too: "a <b>space</b>" is printed
  "a<b>space</b>"), a carriage return printed as a line end, and a line end, carriage return or tab in
  an attribute as a space; an XMLAnnotation's Value is copied as written, each element with the namespace
  declarations it carries (one whose prefix only an element outside the Value declares is declined:
  Bio-Formats prints it undeclared and fails).

OME-TIFF sets are read as ``OMETiffReader`` resolves them (every file of a set describes the whole set):

* a TIFF whose XML maps planes to other files (``TiffData``/``UUID FileName``): its own XML, once every
  file named is in the folder, each UUID names one file, and every plane is one IFD of its file with the
  Pixels' size, type and samples, each plane mapped once, all files of one byte order;
* a ``BinaryOnly`` TIFF whose ``MetadataFile`` is in the folder: that file's XML (an OME-TIFF's
  description, or the file itself, e.g. a ``.companion.ome``), with the checks above; a
  ``.companion.ome`` itself the same way;
* a ``BinaryOnly`` TIFF whose metadata file is not in the folder, and an OME-TIFF whose XML is not
  well-formed: Bio-Formats' OME-TIFF reader refuses them and its TIFF reader answers, so the engine
  writes that plain-TIFF document (file name, description, ``MetadataOnly``), only for TIFFs with plain
  tags (the tifffile engine's, and DocumentName/PageNumber) and pages of one shape.

A ``FileName``/``MetadataFile`` that is not a bare name in the file's folder (or a link resolving out
of it) is refused; no other file is read. Sets are tested against live Bio-Formats on files written by
tifffile (``tests/test_engines_ome.py``).

Documents of older schemas (2008-02 in its plainest form, 2010-06 to 2015-01) are first upgraded as
Bio-Formats' XSLT chain upgrades them (``_ome_upgrade``, which says what it proves), children put in
2016-06 schema order; an upgraded standalone document may keep ``TiffData`` (the OME-XML reader leaves
it as written). A ``UUID FileName`` that is not in the folder means the opened file when the UUID is
the document's own and no other file is used (the spec samples name the file they were renamed from).

What it cannot prove, it declines (``claim`` returns 0 and Bio-Formats reads the file): documents
of other schema versions or with constructs the upgrade has not proven, documents that are not valid
against the 2016-06 schema, sets with a missing or disagreeing file, a UUID without ``FileName`` that
is not the document's own (or is an image's first, beside a first Channel without a Name: Bio-Formats
fails), ``TiffData`` without ``PlaneCount`` beside others, planes mapped twice or beyond the dimensions
(Bio-Formats guesses 1-based indexes), a metadata file that is ``BinaryOnly`` itself, an adjusted
image in a single file (the reader recounts its planes from the TIFF), several channels without
``SamplesPerPixel``,
Micro-Manager/ImageJ OME-TIFFs (other readers), pyramids, TIFFs whose IFDs do not match the XML, and
images whose ID changes while something refers to it.
Embedded XML with a DTD or entities is refused outright.

Key fields (``metaextract.ome.key_fields``) agree with Bio-Formats on every claimed corpus file; the
whole document agrees after ``normalise`` on all but one (``tests/test_engines_ome.py`` says why).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from lxml import etree

from metaextract import ome
from metaextract.engines.base import (
    Claim,
    ContextEngine,
    ExtractionError,
    FileContext,
    UnsupportedFormatError,
    package_version,
)
from metaextract.engines.tiff import common, plain
from metaextract.extraction import fence
from metaextract.ome import upgrade
from metaextract.ome import writer as ox
from metaextract.ome.writer import jdouble

NAME = "ome-xml"
CLAIM = 60  # content evidence (an OME 2016-06 document, or a TIFF whose description is one)
NS = ome.OME_NS
_Q = "{" + NS + "}"
XSD = "{http://www.w3.org/2001/XMLSchema}"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} {NS}/ome.xsd"
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
MAX_XML = 64 << 20
_FLOATS = frozenset({"float", "double"})
_BOOLEANS = frozenset({"boolean"})
_DATES = frozenset({"dateTime"})
#: TIFF tags that make Bio-Formats pick another reader than the OME-TIFF one (Micro-Manager, ImageJ …)
_FOREIGN_TAGS = frozenset({50838, 50839, 51123, 33628, 33629, 33630, 34412, 34361, 65000})
BITS = {"int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "float": 32,
         "double": 64}
DTYPES = {"int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32",
           "uint32": "uint32", "float": "float32", "double": "float64"}
_TYPE_OF_DTYPE = {dtype: typ for typ, dtype in DTYPES.items()}


class Decline(Exception):
    """The document holds something whose Bio-Formats rendering this engine has not proven."""


# -- the schema -----------------------------------------------------------------------------------------
@dataclass
class _Schema:
    """What the round trip needs from the OME 2016-06 XSD, by element name."""

    attrs: dict[str, dict[str, tuple[str, str | None]]] = field(default_factory=dict)
    order: dict[str, dict[str, int]] = field(default_factory=dict)


def _local(name: str) -> str:
    return name.split(":", 1)[-1]


@cache
def schema() -> _Schema:
    doc = etree.parse(str(ome.xsd_path()), ome.safe_parser()).getroot()
    simple: dict[str, str] = {}
    for st in doc.iter(XSD + "simpleType"):
        name = st.get("name")
        restriction = st.find(XSD + "restriction")
        if name and restriction is not None and restriction.get("base"):
            simple[name] = _local(str(restriction.get("base")))
    complex_types = {ct.get("name"): ct for ct in doc.findall(XSD + "complexType") if ct.get("name")}
    top = {el.get("name"): el for el in doc.findall(XSD + "element") if el.get("name")}
    groups: dict[str, list[str]] = {}
    for el in doc.iter(XSD + "element"):
        head = el.get("substitutionGroup")
        if head and el.get("name"):
            groups.setdefault(_local(head), []).append(str(el.get("name")))

    def base_type(name: str) -> str:
        seen = 0
        while name in simple and seen < 20:
            name, seen = simple[name], seen + 1
        return name

    out = _Schema()

    def collect(ct: Any, attrs: dict[str, tuple[str, str | None]], children: list[str], depth: int = 0) -> None:
        if ct is None or depth > 10:
            return
        for ext in ct.iter(XSD + "extension"):
            base = ext.get("base")
            if base and _local(base) in complex_types:
                collect(complex_types[_local(base)], attrs, children, depth + 1)
            break
        for node in ct.iter():
            if node.tag == XSD + "attribute" and node.get("name"):
                typ = node.get("type")
                if typ is None:
                    restriction = node.find(f"{XSD}simpleType/{XSD}restriction")
                    typ = restriction.get("base") if restriction is not None else "string"
                attrs[str(node.get("name"))] = (base_type(_local(str(typ))), node.get("default"))
            elif node.tag == XSD + "element":
                ref, name = node.get("ref"), node.get("name")
                target = _local(ref) if ref else name
                if target is None:
                    continue
                if target in groups:
                    children.extend(sorted(groups[target]))
                children.append(target)

    seen: set[tuple[int | None, str]] = set()

    def visit(name: str, el: Any) -> None:
        # an element name can be declared more than once (``Value`` of each annotation type): merged
        key = (el.sourceline, name)
        if key in seen:
            return
        seen.add(key)
        attrs = out.attrs.setdefault(name, {})
        children: list[str] = []
        ct = el.find(XSD + "complexType")
        if ct is None and el.get("type") and _local(str(el.get("type"))) in complex_types:
            ct = complex_types[_local(str(el.get("type")))]
        collect(ct, attrs, children)
        order = out.order.setdefault(name, {})
        for child in children:
            order.setdefault(child, len(order))
        if ct is not None:
            for local in ct.iter(XSD + "element"):
                if local.get("name"):
                    visit(str(local.get("name")), local)
        for child in children:
            if child in top:
                visit(child, top[child])

    for name, el in top.items():
        visit(str(name), el)
    return out


# -- value spellings ------------------------------------------------------------------------------------
def _java_double(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        raise Decline(f"not a number: {text!r}") from None
    return jdouble(value)


_STAMP = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def _java_timestamp(text: str) -> str:
    """A timestamp as the Java model writes it back: in UTC, without a zone, a fraction of a second cut to
    milliseconds (three digits; none when they are 0), as live Bio-Formats 7.3.1 wrote ``.5``, ``.123456``,
    ``.9999``, ``.0001`` and ``.12Z`` (differential variants, ``tests/test_differential_ome.py``)."""
    m = _STAMP.fullmatch(text.strip())
    if m is None:
        raise Decline(f"timestamp {text!r}")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    milli_text = f".{millis:03d}" if millis else ""
    plain = f"{year}-{month}-{day}T{hour}:{minute}:{second}"
    if zone in (None, "Z", "+00:00", "-00:00"):
        return plain + milli_text
    if not 1 < int(year) < 9999:
        raise Decline(f"timestamp with a zone far from now: {text!r}")
    stamp = datetime.fromisoformat(plain + zone).astimezone(UTC)
    return (f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:"
            f"{stamp.second:02d}{milli_text}")


def _fix_attributes(el: Any, name: str, schema: _Schema) -> None:
    known = schema.attrs.get(name)
    if known is None:
        raise Decline(f"element {name} is not in the schema")
    for attr in list(el.attrib):
        if attr.startswith("{"):
            continue
        if attr not in known:
            raise Decline(f"attribute {name}/@{attr} is not in the schema")
        typ = known[attr][0]
        value = el.get(attr)
        if typ in _FLOATS:
            el.set(attr, _java_double(value))
        elif typ in _BOOLEANS and value not in ("true", "false"):
            raise Decline(f"boolean {name}/@{attr}={value!r}")
        elif typ in _DATES:
            el.set(attr, _java_timestamp(value))
    for attr, (_typ, default) in known.items():
        if attr.endswith("Unit") and default is not None and el.get(attr) is None \
                and el.get(attr[:-4]) is not None:
            el.set(attr, default)


def round_trip(el: Any, schema: _Schema) -> None:
    """Comments gone, attributes as the Java model writes them, children in schema order (in place)."""
    for child in list(el):
        if not isinstance(child.tag, str):
            el.remove(child)  # comments and processing instructions
    name = etree.QName(el).localname
    if el.tag.startswith(_Q):
        _fix_attributes(el, name, schema)
    parent = el.getparent()
    parent_name = etree.QName(parent).localname if parent is not None else ""
    is_stamp = name == "AcquisitionDate" or (name == "Value" and parent_name == "TimestampAnnotation")
    if is_stamp and el.text:
        el.text = _java_timestamp(el.text)
    if name == "Value" and parent_name == "XMLAnnotation":
        for sub in list(el.iter()):
            if sub is not el and not isinstance(sub.tag, str):
                sub.getparent().remove(sub)
        return
    children = list(el)
    if not children:
        return
    order = schema.order.get(name, {})
    for child in children:
        if not child.tag.startswith(_Q):
            raise Decline(f"foreign element in {name}")
        if etree.QName(child).localname not in order:
            raise Decline(f"{etree.QName(child).localname} in {name} is not in the schema")
        round_trip(child, schema)
    ranked = sorted(children, key=lambda c: order[etree.QName(c).localname])
    if ranked != children:
        for child in children:
            el.remove(child)
        text = el.text
        el.extend(ranked)
        el.text = text


# -- the Bio-Formats core step --------------------------------------------------------------------------
@dataclass
class Core:
    """What a Bio-Formats reader's core metadata says about one image."""

    big_endian: bool
    bits: int
    samples: int = 1
    pixel_type: str | None = None  #: the type the reader reports when it is not the Pixels' own
    size_c: int | None = None  #: the SizeC the reader reports when it is not the Pixels' own


def _sub(parent: Any, name: str, before: tuple[str, ...] = ()) -> Any:
    """A new child ``name`` of ``parent``, placed before the first child named in ``before``."""
    el = etree.Element(_Q + name)
    for index, child in enumerate(parent):
        if etree.QName(child).localname in before:
            parent.insert(index, el)
            return el
    parent.append(el)
    return el


def populate(root: Any, cores: list[Core]) -> None:
    """``MetadataTools.populatePixels``: IDs, byte order, bits, channels (in place)."""
    images = root.findall(_Q + "Image")
    if len(images) != len(cores):
        raise Decline("image count")
    refs = {r.get("ID") for r in root.iter(_Q + "ImageRef")}
    for index, (image, core) in enumerate(zip(images, cores, strict=True)):
        new_id = f"Image:{index}"
        if image.get("ID") != new_id:
            if image.get("ID") in refs:
                raise Decline("an image whose ID Bio-Formats rewrites is referred to")
            image.set("ID", new_id)
        pixels = image.find(_Q + "Pixels")
        if pixels is None:
            raise Decline("image without pixels")
        pixels.set("ID", f"Pixels:{index}")
        pixels.set("BigEndian", "true" if core.big_endian else "false")
        pixels.set("Interleaved", "false")
        pixels.set("SignificantBits", str(core.bits))
        if core.pixel_type is not None:
            pixels.set("Type", core.pixel_type)
        if core.size_c is not None:
            pixels.set("SizeC", str(core.size_c))
        bins = pixels.findall(_Q + "BinData")
        if bins:
            bins[0].set("BigEndian", "true" if core.big_endian else "false")
        size_c = int(pixels.get("SizeC", "0"))
        if core.samples < 1 or size_c % core.samples:
            raise Decline("channels do not divide by samples")
        channels = pixels.findall(_Q + "Channel")
        wanted = size_c // core.samples
        if len(channels) > wanted:
            raise Decline("more Channel elements than channels")
        for c in range(wanted):
            if c < len(channels):
                channel = channels[c]
            else:
                channel = _sub(pixels, "Channel", ("BinData", "TiffData", "MetadataOnly", "Plane"))
                channels.append(channel)
            channel.set("ID", f"Channel:{index}:{c}")
            channel.set("SamplesPerPixel", str(core.samples))
            if channel.find(_Q + "LightPath") is None:
                _sub(channel, "LightPath", ("AnnotationRef",))
    for plate in root.findall(_Q + "Plate"):
        if plate.get("Name") is None:
            plate.set("Name", "")


# -- writing --------------------------------------------------------------------------------------------
#: What ``XMLTools.sanitizeXML`` turns into a space in a document before Bio-Formats parses it: characters XML
#: 1.0 forbids (none survive lxml's parser) and the C1 controls DEL to U+009F, which XML allows but
#: Bio-Formats does not keep (``tests/test_storable.py`` checks it against the live engine).
_SPACED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def _escape_attr(text: str) -> str:
    """An attribute value as Bio-Formats prints it: a line end, carriage return or tab in it (``&#10;``,
    ``&#13;``, ``&#9;`` in the file) is printed as a space (the differential test draws them)."""
    return (_SPACED.sub(" ", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\n", " ").replace("\r", " ").replace("\t", " "))


def _escape_text(text: str) -> str:
    """Text as Bio-Formats prints it (before :func:`_printed` trims it): a carriage return (``&#13;`` in the
    file) is printed as a line end, white space like any other (the differential test draws it)."""
    return (_SPACED.sub(" ", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "\n"))


def _qname(name: str, el: Any) -> str:
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    if uri == "http://www.w3.org/XML/1998/namespace":
        return "xml:" + local
    for prefix, value in el.nsmap.items():
        if value == uri:
            return f"{prefix}:{local}" if prefix else local
    return local


#: a start tag as lxml serialises it (attribute values in double quotes, ``"`` and ``<`` escaped in them)
_START_TAG = re.compile(r'<([^\s/>!?]+)((?:\s+[^\s=]+="[^"]*")*)\s*/?>')
_DECLARATION = re.compile(r'\s(xmlns(?::[^\s=]+)?)="([^"]*)"')


def _declarations(value: Any) -> dict[Any, list[tuple[str, str]]]:
    """The namespace declarations each element below an XMLAnnotation's ``value`` carries as written,
    a redundant one (a prefix its parent binds alike) included: lxml keeps them per node and writes them
    so, element by element in document order, when it serialises the Value."""
    tags = _START_TAG.findall(etree.tostring(value, encoding="unicode", with_tail=False))[1:]
    elements = [el for el in value.iterdescendants() if isinstance(el.tag, str)]
    if len(tags) != len(elements):
        raise Decline("an XMLAnnotation Value whose tags cannot be told apart")
    return {el: _DECLARATION.findall(" " + attrs) for el, (_, attrs) in zip(elements, tags, strict=True)}


def _write(el: Any, out: list[str], depth: int, declared: dict[str | None, str],
           in_value: dict[Any, list[tuple[str, str]]] | None = None) -> None:
    """``el`` as Bio-Formats prints it; ``in_value`` (inside an XMLAnnotation's Value, which Bio-Formats copies
    as written): each element's own namespace declarations (:func:`_declarations`). Bio-Formats prints one
    that binds a prefix anew first, a redundant one among the attributes, in name order."""
    pad = "   " * depth
    qn = etree.QName(el)
    tag = qn.localname
    attrs: list[tuple[str, str]] = []
    plain: list[tuple[str, str]] = []
    scope = dict(declared)
    if in_value is not None:
        parent = el.getparent()
        inherited = parent.nsmap if parent is not None else {}
        for name, uri in sorted(in_value.get(el, ()), key=lambda kv: kv[0]):
            prefix = name[6:] or None
            if inherited.get(prefix) != uri:
                attrs.append((name, uri))
            elif uri != NS:  # (a redundant OME one is what an upgraded document's new elements carry)
                plain.append((name, uri))
            scope[prefix] = uri
    elif qn.namespace != NS:
        for prefix, uri in sorted(el.nsmap.items(), key=lambda kv: kv[0] or ""):
            if scope.get(prefix) != uri:
                attrs.append(("xmlns" if prefix is None else f"xmlns:{prefix}", uri))
                scope[prefix] = uri
    if qn.namespace != NS:
        prefix = next((p for p, u in el.nsmap.items() if u == qn.namespace and p), None)
        if prefix and el.nsmap.get(None) != qn.namespace:
            tag = f"{prefix}:{tag}"
    attrs.extend(sorted([*((_qname(k, el), v) for k, v in el.attrib.items()), *plain]))
    text = "".join(f' {k}="{_escape_attr(v)}"' for k, v in attrs)
    children = list(el)
    parent = el.getparent()
    inside = in_value
    if inside is None and tag == "Value" and parent is not None and etree.QName(parent).localname == "XMLAnnotation":
        inside = _declarations(el)
    if children and _mixed(el):
        # mixed content (only inside an XMLAnnotation's Value): on one line, each text trimmed as printed
        inner: list[str] = [_printed(el.text)]
        for child in children:
            part: list[str] = []
            _write(child, part, 0, scope, inside)
            inner.append("".join(line.strip() if not _mixed(child) else line for line in part))
            inner.append(_printed(child.tail))
        out.append(f"{pad}<{tag}{text}>{''.join(inner)}</{tag}>")
    elif children:
        out.append(f"{pad}<{tag}{text}>")
        for child in children:
            _write(child, out, depth + 1, scope, inside)
        out.append(f"{pad}</{tag}>")
    elif _printed(el.text) or (el.text and (in_value is not None or tag in _TEXT_KEPT)):
        # a text node the printer trims to nothing still keeps the element open, <x></x>, where Bio-Formats
        # keeps the text (inside an XMLAnnotation's Value, a Description); a model element drops it
        out.append(f"{pad}<{tag}{text}>{_printed(el.text)}</{tag}>")
    else:
        out.append(f"{pad}<{tag}{text}/>")


#: text elements of the model whose white-space-only text Bio-Formats keeps (the differential test draws it)
_TEXT_KEPT = frozenset({"Description"})


def _printed(text: str | None) -> str:
    """A text node as Bio-Formats prints it: escaped, then cut with Java's ``String.trim()``, as its printer
    (``XMLTools.indentXML``) cuts every text between two tags, in mixed content too ("a <b>space</b> the"
    becomes "a<b>space</b>the"); only characters up to U+0020 go, a no-break space stays. Empty: no text."""
    return ox.jtrim(_escape_text(text or ""))


def _mixed(el: Any) -> bool:
    """Whether ``el`` has text beside child elements (text Bio-Formats prints, see :func:`_printed`)."""
    if _printed(el.text):
        return len(el) > 0
    return any(_printed(child.tail) for child in el)


def serialise(root: Any) -> str:
    """``root`` as Bio-Formats prints an OME document (sorted attributes, 3-space indentation)."""
    attrs = sorted((k, v) for k, v in root.attrib.items() if not k.startswith("{"))
    head = "".join(f' {k}="{_escape_attr(v)}"' for k, v in attrs)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<OME xmlns="{NS}" xmlns:xsi="{XSI}"{head} xsi:schemaLocation="{SCHEMA_LOCATION}">']
    declared: dict[str | None, str] = {None: NS, "xsi": XSI}
    for child in root:
        _write(child, out, 1, declared)
    out.append("</OME>")
    return "\n".join(out) + "\n"


# -- reading the inputs ---------------------------------------------------------------------------------
def _parse(xml: bytes) -> Any:
    return _parse_any(xml)[0]


def _parse_any(xml: bytes) -> tuple[Any, bool]:
    """The 2016-06 ``<OME>`` of ``xml`` and whether it was upgraded from an older schema."""
    root = parse_embedded(xml)
    return _current(root), root.tag != _Q + "OME"


def parse_embedded(xml: bytes) -> Any:
    """The root of an embedded OME-XML document, parsed safely: a hostile one raises :class:`ExtractionError`,
    one that is not well-formed :class:`Decline` (Bio-Formats reads the file)."""
    return ome.parse_or(xml, lambda why: ExtractionError(f"embedded OME-XML refused: {why}"),
                        lambda why: Decline(f"not well-formed: {why}"))


def _current(root: Any) -> Any:
    """``root`` as a 2016-06 ``<OME>``: an older schema is upgraded as Bio-Formats' XSLT chain does
    (``_ome_upgrade``; what it has not proven is declined)."""
    if root.tag == _Q + "OME":
        return root
    if upgrade.is_older(root):
        try:
            new = upgrade.upgrade(root)
        except upgrade.Unproven as exc:
            raise Decline(f"an older OME schema ({upgrade.version_of(root)}): {exc}") from None
        _schema_order(new, schema())
        return new
    raise Decline("not an OME document")


def _schema_order(el: Any, schema: _Schema) -> None:
    """Children in 2016-06 schema order (in place): older schemas order some differently, the Java model
    reads them in any order."""
    stack = [el]
    while stack:
        node = stack.pop()
        children = [c for c in node if isinstance(c.tag, str)]
        order = schema.order.get(etree.QName(node).localname, {})
        ranked = sorted(children, key=lambda c: order.get(etree.QName(c).localname, len(order)))
        if ranked != children:
            for child in children:
                node.remove(child)
            node.extend(ranked)
        stack.extend(children)


def check_text(root: Any) -> None:
    """Bio-Formats' OME-XML reader copies text content unescaped; text with markup characters would
    be re-read differently, so such documents are declined."""
    for el in root.iter():
        if isinstance(el.tag, str) and el.text and ("<" in el.text or "&" in el.text):
            raise Decline("text with markup characters")
    for value in root.iterfind(f"{_Q}StructuredAnnotations/{_Q}XMLAnnotation/{_Q}Value"):
        _check_prefixes(value)


def _check_prefixes(value: Any) -> None:
    """Bio-Formats copies an XMLAnnotation's Value element by element without the namespace declarations of
    the elements around it: a prefix declared outside the Value is printed undeclared (its document does not
    parse and the file fails), so such a Value is declined (also where the Value declares the same prefix
    again: the parsed tree does not tell the two apart)."""
    outside = value.nsmap
    for el in value.iterdescendants():
        if not isinstance(el.tag, str):
            continue
        names = [el.tag, *el.attrib.keys()]
        for prefix, uri in el.nsmap.items():
            if prefix and outside.get(prefix) == uri and any(n.startswith(f"{{{uri}}}") for n in names):
                raise Decline(f"a prefix ({prefix}) declared outside an XMLAnnotation's Value")


def valid(root: Any) -> None:
    ok, why = ome.validate(etree.tostring(root))
    if not ok:
        raise Decline(f"not valid OME 2016-06: {why}")


def omexml_cores(root: Any, *, tiff_data: bool = False) -> list[Core]:
    """The core metadata Bio-Formats' ``OMEXMLReader`` derives for each image of a standalone document
    (``tiff_data``: an upgraded document may map its planes to TIFFs, which the reader keeps as written)."""
    images = root.findall(_Q + "Image")
    any_bin = any(p.find(_Q + "BinData") is not None for p in root.iterfind(f"{_Q}Image/{_Q}Pixels"))
    cores = []
    for image in images:
        pixels = image.find(_Q + "Pixels")
        if pixels is None:
            raise Decline("image without pixels")
        if pixels.find(_Q + "TiffData") is not None and not tiff_data:
            raise Decline("TiffData in a standalone OME-XML document")
        typ = pixels.get("Type", "")
        if typ not in BITS:
            raise Decline(f"pixel type {typ}")
        big = True
        if any_bin:
            big = False
            bins = pixels.findall(_Q + "BinData")
            if pixels.get("BigEndian") is not None:
                big = pixels.get("BigEndian") == "true"
            elif bins:
                big = bins[0].get("BigEndian") == "true"
        bits = int(pixels.get("SignificantBits") or BITS[typ])
        cores.append(Core(big_endian=big, bits=bits))
    for pixels in root.iterfind(f"{_Q}Image/{_Q}Pixels"):
        for bin_el in pixels.findall(_Q + "BinData"):
            bin_el.set("Length", "0")
            bin_el.text = None
    return cores


def omexml_document(xml: bytes) -> str:
    """A standalone OME-XML document as Bio-Formats 7.3.1 prints it (raises ``Decline``)."""
    root, upgraded = _parse_any(xml)
    check_text(root)
    valid(root)
    cores = omexml_cores(root, tiff_data=upgraded)
    round_trip(root, schema())
    populate(root, cores)
    return serialise(root)


@dataclass(frozen=True)
class _Tiff:
    """What the OME-TIFF path needs from one TIFF: its first description and every IFD's plane shape."""

    data: bytes | None  #: IFD 0's ImageDescription (None when absent)
    big_endian: bool
    planar: int
    #: (width, length, samples, bits, dtype) of each IFD
    shapes: tuple[tuple[int, int, int, int, str | None], ...]
    foreign: bool  #: a TIFF that another Bio-Formats reader than the OME-TIFF one would take


_TIFF_CACHE: dict[tuple[str, int, int, int], _Tiff] = {}
_TIFF_CACHE_SIZE = 4096


def _read_tiff(path: str) -> _Tiff:
    """``path``'s IFDs as tifffile reads them (kept while the file is unchanged: every file of a set reads
    the other files of the set)."""
    import tifffile

    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _TIFF_CACHE.get(key)
    if hit is not None:
        return hit
    with tifffile.TiffFile(path) as tf:
        pages = tf.pages
        first = pages.first
        codes = {tag.code for tag in first.tags}
        foreign = bool(tf.is_micromanager or tf.is_imagej or codes & _FOREIGN_TAGS)
        if first.tags.get(330) is not None:
            raise Decline("a pyramid (SubIFDs)")
        description = first.tags.get(270)
        data = None
        if description is not None:
            raw = description.value
            data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        shapes = []
        for page in pages:
            if not isinstance(page, tifffile.TiffPage) or page.tags.get(330) is not None:
                raise Decline("IFD tifffile cannot read as a page")
            shapes.append((page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                           str(page.dtype) if page.dtype is not None else None))
        found = _Tiff(data=data, big_endian=tf.byteorder == ">", planar=int(first.planarconfig),
                      shapes=tuple(shapes), foreign=foreign)
    if len(_TIFF_CACHE) >= _TIFF_CACHE_SIZE:
        _TIFF_CACHE.clear()
    _TIFF_CACHE[key] = found
    return found


class _PlainTiff(Exception):
    """Bio-Formats' OME-TIFF reader does not take the file (its TIFF reader does)."""


#: DocumentName and PageNumber: Bio-Formats' TiffReader keeps them in the original metadata only (the
#: corpus's split spec samples carry both, ``tests/test_engines_ome.py``)
_PLAIN_EXTRA = frozenset({269, 297})
_OME_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.tf2", ".ome.tf8", ".ome.btf")
_OME_NS_PREFIX = b"http://www.openmicroscopy.org/Schemas/OME/"


def _sibling(folder: str, name: str | None) -> str | None:
    """The file ``name`` (a ``FileName``/``MetadataFile`` reference) in ``folder``, or None when it is not
    there; a reference that leaves the folder, or a link that resolves outside it, is refused."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise ExtractionError(f"OME-XML references {name!r}, outside the file's folder; refused, not followed")
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    if not fence.in_folder(path, folder):
        raise ExtractionError(f"OME-XML references {name!r}, which resolves outside the file's folder; refused")
    return path


def _metadata_file(path: str) -> bytes:
    """The OME-XML of a ``BinaryOnly`` metadata file: an OME-TIFF's description, else the file itself."""
    if path.lower().endswith(_OME_SUFFIXES):
        data = _read_tiff(path).data
        if data is None:
            raise Decline("metadata OME-TIFF without a description")
        if b"&#" in data:
            raise Decline("a character reference in a metadata OME-TIFF's description (not checked)")
        return data
    if os.path.getsize(path) > MAX_XML:
        raise Decline("metadata file too large")
    with open(path, "rb") as fh:
        return fh.read()


def _plane_index(order: str, sizes: dict[str, int], at: dict[str, int]) -> int:
    """``FormatTools.getIndex``: the plane number of (z, c, t) in ``order``."""
    index, stride = 0, 1
    for dim in order[2:]:
        index += at[dim] * stride
        stride *= sizes[dim]
    return index


@dataclass
class _Set:
    """Where the planes of a document live: the folder, the TIFF whose IFD 0 Bio-Formats' core metadata
    comes from, and the file a TiffData without a UUID means."""

    folder: str
    current: str | None  #: the TIFF that was opened (None for a companion file)
    root_uuid: str | None
    files: dict[str, str] = field(default_factory=dict)  #: UUID -> path, as Bio-Formats maps them
    used: set[str] = field(default_factory=set)
    renamed: bool = False  #: a FileName not in the folder was taken to be the opened file

    def resolve(self, td: Any) -> str:
        uuid = td.find(_Q + "UUID")
        if uuid is None:
            if self.current is None:
                raise Decline("a companion's TiffData without a UUID")
            self.used.add(self.current)
            return self.current
        value = (uuid.text or "").strip()
        name = uuid.get("FileName")
        if name is None:
            # Bio-Formats takes a UUID without a file name to be the opened file only when it is the
            # document's own UUID (anything else it would have to search for), and only while no file
            # named "null" is in the folder (it looks for the name as a string)
            if self.current is None or value != (self.root_uuid or value) \
                    or os.path.lexists(os.path.join(self.folder, "null")):
                raise Decline("a UUID without a FileName that is not this file's")
            target: str | None = self.current
        else:
            target = _sibling(self.folder, name)
        if target is None:
            # Bio-Formats maps a FileName that is not in the folder to the opened file when the UUID
            # is the document's own (the spec samples name the file they were renamed from)
            if self.current is None or value != (self.root_uuid or value):
                raise Decline(f"file {name!r} of the set is missing")
            self.renamed = True
            target = self.current
        if self.files.setdefault(value, target) != target:
            raise Decline("one UUID names two files")  # Bio-Formats: "Inconsistent UUID filenames"
        self.used.add(target)
        return target


def _reader_samples(index: int, channels: list[Any], first: _Tiff, carried: bool) -> tuple[int, bool]:
    """The samples per pixel ``OMETiffReader`` takes for image ``index`` and whether it "adjusted" them (which
    it carries on to the next image): the first Channel's ``SamplesPerPixel``, unless the previous image was
    adjusted, or image 0 disagrees with the opened TIFF's first IFD, or the attribute is absent; then the
    TIFF's, adjusted only while the image has several channels."""
    tiff = first.shapes[0][2]
    written = channels[0].get("SamplesPerPixel") if channels else None
    spp = int(written) if written is not None else -1
    if any(channel.get("SamplesPerPixel") not in (None, written) for channel in channels):
        raise Decline("channels of one image differ in SamplesPerPixel")
    if spp < 0 and len(channels) > 1:
        raise Decline("several channels without SamplesPerPixel")  # not drawn by the differential test
    if carried or (spp != tiff and (index == 0 or spp < 0)):
        return tiff, len(channels) > 1
    return spp, False


def _adjusted_core(index: int, pixels: Any, where: _Set, first: _Tiff, samples: int, adjusted: bool) -> Core:
    """An image whose samples per pixel the reader took from the opened TIFF against its Channel (a file of
    a set holding an RGB image's planes while image 0 is grey, or the reverse, and the images after an
    adjusted one): ``OMETiffReader`` keeps SizeC as the effective channel count when it adjusted (else
    divides it by the samples), multiplies SizeC by the samples when it adjusted, when SizeC is 1 or when
    neither divides the other, takes the TIFF's type for image 0 and adjusted images, and maps the planes
    over that many channels; the planes it cannot find it only warns about in a set of several files (one
    file: it recounts the planes from the TIFF, declined by the caller)."""
    size = {d: int(pixels.get(f"Size{d}", "0")) for d in "XYZCT"}
    order = pixels.get("DimensionOrder", "")
    effective = size["C"] if adjusted else size["C"] // samples or 1
    if effective * samples != size["C"]:
        effective = size["C"]
    size_c = size["C"]
    if (samples != size_c and samples % size_c and size_c % samples) or size_c == 1 or adjusted:
        size_c *= samples
    if size_c != effective * samples or sorted(order[2:]) != ["C", "T", "Z"]:
        raise Decline("an adjusted image whose channels do not add up")
    sizes = {"Z": size["Z"], "C": effective, "T": size["T"]}
    num = sizes["Z"] * sizes["C"] * sizes["T"]
    for td in pixels.findall(_Q + "TiffData"):
        at = {d: int(td.get(f"First{d}", "0")) for d in "ZCT"}
        if any(at[d] >= sizes[d] for d in "ZCT") or td.get("PlaneCount") is None:
            raise Decline("an adjusted image with TiffData beyond its planes")
        where.resolve(td)
        if _plane_index(order, sizes, at) + int(td.get("PlaneCount", "0")) > num:
            raise Decline("an adjusted image with TiffData beyond its planes")
    typ = pixels.get("Type", "")
    reported = typ
    if index == 0 or adjusted:
        reported = _TYPE_OF_DTYPE.get(str(first.shapes[0][4]), "")
    if reported not in BITS or typ not in BITS:
        raise Decline("a pixel type that is not an OME one")
    sig = pixels.get("SignificantBits")
    bits = int(sig) if sig is not None else BITS[reported]
    if bits < 1:
        raise Decline("SignificantBits not positive")
    return Core(big_endian=first.big_endian, bits=bits, samples=samples,
                pixel_type=reported if reported != typ else None,
                size_c=size_c if size_c != size["C"] else None)


def _tiff_cores(root: Any, where: _Set, first: _Tiff) -> list[Core]:
    """The core metadata Bio-Formats' ``OMETiffReader`` derives, after checking that every plane of every
    image is one IFD of a present file, each IFD once, all of the Pixels' shape.

    The reader takes byte order from the first IFD of the opened TIFF (the companion's first TIFF) for
    every image, and that IFD's pixel type for image 0 when the two differ: so a file of a set that holds
    another image's planes reports image 0 in its own type (live, on differential variants)."""
    cores = []
    adjusted = carried = False
    for index, image in enumerate(root.findall(_Q + "Image")):
        pixels = image.find(_Q + "Pixels")
        if pixels is None or pixels.find(_Q + "BinData") is not None or pixels.find(_Q + "MetadataOnly") is not None:
            raise Decline("an OME-TIFF image without TiffData")
        tds = pixels.findall(_Q + "TiffData")
        if not tds:
            raise Decline("an OME-TIFF image without TiffData")
        typ = pixels.get("Type", "")
        if typ not in BITS:
            raise Decline(f"pixel type {typ}")
        size = {d: int(pixels.get(f"Size{d}", "0")) for d in "XYZCT"}
        order = pixels.get("DimensionOrder", "")
        channels = pixels.findall(_Q + "Channel")
        uuid = tds[0].find(_Q + "UUID")
        if uuid is not None and uuid.get("FileName") is None and channels and channels[0].get("Name") is None:
            # OMETiffReader's OMERO-export check reads the first TiffData's FileName when the first channel
            # has no name, and fails on a null one ("Incomplete Pixels metadata", live on differential variants)
            raise Decline("a first TiffData's UUID without a FileName beside an unnamed first Channel")
        samples, carried = _reader_samples(index, channels, first, carried)
        own = channels[0].get("SamplesPerPixel") if channels else None
        if carried or (own is not None and int(own) != samples):
            cores.append(_adjusted_core(index, pixels, where, first, samples, carried))
            adjusted = True
            continue
        if size["C"] % samples or size["C"] == 1 < samples:
            raise Decline("channels do not divide by samples")
        sizes = {"Z": size["Z"], "C": size["C"] // samples, "T": size["T"]}
        num = sizes["Z"] * sizes["C"] * sizes["T"]
        if num < 1 or sorted(order[2:]) != ["C", "T", "Z"]:
            raise Decline("dimensions")
        planes: dict[int, tuple[str, int]] = {}
        planar: set[int] = set()
        for td in tds:
            at = {d: int(td.get(f"First{d}", "0")) for d in "ZCT"}
            if any(at[d] >= sizes[d] for d in "ZCT"):
                raise Decline("TiffData beyond the dimensions")  # Bio-Formats guesses 1-based indexes
            target = where.resolve(td)
            start = _plane_index(order, sizes, at)
            ifd = int(td.get("IFD", "0"))
            if td.get("PlaneCount") is not None:
                count = int(td.get("PlaneCount", "0"))
                if count < 1:
                    raise Decline("PlaneCount 0")  # Bio-Formats drops the image
            elif len(tds) == 1:
                count = num - start  # Bio-Formats fills down to the last plane
            else:
                raise Decline("TiffData without PlaneCount among others")
            tiff = first if target == where.current else _read_tiff(target)
            shapes = tiff.shapes
            planar.add(tiff.planar)
            if ifd < 0 or ifd + count > len(shapes) or start + count > num:
                raise Decline("TiffData beyond the IFDs or the planes")
            for q in range(count):
                if start + q in planes:
                    raise Decline("a plane mapped twice")
                planes[start + q] = (target, ifd + q)
                width, height, spp, bits, dtype = shapes[ifd + q]
                if (width, height) != (size["X"], size["Y"]) or dtype != DTYPES[typ]:
                    raise Decline("IFD and Pixels disagree")
                if spp != samples or bits != BITS[typ]:
                    raise Decline("samples or bits per sample differ")
        if len(planes) != num:
            raise Decline("planes mapped do not cover the image exactly")
        reported = typ
        if index == 0 and first.shapes[0][4] != DTYPES[typ]:
            reported = _TYPE_OF_DTYPE.get(str(first.shapes[0][4]), "")
            if reported not in BITS or first.shapes[0][2] != samples:
                raise Decline("the first IFD's type is not an OME pixel type")
        # Bio-Formats' OME-TIFF reader keeps the Pixels' SignificantBits as written, whatever the type
        # (live, on differential variants: 1 to 64 bits of integer and floating types, fewer or more bits
        # than the type holds)
        sig = pixels.get("SignificantBits")
        bits = int(sig) if sig is not None else BITS[reported]
        if bits < 1:
            raise Decline("SignificantBits not positive")
        if samples > 1 and planar != {1}:
            raise Decline("planar RGB")
        cores.append(Core(big_endian=first.big_endian, bits=bits, samples=samples,
                          pixel_type=reported if reported != typ else None))
    if not cores:
        raise Decline("no image")
    if adjusted and len(where.files) < 2:
        raise Decline("an adjusted image in a single file")  # the reader recounts its planes from the TIFF
    if where.renamed and len(where.used) > 1:
        raise Decline("a FileName not in the folder in a set of several files")
    for used in where.used:
        if used != where.current and _read_tiff(used).big_endian != first.big_endian:
            raise Decline("files of the set differ in byte order")
    return cores


def _set_document(root: Any, where: _Set, first: _Tiff) -> str:
    check_text(root)
    valid(root)
    cores = _tiff_cores(root, where, first)
    if where.current is not None and where.current not in where.used:
        raise Decline("the opened TIFF holds none of the planes")
    round_trip(root, schema())
    populate(root, cores)
    return serialise(root)


def ome_tiff_document(path: str) -> str:
    """An OME-TIFF (one file, a file of a set, or a ``BinaryOnly`` file whose metadata file is in the
    folder) as Bio-Formats 7.3.1 prints it (raises ``Decline``, or ``_PlainTiff`` when Bio-Formats' TIFF
    reader answers instead)."""
    folder = os.path.dirname(path) or "."
    tiff = _read_tiff(path)
    if tiff.foreign:
        raise Decline("a TIFF another reader takes")
    if tiff.data is None:
        raise Decline("no ImageDescription")
    # ``XMLTools.sanitizeXML``, which Bio-Formats' OME-TIFF reader runs on the description, turns the "&" of
    # every "&#" into a space: a character reference is then read as its text ("B&#233;" as "B #233;")
    text = tiff.data.rstrip(b"\x00").replace(b"&#", b" #")
    try:
        root = ome.parse(text)
    except ome.UnsafeXMLError as exc:
        raise ExtractionError(f"embedded OME-XML refused: {exc}") from None
    except etree.XMLSyntaxError:
        stripped = text.strip()
        if stripped.startswith(b"<") and stripped.endswith(b">") and b"<OME" in stripped \
                and _OME_NS_PREFIX in stripped:
            raise _PlainTiff("OME-XML that is not well-formed") from None
        raise Decline("not well-formed") from None
    root = _current(root)
    binary_only = root.find(_Q + "BinaryOnly")
    if binary_only is None:
        return _set_document(root, _Set(folder, path, root.get("UUID")), tiff)
    if [el for el in root if isinstance(el.tag, str)] != [binary_only]:
        raise Decline("BinaryOnly beside other elements")
    meta_path = _sibling(folder, binary_only.get("MetadataFile"))
    if meta_path is None:
        raise _PlainTiff("BinaryOnly, its metadata file is not in the folder")
    if os.path.samefile(meta_path, path):
        raise Decline("BinaryOnly naming itself")
    meta = _parse(_metadata_file(meta_path))
    if meta.find(_Q + "BinaryOnly") is not None:
        raise Decline("the metadata file is BinaryOnly itself")
    return _set_document(meta, _Set(folder, path, meta.get("UUID")), tiff)


def companion_document(path: str) -> str:
    """A ``.companion.ome`` file as Bio-Formats 7.3.1's OME-TIFF reader prints it (raises ``Decline``)."""
    folder = os.path.dirname(path) or "."
    if os.path.getsize(path) > MAX_XML:
        raise Decline("too large")
    with open(path, "rb") as fh:
        root = _parse(fh.read())
    if root.find(_Q + "BinaryOnly") is not None:
        raise Decline("a BinaryOnly companion")
    # Bio-Formats reads core metadata from the first IFD of the file the first image's first TiffData names
    tds = root.findall(f"{_Q}Image/{_Q}Pixels")[:1]
    td = tds[0].find(_Q + "TiffData") if tds else None
    uuid = td.find(_Q + "UUID") if td is not None else None
    first_path = _sibling(folder, uuid.get("FileName") if uuid is not None else None)
    if first_path is None:
        raise Decline("the first TIFF of the set is missing")
    return _set_document(root, _Set(folder, None, root.get("UUID")), _read_tiff(first_path))


def plain_tiff_document(path: str) -> str:
    """The plain-TIFF document Bio-Formats' TiffReader gives for an OME-TIFF its OME-TIFF reader refuses
    (raises ``Decline`` for anything beyond a plain TIFF's tags and one plane shape)."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        pages = tf.pages
        first = pages.first
        codes = {tag.code for tag in first.tags}
        if not codes <= plain.PLAIN_TAGS | _PLAIN_EXTRA or 34665 in codes or first.tags.get(330) is not None:
            raise Decline("tags beyond a plain TIFF's")
        shape = (first.imagewidth, first.imagelength, first.samplesperpixel, first.bitspersample,
                 int(first.sampleformat), int(first.photometric))
        for page in pages:
            if not isinstance(page, tifffile.TiffPage) or page.tags.get(330) is not None \
                    or int(page.subfiletype) != 0 \
                    or (page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                        int(page.sampleformat), int(page.photometric)) != shape:
                raise Decline("pages of different shapes")
        samples, bits, photometric = shape[2], shape[3], shape[5]
        pixel_type = common.PIXEL_TYPES.get((shape[4], bits))
        if pixel_type is None or photometric not in (0, 1, 2) or samples not in (1, 3) \
                or (samples == 3) != (photometric == 2):
            raise Decline("a pixel layout not proven")
        date = common.date(first)
        if date is False:
            raise Decline("a date not proven")
        info = plain.TiffInfo(
            kind="plain", name=os.path.basename(path), big_endian=tf.byteorder == ">",
            size_x=first.imagewidth, size_y=first.imagelength, planes=len(pages), samples=samples, bits=bits,
            pixel_type=pixel_type, description=common.text(first, 270), date=date if isinstance(date, str) else None,
            physical=(common.resolution(first, 282), common.resolution(first, 283)), exif=None, metaseries=None,
        )
    return ox.document(plain.plain_image(info))

# -- the engine -----------------------------------------------------------------------------------------
def _kind(path: str, head: bytes) -> str | None:
    if head.startswith(TIFF_MAGIC):
        name = "." + os.path.basename(path).lower()
        return "tiff" if name.endswith((".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf")) else None
    # Bio-Formats' OME-XML reader knows a document by its first 64 bytes; other readers take some
    # ``.xml`` files by name first, so only ``.ome.xml`` / ``.ome`` names are claimed
    lowered = path.lower()
    if lowered.endswith(".companion.ome"):
        # Bio-Formats' OME-TIFF reader takes every ``.companion.ome`` by its name
        return "companion" if head.lstrip()[:1] == b"<" else None
    if head[:64].startswith(b"<?xml") and b"<OME" in head[:64] and lowered.endswith((".ome.xml", ".ome")):
        return "xml"
    return None


class OmeEngine(ContextEngine[str]):
    """Standalone OME-XML, OME-TIFF (single files and sets); everything else is left to Bio-Formats.
    What ``claim_in`` finds is the document itself."""

    name = NAME

    def version(self) -> str:
        """metaextract's version: the engine is its own code (lxml parses, the ome-types XSD orders)."""
        return package_version("metaextract")

    def _build(self, path: str, kind: str) -> str:
        if kind == "tiff":
            try:
                return ome_tiff_document(path)
            except _PlainTiff:
                return plain_tiff_document(path)
        if kind == "companion":
            return companion_document(path)
        if os.path.getsize(path) > MAX_XML:
            raise Decline("too large")
        with open(path, "rb") as fh:
            return omexml_document(fh.read())

    def claim_in(self, ctx: FileContext) -> Claim[str]:
        kind = _kind(ctx.path, ctx.head)
        if kind is None:
            return Claim(0)
        try:
            xml = self._build(ctx.path, kind)
        except Exception:  # noqa: BLE001 - what cannot be proven (or is hostile) goes to Bio-Formats
            return Claim(0)
        return Claim(CLAIM, xml)

    def extract_in(self, ctx: FileContext, found: str | None = None) -> str:
        if found is not None:
            return found
        path = ctx.path
        with open(path, "rb") as fh:
            head = fh.read(4096)
        kind = _kind(path, head)
        if kind is None:
            raise UnsupportedFormatError("neither an OME-XML document nor an OME-TIFF")
        try:
            return self._build(path, kind)
        except Decline as exc:
            raise ExtractionError(f"an OME file of a kind this engine does not read ({exc}); use Bio-Formats") \
                from None
        except OSError as exc:
            raise ExtractionError(f"cannot read: {exc}") from None
