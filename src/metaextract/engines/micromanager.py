"""The Micro-Manager engine: the Micro-Manager files Bio-Formats 7.3.1 reads as OME-TIFF or plain TIFF.

Which Bio-Formats reader answers decides what it prints. In ``readers.txt`` ``OMETiffReader`` comes before
``MicromanagerReader``, and ``MicromanagerReader`` takes a ``.tif`` only when a ``metadata.txt`` (or
``<prefix>_metadata.txt``) lies beside it. So:

* **MMStack OME-TIFF** (``*_MMStack*.ome.tif``, tag 51123): read by ``OMETiffReader`` from the OME-XML in
  the first ImageDescription, even with a ``_metadata.txt`` beside it (the corpus' HeLaS folder proves it).
  Micro-Manager 1.4 writes that XML in the OME **2015-01** schema, which is why the ``ome-xml`` engine
  declines these files (and it declines every TIFF with Micro-Manager tags). Bio-Formats upgrades it with
  ``2015-01-to-2016-06.xsl``, which, apart from light sources and ROI shapes, only moves every element of
  the 2015-01 OME/BinaryFile/SPW/SA namespaces into the 2016-06 one and keeps the root's ``UUID`` and
  ``Creator``; then the usual OME-TIFF round trip (``ome_files``: schema order, Java number spelling,
  ``populatePixels`` with the TIFF's byte order, bits and samples) gives the document. Claimed only when:
  the name ends ``.ome.tif``/``.ome.tiff``; the first IFD carries tag 51123 and no SubIFDs; the first
  ImageDescription is the OME document and any other one is ImageJ's; the document is 2015-01 (without ROI,
  light sources or foreign namespaces) or 2016-06; it is valid 2016-06 after the upgrade; every image's
  planes lie in this file (``TiffData`` naming another file — a multi-position or split stack — is
  declined) and match its IFDs in size, type and bits. One deliberate difference: Micro-Manager names
  its Instrument ``Microscope`` and its Detector after the camera, IDs the 2016-06 schema rejects, and
  Bio-Formats prints them as they are (its document is not valid OME); this engine renames them
  ``Instrument:i`` / ``Detector:i:d`` (references follow), so its document is valid. No key field holds
  an instrument ID.
* **NDTiff stacks** (``*_NDTiffStack.tif`` beside ``NDTiff.index``, Micro-Manager 2 / Pycro-Manager): no
  Bio-Formats 7.3.1 reader knows NDTiff, so ``TiffReader`` reads each stack as a plain TIFF: name = file
  name, SizeT = the IFD count, physical X/Y from the resolution tags, one channel, no planes (the
  channel names in ``display_settings.txt`` are not read). Claimed only for single-sample grey stacks
  whose every IFD has the same shape and only baseline tags plus 51123 (no ImageDescription), and whose
  folder holds no file another reader could group with it (``metadata.txt``/``*_metadata.txt``/
  ``Acqusition.xml`` or any other companion kind the ``tifffile`` engine fears), ``NDTiff.index`` and
  ``display_settings.txt`` excepted: the corpus' v3 folder holds both and Bio-Formats still reads the
  stack alone.

Declined (left to Bio-Formats): every ``metadata.txt``/``_metadata.txt`` — ``MicromanagerReader`` itself.
Its key fields depend on rules not proven here: on the corpus' only example it writes no
``AcquisitionDate`` although the summary and frame carry ``Time``/``StartTime`` (its date parsing with
``EEE MMM dd HH:mm:ss zzz yyyy`` and the "CEST" zone), no ``ExposureTime`` although the camera reports
``Andor Zyla 4.2-Exposure``, and no stage positions; one file cannot pin those rules down. Also declined:
Micro-Manager ``.tif`` files that are not OME-TIFF or NDTiff (``MicromanagerReader`` or ImageJ rules), and
everything else.

Key fields agree with the Bio-Formats reference on all four claimed corpus files; so does the whole
document after ``normalise`` (for the MMStack files once the renamed IDs are mapped back), and on a
synthetic 2x2x2 MMStack file with the live Bio-Formats engine (``tests/test_engines_micromanager.py``).
"""

from __future__ import annotations

import os
import re
from typing import Any

from lxml import etree

from .. import ome
from . import _omexml as ox
from .base import ClaimMemo, ExtractionError, UnsupportedFormatError, package_version
from .ome_files import _BITS, _DTYPES, _check_text, _Core, _Decline, _populate, _round_trip, _schema, _valid, serialise
from .tiff import (
    _PIXEL,
    COMPANION_SUFFIXES,
    PARENT_COMPANIONS,
    PLAIN_TAGS,
    TIFF_MAGIC,
    TiffInfo,
    _date,
    _resolution,
    plain_image,
)

NAME = "micromanager"
#: Content evidence (tag 51123 and an OME document, or an NDTiff index): above the OME and TIFF engines'
#: claims (60, 50), which decline these files today; it wins only where this engine has proven its answer.
CLAIM = 65
MM_TAG = 51123  # MicroManagerMetadata
MAX_XML = 64 << 20
NS = ome.OME_NS
_Q = "{" + NS + "}"
OLD = "2015-01"
#: The 2015-01 namespaces whose elements the XSLT only moves into the 2016-06 namespace.
OLD_NAMESPACES = frozenset(f"http://www.openmicroscopy.org/Schemas/{part}/{OLD}"
                           for part in ("OME", "BinaryFile", "SPW", "SA"))
OLD_ROOT = f"{{http://www.openmicroscopy.org/Schemas/OME/{OLD}}}OME"
#: 2015-01 elements the XSLT restructures (abstract light sources); ROI's namespace is not accepted at all.
RESTRUCTURED = frozenset({"LightSource", "Laser", "Arc", "Filament", "LightEmittingDiode",
                          "GenericExcitationSource"})
#: Instrument children named ``Local:i:n`` by Bio-Formats' readers (their schema ID pattern is ``Local:\\S+``).
INSTRUMENT_PARTS = ("Detector", "Objective", "Filter", "Dichroic", "FilterSet")
_ID = r"(?:urn:lsid:(?:[\w\-.]+\.[\w\-.]+)+:{0}:\S+)|(?:{0}:\S+)"
XSI_SCHEMA_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
_OME_TIFF = (".ome.tif", ".ome.tiff")
_NDTIFF = re.compile(r".+_NDTiffStack(?:_[0-9]+)?\.tif", re.ASCII)
#: Siblings of an NDTiff stack that Bio-Formats was seen to ignore (``ndtiff3.2_monochrome``).
NDTIFF_SIBLINGS = frozenset({"ndtiff.index", "display_settings.txt"})
#: Sibling names that make ``MicromanagerReader`` take a ``.tif``.
_MM_COMPANIONS = ("metadata.txt", "acqusition.xml")


# -- MMStack OME-TIFF (OMETiffReader) -------------------------------------------------------------------
def _schema_ids(root: Any) -> dict[str, str]:
    """Give instrument parts whose IDs the 2016-06 schema rejects the IDs Bio-Formats' readers use (in place).

    Micro-Manager names its Instrument ``Microscope`` and its Detector after the camera (``Camera``,
    ``Andor Zyla 4.2``); Bio-Formats prints those as they are (with ``-novalid``), which is not valid OME.
    They become ``Instrument:i`` and ``Detector:i:d`` (``Objective:i:o`` …), and every reference follows.

    Returns
    -------
    dict
        New ID -> the ID Micro-Manager (and Bio-Formats) wrote.
    """
    renamed: dict[str, str] = {}
    defined = [el.get("ID") for el in root.iter() if isinstance(el.tag, str) and el.get("ID") is not None
               and not etree.QName(el).localname.endswith(("Ref", "Settings"))]
    taken = set(defined)
    for i, instrument in enumerate(root.findall(_Q + "Instrument")):
        parts = [(instrument, f"Instrument:{i}")]
        counts: dict[str, int] = {}
        for part in instrument:
            local = etree.QName(part).localname if isinstance(part.tag, str) else ""
            if local in INSTRUMENT_PARTS:
                parts.append((part, f"{local}:{i}:{counts.setdefault(local, 0)}"))
                counts[local] += 1
        for el, new in parts:
            old, local = el.get("ID"), etree.QName(el).localname
            if old is None or re.fullmatch(_ID.format(re.escape(local)), old):
                continue
            if new in taken or defined.count(old) != 1:
                raise _Decline(f"cannot rename the {local} ID {old!r}")
            taken.add(new)
            renamed[old] = new
    if renamed:
        for el in root.iter():
            if isinstance(el.tag, str) and el.get("ID") in renamed:
                el.set("ID", renamed[el.get("ID")])
    return {new: old for old, new in renamed.items()}


def _upgrade(old: Any) -> Any:
    """A 2015-01 document as ``2015-01-to-2016-06.xsl`` rewrites it (only the namespace moves here)."""
    root = etree.Element(_Q + "OME", nsmap={None: NS})
    for attr in ("UUID", "Creator"):
        if old.get(attr) is not None:
            root.set(attr, old.get(attr))
    for attr in old.attrib:
        if attr not in ("UUID", "Creator", XSI_SCHEMA_LOCATION) and not attr.startswith("xmlns"):
            raise _Decline(f"root attribute {attr}")
    root.text = old.text

    def copy(src: Any, dst: Any) -> None:
        for child in src:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions: the round trip drops them anyway
            qn = etree.QName(child)
            if qn.namespace not in OLD_NAMESPACES:
                raise _Decline(f"element {qn.localname} in namespace {qn.namespace}")
            if qn.localname in RESTRUCTURED:
                raise _Decline(f"{qn.localname}: the XSLT restructures it")
            el = etree.SubElement(dst, _Q + qn.localname)
            for key, value in child.attrib.items():
                if key.startswith("{"):
                    raise _Decline(f"namespaced attribute {key}")
                el.set(key, value)
            el.text, el.tail = child.text, child.tail
            copy(child, el)

    copy(old, root)
    return root


def _ome_description(tf: Any) -> bytes:
    """The OME-XML of the first ImageDescription (any further description must be ImageJ's)."""
    descriptions = tf.pages.first.tags.getall(270) or []
    if not descriptions:
        raise _Decline("no ImageDescription")
    values = []
    for tag in descriptions:
        raw = tag.value
        values.append(raw.encode("utf-8") if isinstance(raw, str) else bytes(raw))
    first = values[0].rstrip(b"\x00").lstrip()
    if not first.startswith(b"<?xml") or b"<OME" not in first[:512] or len(first) > MAX_XML:
        raise _Decline("the first ImageDescription is not an OME document")
    if any(not value.startswith(b"ImageJ=") for value in values[1:]):
        raise _Decline("a second ImageDescription that is not ImageJ's")
    return first


def _shapes(tf: Any) -> list[tuple[int, int, int, int, str | None]]:
    import tifffile

    shapes = []
    for page in tf.pages:
        if not isinstance(page, tifffile.TiffPage) or page.tags.get(330) is not None:
            raise _Decline("an IFD tifffile cannot read as a page (or SubIFDs)")
        shapes.append((page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                       str(page.dtype) if page.dtype is not None else None))
    return shapes


def _cores(root: Any, shapes: list[tuple[int, int, int, int, str | None]], own: str, big_endian: bool,
           planar: int) -> list[_Core]:
    """What ``OMETiffReader``'s core metadata says per image; declines planes outside this file."""
    cores = []
    for image in root.findall(_Q + "Image"):
        pixels = image.find(_Q + "Pixels")
        if pixels is None or pixels.find(_Q + "BinData") is not None or pixels.find(_Q + "MetadataOnly") is not None:
            raise _Decline("an image without TiffData")
        tds = pixels.findall(_Q + "TiffData")
        typ = pixels.get("Type", "")
        if not tds or typ not in _BITS:
            raise _Decline("an image without TiffData, or of an unknown type")
        size = {d: int(pixels.get(f"Size{d}", "0")) for d in "XYZCT"}
        samples: int | None = None
        mapped = 0
        for td in tds:
            uuid = td.find(_Q + "UUID")
            # Micro-Manager's root has no UUID: its TiffData name the file itself by FileName
            if uuid is not None and uuid.get("FileName") != own and (
                    uuid.get("FileName") is not None or (uuid.text or "").strip() != root.get("UUID", "")):
                raise _Decline("planes in another file of a set")
            first_ifd = int(td.get("IFD", "0"))
            count = int(td.get("PlaneCount", "1" if len(tds) > 1 or td.get("IFD") else "0"))
            if count == 0:
                count = len(shapes) - first_ifd
            if first_ifd < 0 or count < 0 or first_ifd + count > len(shapes):
                raise _Decline("TiffData beyond the IFDs")
            for width, height, spp, bits, dtype in shapes[first_ifd:first_ifd + count]:
                if (width, height) != (size["X"], size["Y"]) or dtype != _DTYPES[typ] or bits != _BITS[typ]:
                    raise _Decline("IFD and Pixels disagree")
                if samples is not None and samples != spp:
                    raise _Decline("mixed samples per pixel")
                samples = spp
            mapped += count
        if samples is None or size["C"] % samples or mapped != size["Z"] * size["T"] * (size["C"] // samples):
            raise _Decline("the planes mapped do not cover the image exactly")
        if pixels.get("SignificantBits") is not None and int(pixels.get("SignificantBits", "0")) != _BITS[typ]:
            raise _Decline("SignificantBits differs from the TIFF")
        if samples > 1 and planar != 1:
            raise _Decline("planar RGB")
        cores.append(_Core(big_endian=big_endian, bits=_BITS[typ], samples=samples))
    if not cores:
        raise _Decline("no image")
    return cores


def mmstack_document(path: str) -> str:
    """An MMStack OME-TIFF as Bio-Formats 7.3.1's ``OMETiffReader`` prints it (raises ``_Decline``)."""
    import tifffile

    if not os.path.basename(path).lower().endswith(_OME_TIFF):
        raise _Decline("not an .ome.tif name")
    with tifffile.TiffFile(path) as tf:
        first = tf.pages.first
        if first.tags.get(MM_TAG) is None:
            raise _Decline("no Micro-Manager tag")
        xml = _ome_description(tf)
        shapes = _shapes(tf)
        big_endian, planar = tf.byteorder == ">", int(first.planarconfig)
    try:
        parsed = ome.parse(xml)
    except ome.UnsafeXMLError as exc:
        raise ExtractionError(f"embedded OME-XML refused: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise _Decline(f"not well-formed: {exc}") from None
    if parsed.tag == OLD_ROOT:
        root = _upgrade(parsed)
    elif parsed.tag == _Q + "OME":
        root = parsed
    else:
        raise _Decline(f"an OME document of another schema ({parsed.tag})")
    if root.find(_Q + "BinaryOnly") is not None:
        raise _Decline("BinaryOnly")
    _check_text(root)
    _schema_ids(root)
    _valid(root)
    cores = _cores(root, shapes, os.path.basename(path), big_endian, planar)
    _round_trip(root, _schema())
    _populate(root, cores)
    return serialise(root)


# -- NDTiff stacks (TiffReader) -------------------------------------------------------------------------
def _siblings_ok(path: str) -> bool:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        names = [entry.name.lower() for entry in os.scandir(folder)]
        parent = [entry.name.lower() for entry in os.scandir(os.path.dirname(folder))]
    except OSError:
        return False
    if "ndtiff.index" not in names:
        return False
    for name in names:
        if name in NDTIFF_SIBLINGS:
            continue
        if name.endswith(_MM_COMPANIONS) or name.endswith(COMPANION_SUFFIXES):
            return False
    return not any(name.endswith(PARENT_COMPANIONS) for name in parent)


def ndtiff_info(path: str) -> TiffInfo:
    """What ``TiffReader`` reports for an NDTiff stack, as the plain TIFF engine's :class:`TiffInfo`."""
    import tifffile

    name = os.path.basename(path)
    if not _NDTIFF.fullmatch(name):
        raise _Decline("not an _NDTiffStack.tif name")
    with tifffile.TiffFile(path) as tf:
        first = tf.pages.first
        if first.tags.get(MM_TAG) is None or not tf.is_ndtiff:
            raise _Decline("not an NDTiff stack (tag 51123 and NDTiff.index)")
        shape = (first.imagewidth, first.imagelength, first.samplesperpixel, first.bitspersample,
                 first.sampleformat, first.photometric, first.planarconfig)
        for page in tf.pages:
            if not isinstance(page, tifffile.TiffPage) or int(page.subfiletype) != 0:
                raise _Decline("an IFD that is not a full-resolution page")
            if not {tag.code for tag in page.tags} <= PLAIN_TAGS | {MM_TAG} or page.tags.get(270) is not None:
                raise _Decline("tags beyond baseline and 51123, or a description")
            if (page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample, page.sampleformat,
                    page.photometric, page.planarconfig) != shape:
                raise _Decline("pages of different shapes")
        pixel_type = _PIXEL.get((int(first.sampleformat), first.bitspersample))
        if pixel_type is None or first.samplesperpixel != 1 or int(first.photometric) not in (0, 1):
            raise _Decline("not single-sample grey pixels")
        date = _date(first)
        if date is False:
            raise _Decline("a DateTime Bio-Formats may read otherwise")
        info = TiffInfo(
            kind="plain", name=name, big_endian=tf.byteorder == ">", size_x=first.imagewidth,
            size_y=first.imagelength, planes=len(tf.pages), samples=1, bits=first.bitspersample,
            pixel_type=pixel_type, description=None, date=date if isinstance(date, str) else None,
            physical=(_resolution(first, 282), _resolution(first, 283)), exif=None,
        )
    if not _siblings_ok(path):
        raise _Decline("a sibling another reader could group the stack with")
    return info


# -- the engine -----------------------------------------------------------------------------------------
def _kind(path: str, head: bytes) -> str | None:
    """Which kind ``path`` may be, from its name and first bytes only (None: not this engine's)."""
    if not head.startswith(TIFF_MAGIC):
        return None
    name = os.path.basename(path)
    if name.lower().endswith(_OME_TIFF):
        return "mmstack"
    if _NDTIFF.fullmatch(name):
        return "ndtiff"
    return None


def _build(path: str, kind: str) -> str:
    if kind == "mmstack":
        return mmstack_document(path)
    return ox.document(plain_image(ndtiff_info(path)))


class MicromanagerEngine:
    """MMStack OME-TIFFs and NDTiff stacks; every other file is declined (Bio-Formats reads it)."""

    name = NAME

    def __init__(self) -> None:
        self._memo: ClaimMemo[str] = ClaimMemo()

    def version(self) -> str:
        """The tifffile version (the library that reads the file)."""
        return package_version("tifffile")

    def claim(self, path: str, head: bytes) -> int:
        """:data:`CLAIM` for a kind of Micro-Manager file whose OME-XML this engine gives as Bio-Formats does."""
        kind = _kind(path, head)
        if kind is None:
            return 0
        try:
            xml = _build(path, kind)
        except Exception:  # noqa: BLE001 - what cannot be proven (or is hostile) goes to Bio-Formats
            return 0
        self._memo.keep(path, xml)
        return CLAIM

    def extract(self, path: str) -> str:
        """The OME-XML of ``path`` (raises :class:`ExtractionError` for a file this engine declines)."""
        kept = self._memo.take(path)
        if kept is not None:
            return kept
        try:
            with open(path, "rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise ExtractionError(f"cannot read: {exc}") from None
        if not head.startswith(TIFF_MAGIC):
            raise UnsupportedFormatError(f"not a TIFF file (first 4 bytes: {head[:4]!r})")
        kind = _kind(path, head)
        if kind is None:
            raise ExtractionError("neither an MMStack .ome.tif nor an _NDTiffStack.tif name (use Bio-Formats)")
        try:
            return _build(path, kind)
        except _Decline as exc:
            why = " ".join(str(exc).split())[:200]
            raise ExtractionError(f"a Micro-Manager file of a kind this engine does not read ({why}); "
                                  "use Bio-Formats") from None
        except ExtractionError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile's errors on broken files, as one line
            message = " ".join(str(exc).split())[:200]
            raise ExtractionError(f"cannot read the TIFF: {type(exc).__name__}: {message}") from None
