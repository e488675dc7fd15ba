"""The Micro-Manager engine: MMStack OME-TIFFs, NDTiff stacks and metadata.txt, as Bio-Formats 7.3.1 reads them.

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
  declined) and match its IFDs in size, type and bits. Micro-Manager names its Instrument
  ``Microscope`` and its Detector after the camera, IDs the 2016-06 schema rejects, and Bio-Formats prints
  them as they are (its document is not valid OME): this engine renames them ``Instrument:i`` /
  ``Detector:i:d`` (references follow) only to validate and round-trip the rest, then writes them back, so
  its document is Bio-Formats' whole and is recorded ``valid=False`` with the same reason.
* **NDTiff stacks** (``*_NDTiffStack.tif`` beside ``NDTiff.index``, Micro-Manager 2 / Pycro-Manager): no
  Bio-Formats 7.3.1 reader knows NDTiff, so ``TiffReader`` reads each stack as a plain TIFF: name = file
  name, SizeT = the IFD count, physical X/Y from the resolution tags, one channel, no planes (the
  channel names in ``display_settings.txt`` are not read). Claimed only for single-sample grey stacks
  whose every IFD has the same shape and only baseline tags plus 51123 (no ImageDescription), and whose
  folder holds no file another reader could group with it (``metadata.txt``/``*_metadata.txt``/
  ``Acqusition.xml`` or any other companion kind the ``tifffile`` engine fears), ``NDTiff.index`` and
  ``display_settings.txt`` excepted: the corpus' v3 folder holds both and Bio-Formats still reads the
  stack alone.

* **metadata.txt** (``metadata.txt`` or ``<prefix>_metadata.txt`` naming ``Micro-Manager`` in its first MiB):
  ``MicromanagerReader``'s own document, learnt from its bytecode and pinned with edited copies of the
  corpus file against live Bio-Formats. The file is read line by line (split at LF, trimmed). A summary
  line's value is what lies after the line's first colon, cut to the inside of ``[...]`` when it has
  brackets, quotes removed and one trailing comma dropped; ``Channels``/``Slices``/``Frames`` give C/Z/T
  (0 counts as 1), ``SlicesFirst`` ``false`` gives XYCZT (anything else XYZCT, missing XYZCT),
  ``ChNames``/``ChColors`` (split at commas) the channels' names and colours (signed int), ``PixelSize_um``
  the physical X and Y, ``z-step_um`` Z, ``Comment`` the description, ``Time`` the date. A FrameKey-T-C-Z
  line's key is what lies between its first character and first colon, its value what lies between that
  colon and the line's **last character** (comma or not: the last line of a block loses a character),
  quotes removed; in file order: ``Exposure-ms`` (the last one) is every plane's ExposureTime in ms,
  every ``ElapsedTime-ms``, sorted, goes to the next plane (in dimension order) that has a FrameKey as
  DeltaT in ms, ``Core-Camera`` names the camera whose ``-Binning`` (``N`` read ``NxN``), ``-CameraID``
  (serial number), ``-CameraName`` (model), ``-Gain`` (truncated to an integer), ``-Name``
  (manufacturer), ``-Temperature`` (ImagingEnvironment) count only after it, ``PositionName`` (unless
  ``null``) names the image (else the file's name), ``FileName`` names the TIFF. Size X/Y, the pixel
  type and the byte order come from that TIFF's first IFD. The date is ``Time`` read with Joda-Time's
  ``EEE MMM dd HH:mm:ss zzz yyyy``, which knows only the zone names UT, UTC, GMT and the US ones: any
  other zone (CEST as in the corpus, CET, JST, BST …) gives no date; UT/UTC/GMT give that time
  (Bio-Formats prints it in the JVM's zone, UTC for the reference), US zones their city's time (daylight
  saving by the date; a time in a change is declined), and a weekday that is not the date's moves the date
  within its ISO week, as Joda does. Everything else is constant: Instrument:0 with Detector:0:0
  of type Other, one DetectorSettings (binning, gain) per named channel, no objective.
  Claimed only for one position (no ``Pos_`` folder, no ``Acqusition.xml``, no plain ``metadata.txt``
  beside a prefixed one) whose file is a Summary block then FrameKey blocks of one-line entries, every
  frame naming one and the same TIFF in the folder (single-sample unsigned 8/16-bit, no ``PositionUm``
  keys in its ImageJ metadata; those in its Micro-Manager tag are not read), with a binning
  ``NxM`` (outside 1x1/2x2/4x4/8x8 written ``Other``, as ``MetadataTools.getBinning`` does), and no
  summary ``FileName``/``SPIMmode``, camera ``CCDMode`` or ``DAC-…-Volts``. The TIFF is read only when one
  of the first N planes in the dimension order (N = the number of FrameKey blocks, out-of-range ones
  included) has a frame: otherwise Bio-Formats takes the sizes from elsewhere and prints BigEndian true
  (learnt from 160 random frame sets): declined.

Declined (left to Bio-Formats): Micro-Manager ``.tif`` files that are not OME-TIFF or NDTiff
(``MicromanagerReader`` or ImageJ rules), the metadata.txt kinds above not claimed, and everything else.

Key fields agree with the Bio-Formats reference on all five claimed corpus files; so does the whole
document after ``normalise``, and on a
synthetic 2x2x2 MMStack file and on edited copies of the corpus ``metadata.txt`` with the live Bio-Formats
engine (``tests/test_engines_micromanager.py``).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from lxml import etree

from metaextract import ome
from metaextract.engines.base import (
    Claim,
    ContextEngine,
    ExtractionError,
    FileContext,
    UnsupportedFormatError,
    head_of,
    package_version,
)
from metaextract.engines.ometiff.files import (
    BITS,
    DTYPES,
    Core,
    Decline,
    check_text,
    parse_embedded,
    populate,
    round_trip,
    schema,
    serialise,
    valid,
)
from metaextract.engines.tiff import common
from metaextract.engines.tiff.plain import PLAIN_TAGS, TiffInfo, plain_image
from metaextract.extraction import fence
from metaextract.ome import writer as ox

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
                raise Decline(f"cannot rename the {local} ID {old!r}")
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
            raise Decline(f"root attribute {attr}")
    root.text = old.text

    def copy(src: Any, dst: Any) -> None:
        for child in src:
            if not isinstance(child.tag, str):
                continue  # comments and processing instructions: the round trip drops them anyway
            qn = etree.QName(child)
            if qn.namespace not in OLD_NAMESPACES:
                raise Decline(f"element {qn.localname} in namespace {qn.namespace}")
            if qn.localname in RESTRUCTURED:
                raise Decline(f"{qn.localname}: the XSLT restructures it")
            el = etree.SubElement(dst, _Q + qn.localname)
            for key, value in child.attrib.items():
                if key.startswith("{"):
                    raise Decline(f"namespaced attribute {key}")
                el.set(key, value)
            el.text, el.tail = child.text, child.tail
            copy(child, el)

    copy(old, root)
    return root


def _ome_description(tf: Any) -> bytes:
    """The OME-XML of the first ImageDescription (any further description must be ImageJ's)."""
    descriptions = tf.pages.first.tags.getall(270) or []
    if not descriptions:
        raise Decline("no ImageDescription")
    values = []
    for tag in descriptions:
        raw = tag.value
        values.append(raw.encode("utf-8") if isinstance(raw, str) else bytes(raw))
    first = values[0].rstrip(b"\x00").lstrip()
    if not first.startswith(b"<?xml") or b"<OME" not in first[:512] or len(first) > MAX_XML:
        raise Decline("the first ImageDescription is not an OME document")
    if any(not value.startswith(b"ImageJ=") for value in values[1:]):
        raise Decline("a second ImageDescription that is not ImageJ's")
    return first


def _shapes(tf: Any) -> list[tuple[int, int, int, int, str | None]]:
    import tifffile

    shapes = []
    for page in tf.pages:
        if not isinstance(page, tifffile.TiffPage) or page.tags.get(330) is not None:
            raise Decline("an IFD tifffile cannot read as a page (or SubIFDs)")
        shapes.append((page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                       str(page.dtype) if page.dtype is not None else None))
    return shapes


def _cores(root: Any, shapes: list[tuple[int, int, int, int, str | None]], own: str, big_endian: bool,
           planar: int) -> list[Core]:
    """What ``OMETiffReader``'s core metadata says per image; declines planes outside this file."""
    cores = []
    for image in root.findall(_Q + "Image"):
        pixels = image.find(_Q + "Pixels")
        if pixels is None or pixels.find(_Q + "BinData") is not None or pixels.find(_Q + "MetadataOnly") is not None:
            raise Decline("an image without TiffData")
        tds = pixels.findall(_Q + "TiffData")
        typ = pixels.get("Type", "")
        if not tds or typ not in BITS:
            raise Decline("an image without TiffData, or of an unknown type")
        size = {d: int(pixels.get(f"Size{d}", "0")) for d in "XYZCT"}
        samples: int | None = None
        mapped = 0
        for td in tds:
            uuid = td.find(_Q + "UUID")
            # Micro-Manager's root has no UUID: its TiffData name the file itself by FileName
            if uuid is not None and uuid.get("FileName") != own and (
                    uuid.get("FileName") is not None or (uuid.text or "").strip() != root.get("UUID", "")):
                raise Decline("planes in another file of a set")
            first_ifd = int(td.get("IFD", "0"))
            count = int(td.get("PlaneCount", "1" if len(tds) > 1 or td.get("IFD") else "0"))
            if count == 0:
                count = len(shapes) - first_ifd
            if first_ifd < 0 or count < 0 or first_ifd + count > len(shapes):
                raise Decline("TiffData beyond the IFDs")
            for width, height, spp, bits, dtype in shapes[first_ifd:first_ifd + count]:
                if (width, height) != (size["X"], size["Y"]) or dtype != DTYPES[typ] or bits != BITS[typ]:
                    raise Decline("IFD and Pixels disagree")
                if samples is not None and samples != spp:
                    raise Decline("mixed samples per pixel")
                samples = spp
            mapped += count
        if samples is None or size["C"] % samples or mapped != size["Z"] * size["T"] * (size["C"] // samples):
            raise Decline("the planes mapped do not cover the image exactly")
        if pixels.get("SignificantBits") is not None and int(pixels.get("SignificantBits", "0")) != BITS[typ]:
            raise Decline("SignificantBits differs from the TIFF")
        if samples > 1 and planar != 1:
            raise Decline("planar RGB")
        cores.append(Core(big_endian=big_endian, bits=BITS[typ], samples=samples))
    if not cores:
        raise Decline("no image")
    return cores


def _restore_ids(root: Any, renamed: dict[str, str]) -> None:
    """Give the parts :func:`_schema_ids` renamed their written IDs back, references included (in place).

    Bio-Formats prints them as they are, so its document is not valid OME; so is this one then, and the
    pipeline records the same ``valid=False`` and reason for both (the differential test compares them).
    """
    if renamed:
        for el in root.iter():
            if isinstance(el.tag, str) and el.get("ID") in renamed:
                el.set("ID", renamed[el.get("ID")])


def mmstack_document(path: str) -> str:
    """An MMStack OME-TIFF as Bio-Formats 7.3.1's ``OMETiffReader`` prints it (raises ``Decline``).

    Instrument IDs the schema refuses are renamed to prove the rest valid and round-trip it, then written
    back as they were, as Bio-Formats prints them."""
    import tifffile

    if not os.path.basename(path).lower().endswith(_OME_TIFF):
        raise Decline("not an .ome.tif name")
    with tifffile.TiffFile(path) as tf:
        first = tf.pages.first
        if first.tags.get(MM_TAG) is None:
            raise Decline("no Micro-Manager tag")
        # as ``OMETiffReader`` sanitises it (``XMLTools.sanitizeXML``): the "&" of every "&#" becomes a space
        xml = _ome_description(tf).replace(b"&#", b" #")
        shapes = _shapes(tf)
        big_endian, planar = tf.byteorder == ">", int(first.planarconfig)
    parsed = parse_embedded(xml)
    if parsed.tag == OLD_ROOT:
        root = _upgrade(parsed)
    elif parsed.tag == _Q + "OME":
        root = parsed
    else:
        raise Decline(f"an OME document of another schema ({parsed.tag})")
    if root.find(_Q + "BinaryOnly") is not None:
        raise Decline("BinaryOnly")
    check_text(root)
    renamed = _schema_ids(root)
    valid(root)  # with schema IDs: everything but those IDs is proven valid
    cores = _cores(root, shapes, os.path.basename(path), big_endian, planar)
    round_trip(root, schema())
    populate(root, cores)
    _restore_ids(root, renamed)
    return serialise(root)


# -- NDTiff stacks (TiffReader) -------------------------------------------------------------------------
def _siblings_ok(path: str) -> bool:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        names = [entry.name.lower() for entry in os.scandir(folder)]
    except OSError:
        return False
    try:
        parent = [entry.name.lower() for entry in os.scandir(os.path.dirname(folder))]
    except OSError:  # outside the registered folder, in the extraction sandbox: Bio-Formats, fenced alike,
        parent = []  # cannot group the stack with anything there either (as the TIFF engines' Listings)
    if "ndtiff.index" not in names:
        return False
    for name in names:
        if name in NDTIFF_SIBLINGS:
            continue
        if name.endswith(_MM_COMPANIONS) or name.endswith(common.COMPANION_SUFFIXES):
            return False
    return not any(name.endswith(common.PARENT_COMPANIONS) for name in parent)


def ndtiff_info(path: str) -> TiffInfo:
    """What ``TiffReader`` reports for an NDTiff stack, as the plain TIFF engine's :class:`TiffInfo`."""
    import tifffile

    name = os.path.basename(path)
    if not _NDTIFF.fullmatch(name):
        raise Decline("not an _NDTiffStack.tif name")
    with tifffile.TiffFile(path) as tf:
        first = tf.pages.first
        if first.tags.get(MM_TAG) is None or not tf.is_ndtiff:
            raise Decline("not an NDTiff stack (tag 51123 and NDTiff.index)")
        shape = (first.imagewidth, first.imagelength, first.samplesperpixel, first.bitspersample,
                 first.sampleformat, first.photometric, first.planarconfig)
        for page in tf.pages:
            if not isinstance(page, tifffile.TiffPage) or int(page.subfiletype) != 0:
                raise Decline("an IFD that is not a full-resolution page")
            if not {tag.code for tag in page.tags} <= PLAIN_TAGS | {MM_TAG} or page.tags.get(270) is not None:
                raise Decline("tags beyond baseline and 51123, or a description")
            if (page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample, page.sampleformat,
                    page.photometric, page.planarconfig) != shape:
                raise Decline("pages of different shapes")
        pixel_type = common.PIXEL_TYPES.get((int(first.sampleformat), first.bitspersample))
        if pixel_type is None or first.samplesperpixel != 1 or int(first.photometric) not in (0, 1):
            raise Decline("not single-sample grey pixels")
        date = common.date(first)
        if date is False:
            raise Decline("a DateTime Bio-Formats may read otherwise")
        info = TiffInfo(
            kind="plain", name=name, big_endian=tf.byteorder == ">", size_x=first.imagewidth,
            size_y=first.imagelength, planes=len(tf.pages), samples=1, bits=first.bitspersample,
            pixel_type=pixel_type, description=None, date=date if isinstance(date, str) else None,
            physical=(common.resolution(first, 282), common.resolution(first, 283)), exif=None,
        )
    if not _siblings_ok(path):
        raise Decline("a sibling another reader could group the stack with")
    return info


# -- metadata.txt (MicromanagerReader) ------------------------------------------------------------------
METADATA = "metadata.txt"
MAX_METADATA = 64 << 20
MAX_PLANES = 100_000
_INT = re.compile(r"[+-]?\d{1,9}")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FRAME = re.compile(r'"FrameKey-(\d{1,6})-(\d{1,6})-(\d{1,6})": \{')
_SUMMARY_LINE = re.compile(r'"([^"\\:\[\]]*)": (?:"[^"\\\[\]]*"|-?[\w.+-]+|\[[^\[\]\\]*\]),?')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"([A-Z][a-z]{2}) ([A-Z][a-z]{2}) (\d\d) (\d\d):(\d\d):(\d\d) ([A-Za-z]{1,6}) (\d{4})")
#: Zone names Joda-Time (Bio-Formats' DateTools) parses; any other zone name gives no date.
JODA_ZONES = frozenset({"UT", "UTC", "GMT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT"})
#: Joda-Time's default zone names: the US ones are cities' zones (``DateTimeUtils.getDefaultTimeZoneNames``).
US_ZONES = {f"{letter}{kind}": city for letter, city in (("E", "America/New_York"), ("C", "America/Chicago"),
                                                         ("M", "America/Denver"), ("P", "America/Los_Angeles"))
            for kind in ("ST", "DT")}
BINNINGS = frozenset({"1x1", "2x2", "4x4", "8x8"})
#: a camera binning ``NxM``: one outside :data:`BINNINGS` is written ``Other``, as Bio-Formats does
_BINNING = re.compile(r"[0-9]{1,6}x[0-9]{1,6}")
#: BitsPerSample -> OME type of an unsigned single-sample TIFF (MinimalTiffReader's IFD.getPixelType)
_MM_TYPES = {8: "uint8", 16: "uint16"}


def _acquisition_date(time: str | None) -> str | None:
    """``Time`` as ``DateTools.formatDate(time, "EEE MMM dd HH:mm:ss zzz yyyy")`` gives it (Joda, UTC JVM).

    Joda sets the parsed fields largest range first, so the weekday comes after the day of the month and moves
    the date within its ISO week (Monday first); a US zone name is its city's zone, daylight saving time by
    the date whatever the name says (``PST`` in July is UTC-7). Local times in a daylight-saving change are
    declined."""
    if time is None:
        return None
    match = _TIME.fullmatch(time)
    if match is None:
        raise Decline(f"a summary Time Bio-Formats may read otherwise: {time!r}")
    day, month, dd, hh, mi, ss, zone, year = match.groups()
    if zone not in JODA_ZONES:
        return None  # Joda-Time knows no other zone name: Bio-Formats writes no date (checked live)
    if month not in _MONTHS or day not in _DAYS:
        raise Decline(f"a summary Time of an unknown month or day name: {time!r}")
    import datetime
    from zoneinfo import ZoneInfo

    try:
        when = datetime.datetime(int(year), _MONTHS.index(month) + 1, int(dd), int(hh), int(mi), int(ss))
        when += datetime.timedelta(days=_DAYS.index(day) - when.weekday())
    except (ValueError, OverflowError):
        raise Decline(f"a summary Time that is no calendar date: {time!r}") from None
    if zone in US_ZONES:
        local = when.replace(tzinfo=ZoneInfo(US_ZONES[zone]))
        if local.utcoffset() != local.replace(fold=1).utcoffset():
            raise Decline(f"a summary Time in a daylight-saving change: {time!r}")
        when = local.astimezone(datetime.UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _summary_value(line: str) -> str | None:
    """A summary line's value as ``MicromanagerReader`` cuts it (None: the line is skipped)."""
    value = line[line.index(":") + 1:]
    start, end = value.find("["), value.find("]")
    value = ox.jtrim(value[start + 1:end if end >= 0 else len(value)])
    if not value:
        return None
    value = value.replace('"', "")
    return value[:-1] if value.endswith(",") else value


def _java_int(value: str, what: str) -> int:
    if not _INT.fullmatch(value):
        raise Decline(f"{what} is not an integer: {value!r}")
    return int(value)


def _java_double(value: str, what: str) -> float:
    if not _DECIMAL.fullmatch(value):
        raise Decline(f"{what} is not a plain number: {value!r}")
    return float(value)


class _Position:
    """What ``MicromanagerReader`` keeps of one position (this engine reads single-position folders only)."""

    def __init__(self) -> None:
        self.summary: dict[str, str] = {}
        self.frames: list[tuple[tuple[int, int, int], str | None]] = []  # ((z, c, t), FileName)
        self.stamps: list[float] = []
        self.exposure: float | None = None
        self.camera = "null"
        self.binning: str | None = None
        self.serial: str | None = None
        self.model: str | None = None
        self.manufacturer: str | None = None
        self.gain = 0
        self.temperature = 0.0
        self.name: str | None = None

    def frame_entry(self, key: str, value: str) -> None:
        """One ``"key": value`` line of a FrameKey block, by the reader's rules (in its order)."""
        if key == "Exposure-ms":
            self.exposure = _java_double(value, "Exposure-ms")
        elif key == "ElapsedTime-ms":
            self.stamps.append(_java_double(value, "ElapsedTime-ms"))
        elif key == "Core-Camera":
            self.camera = value
        elif key == self.camera + "-Binning":
            self.binning = value if "x" in value else f"{value}x{value}"
        elif key == self.camera + "-CameraID":
            self.serial = value
        elif key == self.camera + "-CameraName":
            self.model = value
        elif key == self.camera + "-Gain":
            gain = _java_double(value, "camera gain")
            if not math.isfinite(gain) or abs(gain) >= 1 << 31:
                raise Decline(f"camera gain {value!r}")
            self.gain = int(gain)
        elif key == self.camera + "-Name":
            self.manufacturer = value
        elif key == self.camera + "-Temperature":
            self.temperature = _java_double(value, "camera temperature")
        elif key == self.camera + "-CCDMode":
            raise Decline("a camera CCDMode (the detector type rule is not reproduced)")
        elif key.startswith("DAC-") and key.endswith("-Volts"):
            raise Decline("DAC voltages (detector settings not reproduced)")
        elif key == "PositionName":
            if value != "null":
                self.name = value
        elif key == "FileName":
            self.frames[-1] = (self.frames[-1][0], value)


def _parse_metadata(text: str) -> _Position:
    """The lines of a Micro-Manager 1.4 ``metadata.txt`` (a Summary block, then FrameKey blocks)."""
    lines = [ox.jtrim(line) for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if len(lines) < 4 or lines[0] != "{" or lines[1] != '"Summary": {' or lines[-1] != "}":
        raise Decline("not a Summary block followed by FrameKey blocks")
    pos = _Position()
    index = 2
    while lines[index] not in ("}", "},"):
        line = lines[index]
        match = _SUMMARY_LINE.fullmatch(line)
        if match is None:
            raise Decline(f"a summary line of a form not reproduced: {line[:80]!r}")
        value = _summary_value(line)
        if value is not None:
            pos.summary[match.group(1)] = value
        index += 1
        if index >= len(lines) - 1:
            raise Decline("the Summary block does not end")
    index += 1
    while index < len(lines) - 1:
        match = _FRAME.fullmatch(lines[index])
        if match is None:
            raise Decline(f"a block other than FrameKey: {lines[index][:80]!r}")
        t, c, z = (int(g) for g in match.groups())
        pos.frames.append(((z, c, t), None))
        index += 1
        while index < len(lines) - 1 and lines[index] not in ("}", "},"):
            line = lines[index]
            colon = line.find(":")
            if not line.startswith('"') or line.endswith(("{", "[")) or not 0 < colon < len(line) - 1:
                raise Decline(f"a frame line of a form not reproduced: {line[:80]!r}")
            key = ox.jtrim(line[1:colon]).replace('"', "")
            value = ox.jtrim(line[colon + 1:len(line) - 1]).replace('"', "")  # the last character goes, comma or not
            pos.frame_entry(key, value)
            index += 1
        if index >= len(lines) - 1:
            raise Decline("a FrameKey block does not end")
        index += 1
    return pos


def _order_coords(order: str, sizes: dict[str, int], index: int) -> dict[str, int]:
    coords = {}
    for dim in order[2:]:
        coords[dim] = index % sizes[dim]
        index //= sizes[dim]
    return coords


def _zct(order: str, sizes: dict[str, int], index: int) -> tuple[int, int, int]:
    coords = _order_coords(order, sizes, index)
    return coords["Z"], coords["C"], coords["T"]


def _tiff_core(path: str) -> tuple[int, int, str, bool]:
    """Width, height, pixel type and byte order of the first IFD (declines positions in its ImageJ metadata).

    Stage positions in the IFDs' Micro-Manager tag (``X/Y/ZPositionUm``) are not read by
    ``MicromanagerReader`` when a metadata.txt describes the frames (random sets of them on one or several
    IFDs agree with live Bio-Formats, ``tests/test_differential_micromanager.py``)."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        first = tf.pages.first
        bits, samples = first.bitspersample, first.samplesperpixel
        if int(first.sampleformat) != 1 or samples != 1 or bits not in _MM_TYPES:
            raise Decline("a TIFF that is not single-sample unsigned 8 or 16 bit")
        ij = first.tags.get(50839)
        if ij is not None and "PositionUm" in str(ij.value):
            raise Decline("stage positions in the TIFF's ImageJ metadata (not reproduced)")
        return first.imagewidth, first.imagelength, _MM_TYPES[bits], tf.byteorder == "<"


def _metadata_name(path: str) -> bool:
    if not path.endswith(METADATA):
        return False
    name = os.path.basename(path)
    return name == METADATA or name.endswith("_" + METADATA)


def metadata_document(path: str) -> str:
    """A Micro-Manager ``metadata.txt`` as Bio-Formats 7.3.1's ``MicromanagerReader`` prints it."""
    if not _metadata_name(path):
        raise Decline("not a metadata.txt name")
    size = os.path.getsize(path)
    if size > MAX_METADATA:
        raise Decline("a metadata.txt above 64 MiB")
    with open(path, "rb") as fh:
        raw = fh.read(MAX_METADATA)
    low = raw[:1 << 20].lower()
    if b"micro-manager" not in low and b"micromanager" not in low:
        raise UnsupportedFormatError("not a Micro-Manager metadata.txt (no 'Micro-Manager' in it)")
    folder = os.path.dirname(os.path.abspath(path))
    if "Pos_" in os.path.basename(folder):
        raise Decline("a Pos_ folder (a multi-position dataset)")
    if os.path.exists(os.path.join(folder, "Acqusition.xml")):
        raise Decline("an Acqusition.xml beside it")
    if os.path.basename(path) != METADATA and os.path.exists(os.path.join(folder, METADATA)):
        raise Decline("a metadata.txt beside it (Bio-Formats reads that one)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Decline("not UTF-8") from None
    pos = _parse_metadata(text)
    summary = pos.summary
    for key in ("FileName", "SPIMmode"):
        if key in summary:
            raise Decline(f"a summary {key} (not reproduced)")
    if summary.get("IJType", "0") not in ("0", "1"):
        raise Decline(f"IJType {summary['IJType']!r} (Bio-Formats fails)")
    if "Channels" not in summary or "ChNames" not in summary:
        raise Decline("no Channels or ChNames in the summary")
    sizes = {"Z": _java_int(summary.get("Slices", "0"), "Slices"),
             "C": _java_int(summary["Channels"], "Channels"), "T": _java_int(summary.get("Frames", "0"), "Frames")}
    sizes["Z"], sizes["T"] = sizes["Z"] or 1, sizes["T"] or 1
    if min(sizes.values()) < 1 or sizes["Z"] * sizes["C"] * sizes["T"] > MAX_PLANES:
        raise Decline(f"sizes {sizes}")
    order = "XYZCT"
    if "SlicesFirst" in summary:
        order = "XYCZT" if summary["SlicesFirst"] == "false" else "XYZCT"
    names = [ox.jtrim(n.replace('"', "")) for n in summary["ChNames"].split(",")]
    colors = [_java_int(ox.jtrim(c), "ChColors") for c in summary["ChColors"].split(",")] if "ChColors" in summary \
        else []
    if len(names) > sizes["C"] or len(colors) > sizes["C"]:
        raise Decline("more channel names or colours than channels")
    comment = summary.get("Comment")
    if comment is not None and not comment:
        raise Decline("an empty Comment")
    physical = {}
    for key, dim in (("PixelSize_um", "X"), ("z-step_um", "Z")):
        if key in summary:
            value = _java_double(summary[key], key)
            if 0 < value < 1e-3 or not math.isfinite(value):
                raise Decline(f"{key} {value} (Bio-Formats may change its unit)")
            if value > 0:
                physical[dim] = value
    if "X" in physical:
        physical["Y"] = physical["X"]
    if pos.binning is None or not _BINNING.fullmatch(pos.binning):
        raise Decline(f"camera binning {pos.binning!r}")
    binning = pos.binning if pos.binning in BINNINGS else "Other"  # MetadataTools.getBinning's fallback
    files = {name for _, name in pos.frames if name is not None}
    if len(files) != 1 or any(name is None for _, name in pos.frames):
        raise Decline("frames in several TIFF files, or without a FileName")
    tiff = os.path.join(folder, files.pop())
    if os.sep in os.path.relpath(tiff, folder) or not os.path.isfile(tiff):
        raise Decline("the TIFF the frames name is not in the folder")
    if not fence.in_folder(tiff, folder):
        raise ExtractionError(f"the TIFF the frames name ({os.path.basename(tiff)}) resolves outside the file's "
                              "folder; refused, not read")
    width, height, pixel_type, little = _tiff_core(tiff)
    count = sizes["Z"] * sizes["C"] * sizes["T"]
    with_file = {coords for coords, _ in pos.frames}
    stamps = sorted(pos.stamps)  # every ElapsedTime-ms, sorted, goes to the next plane that has a frame
    delta: list[float | None] = []
    used = 0
    for q in range(count):
        zct = _order_coords(order, sizes, q)
        if _zct(order, sizes, q) in with_file and used < len(stamps):
            delta.append(stamps[used])
            used += 1
        else:
            delta.append(None)
    if not any(_zct(order, sizes, q) in with_file for q in range(min(len(pos.frames), count))):
        # MicromanagerReader reads the TIFF only through a frame of one of the first N planes (N FrameKey
        # blocks, in the dimension order); else its sizes, type and byte order come from elsewhere (160 random
        # frame sets against live Bio-Formats, tests/test_differential_micromanager.py)
        raise Decline("no frame among the first planes, as many as the FrameKey blocks (the TIFF would not be "
                      "read)")

    detector = {"ID": "Detector:0:0", "Type": "Other"}
    for attr, given in (("Manufacturer", pos.manufacturer), ("Model", pos.model), ("SerialNumber", pos.serial)):
        if given is not None:
            detector[attr] = given
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    instrument.add(ox.El("Detector", detector))
    image = ox.El("Image", {"ID": "Image:0", "Name": pos.name if pos.name is not None else os.path.basename(path)})
    date = _acquisition_date(summary.get("Time"))
    if date is not None:
        image.add(ox.El("AcquisitionDate", text=date))
    if comment is not None:
        image.add(ox.El("Description", text=comment))
    image.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    image.add(ox.El("ImagingEnvironment", {"Temperature": ox.jdouble(pos.temperature), "TemperatureUnit": "°C"}))
    pixels = image.add(ox.pixels(
        dimension_order=order, pixel_type=pixel_type, size=(width, height, sizes["Z"], sizes["C"], sizes["T"]),
        big_endian=not little, significant_bits=BITS[pixel_type],
        physical=(physical.get("X"), physical.get("Y"), physical.get("Z"))))
    for c in range(sizes["C"]):
        attrs = {"ID": f"Channel:0:{c}", "SamplesPerPixel": "1"}
        if c < len(colors):
            attrs["Color"] = str(colors[c])
        if c < len(names):
            attrs["Name"] = names[c]
        channel = pixels.add(ox.El("Channel", attrs))
        if c < len(names):
            channel.add(ox.El("DetectorSettings", {"Binning": binning, "Gain": ox.jdouble(float(pos.gain)),
                                                   "ID": "Detector:0:0"}))
        channel.add(ox.El("LightPath"))
    pixels.add(ox.El("MetadataOnly"))
    for q in range(count):
        zct = _order_coords(order, sizes, q)
        attrs = {"TheC": str(zct["C"]), "TheT": str(zct["T"]), "TheZ": str(zct["Z"])}
        stamp = delta[q]
        if stamp is not None:
            attrs.update(DeltaT=ox.jdouble(stamp), DeltaTUnit="ms")
        if pos.exposure is not None:
            attrs.update(ExposureTime=ox.jdouble(pos.exposure), ExposureTimeUnit="ms")
        pixels.add(ox.El("Plane", attrs))
    return ox.document(instrument, image)


# -- the engine -----------------------------------------------------------------------------------------
def _kind(path: str, head: bytes) -> str | None:
    """Which kind ``path`` may be, from its name and first bytes only (None: not this engine's)."""
    if _metadata_name(path):
        return "metadata"
    if not head.startswith(common.TIFF_MAGIC):
        return None
    name = os.path.basename(path)
    if name.lower().endswith(_OME_TIFF):
        return "mmstack"
    if _NDTIFF.fullmatch(name):
        return "ndtiff"
    return None


def _build(path: str, kind: str) -> str:
    """The document of ``path`` (of the ``kind`` its name and first bytes say)."""
    if kind == "mmstack":
        return mmstack_document(path)
    if kind == "metadata":
        return metadata_document(path)
    return ox.document(plain_image(ndtiff_info(path)))


class MicromanagerEngine(ContextEngine[str]):
    """MMStack OME-TIFFs, NDTiff stacks and metadata.txt; every other file is declined (Bio-Formats reads it).
    What ``claim_in`` finds is the document itself."""

    name = NAME

    def version(self) -> str:
        """The tifffile version (the library that reads the file)."""
        return package_version("tifffile")

    def claim_in(self, ctx: FileContext) -> Claim[str]:
        """:data:`CLAIM` for a kind of Micro-Manager file whose OME-XML this engine gives as Bio-Formats does."""
        kind = _kind(ctx.path, ctx.head)
        if kind is None:
            return Claim(0)
        try:
            xml = _build(ctx.path, kind)
        except Exception:  # noqa: BLE001 - what cannot be proven (or is hostile) goes to Bio-Formats
            return Claim(0)
        return Claim(CLAIM, xml)

    def extract_in(self, ctx: FileContext, found: str | None = None) -> str:
        """The OME-XML of the file (raises :class:`ExtractionError` for a file this engine declines)."""
        if found is not None:
            return found
        path = ctx.path
        head = head_of(path, 8)
        kind = _kind(path, head)
        if kind is None and not head.startswith(common.TIFF_MAGIC):
            raise UnsupportedFormatError(f"not a TIFF file (first 4 bytes: {head[:4]!r})")
        if kind is None:
            raise ExtractionError("neither an MMStack .ome.tif nor an _NDTiffStack.tif name (use Bio-Formats)")
        try:
            return _build(path, kind)
        except Decline as exc:
            why = " ".join(str(exc).split())[:200]
            raise ExtractionError(f"a Micro-Manager file of a kind this engine does not read ({why}); "
                                  "use Bio-Formats") from None
        except ExtractionError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile's errors on broken files, as one line
            message = " ".join(str(exc).split())[:200]
            raise ExtractionError(f"cannot read the TIFF: {type(exc).__name__}: {message}") from None
