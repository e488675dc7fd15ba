"""Zeiss CZI from its documented segment structure, as Bio-Formats 7.3.1's ZeissCZIReader reports it.

A CZI file is a chain of 32-byte aligned segments, each a 16-byte id (``ZISRAWFILE``, ``ZISRAWSUBBLOCK``,
``ZISRAWMETADATA``, ``ZISRAWATTACH``, ``ZISRAWDIRECTORY``, ``DELETED`` …), the allocated and used size,
then the segment's data. A subblock carries its directory entry (pixel type, compression, pyramid type
and one ``start/size/stored size`` entry per dimension X, Y, Z, C, T, S, M, B, H, R, I, V) and a small
XML document (acquisition time, stage and focus position); the metadata segment carries the file's XML
document (``ImageDocument``). This engine reads those headers and the XML only, never the pixels, and
needs no third-party package.

It claims a file only when the subblocks say it is a kind whose mapping has been checked against
Bio-Formats in ``tests/test_engines_czi.py``: one file part, one scene, no pyramid (every subblock at
full resolution), no phase/rotation/illumination/view/block index other than 0, one gray or BGR pixel
type, every Z/C/T plane present, no embedded label or slide-preview image, no multi-well plate and no
PALM data. Everything else (scenes, pyramids, Airyscan phases, plates …) is left to Bio-Formats.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from .. import ome
from . import _omexml as ox
from .base import ClaimMemo, ExtractionError, UnsupportedFormatError, package_version

NAME = "czi"
CLAIM = 50  # magic bytes plus a structural check: beats Bio-Formats' catch-all 1
MAGIC = b"ZISRAWFILE"
ALIGN = 32
MAX_SEGMENTS = 200_000
MAX_XML = 64 << 20
MAX_SUBBLOCK_XML = 1 << 20
#: CZI pixel type -> (OME type, samples per pixel); the ones whose mapping has been checked
PIXEL_TYPES = {0: ("uint8", 1), 1: ("uint16", 1), 3: ("uint8", 3)}
#: XML that marks a sample carrier with wells (CZI files with one may be reported with a Plate).
PLATE_MARKERS = (b"<shaperows>", b"<shapecolumns>", b"multiwell", b"<rowindex>", b"<columnindex>", b"<well")
#: Dimensions that, with any index but 0, make Bio-Formats split the file or re-label its planes.
SPLITTING = frozenset("SHRIVB")
LISTING_TTL = 60.0


@dataclass
class SubBlock:
    """One ``ZISRAWSUBBLOCK``: its dimension entries and what its own XML says."""

    pixel_type: int
    pyramid: int
    dims: dict[str, tuple[int, int, int]]  # name -> (start, size, stored size)
    stage_x: float | None = None
    stage_y: float | None = None
    stage_z: float | None = None
    timestamp: float | None = None
    exposure: float | None = None


@dataclass
class CziFile:
    """What the engine needs from a CZI, read once (by ``claim``) and used again by ``extract``."""

    name: str
    subblocks: list[SubBlock]
    directory_count: int | None
    xml: bytes | None
    attachments: list[str]
    timestamps: list[float] = field(default_factory=list)


def _read_exact(fh: Any, offset: int, size: int, what: str) -> bytes:
    fh.seek(offset)
    data: bytes = fh.read(size)
    if len(data) != size:
        raise ExtractionError(f"truncated CZI: {what} at byte {offset} needs {size} bytes, found {len(data)}")
    return data


def _timestamp(text: str) -> float | None:
    """An ISO 8601 instant as seconds since 1970, truncated to the millisecond as Joda's Instant keeps it."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?", text.strip())
    if match is None:
        return None
    base = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    millis = int((match.group(2) or "0")[:3].ljust(3, "0"))
    zone = match.group(3)
    seconds = int(base.timestamp())
    if zone and zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        seconds += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return (seconds * 1000 + millis) / 1000.0


def _subblock_tags(raw: bytes, block: SubBlock) -> None:
    """Stage position, focus, acquisition time and exposure from a subblock's ``<METADATA><Tags>``."""
    text = raw.decode("utf-8", errors="replace").strip()
    if len(text) <= 16:
        return
    try:
        root = ome.parse(text.encode("utf-8"))
    except (etree.XMLSyntaxError, ome.UnsafeXMLError):
        return
    for tags in root:
        if not isinstance(tags.tag, str) or tags.tag != "Tags":
            continue
        for tag in tags:
            if not isinstance(tag.tag, str):
                continue
            value = "".join(tag.itertext())
            try:
                if tag.tag == "StageXPosition":
                    block.stage_x = float(value)
                elif tag.tag == "StageYPosition":
                    block.stage_y = float(value)
                elif tag.tag == "FocusPosition":
                    block.stage_z = float(value)
                elif tag.tag == "AcquisitionTime":
                    block.timestamp = _timestamp(value)
                elif tag.tag == "ExposureTime":
                    block.exposure = float(value)
            except ValueError:
                raise ExtractionError(f"CZI subblock tag {tag.tag} is not a number: {value[:40]!r}") from None


def _entry(data: bytes, offset: int) -> tuple[int, int, dict[str, tuple[int, int, int]], int]:
    """A directory entry (``DV`` schema): pixel type, pyramid type, dimensions, and its length in bytes."""
    if len(data) < offset + 32:
        raise ExtractionError("truncated CZI subblock directory entry")
    pixel_type = struct.unpack_from("<i", data, offset + 2)[0]
    pyramid = data[offset + 22]
    count = struct.unpack_from("<i", data, offset + 28)[0]
    if not 0 <= count <= 32 or len(data) < offset + 32 + 20 * count:
        raise ExtractionError(f"CZI subblock has an impossible dimension count ({count})")
    dims: dict[str, tuple[int, int, int]] = {}
    for i in range(count):
        at = offset + 32 + 20 * i
        label = data[at:at + 4].rstrip(b"\x00 ").decode("latin-1")
        start, size, _coord, stored = struct.unpack_from("<iifi", data, at + 4)
        dims[label] = (start, size, stored)
    return pixel_type, pyramid, dims, 32 + 20 * count


def read_czi(path: str) -> CziFile:
    """Walk every segment of ``path`` (headers and XML only); raises :class:`ExtractionError` on damage."""
    subblocks: list[SubBlock] = []
    attachments: list[str] = []
    xml: bytes | None = None
    directory_count: int | None = None
    timestamps: list[float] = []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        length = fh.tell()
        pos = 0
        for _ in range(MAX_SEGMENTS):
            if pos + 32 > length:
                break
            header = _read_exact(fh, pos, 32, "segment header")
            sid = header[:16].rstrip(b"\x00 ").decode("latin-1")
            allocated = struct.unpack_from("<q", header, 16)[0]
            if allocated < 0 or pos + 32 + allocated > length:
                raise ExtractionError(f"truncated CZI: segment {sid or '?'} at byte {pos} runs past the end")
            if not sid and pos > 0:
                break  # Bio-Formats stops at an empty segment id (zero padding at the end)
            if pos == 0 and sid != "ZISRAWFILE":
                raise UnsupportedFormatError("not a CZI file (no ZISRAWFILE segment)")
            if sid == "ZISRAWSUBBLOCK":
                head = _read_exact(fh, pos + 32, min(allocated, 16 + 32 + 20 * 32), "subblock header")
                meta_size, _att, _data = struct.unpack_from("<iiq", head, 0)
                pixel_type, pyramid, dims, entry_len = _entry(head, 16)
                block = SubBlock(pixel_type, pyramid, dims)
                meta_at = pos + 32 + max(256, 16 + entry_len)
                if not 0 <= meta_size <= MAX_SUBBLOCK_XML or meta_at + meta_size > pos + 32 + allocated:
                    raise ExtractionError(f"CZI subblock at byte {pos} has an impossible metadata size")
                if meta_size:
                    _subblock_tags(_read_exact(fh, meta_at, meta_size, "subblock metadata"), block)
                subblocks.append(block)
            elif sid == "ZISRAWMETADATA":
                xml_size = struct.unpack_from("<i", _read_exact(fh, pos + 32, 8, "metadata header"), 0)[0]
                if not 0 <= xml_size <= min(MAX_XML, allocated - 256):
                    raise ExtractionError(f"CZI metadata segment has an impossible XML size ({xml_size})")
                if xml is None:
                    xml = _read_exact(fh, pos + 32 + 256, xml_size, "metadata XML")
            elif sid == "ZISRAWDIRECTORY":
                directory_count = struct.unpack_from("<i", _read_exact(fh, pos + 32, 4, "directory"), 0)[0]
            elif sid == "ZISRAWATTACH":
                entry = _read_exact(fh, pos + 32, 16 + 128, "attachment entry")
                size = struct.unpack_from("<i", entry, 0)[0]
                name = entry[16 + 48:16 + 128].split(b"\x00", 1)[0].decode("latin-1").strip()
                attachments.append(name)
                if name == "TimeStamps" and 8 <= size <= (1 << 24) and pos + 32 + 256 + size <= length:
                    data = _read_exact(fh, pos + 32 + 256, size, "time stamps")
                    timestamps = [struct.unpack_from("<d", data, at)[0] for at in range(8, size - 7, 8)]
            elif sid not in ("ZISRAWFILE", "ZISRAWATTDIR", "DELETED"):
                raise ExtractionError(f"CZI has an unknown segment {sid[:16]!r} at byte {pos}")
            pos = pos + 32 + allocated
            pos += (ALIGN - pos % ALIGN) % ALIGN
        else:
            raise ExtractionError(f"CZI has more than {MAX_SEGMENTS} segments")
    if length < 32:
        raise ExtractionError(f"truncated CZI: {length} bytes, not even a file header")
    if directory_count is None:
        raise ExtractionError("CZI without a subblock directory (truncated or damaged)")
    if directory_count != len(subblocks):
        raise ExtractionError(f"CZI directory lists {directory_count} subblocks but {len(subblocks)} were found "
                              "(truncated or damaged)")
    return CziFile(os.path.basename(path), subblocks, directory_count, xml, attachments, timestamps)


# -- the XML document -----------------------------------------------------------------------------------
def _descendants(root: etree._Element, name: str) -> list[etree._Element]:
    """The elements called ``name`` below ``root``, in document order (DOM ``getElementsByTagName``)."""
    return [el for el in root.iter(name) if el is not root]


def _first(root: etree._Element | None, name: str) -> etree._Element | None:
    """The first descendant called ``name`` (DOM ``getElementsByTagName(name).item(0)``)."""
    if root is None:
        return None
    return next((el for el in root.iter(name) if el is not root), None)


def _first_text(root: etree._Element | None, name: str) -> str | None:
    el = _first(root, name)
    return None if el is None else "".join(el.itertext())


def _grandchildren(root: etree._Element | None, child: str, name: str) -> list[etree._Element] | None:
    """Bio-Formats' ``getGrandchildren``: the ``name`` descendants of the first ``child`` descendant."""
    holder = _first(root, child)
    if holder is None:
        return None
    return _descendants(holder, name)


@dataclass
class Channel:
    name: str | None = None
    emission: str | None = None
    excitation: str | None = None
    exposure: float | None = None


@dataclass
class Document:
    """The parts of the ``ImageDocument`` that feed the key fields."""

    image_name: str | None = None
    acquired: str | None = None
    physical: dict[str, float] = field(default_factory=dict)
    channels: list[Channel] = field(default_factory=list)
    objectives: list[tuple[str | None, str | None]] = field(default_factory=list)
    position: tuple[float | None, float | None, float | None] = (None, None, None)
    z_step: float | None = None
    plate: bool = False
    palm: bool = False


def _channel(channels: list[Channel], index: int) -> Channel:
    while len(channels) <= index:
        channels.append(Channel())
    return channels[index]


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def read_document(xml: bytes) -> Document:
    """Parse the metadata segment's XML (safely: no DTD, no entities) into a :class:`Document`."""
    try:
        top = ome.parse(xml)
    except (etree.XMLSyntaxError, ome.UnsafeXMLError) as exc:
        raise ExtractionError(f"CZI metadata XML cannot be parsed: {exc}") from None
    root = next((c for c in top if isinstance(c.tag, str)), None)
    doc = Document()
    if root is None:
        return doc
    text = xml.lower()
    # a sample carrier with a well grid: Bio-Formats may then write a Plate (by rules not yet checked)
    doc.plate = any(marker in text for marker in PLATE_MARKERS)
    palm_slider = _first_text(_first(_first(root, "Experiment"), "TrackSetup"), "PalmSlider")
    doc.palm = (palm_slider or "").strip().lower() == "true" or any(
        (tag.get("Name") or "").lower().startswith("palm") for tag in root.iter("LsmTag"))

    # Experiment: exposure per track
    experiment = _first(root, "Experiment")
    acquisition = _first(_first(experiment, "ExperimentBlocks"), "AcquisitionBlock")
    multitrack = _first(acquisition, "MultiTrackSetup")
    if multitrack is not None:
        for i, track in enumerate(_descendants(multitrack, "Track")):
            exposure = _number(_first_text(_first(track, "Channel"), "ExposureTime"))
            _channel(doc.channels, i).exposure = exposure

    # Information
    information = _first(root, "Information")
    image = _first(information, "Image")
    if image is not None:
        doc.acquired = _first_text(image, "AcquisitionDateAndTime")
        dimensions = _first(image, "Dimensions")
        z_increment = _first_text(_first(_first(_first(dimensions, "Z"), "Positions"), "Interval"), "Increment")
        doc.z_step = _number(z_increment)
        scene = _first(_first(dimensions, "S"), "Scene")
        if scene is not None:
            position = _first(scene, "Position")
            if position is not None:
                doc.position = (_number(position.get("X")), _number(position.get("Y")),
                                _number(position.get("Z")))
            else:
                center = _first_text(scene, "CenterPosition")
                parts = (center or "").split(",")
                if len(parts) >= 2:
                    doc.position = (_number(parts[0]), _number(parts[1]), None)
        nodes = _grandchildren(dimensions, "Channels", "Channel")
        if nodes is None:
            nodes = _descendants(image, "Channel")
        for i, node in enumerate(nodes):
            ch = _channel(doc.channels, i)
            ch.emission = _first_text(node, "EmissionWavelength")
            ch.excitation = _first_text(node, "ExcitationWavelength")
            ch.name = node.get("Name", "")
    instrument = _first(information, "Instrument")
    for objective in _grandchildren(instrument, "Objectives", "Objective") or []:
        magnification = _first_text(objective, "NominalMagnification")
        if magnification is None:
            magnification = _first_text(objective, "Magnification")
        doc.objectives.append((magnification, _first_text(objective, "LensNA")))
    document = _first(information, "Document")
    if document is not None:
        doc.image_name = _first_text(document, "Name")

    # Scaling
    for distance in _grandchildren(_first(root, "Scaling"), "Items", "Distance") or []:
        value = _number(_first_text(distance, "Value"))
        if value is not None and value * 1000000 > 0:
            doc.physical.setdefault(distance.get("Id", ""), value * 1000000)

    # Display settings override channel names and dye wavelengths
    for display in root.iter("DisplaySetting"):
        for i, node in enumerate(_grandchildren(display, "Channels", "Channel") or []):
            ch = _channel(doc.channels, i)
            ch.name = node.get("Name", "")
            emission = _first_text(node, "DyeMaxEmission")
            if emission is not None:
                ch.emission = emission
            excitation = _first_text(node, "DyeMaxExcitation")
            if excitation is not None:
                ch.excitation = excitation
    return doc


# -- the decision and the OME-XML -----------------------------------------------------------------------
@dataclass
class Layout:
    """The single image Bio-Formats makes of a claimed file."""

    size: tuple[int, int, int, int, int]  # X, Y, Z, C (channels, RGB counted once), T
    pixel_type: str
    samples: int
    planes: dict[tuple[int, int, int], list[SubBlock]]  # (z, c, t) -> subblocks (mosaic tiles)


def layout(czi: CziFile) -> Layout | None:
    """How Bio-Formats lays the subblocks out; None when the file is of a kind this engine declines."""
    blocks = czi.subblocks
    if not blocks or czi.directory_count != len(blocks):
        return None
    if any(name in ("Label", "SlidePreview") for name in czi.attachments):
        return None
    kinds = {b.pixel_type for b in blocks}
    if len(kinds) != 1 or next(iter(kinds)) not in PIXEL_TYPES:
        return None
    pixel_type, samples = PIXEL_TYPES[next(iter(kinds))]
    planes: dict[tuple[int, int, int], list[SubBlock]] = {}
    xs: list[tuple[int, int]] = []
    ys: list[tuple[int, int]] = []
    for block in blocks:
        if block.pyramid != 0 or "X" not in block.dims or "Y" not in block.dims:
            return None
        if any(block.dims.get(d, (0, 1, 1))[0] != 0 for d in SPLITTING):
            return None
        if any(len(d) != 1 or d not in "XYZCTMSHRIVB" for d in block.dims):
            return None
        for axis, spans in (("X", xs), ("Y", ys)):
            start, size, stored = block.dims[axis]
            if size != stored or size <= 0:
                return None
            spans.append((start, size))
        zct = []
        for axis in "ZCT":
            start, size, _ = block.dims.get(axis, (0, 1, 1))
            if start < 0 or size != 1:
                return None
            zct.append(start)
        planes.setdefault((zct[0], zct[1], zct[2]), []).append(block)
    size_z, size_c, size_t = (max(key[i] for key in planes) + 1 for i in range(3))
    if len(planes) != size_z * size_c * size_t:
        return None  # a missing plane: unchecked
    tiles = {len(v) for v in planes.values()}
    if len(tiles) != 1:
        return None
    if next(iter(tiles)) > 1:
        mosaic = [b.dims.get("M", (0, 1, 1))[0] for b in planes[(0, 0, 0)]]
        if len(set(mosaic)) != len(mosaic):
            return None
    size_x = max(s + n for s, n in xs) - min(s for s, _ in xs)
    size_y = max(s + n for s, n in ys) - min(s for s, _ in ys)
    return Layout((size_x, size_y, size_z, size_c * samples, size_t), pixel_type, samples, planes)


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = int(round((seconds - int(seconds)) * 1000)) % 1000
    return f"{text}.{millis:03d}" if millis else text


def _acquisition_date(text: str) -> str | None:
    """``AcquisitionDateAndTime`` as OME's ``Timestamp`` prints it (to the millisecond, no zone)."""
    seconds = _timestamp(text)
    return None if seconds is None else _iso(seconds)


def image_xml(czi: CziFile, lay: Layout, doc: Document) -> ox.El:
    """The Image Bio-Formats' ZeissCZIReader reports for a claimed file."""
    name = doc.image_name if doc.image_name and doc.image_name.strip() else czi.name
    image = ox.El("Image", {"ID": "Image:0", "Name": f"{name} #1"})
    start: float | None = None
    if doc.acquired is not None:
        date = _acquisition_date(doc.acquired)
        if date is None:
            raise ExtractionError(f"CZI acquisition date not understood: {doc.acquired[:40]!r}")
        image.add(ox.El("AcquisitionDate", text=date))
        start = _timestamp(doc.acquired)
    size_x, size_y, size_z, size_c, size_t = lay.size
    bits = 8 if lay.pixel_type == "uint8" else 16  # Bio-Formats 7.3.1 ignores ComponentBitCount here
    pixels = image.add(ox.pixels(
        pixel_type=lay.pixel_type, size=lay.size, big_endian=False, significant_bits=bits,
        interleaved=lay.samples > 1,
        physical=(doc.physical.get("X"), doc.physical.get("Y"), doc.physical.get("Z")),
    ))
    for c in range(size_c // lay.samples):
        attrs: dict[str, str] = {}
        if c < len(doc.channels):
            ch = doc.channels[c]
            if ch.name is not None:
                attrs["Name"] = ch.name
            for key, value in (("EmissionWavelength", ch.emission), ("ExcitationWavelength", ch.excitation)):
                number = _number(value)
                if number is not None and number > 0:
                    attrs[key] = ox.jdouble(number)
                    attrs[key + "Unit"] = "nm"
        pixels.add(ox.channel(0, c, lay.samples, **attrs))
    pixels.add(ox.El("MetadataOnly"))
    x0, y0, z0 = doc.position
    for t in range(size_t):
        for z in range(size_z):
            for c in range(size_c // lay.samples):
                blocks = lay.planes[(z, c, t)]
                first = blocks[0]
                plane: dict[str, str] = {"TheC": str(c), "TheT": str(t), "TheZ": str(z)}
                stage_x = [b.stage_x for b in blocks if b.stage_x is not None]
                stage_y = [b.stage_y for b in blocks if b.stage_y is not None]
                for axis, found, fallback, grid in (("X", stage_x, x0, first.dims["X"][0]),
                                                    ("Y", stage_y, y0, first.dims["Y"][0])):
                    if found:
                        low, high = min(found), max(found)
                        plane[f"Position{axis}"] = ox.jdouble(low + (high - low) / 2)
                        plane[f"Position{axis}Unit"] = ox.MICRON
                    elif fallback is not None:
                        plane[f"Position{axis}"] = ox.jdouble(fallback)
                        plane[f"Position{axis}Unit"] = ox.MICRON
                    else:
                        plane[f"Position{axis}"] = str(grid)
                        plane[f"Position{axis}Unit"] = "reference frame"
                if first.stage_z is not None:
                    plane.update(PositionZ=ox.jdouble(first.stage_z), PositionZUnit=ox.MICRON)
                elif z0 is not None:
                    focus = z0 + z * doc.z_step if doc.z_step is not None else z0
                    plane.update(PositionZ=ox.jdouble(focus), PositionZUnit=ox.MICRON)
                if first.timestamp is not None:
                    if start is None:
                        start = first.timestamp
                    plane.update(DeltaT=ox.jdouble(first.timestamp - start), DeltaTUnit="s")
                elif len(czi.timestamps) == size_z * size_c * size_t // lay.samples:
                    index = c + (z + t * size_z) * (size_c // lay.samples)
                    plane.update(DeltaT=ox.jdouble(czi.timestamps[index]), DeltaTUnit="s")
                elif t < len(czi.timestamps):
                    plane.update(DeltaT=ox.jdouble(czi.timestamps[t]), DeltaTUnit="s")
                exposure = first.exposure
                if exposure is None and c < len(doc.channels):
                    exposure = doc.channels[c].exposure
                if exposure is not None:
                    plane.update(ExposureTime=ox.jdouble(exposure), ExposureTimeUnit="s")
                pixels.add(ox.El("Plane", plane))
    return image


def instrument_xml(doc: Document) -> ox.El:
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    for i, (magnification, na) in enumerate(doc.objectives):
        attrs = {"ID": f"Objective:{i}"}
        if _number(na) is not None:
            attrs["LensNA"] = ox.jdouble(_number(na) or 0.0)
        if _number(magnification) is not None:
            attrs["NominalMagnification"] = ox.jdouble(_number(magnification) or 0.0)
        instrument.add(ox.El("Objective", attrs))
    return instrument


@dataclass
class Inspected:
    czi: CziFile
    layout: Layout
    document: Document


def _multipart(path: str, listings: dict[str, tuple[float, tuple[str, ...]]], lock: threading.Lock) -> bool:
    """Whether ``path`` is, or has, a part of a multi-file CZI (``name (1).czi`` …)."""
    folder, base = os.path.split(os.path.abspath(path))
    stem = base.rsplit(".", 1)[0]
    if stem.endswith(")"):
        return True
    now = time.monotonic()
    with lock:
        hit = listings.get(folder)
    if hit is None or now - hit[0] > LISTING_TTL:
        try:
            names = tuple(entry.name for entry in os.scandir(folder))
        except OSError:
            names = ()
        with lock:
            listings[folder] = (now, names)
    else:
        names = hit[1]
    return any(n.startswith((stem + "(", stem + " (")) for n in names)


def inspect_czi(path: str) -> Inspected | None:
    """Read and classify ``path``; None when this engine leaves the file to Bio-Formats."""
    czi = read_czi(path)
    lay = layout(czi)
    if lay is None or czi.xml is None:
        return None
    doc = read_document(czi.xml)
    if doc.plate:
        return None
    # Bio-Formats looks for PALM data (and then splits the planes) only in files of at most two planes
    if doc.palm and len(czi.subblocks) <= 2:
        return None
    return Inspected(czi, lay, doc)


class CziEngine:
    """Single-scene, full-resolution CZI from its own segments; every other CZI goes to Bio-Formats."""

    name = NAME

    def __init__(self) -> None:
        self._listings: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self._memo: ClaimMemo[Inspected] = ClaimMemo()

    def version(self) -> str:
        return f"{package_version('metaextract')}-czi"

    def claim(self, path: str, head: bytes) -> int:
        if not head.startswith(MAGIC):
            return 0
        try:
            if _multipart(path, self._listings, self._lock):
                return 0
            found = inspect_czi(path)
        except Exception:  # noqa: BLE001 - a file this engine cannot parse is simply not claimed
            return 0
        if found is None:
            return 0
        self._memo.keep(path, found)
        return CLAIM

    def extract(self, path: str) -> str:
        found = self._memo.take(path)
        if found is None:
            with open(path, "rb") as fh:
                head = fh.read(len(MAGIC))
            if head != MAGIC:
                raise UnsupportedFormatError(f"not a CZI file (first bytes: {head!r})")
            if _multipart(path, self._listings, self._lock):
                raise ExtractionError("a part of a multi-file CZI (use Bio-Formats)")
            found = inspect_czi(path)
            if found is None:
                raise ExtractionError("a CZI of a kind this engine does not read (use Bio-Formats)")
        return ox.document(instrument_xml(found.document), image_xml(found.czi, found.layout, found.document))
