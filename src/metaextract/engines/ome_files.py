"""The OME engine: standalone OME-XML files and single-file OME-TIFF, as Bio-Formats 7.3.1 reports them.

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
* OME-TIFF: byte order, bits and samples per pixel come from the TIFF's first IFD.

What it cannot prove, it declines (``claim`` returns 0 and Bio-Formats reads the file): documents
of another schema version (Bio-Formats upgrades them with XSLT), documents that are not valid
against the 2016-06 schema, ``BinaryOnly`` OME-TIFFs and OME-TIFFs whose planes live in other files
(companion sets: Bio-Formats reports the whole set), Micro-Manager/ImageJ OME-TIFFs (other readers),
TIFFs whose IFDs do not match the XML, images whose ID changes while something refers to it, and
timestamps with fractions of a second. Embedded XML with a DTD or entities is refused outright.

Key fields (``metaextract.ome.key_fields``) agree with Bio-Formats on every claimed corpus file; the
whole document agrees after ``normalise`` on most of them (``tests/test_engines_ome.py`` lists the
exceptions and why).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from lxml import etree

from .. import ome
from ._omexml import jdouble
from .base import ClaimMemo, ExtractionError, UnsupportedFormatError, package_version

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
_BITS = {"int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "float": 32,
         "double": 64}
_DTYPES = {"int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32",
           "uint32": "uint32", "float": "float32", "double": "float64"}


class _Decline(Exception):
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
def _schema() -> _Schema:
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
        raise _Decline(f"not a number: {text!r}") from None
    return jdouble(value)


_STAMP = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def _java_timestamp(text: str) -> str:
    """A timestamp as the Java model writes it back: in UTC, to the second, without a zone."""
    m = _STAMP.fullmatch(text.strip())
    if m is None:
        raise _Decline(f"timestamp {text!r}")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    if fraction and fraction.strip("0"):
        raise _Decline(f"timestamp with fractions of a second: {text!r}")
    plain = f"{year}-{month}-{day}T{hour}:{minute}:{second}"
    if zone in (None, "Z", "+00:00", "-00:00"):
        return plain
    if not 1 < int(year) < 9999:
        raise _Decline(f"timestamp with a zone far from now: {text!r}")
    stamp = datetime.fromisoformat(plain + zone).astimezone(UTC)
    return (f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:"
            f"{stamp.second:02d}")


def _fix_attributes(el: Any, name: str, schema: _Schema) -> None:
    known = schema.attrs.get(name)
    if known is None:
        raise _Decline(f"element {name} is not in the schema")
    for attr in list(el.attrib):
        if attr.startswith("{"):
            continue
        if attr not in known:
            raise _Decline(f"attribute {name}/@{attr} is not in the schema")
        typ = known[attr][0]
        value = el.get(attr)
        if typ in _FLOATS:
            el.set(attr, _java_double(value))
        elif typ in _BOOLEANS and value not in ("true", "false"):
            raise _Decline(f"boolean {name}/@{attr}={value!r}")
        elif typ in _DATES:
            el.set(attr, _java_timestamp(value))
    for attr, (_typ, default) in known.items():
        if attr.endswith("Unit") and default is not None and el.get(attr) is None \
                and el.get(attr[:-4]) is not None:
            el.set(attr, default)


def _round_trip(el: Any, schema: _Schema) -> None:
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
            raise _Decline(f"foreign element in {name}")
        if etree.QName(child).localname not in order:
            raise _Decline(f"{etree.QName(child).localname} in {name} is not in the schema")
        _round_trip(child, schema)
    ranked = sorted(children, key=lambda c: order[etree.QName(c).localname])
    if ranked != children:
        for child in children:
            el.remove(child)
        text = el.text
        el.extend(ranked)
        el.text = text


# -- the Bio-Formats core step --------------------------------------------------------------------------
@dataclass
class _Core:
    """What a Bio-Formats reader's core metadata says about one image."""

    big_endian: bool
    bits: int
    samples: int = 1


def _sub(parent: Any, name: str, before: tuple[str, ...] = ()) -> Any:
    """A new child ``name`` of ``parent``, placed before the first child named in ``before``."""
    el = etree.Element(_Q + name)
    for index, child in enumerate(parent):
        if etree.QName(child).localname in before:
            parent.insert(index, el)
            return el
    parent.append(el)
    return el


def _populate(root: Any, cores: list[_Core]) -> None:
    """``MetadataTools.populatePixels``: IDs, byte order, bits, channels (in place)."""
    images = root.findall(_Q + "Image")
    if len(images) != len(cores):
        raise _Decline("image count")
    refs = {r.get("ID") for r in root.iter(_Q + "ImageRef")}
    for index, (image, core) in enumerate(zip(images, cores, strict=True)):
        new_id = f"Image:{index}"
        if image.get("ID") != new_id:
            if image.get("ID") in refs:
                raise _Decline("an image whose ID Bio-Formats rewrites is referred to")
            image.set("ID", new_id)
        pixels = image.find(_Q + "Pixels")
        if pixels is None:
            raise _Decline("image without pixels")
        pixels.set("ID", f"Pixels:{index}")
        pixels.set("BigEndian", "true" if core.big_endian else "false")
        pixels.set("Interleaved", "false")
        pixels.set("SignificantBits", str(core.bits))
        bins = pixels.findall(_Q + "BinData")
        if bins:
            bins[0].set("BigEndian", "true" if core.big_endian else "false")
        size_c = int(pixels.get("SizeC", "0"))
        if core.samples < 1 or size_c % core.samples:
            raise _Decline("channels do not divide by samples")
        channels = pixels.findall(_Q + "Channel")
        wanted = size_c // core.samples
        if len(channels) > wanted:
            raise _Decline("more Channel elements than channels")
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
def _escape_attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


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


def _write(el: Any, out: list[str], depth: int, declared: dict[str | None, str]) -> None:
    pad = "   " * depth
    qn = etree.QName(el)
    tag = qn.localname
    attrs: list[tuple[str, str]] = []
    scope = dict(declared)
    if qn.namespace != NS:
        for prefix, uri in sorted(el.nsmap.items(), key=lambda kv: kv[0] or ""):
            if scope.get(prefix) != uri:
                attrs.append(("xmlns" if prefix is None else f"xmlns:{prefix}", uri))
                scope[prefix] = uri
        prefix = next((p for p, u in el.nsmap.items() if u == qn.namespace and p), None)
        if prefix and el.nsmap.get(None) != qn.namespace:
            tag = f"{prefix}:{tag}"
    attrs.extend(sorted((_qname(k, el), v) for k, v in el.attrib.items()))
    text = "".join(f' {k}="{_escape_attr(v)}"' for k, v in attrs)
    children = list(el)
    if children and _mixed(el):
        # mixed content (only inside an XMLAnnotation's Value): written as it is, on one line
        inner: list[str] = [_escape_text(el.text or "")]
        for child in children:
            part: list[str] = []
            _write(child, part, 0, scope)
            inner.append("".join(line.strip() if not _mixed(child) else line for line in part))
            inner.append(_escape_text(child.tail or ""))
        out.append(f"{pad}<{tag}{text}>{''.join(inner)}</{tag}>")
    elif children:
        out.append(f"{pad}<{tag}{text}>")
        for child in children:
            _write(child, out, depth + 1, scope)
        out.append(f"{pad}</{tag}>")
    elif el.text and el.text.strip():
        out.append(f"{pad}<{tag}{text}>{_escape_text(el.text.strip())}</{tag}>")
    else:
        out.append(f"{pad}<{tag}{text}/>")


def _mixed(el: Any) -> bool:
    """Whether ``el`` has text beside child elements."""
    if (el.text or "").strip():
        return len(el) > 0
    return any((child.tail or "").strip() for child in el)


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
    try:
        root = ome.parse(xml)
    except ome.UnsafeXMLError as exc:
        raise ExtractionError(f"embedded OME-XML refused: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise _Decline(f"not well-formed: {exc}") from None
    if root.tag != _Q + "OME":
        raise _Decline("not an OME 2016-06 document")
    return root


def _check_text(root: Any) -> None:
    """Bio-Formats' OME-XML reader copies text content unescaped; text with markup characters would
    be re-read differently, so such documents are declined."""
    for el in root.iter():
        if isinstance(el.tag, str) and el.text and ("<" in el.text or "&" in el.text):
            raise _Decline("text with markup characters")


def _valid(root: Any) -> None:
    ok, why = ome.validate(etree.tostring(root))
    if not ok:
        raise _Decline(f"not valid OME 2016-06: {why}")


def omexml_cores(root: Any) -> list[_Core]:
    """The core metadata Bio-Formats' ``OMEXMLReader`` derives for each image of a standalone document."""
    images = root.findall(_Q + "Image")
    any_bin = any(p.find(_Q + "BinData") is not None for p in root.iterfind(f"{_Q}Image/{_Q}Pixels"))
    cores = []
    for image in images:
        pixels = image.find(_Q + "Pixels")
        if pixels is None:
            raise _Decline("image without pixels")
        if pixels.find(_Q + "TiffData") is not None:
            raise _Decline("TiffData in a standalone OME-XML document")
        typ = pixels.get("Type", "")
        if typ not in _BITS:
            raise _Decline(f"pixel type {typ}")
        big = True
        if any_bin:
            big = False
            bins = pixels.findall(_Q + "BinData")
            if pixels.get("BigEndian") is not None:
                big = pixels.get("BigEndian") == "true"
            elif bins:
                big = bins[0].get("BigEndian") == "true"
        bits = int(pixels.get("SignificantBits") or _BITS[typ])
        cores.append(_Core(big_endian=big, bits=bits))
    for pixels in root.iterfind(f"{_Q}Image/{_Q}Pixels"):
        for bin_el in pixels.findall(_Q + "BinData"):
            bin_el.set("Length", "0")
            bin_el.text = None
    return cores


def omexml_document(xml: bytes) -> str:
    """A standalone OME-XML document as Bio-Formats 7.3.1 prints it (raises ``_Decline``)."""
    root = _parse(xml)
    _check_text(root)
    _valid(root)
    cores = omexml_cores(root)
    _round_trip(root, _schema())
    _populate(root, cores)
    return serialise(root)


def _tiff_description(path: str) -> tuple[Any, list[Any]]:
    """``(first page, pages)`` info from tifffile, with the OME-XML description."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        if tf.is_micromanager or tf.is_imagej:
            raise _Decline("Micro-Manager or ImageJ TIFF")
        pages = tf.pages
        first = pages.first
        codes = {tag.code for tag in first.tags}
        if codes & _FOREIGN_TAGS or first.tags.get(330) is not None:
            raise _Decline("a TIFF another reader takes (or a pyramid)")
        description = first.tags.get(270)
        if description is None:
            raise _Decline("no ImageDescription")
        raw = description.value
        data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        shapes = []
        for page in pages:
            if not isinstance(page, tifffile.TiffPage) or page.tags.get(330) is not None:
                raise _Decline("IFD tifffile cannot read as a page")
            shapes.append((page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                           str(page.dtype) if page.dtype is not None else None))
        info = {"data": data, "big_endian": tf.byteorder == ">", "shapes": shapes,
                "planar": int(first.planarconfig)}
    return info, shapes


def ome_tiff_document(path: str) -> str:
    """A single-file OME-TIFF as Bio-Formats 7.3.1 prints it (raises ``_Decline``)."""
    info, shapes = _tiff_description(path)
    root = _parse(info["data"].rstrip(b"\x00"))
    if root.find(_Q + "BinaryOnly") is not None:
        raise _Decline("BinaryOnly: the metadata lives in a companion file")
    _check_text(root)
    _valid(root)
    own = os.path.basename(path)
    cores = []
    ifd_count = len(shapes)
    for image in root.findall(_Q + "Image"):
        pixels = image.find(_Q + "Pixels")
        if pixels is None or pixels.find(_Q + "BinData") is not None or pixels.find(_Q + "MetadataOnly") is not None:
            raise _Decline("an OME-TIFF image without TiffData")
        tds = pixels.findall(_Q + "TiffData")
        if not tds:
            raise _Decline("an OME-TIFF image without TiffData")
        typ = pixels.get("Type", "")
        size = {d: int(pixels.get(f"Size{d}", "0")) for d in "XYZCT"}
        planes_needed = size["Z"] * size["T"]
        samples = None
        mapped = 0
        for td in tds:
            uuid = td.find(_Q + "UUID")
            if uuid is not None and (uuid.get("FileName") not in (None, own)
                                     or (uuid.text or "").strip() != root.get("UUID", "")):
                raise _Decline("planes in another file of a set")
            first_ifd = int(td.get("IFD", "0"))
            count = int(td.get("PlaneCount", "1" if len(tds) > 1 or td.get("IFD") else "0"))
            if count == 0:
                count = ifd_count - first_ifd
            if first_ifd < 0 or first_ifd + count > ifd_count:
                raise _Decline("TiffData beyond the IFDs")
            for k in range(first_ifd, first_ifd + count):
                width, height, spp, bits, dtype = shapes[k]
                if (width, height) != (size["X"], size["Y"]) or dtype != _DTYPES.get(typ):
                    raise _Decline("IFD and Pixels disagree")
                if samples is None:
                    samples = spp
                elif samples != spp:
                    raise _Decline("mixed samples per pixel")
                if bits != _BITS.get(typ):
                    raise _Decline("bits per sample")
            mapped += count
        if samples is None:
            raise _Decline("no planes")
        if mapped != planes_needed * (size["C"] // samples) or size["C"] % samples:
            raise _Decline("planes mapped do not cover the image exactly")
        sig = pixels.get("SignificantBits")
        if sig is not None and int(sig) != _BITS[typ]:
            raise _Decline("SignificantBits differs from the TIFF")
        if samples > 1 and info["planar"] != 1:
            raise _Decline("planar RGB")
        cores.append(_Core(big_endian=bool(info["big_endian"]), bits=_BITS[typ], samples=samples))
    if not cores:
        raise _Decline("no image")
    _round_trip(root, _schema())
    _populate(root, cores)
    return serialise(root)


# -- the engine -----------------------------------------------------------------------------------------
def _kind(path: str, head: bytes) -> str | None:
    if head.startswith(TIFF_MAGIC):
        name = "." + os.path.basename(path).lower()
        return "tiff" if name.endswith((".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf")) else None
    # Bio-Formats' OME-XML reader knows a document by its first 64 bytes; other readers take some
    # ``.xml`` files by name first, so only ``.ome.xml`` / ``.ome`` names are claimed
    lowered = path.lower()
    if head[:64].startswith(b"<?xml") and b"<OME" in head[:64] and lowered.endswith((".ome.xml", ".ome")) \
            and not lowered.endswith(".companion.ome"):
        return "xml"
    return None




class OmeEngine:
    """Standalone OME-XML and single-file OME-TIFF; everything else is left to Bio-Formats."""

    name = NAME

    def __init__(self) -> None:
        self._memo: ClaimMemo[str] = ClaimMemo()

    def version(self) -> str:
        """metaextract's version: the engine is its own code (lxml parses, the ome-types XSD orders)."""
        return package_version("metaextract")

    def _build(self, path: str, kind: str) -> str:
        if kind == "tiff":
            return ome_tiff_document(path)
        if os.path.getsize(path) > MAX_XML:
            raise _Decline("too large")
        with open(path, "rb") as fh:
            return omexml_document(fh.read())

    def claim(self, path: str, head: bytes) -> int:
        kind = _kind(path, head)
        if kind is None:
            return 0
        try:
            xml = self._build(path, kind)
        except Exception:  # noqa: BLE001 - what cannot be proven (or is hostile) goes to Bio-Formats
            return 0
        self._memo.keep(path, xml)
        return CLAIM

    def extract(self, path: str) -> str:
        kept = self._memo.take(path)
        if kept is not None:
            return kept
        with open(path, "rb") as fh:
            head = fh.read(4096)
        kind = _kind(path, head)
        if kind is None:
            raise UnsupportedFormatError("neither an OME-XML document nor an OME-TIFF")
        try:
            return self._build(path, kind)
        except _Decline as exc:
            raise ExtractionError(f"an OME file of a kind this engine does not read ({exc}); use Bio-Formats") \
                from None
        except OSError as exc:
            raise ExtractionError(f"cannot read: {exc}") from None
