"""Zeiss CZI from its documented segment structure, as Bio-Formats 7.3.1's ZeissCZIReader reports it.

A CZI file is a chain of 32-byte aligned segments, each a 16-byte id (``ZISRAWFILE``, ``ZISRAWSUBBLOCK``,
``ZISRAWMETADATA``, ``ZISRAWATTACH``, ``ZISRAWDIRECTORY``, ``DELETED`` …), the allocated and used size,
then the segment's data. A subblock carries its directory entry (pixel type, compression, pyramid type
and one ``start/size/stored size`` entry per dimension X, Y, Z, C, T, S, M, B, H, R, I, V) and a small
XML document (acquisition time, stage and focus position); the metadata segment carries the file's XML
document (``ImageDocument``). This engine reads those headers and the XML only, never the pixels, and
needs no third-party package.

It claims a file only when the subblocks say it is a kind whose mapping has been checked against
Bio-Formats in ``tests/test_engines_czi.py``: one file part, one gray or BGR pixel type, no embedded label or
slide-preview image, no PALM data, no rotation/illumination/view/block index other than 0. For one scene
without phases (every Z/C/T plane present), three kinds:

* full resolution only (every subblock stored at its own size): one Image;
* a power-of-two pyramid: besides the full-resolution tiles (all of one size, mosaic indices 0…n-1 on
  every plane) uncompressed reduced subblocks (pyramid type 1 or 2) that each cover the whole image, at
  levels 1…k with none missing. showinf flattens resolutions, so Bio-Formats writes one Image per level
  (``name #1``, ``name #2`` …; size halved per level; a Plane only where the level has a subblock; the
  stage centre of the first image reused for the levels), which this engine reproduces;
* a sample carrier with a well grid (either of the above): Bio-Formats 7.3.1 writes a Plate when the
  experiment's ``SampleHolder/Template`` gives ``ShapeRows``/``ShapeColumns`` > 0 and the regions
  (``SingleTileRegionArray``, else ``TileRegion``) give ``row-column`` ``TemplateShapeId`` s — replaced by
  the scenes' ``Shape`` ids when ``Information/Image/Dimensions/S`` exists (an empty ``<S/>`` leaves none,
  so no Plate). The one full-resolution image goes to the first well (1-based ids), pyramid levels get no
  WellSample; an id that is not two integers ≥ 1 leaves the Plate without wells. A file with
  ``SingleTileRegion`` positions is claimed only when every subblock has its own stage X/Y/Z.

Two more kinds, gray only, full resolution only (no pyramid level), every tile of one size, uncompressed (a
block no shorter than its plane and under two planes long) or zstd, and an ``Experiment`` in the document:

* several scenes (S index 0…n-1, every scene with every Z/C/T plane, mosaic indices unique per plane):
  Bio-Formats 7.3.1 counts ``scenes × mosaics`` series, calls a mosaic file prestitched and folds the
  mosaics, so it makes one image per scene, as large as the scene's tiles reach (``tile + max start - min
  start``; the tile itself without mosaics), named ``name #01`` … . A turn of that arithmetic that ends
  otherwise (one image for all, scene count equal to the mosaic count) is declined, as is a plate;
* Airyscan phases (H index 0…n-1, one scene, one tile per plane, no mosaic): one image whose SizeT is the
  time points times the phases, phase ``h`` of time ``t`` at ``T = h × SizeT + t``; planes no block fills
  still get their Plane (no position, time or exposure), and at most 16 planes per block are accepted.

Their planes are placed as Bio-Formats does with its ``positionsX/Y/Z`` arrays (one slot per image): filled
from the experiment's ``SingleTileRegion`` s (unless ``TilesSetup`` has ``PositionGroups``; a group with its
own position and tile counts is declined), then from ``Information`` scenes (a ``Position`` fills the next
slot only if it is still empty, else it is dropped; a scene without one writes its ``CenterPosition`` X/Y
into the next slot whatever was there). A plane takes the
centre of its tiles' stage X/Y (written back into the slot), else the slot, else the tile's start as a
"reference frame" position; Z from the tile, else the slot (plus the Z step per section). A number that is
not a plain decimal there is declined.

Everything else (scenes with phases or pyramids, RGB scenes, JPEG-XR scenes, compressed or odd pyramids,
plates with several images …) is left to Bio-Formats.

Beyond the key fields, :mod:`.czi_meta` reads what Bio-Formats writes of the document (Experimenter,
Instrument, objective settings, channel settings, stage labels, the phase kind's modulo annotation). Where it
meets something it does not reproduce (:attr:`Inspected.whole` is False) the claim is key-fields-only: ``auto``
leaves the file to Bio-Formats and ``--engine czi`` answers with the key fields.
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

from metaextract import ome
from metaextract.engines.base import (
    CLAIM,
    Claim,
    ContextEngine,
    ExtractionError,
    FileContext,
    UnsupportedFormatError,
    key_fields_only,
    package_version,
)
from metaextract.engines.czi_meta import Extras, display_channel, read_extras
from metaextract.engines.czi_meta import all_below as _descendants
from metaextract.engines.czi_meta import first as _first
from metaextract.engines.czi_meta import grandchildren as _grandchildren
from metaextract.engines.czi_meta import text_of as _first_text
from metaextract.ome import writer as ox

NAME = "czi"
MAGIC = b"ZISRAWFILE"
ALIGN = 32
MAX_SEGMENTS = 200_000
MAX_XML = 64 << 20
MAX_SUBBLOCK_XML = 1 << 20
#: CZI pixel type -> (OME type, samples per pixel); the ones whose mapping has been checked
PIXEL_TYPES = {0: ("uint8", 1), 1: ("uint16", 1), 3: ("uint8", 3)}
#: Dimensions that, with any index but 0, make Bio-Formats split the file or re-label its planes.
SPLITTING = frozenset("SHRIVB")
LISTING_TTL = 60.0


@dataclass
class SubBlock:
    """One ``ZISRAWSUBBLOCK``: its dimension entries and what its own XML says."""

    pixel_type: int
    pyramid: int
    dims: dict[str, tuple[int, int, int]]  # name -> (start, size, stored size)
    compression: int = 0
    data_size: int = 0
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
                meta_size, _att, data_size = struct.unpack_from("<iiq", head, 0)
                pixel_type, pyramid, dims, entry_len = _entry(head, 16)
                compression = struct.unpack_from("<i", head, 16 + 18)[0]
                block = SubBlock(pixel_type, pyramid, dims, compression, data_size)
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
    palm: bool = False
    experiment: bool = False
    #: the sample carrier as Bio-Formats 7.3.1 reads it for its Plate: ``ShapeRows``/``ShapeColumns`` of the
    #: ``Template``, the ``row-column`` shape ids of the regions (or of the scenes' shapes) and the field names
    plate_rows: int = 0
    plate_columns: int = 0
    plate_positions: list[str] = field(default_factory=list)
    field_names: list[str] = field(default_factory=list)
    #: the first ``SingleTileRegion``'s X/Y/Z (Bio-Formats' position for the first image when it has one)
    region_position: tuple[float, float, float] | None = None
    #: why Bio-Formats would read the document some other way, or fail on it (None: no such reason)
    unsupported: str | None = None
    #: Bio-Formats' raw material for its per-image ``positionsX/Y/Z`` (see :func:`stage_positions`): whether
    #: ``TilesSetup`` has ``PositionGroups`` (region positions are then not read) and whether a group carries
    #: a ``Position`` with ``TilesX``/``TilesY`` (not reproduced), every ``SingleTileRegion``'s X/Y/Z text, and
    #: per ``Information`` scene its ``Position`` X/Y/Z attributes and first ``CenterPosition`` text
    has_groups: bool = False
    group_positions: bool = False
    region_xyz: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)
    scene_entries: list[tuple[list[tuple[str, str, str]], str | None]] = field(default_factory=list)
    #: the document's root element (``ImageDocument``'s first element), for :mod:`.czi_meta`
    root: Any = None


def _channel(channels: list[Channel], index: int) -> Channel:
    while len(channels) <= index:
        channels.append(Channel())
    return channels[index]


def _java_int(text: str) -> int:
    """``Integer.parseInt``: an optional sign and decimal digits, nothing else (ValueError otherwise)."""
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        raise ValueError(text)
    return int(text)


def _java_split(text: str, sep: str) -> list[str]:
    """``String.split`` with a literal one-character separator: trailing empty strings are dropped."""
    parts = text.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return [] if parts == [""] and text != "" else parts


def _sample_holder(doc: Document, acquisition: etree._Element | None) -> None:
    """The plate layout and region positions of ``RegionsSetup/SampleHolder`` (Bio-Formats' translateExperiment)."""
    if _first(_first(acquisition, "TilesSetup"), "PositionGroups") is not None:
        return  # positions come from the tile groups then, and no plate is read
    holder = _first(_first(acquisition, "RegionsSetup"), "SampleHolder")
    if holder is None:
        return
    template = _first(holder, "Template")
    if template is not None:
        rows, columns = _first(template, "ShapeRows"), _first(template, "ShapeColumns")
        try:
            if rows is not None:
                doc.plate_rows = _java_int("".join(rows.itertext()))
            if columns is not None:
                doc.plate_columns = _java_int("".join(columns.itertext()))
        except ValueError:
            pass  # Bio-Formats logs and goes on
        regions = _descendants(holder, "SingleTileRegionArray") or _descendants(holder, "TileRegion")
        for region in regions:
            shape = _first_text(region, "TemplateShapeId")
            if shape:
                doc.plate_positions.append(shape)
    for array in _descendants(holder, "SingleTileRegionArray"):
        for region in _descendants(array, "SingleTileRegion"):
            coords = [_first_text(region, axis) for axis in "XYZ"]
            try:
                values = tuple(float(c.strip()) for c in coords if c is not None)
            except ValueError:
                values = ()
            if len(values) != 3:
                doc.unsupported = "a SingleTileRegion without numeric X/Y/Z"  # Bio-Formats fails on it
                return
            if doc.region_position is None:
                doc.region_position = (values[0], values[1], values[2])
            doc.field_names.append(region.get("Name", ""))


def _experiment_positions(doc: Document, acquisition: etree._Element | None) -> None:
    """What Bio-Formats' translateExperiment reads for ``positionsX/Y/Z`` (kept as text, parsed when used)."""
    groups = _grandchildren(_first(acquisition, "TilesSetup"), "PositionGroups", "PositionGroup")
    if groups is not None:
        doc.has_groups = True
        for group in groups:
            if _first(group, "Position") is not None and _first_text(group, "TilesX") and _first_text(group, "TilesY"):
                doc.group_positions = True
        return
    holder = _first(_first(acquisition, "RegionsSetup"), "SampleHolder")
    for array in _descendants(holder, "SingleTileRegionArray") if holder is not None else []:
        for region in _descendants(array, "SingleTileRegion"):
            doc.region_xyz.append((_first_text(region, "X"), _first_text(region, "Y"), _first_text(region, "Z")))


_JAVA_DOUBLE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_JAVA_BLANK = "".join(chr(i) for i in range(33))


def _java_double(text: str | None) -> float:
    """A plain decimal number as ``Double.valueOf`` reads it; ValueError for anything else (declined)."""
    value = (text or "").strip(_JAVA_BLANK)
    if _JAVA_DOUBLE.fullmatch(value) is None:
        raise ValueError(text)
    return float(value)


def stage_positions(doc: Document, count: int) -> tuple[list[float | None], ...] | None:
    """Bio-Formats' ``positionsX/Y/Z`` for ``count`` images; None where it fails or reads what is not reproduced.

    translateExperiment sizes the arrays by the image count and fills them from the ``SingleTileRegion`` s in
    order (unless ``TilesSetup`` has ``PositionGroups``); translateInformation then walks the scenes: each
    ``Position`` fills the next slot that is still empty (and only then moves on), a scene without one puts its
    ``CenterPosition`` X/Y in the next slot whatever was there, and moves on. (The scene's centre is read only
    when the file has no mosaic or is stitched, which the kinds claimed here always are.)
    """
    xs: list[float | None] = [None] * count
    ys: list[float | None] = [None] * count
    zs: list[float | None] = [None] * count
    if doc.group_positions:
        return None
    try:
        if not doc.has_groups:
            for i, (x, y, z) in enumerate(doc.region_xyz):
                if x is None or y is None or z is None:
                    return None  # Bio-Formats fails on a region without X, Y or Z
                values = (_java_double(x), _java_double(y), _java_double(z))
                if i < count:
                    xs[i], ys[i], zs[i] = values
        slot = 0
        for positions, centre in doc.scene_entries:
            for x, y, z in positions:
                if slot < count and xs[slot] is None:
                    xs[slot], ys[slot], zs[slot] = _java_double(x), _java_double(y), _java_double(z)
                    slot += 1
            if not positions:
                if centre is not None and slot < count:
                    parts = _java_split(centre, ",")
                    if len(parts) < 2:
                        return None
                    xs[slot], ys[slot] = _java_double(parts[0]), _java_double(parts[1])
                slot += 1
    except ValueError:
        return None
    return xs, ys, zs


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
    doc.root = root
    palm_slider = _first_text(_first(_first(root, "Experiment"), "TrackSetup"), "PalmSlider")
    doc.palm = (palm_slider or "").strip().lower() == "true" or any(
        (tag.get("Name") or "").lower().startswith("palm") for tag in root.iter("LsmTag"))

    # Experiment: exposure per track
    experiment = _first(root, "Experiment")
    acquisition = _first(_first(experiment, "ExperimentBlocks"), "AcquisitionBlock")
    doc.experiment = experiment is not None
    if experiment is not None:
        _sample_holder(doc, acquisition)
        _experiment_positions(doc, acquisition)
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
        scenes = _first(dimensions, "S")
        for each in _descendants(scenes, "Scene") if scenes is not None else []:
            doc.scene_entries.append((
                [(p.get("X", ""), p.get("Y", ""), p.get("Z", "")) for p in _descendants(each, "Position")],
                _first_text(each, "CenterPosition")))
        if scenes is not None:
            # scenes with well shapes replace the regions' plate layout (when the regions gave one)
            reset = bool(doc.plate_positions)
            if reset:
                doc.plate_positions.clear()
                doc.field_names.clear()
                for each in _descendants(scenes, "Scene"):
                    for shape in _descendants(each, "Shape"):
                        if shape.get("Id", "") not in doc.plate_positions:
                            doc.plate_positions.append(shape.get("Id", ""))
                        doc.field_names.append(each.get("Name", ""))
        scene = _first(scenes, "Scene")
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
            display_channel(node, _channel(doc.channels, i))
    return doc


# -- the decision and the OME-XML -----------------------------------------------------------------------
#: bytes per pixel of the checked pixel types (BGR counted whole), as Bio-Formats sizes a plane
BYTES = {0: 1, 1: 2, 3: 3}


@dataclass
class Level:
    """One reduced resolution of a pyramid: its size and its subblocks by (z, c, t)."""

    size_x: int
    size_y: int
    planes: dict[tuple[int, int, int], list[SubBlock]]


@dataclass
class Layout:
    """The image Bio-Formats makes of a claimed file, and the reduced resolutions it flattens after it."""

    size: tuple[int, int, int, int, int]  # X, Y, Z, C (channels, RGB counted once), T
    pixel_type: str
    samples: int
    planes: dict[tuple[int, int, int], list[SubBlock]]  # (z, c, t) -> subblocks (mosaic tiles)
    levels: list[Level] = field(default_factory=list)
    #: the phase count of the phase kind (1: none); Bio-Formats notes the phases in a modulo annotation
    phases: int = 1
    #: the kinds read by :func:`_scene_layout` and :func:`_phase_layout`: one image per entry (scene), each
    #: placed by Bio-Formats' ``positionsX/Y/Z`` (empty for the single-scene kinds above)
    images: list[Level] = field(default_factory=list)


def _zct(block: SubBlock) -> tuple[int, int, int] | None:
    zct = []
    for axis in "ZCT":
        start, size, _ = block.dims.get(axis, (0, 1, 1))
        if start < 0 or size != 1:
            return None
        zct.append(start)
    return (zct[0], zct[1], zct[2])


def _reduced_level(block: SubBlock, bpp: int) -> int | None:
    """The pyramid level (1 = half size …) of a reduced subblock as Bio-Formats finds it; None: unchecked."""
    (_, size_x, stored_x), (_, size_y, stored_y) = block.dims["X"], block.dims["Y"]
    if block.compression != 0 or block.pyramid not in (1, 2) or stored_x <= 0 or stored_y <= 0:
        return None
    if not block.data_size < size_x * size_y * bpp or block.data_size != stored_x * stored_y * bpp:
        return None
    scale = size_x // stored_x
    if scale < 2 or scale & (scale - 1) or size_y // stored_y != scale:
        return None  # only power-of-two pyramids (Bio-Formats' scale factor 2) are checked
    return scale.bit_length() - 1


#: compressions whose blocks Bio-Formats keeps at full resolution without a size test this engine cannot make
#: (none, zstd-0, zstd-1); JPEG-XR blocks smaller than a plane would count as reduced resolutions
PLAIN_COMPRESSION = frozenset({0, 5, 6})
#: the most planes per block a phase file may have (it need not fill every plane; the Plane list is bounded)
MAX_SPARSE = 16


def _full_tiles(blocks: list[SubBlock], bpp: int) -> tuple[int, int] | None:
    """The one tile size of blocks that are all full resolution and kept as one plane each; None otherwise."""
    sizes = set()
    for block in blocks:
        if "X" not in block.dims or "Y" not in block.dims or block.pyramid != 0:
            return None
        if any(len(d) != 1 or d not in "XYZCTMSHRIVB" for d in block.dims):
            return None
        (_, size_x, stored_x), (_, size_y, stored_y) = block.dims["X"], block.dims["Y"]
        if not (size_x == stored_x > 0 and size_y == stored_y > 0) or block.compression not in PLAIN_COMPRESSION:
            return None
        plane = size_x * size_y * bpp
        if block.compression == 0 and not plane <= block.data_size < 2 * plane:
            return None  # Bio-Formats drops a short block, and reads a long one as a line scan
        sizes.add((size_x, size_y))
    return next(iter(sizes)) if len(sizes) == 1 else None


def _zct_sizes(keys: set[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """SizeZ, SizeC, SizeT of the planes present, when T is every index from 0 (Bio-Formats counts distinct T)."""
    size_z, size_c = (max(k[i] for k in keys) + 1 for i in range(2))
    times = {k[2] for k in keys}
    if times != set(range(len(times))):
        return None
    return size_z, size_c, len(times)


def _scene_layout(blocks: list[SubBlock], pixel_type: str, bpp: int) -> Layout | None:
    """Scenes (S index 0…n-1), each a mosaic (or one tile) of equal tiles: Bio-Formats 7.3.1 makes one image each.

    With every tile of one size the reader sees no fused image; it counts ``positions × mosaics`` series, then
    (autostitching) calls the file prestitched when it has mosaics and folds them, ending with one series per
    scene whose size is the tiles' extent (``tile + max start - min start``, X and Y). That outcome is what is
    reproduced here; any other turn of its series arithmetic (fewer series, scenes reset by the mosaic count, a
    scene order that never raises S) is declined.
    """
    if _full_tiles(blocks, bpp) is None:
        return None
    tile_x, tile_y = blocks[0].dims["X"][1], blocks[0].dims["Y"][1]
    scenes: dict[int, dict[tuple[int, int, int], list[SubBlock]]] = {}
    for block in blocks:
        if "S" not in block.dims or any(block.dims.get(d, (0, 1, 1))[0] != 0 for d in "HRIVB"):
            return None
        zct = _zct(block)
        if zct is None or block.dims.get("M", (0, 1, 1))[0] < 0:
            return None
        scenes.setdefault(block.dims["S"][0], {}).setdefault(zct, []).append(block)
    count = len(scenes)
    if count < 2 or set(scenes) != set(range(count)):
        return None
    keys = {k for planes in scenes.values() for k in planes}
    sizes = _zct_sizes(keys)
    if sizes is None or len(keys) != sizes[0] * sizes[1] * sizes[2]:
        return None
    size_z, size_c, size_t = sizes
    for planes in scenes.values():
        if set(planes) != keys:
            return None  # a scene without some plane: unchecked
        for tiles in planes.values():
            mosaic = [b.dims.get("M", (0, 1, 1))[0] for b in tiles]
            if len(set(mosaic)) != len(mosaic):
                return None
    # Bio-Formats' series arithmetic (maxResolution 0, equal tiles so prestitched starts unset)
    mosaics = max(b.dims.get("M", (0, 1, 1))[0] for b in blocks) + 1
    stitched = mosaics > 1  # prestitched = mosaics == series / positions, true whenever there are mosaics
    total, image_count = len(blocks), size_z * size_c * size_t
    series = count * mosaics
    if image_count * series > total:
        if total != image_count and total != size_t and total % (series * size_z) == 0:
            pass  # only a reader that does not group files changes anything here
        elif total in (size_t, image_count):
            return None  # Bio-Formats collapses everything into one image
        elif series > mosaics > 1 and stitched:
            series //= mosaics
            mosaics = 1
    if stitched and series == mosaics * count:
        series = count
    if series != count or mosaics == count:
        return None
    previous, raised = 0, False
    for block in blocks:
        raised = raised or block.dims["S"][0] > previous
        previous = block.dims["S"][0]
    if not raised:
        return None  # S never rises in file order: Bio-Formats would put every block in the first image
    images = []
    for index in range(count):
        planes = scenes[index]
        cols = [b.dims["X"][0] for v in planes.values() for b in v]
        rows = [b.dims["Y"][0] for v in planes.values() for b in v]
        size_x, size_y = tile_x, tile_y  # one tile per plane: the tile's own size
        if stitched:  # the stitched extent (all tiles being of one size, the last tile's size is the tile's)
            size_x += max(cols) - min(cols)
            size_y += max(rows) - min(rows)
        images.append(Level(size_x, size_y, planes))
    first = images[0]
    return Layout((first.size_x, first.size_y, size_z, size_c, size_t), pixel_type, 1, first.planes, [], 1,
                  images)


def _phase_layout(blocks: list[SubBlock], pixel_type: str, bpp: int) -> Layout | None:
    """Airyscan-like phases (H index 0…n-1) in one scene, one tile per plane: one image, phases folded into T.

    Bio-Formats 7.3.1 multiplies SizeT by the phase count and puts phase ``h`` of time point ``t`` at
    ``T = h × SizeT + t``; planes no block fills keep their Plane (no position, time or exposure). It needs no
    block per plane, so a phase recorded for some channels only is read as it is.
    """
    size = _full_tiles(blocks, bpp)
    if size is None:
        return None
    planes: dict[tuple[int, int, int], list[SubBlock]] = {}
    raw: list[tuple[int, tuple[int, int, int], SubBlock]] = []
    for block in blocks:
        if any(block.dims.get(d, (0, 1, 1))[0] != 0 for d in "SMRIVB"):
            return None
        if (block.dims["X"][0], block.dims["Y"][0]) != (blocks[0].dims["X"][0], blocks[0].dims["Y"][0]):
            return None
        zct = _zct(block)
        phase = block.dims.get("H", (0, 1, 1))[0]
        if zct is None or phase < 0:
            return None
        raw.append((phase, zct, block))
    phases = max(p for p, _, _ in raw) + 1
    if phases > len(raw) or {p for p, _, _ in raw} != set(range(phases)):
        return None
    sizes = _zct_sizes({zct for _, zct, _ in raw})
    if sizes is None:
        return None
    size_z, size_c, size_t = sizes
    if size_z * size_c * size_t * phases > MAX_SPARSE * len(raw):
        return None  # far more planes than blocks: bounded here, as the Plane list would not be
    for phase, (z, c, t), block in raw:
        key = (z, c, phase * size_t + t)
        if key in planes:
            return None  # two blocks for one plane: unchecked
        planes[key] = [block]
    return Layout((size[0], size[1], size_z, size_c, size_t * phases), pixel_type, 1, planes, [], phases,
                  [Level(size[0], size[1], planes)])


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
    bpp = BYTES[next(iter(kinds))]
    scene_count = max(b.dims.get("S", (0, 1, 1))[0] for b in blocks) + 1
    phase_count = max(b.dims.get("H", (0, 1, 1))[0] for b in blocks) + 1
    if scene_count > 1 or phase_count > 1:
        if samples != 1 or (scene_count > 1 and phase_count > 1):
            return None  # RGB, or scenes with phases: unchecked
        if scene_count > 1:
            return _scene_layout(blocks, pixel_type, bpp)
        return _phase_layout(blocks, pixel_type, bpp)
    planes: dict[tuple[int, int, int], list[SubBlock]] = {}
    reduced: dict[int, dict[tuple[int, int, int], list[SubBlock]]] = {}
    xs: list[tuple[int, int]] = []
    ys: list[tuple[int, int]] = []
    for block in blocks:
        if "X" not in block.dims or "Y" not in block.dims:
            return None
        if any(block.dims.get(d, (0, 1, 1))[0] != 0 for d in SPLITTING):
            return None
        if any(len(d) != 1 or d not in "XYZCTMSHRIVB" for d in block.dims):
            return None
        zct = _zct(block)
        if zct is None:
            return None
        full = block.pyramid == 0 and all(block.dims[a][1] == block.dims[a][2] > 0 for a in "XY")
        if not full:
            level = _reduced_level(block, bpp)
            if level is None:
                return None
            reduced.setdefault(level, {}).setdefault(zct, []).append(block)
            continue
        for axis, spans in (("X", xs), ("Y", ys)):
            start, size, _ = block.dims[axis]
            spans.append((start, size))
        planes.setdefault(zct, []).append(block)
    if not planes:
        return None
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
    min_x, min_y = min(s for s, _ in xs), min(s for s, _ in ys)
    size_x = max(s + n for s, n in xs) - min_x
    size_y = max(s + n for s, n in ys) - min_y
    levels: list[Level] = []
    if reduced:
        # Bio-Formats sizes the pyramid from its own rules; they give the tiles' extent when every tile has
        # one size, the tiles of each plane are mosaic indices 0…n-1 and each reduced subblock covers it all
        count = next(iter(tiles))
        if len({(b.dims["X"][1], b.dims["Y"][1]) for v in planes.values() for b in v}) != 1:
            return None
        if any(sorted(b.dims.get("M", (0, 1, 1))[0] for b in v) != list(range(count)) for v in planes.values()):
            return None
        if sorted(reduced) != list(range(1, len(reduced) + 1)):
            return None  # a missing pyramid level: Bio-Formats renumbers the others
        for level in sorted(reduced):
            for found in reduced[level].values():
                for block in found:
                    if (block.dims["X"][:2], block.dims["Y"][:2]) != ((min_x, size_x), (min_y, size_y)):
                        return None
                    if block.dims.get("M", (0, 1, 1))[0] != 0:
                        return None
            div = 1 << level
            levels.append(Level(size_x // div, size_y // div, reduced[level]))
    return Layout((size_x, size_y, size_z, size_c * samples, size_t), pixel_type, samples, planes, levels)


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = int(round((seconds - int(seconds)) * 1000)) % 1000
    return f"{text}.{millis:03d}" if millis else text


def _acquisition_date(text: str) -> str | None:
    """``AcquisitionDateAndTime`` as OME's ``Timestamp`` prints it (to the millisecond, no zone)."""
    seconds = _timestamp(text)
    return None if seconds is None else _iso(seconds)


@dataclass
class _Carry:
    """Bio-Formats' ``positionsX/Y[0]``: the first image's stage centre, written back plane by plane."""

    x: float | None
    y: float | None


def image_xml(czi: CziFile, lay: Layout, doc: Document, index: int = 0, count: int = 1,
              carry: _Carry | None = None, scene: Level | None = None, z0: float | None = None,
              extras: Extras | None = None) -> ox.El:
    """Image ``index`` of ``count`` that Bio-Formats' ZeissCZIReader reports for a claimed file.

    Image 0 is the full resolution; images 1… are the pyramid levels, which showinf flattens into images
    of their own. ``carry`` holds the position the first image left behind, which the levels reuse.
    With ``scene`` (the kinds of :attr:`Layout.images`) the image is that scene, placed by ``carry`` and ``z0``.
    """
    name = doc.image_name if doc.image_name and doc.image_name.strip() else czi.name
    number = str(index + 1).rjust(len(str(count)), "0")
    image = ox.El("Image", {"ID": f"Image:{index}", "Name": f"{name} #{number}"})
    if carry is None:
        carry = _Carry(doc.position[0], doc.position[1])
    start: float | None = None
    if doc.acquired is not None:
        date = _acquisition_date(doc.acquired)
        if date is None:
            raise ExtractionError(f"CZI acquisition date not understood: {doc.acquired[:40]!r}")
        image.add(ox.El("AcquisitionDate", text=date))
        start = _timestamp(doc.acquired)
    if extras is not None:
        image.add(ox.El("ExperimenterRef", {"ID": "Experimenter:0"}))
        if extras.description is not None:
            image.add(ox.El("Description", text=ox.clean(extras.description)))
        image.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
        if extras.objective_settings is not None:
            image.add(ox.El("ObjectiveSettings", dict(extras.objective_settings)))
        if extras.imaging_environment is not None:
            image.add(ox.El("ImagingEnvironment", dict(extras.imaging_environment)))
    size_x, size_y, size_z, size_c, size_t = lay.size
    planes = lay.planes
    if scene is not None:
        size_x, size_y, planes = scene.size_x, scene.size_y, scene.planes
    elif index > 0:
        level = lay.levels[index - 1]
        size_x, size_y, planes = level.size_x, level.size_y, level.planes
    bits = 8 if lay.pixel_type == "uint8" else 16  # Bio-Formats 7.3.1 ignores ComponentBitCount here
    pixels = ox.pixels(
        index=index, pixel_type=lay.pixel_type, size=(size_x, size_y, size_z, size_c, size_t), big_endian=False,
        significant_bits=bits, interleaved=lay.samples > 1,
        physical=(doc.physical.get("X"), doc.physical.get("Y"), doc.physical.get("Z")),
    )
    if extras is not None and extras.time_increment is not None:
        pixels.attrs.update(TimeIncrement=extras.time_increment, TimeIncrementUnit="s")
    for c in range(size_c // lay.samples):
        attrs: dict[str, str] = {}
        if c < len(doc.channels):
            ch = doc.channels[c]
            if ch.name is not None:
                attrs["Name"] = ch.name
            for key, value in (("EmissionWavelength", ch.emission), ("ExcitationWavelength", ch.excitation)):
                number_value = _number(value)
                if number_value is not None and number_value > 0:
                    attrs[key] = ox.jdouble(number_value)
                    attrs[key + "Unit"] = "nm"
        if extras is None:
            pixels.add(ox.channel(index, c, lay.samples, **attrs))
            continue
        extra = extras.channels[c] if c < len(extras.channels) else None
        channel = pixels.add(ox.El("Channel", {"ID": f"Channel:{index}:{c}", "SamplesPerPixel": str(lay.samples),
                                                **attrs, **(extra.attrs if extra else {})}))
        if extra is not None and extra.detector is not None:
            channel.add(ox.El("DetectorSettings", dict(extra.detector)))
        if extra is not None and extra.filter_set is not None:
            channel.add(ox.El("FilterSetRef", {"ID": extra.filter_set}))
        channel.add(ox.El("LightPath"))
    pixels.add(ox.El("MetadataOnly"))
    if scene is None:
        z0 = doc.position[2]
    for t in range(size_t):
        for z in range(size_z):
            for c in range(size_c // lay.samples):
                blocks = planes.get((z, c, t))
                plane: dict[str, str] = {"TheC": str(c), "TheT": str(t), "TheZ": str(z)}
                if not blocks:
                    # populatePixels gives every plane its Plane; only blocks bring positions and times
                    pixels.add(ox.El("Plane", plane))
                    continue
                first = blocks[0]
                stage_x = [b.stage_x for b in blocks if b.stage_x is not None]
                stage_y = [b.stage_y for b in blocks if b.stage_y is not None]
                for axis, found, grid in (("X", stage_x, first.dims["X"][0]), ("Y", stage_y, first.dims["Y"][0])):
                    fallback = carry.x if axis == "X" else carry.y
                    if found:
                        low, high = min(found), max(found)
                        centre = low + (high - low) / 2
                        if doc.experiment:
                            if axis == "X":
                                carry.x = centre
                            else:
                                carry.y = centre
                        plane[f"Position{axis}"] = ox.jdouble(centre)
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
                    at = c + (z + t * size_z) * (size_c // lay.samples)
                    plane.update(DeltaT=ox.jdouble(czi.timestamps[at]), DeltaTUnit="s")
                elif t < len(czi.timestamps):
                    plane.update(DeltaT=ox.jdouble(czi.timestamps[t]), DeltaTUnit="s")
                exposure = first.exposure
                if exposure is None and c < len(doc.channels):
                    exposure = doc.channels[c].exposure
                if exposure is not None:
                    plane.update(ExposureTime=ox.jdouble(exposure), ExposureTimeUnit="s")
                pixels.add(ox.El("Plane", plane))
    if extras is not None:
        planes_written = [el for el in pixels.children if el.tag == "Plane"]
        first_plane = planes_written[0].attrs if planes_written else {}
        if "PositionX" in first_plane:  # the first plane has a block: its position labels the stage
            label = {"Name": f"Scene position #{index}"}
            for axis in "XYZ":
                if f"Position{axis}" in first_plane:
                    label[axis] = first_plane[f"Position{axis}"]
                    label[f"{axis}Unit"] = first_plane[f"Position{axis}Unit"]
            image.add(ox.El("StageLabel", label))
    image.add(pixels)
    return image


def plate_xml(doc: Document, series: list[int]) -> ox.El | None:
    """The Plate Bio-Formats 7.3.1 writes from the sample carrier, one WellSample per full-resolution image.

    Wells follow the ``row-column`` shape ids (1-based) in order, ``fields`` images to a well; an id that is
    not two integers (or is below 1) stops the wells there, as Bio-Formats' loop never moves past it.
    """
    positions = doc.plate_positions
    if doc.plate_rows <= 0 or doc.plate_columns <= 0 or not positions:
        return None
    plate = ox.El("Plate", {"Columns": str(doc.plate_columns), "ID": "Plate:0", "Rows": str(doc.plate_rows)})
    fields = len(doc.field_names) // len(positions) if doc.field_names else 1
    well_index = sample = 0
    wells: dict[int, ox.El] = {}
    for image in series:
        if well_index >= len(positions):
            continue
        parts = _java_split(positions[well_index], "-")
        if len(parts) != 2:
            continue
        try:
            row, column = _java_int(parts[0]) - 1, _java_int(parts[1]) - 1
        except ValueError:
            continue
        if row < 0 or column < 0:
            continue
        well = wells.get(well_index)
        if well is None:
            well = wells[well_index] = plate.add(ox.El(
                "Well", {"Column": str(column), "ID": f"Well:0:{well_index}", "Row": str(row)}))
        entry = well.add(ox.El("WellSample", {"ID": f"WellSample:0:{well_index}:{sample}", "Index": str(image)}))
        entry.add(ox.El("ImageRef", {"ID": f"Image:{image}"}))
        sample += 1
        if sample == fields:
            sample = 0
            well_index += 1
    return plate


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
    #: Bio-Formats' positionsX/Y/Z for the kinds of :attr:`Layout.images`
    positions: tuple[list[float | None], ...] | None = None
    #: what Bio-Formats writes beyond the key fields (None: not read, the key-field document)
    extras: Extras | None = None

    @property
    def whole(self) -> bool:
        """Whether the rendered document is Bio-Formats' whole (else it answers by name only)."""
        return self.extras is not None and not self.extras.partial


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
    if doc.unsupported is not None:
        return None
    if lay.images:
        return _inspect_images(czi, lay, doc)
    if not doc.experiment and any(positions or centre is not None for positions, centre in doc.scene_entries):
        return None  # Bio-Formats fails on it: its position arrays exist only with an Experiment
    if doc.region_position is not None and any(
            None in (b.stage_x, b.stage_y, b.stage_z) for b in czi.subblocks):
        return None  # Bio-Formats would fall back on the region's position, which is not reproduced here
    if doc.acquired is None and czi.subblocks[0].timestamp is not None:
        return None  # the acquisition date would then come from the first subblock: unchecked
    # Bio-Formats looks for PALM data (and then splits the planes) only in files of at most two planes
    if doc.palm and len(czi.subblocks) <= 2:
        return None
    return _with_extras(Inspected(czi, lay, doc))


def _with_extras(found: Inspected) -> Inspected:
    lay, doc = found.layout, found.document
    if doc.root is not None:
        found.extras = read_extras(doc.root, lay.size[3] // lay.samples, lay.samples > 1)
    return found


def _inspect_images(czi: CziFile, lay: Layout, doc: Document) -> Inspected | None:
    """The checks for the scene and phase kinds, whose images Bio-Formats places by ``positionsX/Y/Z``."""
    if not doc.experiment:
        return None  # without an Experiment Bio-Formats has no position arrays (and fails on scenes)
    if doc.acquired is None and czi.subblocks[0].timestamp is not None:
        return None
    if doc.palm and len(czi.subblocks) <= 2:
        return None
    if len(lay.images) > 1 and plate_xml(doc, [0]) is not None:
        return None  # a plate over several scenes: unchecked
    positions = stage_positions(doc, len(lay.images))
    if positions is None:
        return None
    return _with_extras(Inspected(czi, lay, doc, positions))


class CziEngine(ContextEngine[Inspected]):
    """Single-scene CZI (flat, pyramid, plate) from its own segments; every other CZI goes to Bio-Formats."""

    name = NAME
    suffixes = None
    magic = MAGIC  #: ``claim`` is 0 for any other file
    #: ``auto`` takes its claim only where the document is Bio-Formats' whole (:attr:`Inspected.whole`);
    #: elsewhere the claim is key-fields-only and ``--engine czi`` still answers
    whole_document_in_auto = True

    def __init__(self) -> None:
        self._listings: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def version(self) -> str:
        return f"{package_version('metaextract')}-czi"

    def claim_in(self, ctx: FileContext) -> Claim[Inspected]:
        path = ctx.path
        if not ctx.head.startswith(MAGIC):
            return Claim(0)
        try:
            if _multipart(path, self._listings, self._lock):
                return Claim(0)
            found = inspect_czi(path)
        except Exception:  # noqa: BLE001 - a file this engine cannot parse is simply not claimed
            return Claim(0)
        if found is None:
            return Claim(0)
        return Claim(CLAIM if found.whole else key_fields_only(CLAIM), found)

    def extract_in(self, ctx: FileContext, found: Inspected | None = None) -> str:
        path = ctx.path
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
        return render(found)


def render(found: Inspected) -> str:
    """The OME-XML of an inspected file: its Plate (if any), Experimenter, Instrument, one Image per resolution."""
    czi, lay, doc = found.czi, found.layout, found.document
    # a document with parts not reproduced keeps to the key fields (the answer by name, not in ``auto``)
    extras = found.extras if found.whole else None
    if found.positions is not None:
        xs, ys, zs = found.positions
        count = len(lay.images)
        images = [image_xml(czi, lay, doc, i, count, _Carry(xs[i], ys[i]), scene, zs[i], extras)
                  for i, scene in enumerate(lay.images)]
    else:
        count = 1 + len(lay.levels)
        carry = _Carry(doc.position[0], doc.position[1])
        images = [image_xml(czi, lay, doc, index, count, carry, extras=extras) for index in range(count)]
    plate = plate_xml(doc, [0])
    head = [plate] if plate is not None else []
    tail = []
    if extras is not None:
        head += [extras.experimenter, extras.instrument]
        if lay.phases > 1:
            tail.append(_modulo_annotation(images, lay))
    else:
        head.append(instrument_xml(doc))
    return ox.document(*head, *images, *tail)


def _modulo_annotation(images: list[ox.El], lay: Layout) -> ox.El:
    """Bio-Formats' modulo annotation of the phase kind: the phases fold into T, ``step`` time points apart."""
    step = lay.size[4] // lay.phases
    images[0].add(ox.El("AnnotationRef", {"ID": "Annotation:0"}))
    along = ox.El("ModuloAlongT", {"End": ox.jdouble(step * (lay.phases - 1)), "Start": "0.0",
                                   "Step": ox.jdouble(step), "Type": "phase", "TypeDescription": ""})
    modulo = ox.El("Modulo", {"namespace": "http://www.openmicroscopy.org/Schemas/Additions/2011-09"},
                   [along])
    value = ox.El("Value", {}, [modulo])
    annotation = ox.El("XMLAnnotation", {"ID": "Annotation:0",
                                         "Namespace": "openmicroscopy.org/omero/dimension/modulo"}, [value])
    return ox.El("StructuredAnnotations", {}, [annotation])
