"""Older OME-XML schemas brought to OME 2016-06 as Bio-Formats 7.3.1 brings them, for the kinds proven.

Bio-Formats reads any OME-XML (an OME-TIFF's description, a standalone ``.ome`` file) through
``OMEXMLServiceImpl.transformToLatestVersion``: a chain of XSLT stylesheets, one per schema step
(2008-02 -> 2008-09 -> 2009-09 -> 2010-04 -> 2010-06 -> 2011-06 -> 2012-06 -> 2013-06 -> 2015-01 ->
2016-06), after which the document is parsed into the 2016-06 model like any other. This module
reproduces that chain, in its own code, for the elements whose rendering has been checked against the
reference output and live Bio-Formats; the result then goes through the same model round trip as a
2016-06 document (``ome_files``: schema order, Java number spelling, unit defaults, core metadata).

Rules reproduced, 2010-06 and later (2010-06, 2011-06, 2012-06, 2013-06, 2015-01):

* every element of the OME, SA (structured annotations) and BinaryFile namespaces moves to the one
  2016-06 namespace, attributes and text as they are (of BinaryFile only a ``Pixels``' ``BinData``; it and
  ``MetadataOnly`` in standalone documents were compared with live Bio-Formats on generated variants,
  ``tests/test_differential_ome.py``);
* the root keeps only ``UUID`` (from 2011-06 on also ``Creator``); other root attributes are dropped
  by the stylesheets;
* 2010-06: a ``Pixels`` ``PhysicalSizeX/Y/Z`` survives only when it reads as an XPath number greater
  than 0 (``0.0``, text, exponents are dropped);
* an ``XMLAnnotation`` (a modulo annotation) is carried over, the elements in its ``Value`` moved to the
  2016-06 namespace when they are in the document's OME namespace (``<Modulo namespace="…">``, as the
  spec writes it), or copied with the namespace declarations the chain's ``xsl:copy`` steps pile on them
  when they are in the Additions namespace (``<Modulo xmlns="…/Additions/2011-09">``); any other namespace
  there is declined;
* up to 2011-06: ``AcquiredDate`` becomes ``AcquisitionDate``;
* up to 2015-01: ``LightSource`` with one ``Laser``/``Arc``/``Filament``/``LightEmittingDiode``/
  ``GenericExcitationSource`` child becomes that element, carrying the attributes of both and the
  child's own children (a ``Pump``).

2008-02 (the first OME-TIFF schema) only in its plainest form: an ``Image`` (``ID``, ``Name``,
``DefaultPixels``) with an optional ``CreationDate`` (which becomes ``AcquisitionDate``) and one
``Pixels`` (``ID``, ``DimensionOrder``, ``PixelType`` - ``Uint8``/``Uint16``/``Uint32`` lowered -,
``BigEndian``, which the chain drops, ``SizeX..SizeT``) holding only ``TiffData`` (``IFD``,
``FirstZ/C/T``, ``NumPlanes``, which becomes ``PlaneCount``); the root without a ``UUID``.

Declined (:class:`Unproven`; the file is left to Bio-Formats): the 2003-FC, 2006-LO, 2007-06, 2008-09,
2009-09 and 2010-04 schemas; in every version screens, ROIs, plates before 2012-06 (and a WellSample's
``AnnotationRef``, an SPW prefix not declared on the root), datasets, projects,
experimenters, groups, experiments, OTFs, ``BinData`` outside ``Pixels``, annotations the steps move
(on ``Pixels``), and
any element or namespace not listed here; in 2008-02 anything beyond the form above (logical
channels, pixel sizes on the image, several pixels, UUIDs). Nothing is ever fetched and the input tree
is not changed.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from lxml import etree

from metaextract import ome

NEW_NS = ome.OME_NS
_SCHEMAS = "http://www.openmicroscopy.org/Schemas/"
#: the schema versions read here, oldest first (the order Bio-Formats' stylesheets run in)
MODERN = ("2010-06", "2011-06", "2012-06", "2013-06", "2015-01")
SUPPORTED = ("2008-02", *MODERN)
#: the versions Bio-Formats upgrades that this module refuses
KNOWN_OLD = ("2003-FC", "2006-LO", "2007-06", "2008-09", "2009-09", "2010-04")
_LIGHT_SOURCES = ("Laser", "Arc", "Filament", "LightEmittingDiode", "GenericExcitationSource")
#: elements of the OME namespace carried over as they are (with the renames above)
_OME_ELEMENTS = frozenset({
    "Image", "AcquiredDate", "AcquisitionDate", "Description", "InstrumentRef", "ObjectiveSettings",
    "Pixels", "Channel", "LightSourceSettings", "DetectorSettings", "LightPath", "ExcitationFilterRef",
    "EmissionFilterRef", "DichroicRef", "FilterSetRef", "TiffData", "UUID", "Plane", "Instrument",
    "Microscope", "LightSource", *_LIGHT_SOURCES, "Pump", "Detector", "Objective", "FilterSet", "Filter",
    "TransmittanceRange", "Dichroic", "StructuredAnnotations", "AnnotationRef", "MetadataOnly",
    # annotation types (2016-06 puts them in the OME namespace; before they were in SA)
    "ListAnnotation", "CommentAnnotation", "TagAnnotation", "LongAnnotation", "DoubleAnnotation",
    "BooleanAnnotation", "TermAnnotation", "Value", "XMLAnnotation",
})
#: plates: from 2012-06 on the stylesheets only move ``SPW`` elements to the next namespace (2013-06 to
#: 2015-01 also strips a WellSample's AnnotationRef, declined here); the WellSample's ``ImageRef`` is an
#: OME element (live Bio-Formats on generated variants, ``tests/test_differential_ome.py``); the SPW prefix
#: must be the root's (declared on the Plate, Bio-Formats drops the plate: ``tests/test_engines_ome_upgrade.py``)
_PLATE_VERSIONS = frozenset({"2012-06", "2013-06", "2015-01"})
_PLATE_ELEMENTS = frozenset({"Plate", "Well", "WellSample"})
_XSI_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
_MAX_ELEMENTS = 1 << 20
_XPATH_NUMBER = re.compile(r"\s*-?(?:\d+(?:\.\d*)?|\.\d+)\s*")


class Unproven(Exception):
    """The document holds something whose upgrade this module has not proven against Bio-Formats."""


def version_of(root: Any) -> str | None:
    """The OME schema version of ``root`` (``"2010-06"`` …) when it is an ``<OME>`` of some OME namespace."""
    if not isinstance(root.tag, str) or not root.tag.startswith("{" + _SCHEMAS + "OME/"):
        return None
    uri, local = root.tag[1:].split("}", 1)
    if local != "OME":
        return None
    return uri.rsplit("/", 1)[-1]


def is_older(root: Any) -> bool:
    """Whether ``root`` is an ``<OME>`` of an older schema than 2016-06 (supported or not)."""
    version = version_of(root)
    return version is not None and version != "2016-06"


def _kind(tag: str, version: str) -> tuple[str, str]:
    """(namespace kind, local name) of an element of ``version``; other namespaces are refused."""
    if not tag.startswith("{" + _SCHEMAS):
        raise Unproven(f"an element outside the OME schemas: {tag}")
    uri, local = tag[1:].split("}", 1)
    kind, _, ns_version = uri[len(_SCHEMAS):].partition("/")
    if ns_version != version:
        raise Unproven(f"an element of another schema version: {tag}")
    return kind, local


def _xpath_positive(value: str) -> bool:
    """``value > 0`` as XPath 1.0 compares a string with a number (no exponents, NaN is never > 0)."""
    return _XPATH_NUMBER.fullmatch(value) is not None and float(value) > 0


def _new(local: str) -> Any:
    return etree.Element("{" + NEW_NS + "}" + local, nsmap={None: NEW_NS})


def _plain_attrs(el: Any) -> dict[str, str]:
    out = {}
    for name, value in el.attrib.items():
        if name.startswith("{"):
            raise Unproven(f"a namespaced attribute {name}")
        out[name] = value
    return out


def _copy_text(src: Any, dst: Any) -> None:
    if len(src) == 0 and src.text is not None:
        dst.text = src.text


class _Budget:
    def __init__(self) -> None:
        self.left = _MAX_ELEMENTS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise Unproven("too many elements")


#: the Additions namespace of the spec's modulo annotations (the one foreign namespace proven)
ADDITIONS = _SCHEMAS + "Additions/2011-09"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: the step after each version: its stylesheet's root declares the Bin, SA, ROI and SPW prefixes in it …
_NEXT = {"2010-06": "2011-06", "2011-06": "2012-06", "2012-06": "2013-06", "2013-06": "2015-01"}
#: … and the OME prefix comes from the step after that one's root (2010-06's from 2012-06's)
_OME_PREFIX = {"2010-06": "2012-06", "2011-06": "2012-06", "2012-06": "2013-06", "2013-06": "2015-01"}
_PREFIXED = {"SA": "SA", "Bin": "BinaryFile", "ROI": "ROI", "SPW": "SPW"}


def _foreign_nsmap(el: Any, version: str) -> dict[str | None, str]:
    """The namespace declarations a foreign (Additions) element in an ``XMLAnnotation``'s ``Value`` carries
    out of the stylesheet chain: each step's ``xsl:copy`` copies every namespace in scope, and a prefix keeps
    the first binding it got. So the element keeps its own default, the document's OME namespace as ``ome``,
    the document's own ``SA``/``Bin``/``ROI``/``SPW`` prefixes, and gains the next steps' ones it lacked
    (``xsi`` is the output root's). Live Bio-Formats 7.3.1, every version from 2010-06 to 2015-01, with none,
    some or all of those prefixes declared on the root; anything else in scope is declined."""
    root = el.getroottree().getroot()
    old_ome = _SCHEMAS + "OME/" + version
    if root.nsmap.get(None) != old_ome or el.nsmap.get(None) != ADDITIONS:
        raise Unproven("a foreign element in an XMLAnnotation outside the proven namespaces")
    inherited = {p: u for p, u in el.nsmap.items() if p is not None}
    if inherited != {p: u for p, u in root.nsmap.items() if p is not None}:
        raise Unproven("namespaces declared between the root and an XMLAnnotation's content")
    out: dict[str | None, str] = {None: ADDITIONS, "ome": old_ome}
    for prefix, uri in inherited.items():
        if prefix == "xsi" and uri == _XSI:
            continue
        if prefix not in _PREFIXED or uri != f"{_SCHEMAS}{_PREFIXED[prefix]}/{version}":
            raise Unproven(f"namespace prefix {prefix} in scope of an XMLAnnotation's content")
        out[prefix] = uri
    if version in _NEXT:
        for prefix, kind in _PREFIXED.items():
            out.setdefault(prefix, f"{_SCHEMAS}{kind}/{_NEXT[version]}")
        out["OME"] = f"{_SCHEMAS}OME/{_OME_PREFIX[version]}"
    return out


def _foreign(el: Any, nsmap: dict[str | None, str], budget: _Budget) -> Any:
    """A copy of the Additions element ``el`` and its descendants (all in that namespace, no prefixes of their
    own) under the declarations ``nsmap``."""
    budget.spend()
    parent = el.getparent()
    nested = parent is not None and parent.tag.startswith("{" + ADDITIONS + "}")
    if etree.QName(el).namespace != ADDITIONS or el.prefix is not None or (nested and el.nsmap != parent.nsmap):
        raise Unproven(f"an element of another namespace in an XMLAnnotation: {el.tag}")
    out = etree.Element(el.tag, _plain_attrs(el), nsmap=nsmap)
    out.text, out.tail = el.text, el.tail
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments are dropped, as everywhere
        out.append(_foreign(child, nsmap, budget))
    return out


def _xml_value(el: Any, version: str, budget: _Budget) -> Any:
    """An element inside an ``XMLAnnotation``'s ``Value`` (a modulo annotation's ``Modulo``): in the
    document's OME namespace it moves to the 2016-06 one, as the stylesheets move every OME element; in the
    Additions namespace it is copied with the declarations the chain gives it (:func:`_foreign_nsmap`).
    Elements of other namespaces are declined."""
    old = "{" + _SCHEMAS + "OME/" + version + "}"
    if isinstance(el.tag, str) and el.tag.startswith("{" + ADDITIONS + "}"):
        out = _foreign(el, _foreign_nsmap(el, version), budget)
        out.tail = el.tail
        return out
    out = copy.copy(el)
    for node in out.iter():
        budget.spend()
        if not isinstance(node.tag, str):
            continue
        if not node.tag.startswith(old):
            raise Unproven(f"an element of another namespace in an XMLAnnotation: {node.tag}")
        _plain_attrs(node)
        node.tag = "{" + NEW_NS + "}" + node.tag[len(old):]
    etree.cleanup_namespaces(out)  # the old namespace's declaration, which the copy carried, is not written
    return out


def _modern(el: Any, version: str, budget: _Budget, parent_local: str) -> Any:
    """One element of a 2010-06 … 2015-01 document, as the stylesheets leave it in 2016-06."""
    budget.spend()
    kind, local = _kind(el.tag, version)
    if kind == "BinaryFile":
        if local != "BinData" or parent_local != "Pixels":
            raise Unproven(f"{kind}:{local} (only a Pixels' BinData is read from that namespace)")
    elif kind == "SPW":
        if version not in _PLATE_VERSIONS or local not in _PLATE_ELEMENTS:
            raise Unproven(f"{kind}:{local} in {version} (that namespace is read for plates from 2012-06 on)")
        if el.prefix is None or el.getroottree().getroot().nsmap.get(el.prefix) != etree.QName(el).namespace:
            # live Bio-Formats 7.3.1 dropped a plate whose Plate element declared its own SPW prefix
            raise Unproven("an SPW namespace not declared on the root")
    elif kind not in ("OME", "SA"):
        raise Unproven(f"{kind}:{local} (that namespace is not read here)")
    elif local == "ImageRef":
        if parent_local != "WellSample":
            raise Unproven("an ImageRef outside a WellSample")
    elif local not in _OME_ELEMENTS:
        raise Unproven(f"element {local}")
    if local == "AnnotationRef" and parent_local == "WellSample":
        raise Unproven("an AnnotationRef in a WellSample (stripped from 2015-01 on)")
    if local == "AnnotationRef" and parent_local == "Pixels":
        raise Unproven("an AnnotationRef in Pixels (moved to the Image from 2015-01 on)")
    attrs = _plain_attrs(el)
    if local == "Value" and parent_local == "XMLAnnotation":
        out = _new(local)
        out.text = el.text
        for child in el:
            out.append(_xml_value(child, version, budget))
        return out
    children = [c for c in el if isinstance(c.tag, str)]
    if local == "AcquiredDate":
        if version not in ("2010-06", "2011-06"):
            raise Unproven(f"AcquiredDate in {version}")
        local = "AcquisitionDate"
    elif local == "AcquisitionDate" and version in ("2010-06", "2011-06"):
        raise Unproven(f"AcquisitionDate in {version}")
    if local in _LIGHT_SOURCES and parent_local != "LightSource":
        raise Unproven(f"{local} outside a LightSource")
    if local == "LightSource":
        kinds = [c for c in children if _kind(c.tag, version)[1] in _LIGHT_SOURCES]
        if len(kinds) != 1 or len(children) != 1:
            raise Unproven("a LightSource without exactly one light source child")
        inner = kinds[0]
        budget.spend()
        local = _kind(inner.tag, version)[1]
        extra = _plain_attrs(inner)
        if set(extra) & set(attrs):
            raise Unproven("a light source attribute on both LightSource and its child")
        attrs.update(extra)
        children = [c for c in inner if isinstance(c.tag, str)]
        if inner.text and inner.text.strip():
            raise Unproven("text in a light source")
    if local == "Pixels" and version == "2010-06":
        for axis in "XYZ":
            value = attrs.get(f"PhysicalSize{axis}")
            if value is not None and not _xpath_positive(value):
                del attrs[f"PhysicalSize{axis}"]
    out = _new(local)
    for name, value in attrs.items():
        out.set(name, value)
    if not children:
        _copy_text(el, out)
    elif el.text and el.text.strip():
        raise Unproven(f"mixed content in {local}")
    for child in children:
        if child.tail and child.tail.strip():
            raise Unproven(f"mixed content in {local}")
        out.append(_modern(child, version, budget, local))
    return out


_PIXEL_TYPES_2008 = {"Uint8": "uint8", "Uint16": "uint16", "Uint32": "uint32"}
_PIXELS_2008 = frozenset({"ID", "DimensionOrder", "PixelType", "BigEndian", "SizeX", "SizeY", "SizeZ", "SizeC",
                          "SizeT"})
_TIFFDATA_2008 = {"IFD": "IFD", "FirstZ": "FirstZ", "FirstC": "FirstC", "FirstT": "FirstT",
                  "NumPlanes": "PlaneCount"}


def _only(el: Any, allowed: frozenset[str] | set[str], what: str) -> dict[str, str]:
    attrs = _plain_attrs(el)
    extra = set(attrs) - set(allowed)
    if extra:
        raise Unproven(f"{what} attributes {sorted(extra)} in 2008-02")
    return attrs


def _children(el: Any, version: str) -> list[tuple[str, Any]]:
    out = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        kind, local = _kind(child.tag, version)
        if kind != "OME":
            raise Unproven(f"{kind}:{local} in 2008-02")
        if child.tail and child.tail.strip():
            raise Unproven("mixed content")
        out.append((local, child))
    if el.text and el.text.strip() and out:
        raise Unproven("mixed content")
    return out


def _upgrade_2008_02(root: Any) -> Any:
    if set(root.attrib) - {_XSI_LOCATION}:
        raise Unproven("attributes on a 2008-02 OME root")
    out = _new("OME")
    for local, image in _children(root, "2008-02"):
        if local != "Image":
            raise Unproven(f"{local} in a 2008-02 document")
        attrs = _only(image, {"ID", "Name", "DefaultPixels"}, "Image")
        default = attrs.pop("DefaultPixels", None)
        new_image = etree.SubElement(out, "{" + NEW_NS + "}Image")
        for name, value in attrs.items():
            new_image.set(name, value)
        parts = _children(image, "2008-02")
        names = [name for name, _el in parts]
        if names not in (["Pixels"], ["CreationDate", "Pixels"]):
            raise Unproven(f"a 2008-02 Image holding {names}")
        for name, part in parts:
            if name == "CreationDate":
                _only(part, set(), "CreationDate")
                date = etree.SubElement(new_image, "{" + NEW_NS + "}AcquisitionDate")
                date.text = part.text
                continue
            pix = _only(part, _PIXELS_2008, "Pixels")
            if default is not None and pix.get("ID") != default:
                raise Unproven("DefaultPixels names another Pixels")
            new_pixels = etree.SubElement(new_image, "{" + NEW_NS + "}Pixels")
            for key, value in pix.items():
                if key == "BigEndian":
                    continue  # the 2009-09 step drops it (byte order is the TIFF's)
                if key == "PixelType":
                    new_pixels.set("Type", _PIXEL_TYPES_2008.get(value, value))
                else:
                    new_pixels.set(key, value)
            for td_name, td in _children(part, "2008-02"):
                if td_name != "TiffData" or len(td) or (td.text and td.text.strip()):
                    raise Unproven(f"{td_name} in 2008-02 Pixels")
                new_td = etree.SubElement(new_pixels, "{" + NEW_NS + "}TiffData")
                for key, value in _only(td, set(_TIFFDATA_2008), "TiffData").items():
                    new_td.set(_TIFFDATA_2008[key], value)
    return out


def upgrade(root: Any) -> Any:
    """A new 2016-06 ``<OME>`` tree for ``root`` (an ``<OME>`` of a supported older schema), as Bio-Formats'
    stylesheet chain leaves it; raises :class:`Unproven` for what has not been checked."""
    version = version_of(root)
    if version not in SUPPORTED:
        raise Unproven(f"OME schema {version}")
    if version == "2008-02":
        return _upgrade_2008_02(root)
    keep = ("UUID",) if version == "2010-06" else ("UUID", "Creator")
    out = _new("OME")
    for name in keep:
        value = root.get(name)
        if value is not None:
            out.set(name, value)
    budget = _Budget()
    if root.text and root.text.strip():
        raise Unproven("text in OME")
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tail and child.tail.strip():
            raise Unproven("text in OME")
        out.append(_modern(child, str(version), budget, "OME"))
    return out
