"""Leica LIF from its documented container, as Bio-Formats 7.3.1's LIFReader reports it.

A LIF file is a header block (``0x70``, a length, ``0x2A``, the number of UTF-16 code units and the
UTF-16LE XML description) followed by memory blocks (``0x70``, a length, ``0x2A``, the block size as a
32-bit or, in version 2 files, a 64-bit integer, ``0x2A``, the block name in UTF-16LE, then the pixels).
All metadata is in the XML: one ``Element/Data/Image`` per series, with its ``ImageDescription``
(``ChannelDescription`` and ``DimensionDescription`` entries), a ``TimeStampList`` and the
``HardwareSetting`` attachment (``ATLConfocalSettingDefinition``: stage position, flips, detectors and
their ``MultiBand`` dye names). This engine reads the header and walks the block headers, never the
pixels, and needs no third-party package beyond lxml (parsed without DTD or entities).

How each part of the document is made (checked against the corpus references and, for the rules the
corpus does not show, against live Bio-Formats 7.3.1 on generated variants, tests/test_differential_lif.py):

* one image per ``Image`` element, in document order, named by its ``Element`` ancestors below the
  outermost one, joined with ``/``;
* sizes from ``DimensionDescription``: DimID 1 = X (its ``BytesInc`` gives the pixel type), 2 = Y,
  3 = Z, 4 = T, where a Z or T dimension seen before any Y becomes Y (XZ and XT scans), and a Y seen after
  that becomes Z; C is the number of ``ChannelDescription`` elements;
* the dimension order is ``XY`` followed by the axes sorted by their ``BytesInc`` (channels with a
  non-zero ``BytesInc`` count as C; of two axes with one ``BytesInc`` the later counts), then the
  missing ones in Z, C, T order;
* physical sizes are ``Length / (n - 1)`` in µm (Z as its absolute value), from metres (``Unit="m"``),
  kiloseconds (``Ks``, divided by 1000) or, for any other unit, as the number is; absent for one element
  and, for X and Y, for a length that is not positive;
* the acquisition date is the first ``TimeStampList`` entry (FILETIME ticks, hexadecimal) to the second,
  and each plane's DeltaT is its own entry (by plane index) minus the first;
* sequential scans (an ``LDM_Block_Sequential`` after the attachment's setting: a master and one setting
  per sequence): Bio-Formats first prunes the masters, but from a live node list, so only the 1st, 3rd,
  5th ... master of the file goes and the others stay (read as masters: no dye names, no lasers); the
  settings left are the attachment's, the kept master's and the sequences', in document order;
* each plane's position is a stage position in metres: Bio-Formats lists every setting's
  ``StagePosX``/``Y`` of the whole file in one list and gives image i its i-th entry (so after a
  sequential scan later images get an earlier image's sequence positions), exchanged when ``SwapXY`` is
  1 and then negated per axis when ``FlipX``/``FlipY`` is 1;
* channel names are the active detectors' ``MultiBand`` dye names over the settings, each name once (a
  detector without a band, or of a kept master, adds a blank one every time), the last C of them aligned
  to the channels; the flip flags are the last setting's, the pinhole and objective the last given ones;
* the sequences' laser lines (``AotfList``; the attachment's and masters' do not count) give one Laser
  per non-zero wavelength (by slot ``LineIndex + 2 - Qualifier / 10``) and, per line in use (intensity
  ``100 - IntensityDev`` below 100), the next channel's ExcitationWavelength and LightSourceSettings
  (attenuation as a float fraction), except both lines of a sequence with two in use and, by position
  in the list of lines in use, those of settings without an active detector;
* each channel's colour comes from its ``LUTName`` (red, green, blue, cyan, magenta, yellow in any case;
  every other name is white), its pinhole is the setting's ``Pinhole`` in µm, and each coloured channel
  has an emission filter of its own (an empty ``Filter``, numbered among the coloured channels);
* the description is the ``Content`` of the last ``ContextDescription`` attachment, else the text of the
  first ``User-Comment``;
* one Instrument per image: a microscope of type Other and one Objective (correction and immersion
  Other, the model the setting's ``ObjectiveName``); LAS X's magnification, NA, immersion, refractive
  index, zoom and detectors Bio-Formats 7.3.1 does not write for this kind.

It claims a file only when every image is of that understood kind: a confocal image (one
``HardwareSetting`` attachment holding one ``ATLConfocalSettingDefinition``, or that one followed by a
sequential block, all with a stage position and 0/1 flip flags), dimensions X/Y/Z/T only (no
tiles/mosaic, no lambda or other extra dimension), 8- or 16-bit gray pixels, a LAS AF 3.1+
``TimeStampList``, no laser settings outside the attachment and the sequential block, laser intensities
within 0-100 %, no old-style ``FilterSettingRecord``/``ScannerSettingRecord`` (objective
magnification, exposure times, z steps, detectors), no ROIs, no processing history, no nested images, memory blocks
Bio-Formats can assign to the images. The XML is read as Bio-Formats reads it (UTF-16 bytes as ISO-8859-1,
sanitised), so characters beyond Latin-1 come out mangled as they do there. Such files it answers whole,
in ``auto`` too.
Everything else is left to Bio-Formats.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree

from metaextract import ome
from metaextract.engines.base import CLAIM, Declined, ExtractionError, ReaderEngine, UnsupportedFormatError, head_of
from metaextract.ome import writer as ox

NAME = "lif"
MAGIC = 0x70
MEMORY = 0x2A
MAX_XML_CHARS = 64 << 20
MAX_BLOCKS = 1_000_000
MAX_NAME_CHARS = 1 << 16
METRE_TO_MICRON = 1000000
#: Bytes per X step -> OME pixel type (gray only; 3 or 6 would be RGB).
PIXEL_TYPES = {1: ("uint8", 8), 2: ("uint16", 16)}
COBOL_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
#: A number both Java's ``Double.parseDouble`` and Python's ``float`` read alike (no ``inf``, ``1_0``, ``1d``)
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _rgba(red: int, green: int, blue: int) -> int:
    """An OME ``Color`` (RGBA packed into a signed 32-bit integer), opaque."""
    value = red << 24 | green << 16 | blue << 8 | 255
    return value - (1 << 32) if value >= 1 << 31 else value


#: A channel's colour by its ``LUTName`` (lower case); any other name, gray and black included, is white.
#: The colour also decides the channel's emission filter (a white channel has none).
LUT_COLORS = {"red": _rgba(255, 0, 0), "green": _rgba(0, 255, 0), "blue": _rgba(0, 0, 255),
              "cyan": _rgba(0, 255, 255), "magenta": _rgba(255, 0, 255), "yellow": _rgba(255, 255, 0)}
WHITE = -1


@dataclass
class LifFile:
    """The container: the XML description and the memory blocks (name, data offset, size)."""

    xml: str
    blocks: list[tuple[str, int, int]] = field(default_factory=list)
    length: int = 0


def _read_exact(fh: Any, size: int, what: str) -> bytes:
    at = fh.tell()
    data: bytes = fh.read(size)
    if len(data) != size:
        raise ExtractionError(f"truncated LIF: {what} at byte {at} needs {size} bytes, found {len(data)}")
    return data


def read_lif(path: str) -> LifFile:
    """Read the header XML and walk every memory block header; raises :class:`ExtractionError` on damage."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        length = fh.tell()
        fh.seek(0)
        head = fh.read(13)
        if len(head) < 4 or struct.unpack_from("<i", head, 0)[0] != MAGIC:
            raise UnsupportedFormatError("not a LIF file (no 0x70 header block)")
        if len(head) < 13:
            raise ExtractionError(f"truncated LIF: {length} bytes, not even a header")
        if head[8] != MEMORY:
            raise ExtractionError("LIF header has no 0x2A marker before its XML description")
        chars = struct.unpack_from("<i", head, 9)[0]
        if not 0 < chars <= MAX_XML_CHARS:
            raise ExtractionError(f"LIF header has an impossible XML length ({chars} characters)")
        raw = _read_exact(fh, 2 * chars, "XML description")
        lif = LifFile(_decode(raw), length=length)
        for _ in range(MAX_BLOCKS):
            pos = fh.tell()
            if pos >= length:
                break
            check = struct.unpack("<i", _read_exact(fh, 4, "memory block header"))[0]
            if check != MAGIC:
                if check == 0 and lif.blocks:
                    break  # newer files end in zero padding
                raise ExtractionError(f"LIF memory block at byte {pos} has no 0x70 marker (found {check})")
            part = _read_exact(fh, 4 + 1 + 4 + 1, "memory description")
            if part[4] != MEMORY:
                raise ExtractionError(f"LIF memory description at byte {pos} has no 0x2A marker")
            size = struct.unpack_from("<i", part, 5)[0]
            if part[9] != MEMORY:  # version 2: a 64-bit size
                fh.seek(pos + 4 + 4 + 1)
                part = _read_exact(fh, 9, "memory description")
                size = struct.unpack_from("<q", part, 0)[0]
                if part[8] != MEMORY:
                    raise ExtractionError(f"LIF memory description at byte {pos} has no 0x2A marker")
            name_chars = struct.unpack("<i", _read_exact(fh, 4, "memory block name"))[0]
            if not 0 <= name_chars <= MAX_NAME_CHARS or size < 0:
                raise ExtractionError(f"LIF memory block at byte {pos} has an impossible size")
            name = _read_exact(fh, 2 * name_chars, "memory block name").decode("utf-16-le", errors="replace")
            start = fh.tell()
            if start + size > length:
                raise ExtractionError(f"truncated LIF: memory block {name[:40]!r} at byte {pos} runs past the end")
            lif.blocks.append((name, start, size))
            fh.seek(start + size)
        else:
            raise ExtractionError(f"LIF has more than {MAX_BLOCKS} memory blocks")
    return lif


def _decode(raw: bytes) -> str:
    """The XML description as Bio-Formats reads it: the UTF-16 bytes as ISO-8859-1, NULs dropped. That is
    the text while every code unit is below 256; any other character becomes its two bytes (U+2013 reads
    as ``"\\x13 "``, which :func:`sanitize` then blanks), and so it is read here too."""
    return raw.decode("latin-1").replace("\x00", "")


# -- the XML description --------------------------------------------------------------------------------
def _first(root: etree._Element | None, name: str) -> etree._Element | None:
    """The first descendant called ``name`` (DOM ``getElementsByTagName(name).item(0)``)."""
    if root is None:
        return None
    return next((el for el in root.iter(name) if el is not root), None)


def _all(root: etree._Element, name: str) -> list[etree._Element]:
    return [el for el in root.iter(name) if el is not root]


def _int(value: str | None, what: str) -> int:
    text = (value or "").strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise Declined(f"{what} is not an integer: {text[:40]!r}") from None


def _float(value: str | None, what: str) -> float:
    text = (value or "").strip()
    if NUMBER.fullmatch(text) is None:
        raise Declined(f"{what} is not a number: {text[:40]!r}")
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise Declined(f"{what} is not finite")
    return number


@dataclass
class Series:
    """One image as Bio-Formats makes it."""

    name: str
    size: tuple[int, int, int, int, int]  # X, Y, Z, C, T
    order: str
    pixel_type: str
    bits: int
    physical: tuple[float | None, float | None, float | None]
    channel_names: list[str | None]
    position: tuple[float, float]
    timestamps: list[float] | None
    colors: list[int] = field(default_factory=list)
    pinhole: float | None = None
    objective: str | None = None
    description: str | None = None
    lasers: list[float] = field(default_factory=list)
    light: dict[int, tuple[int, float, float]] = field(default_factory=dict)


@dataclass
class Confocal:
    """What Bio-Formats takes from the confocal settings: stage positions (one per setting), flips, dye
    names, pinhole, objective, the sequences' lasers and each channel's (laser, attenuation, wavelength)."""

    stages: list[tuple[float, float]]
    flags: tuple[bool, bool, bool]
    names: list[str | None]
    pinhole: float | None
    objective: str | None
    lasers: list[float]
    light: dict[int, tuple[int, float, float]]


def _image_name(image: etree._Element) -> str:
    names = []
    parent = image.getparent()
    while parent is not None:
        if parent.tag == "Element":
            names.append(parent.get("Name", ""))
        parent = parent.getparent()
    return ox.jtrim("/".join(reversed(names[:-1])))


def _dimensions(image: etree._Element) -> tuple[tuple[int, int, int, int, int], str, str, int,
                                                tuple[float | None, float | None, float | None]]:
    description = _first(image, "ImageDescription")
    channels_el = _first(description, "Channels")
    dimensions_el = _first(description, "Dimensions")
    if description is None or channels_el is None or dimensions_el is None:
        raise Declined("an image without channel or dimension descriptions")
    channels = _all(channels_el, "ChannelDescription")
    dimensions = _all(dimensions_el, "DimensionDescription")
    if not channels:
        raise Declined("an image without channels")
    axes: dict[int, str] = {}

    def put(key: int, axis: str) -> None:
        axes[key] = axis  # Bio-Formats' map: a later axis with the same BytesInc takes the place

    for channel in channels:
        key = _int(channel.get("BytesInc"), "channel BytesInc")
        if key > 0:
            put(key, "C")
    size_x = size_y = size_z = size_t = 0
    pixel: tuple[str, int] | None = None
    physical_x = physical_y = physical_z = None
    seen: set[int] = set()
    for dim in dimensions:
        ident = _int(dim.get("DimID"), "DimID")
        if ident not in (1, 2, 3, 4):
            raise Declined(f"dimension {ident} (tiles, lambda or another extra dimension)")
        if ident in seen:
            raise Declined(f"dimension {ident} given twice")
        seen.add(ident)
        count = _int(dim.get("NumberOfElements"), "NumberOfElements")
        if count <= 0:
            raise Declined("a dimension without elements")
        step = _int(dim.get("BytesInc"), "dimension BytesInc")
        length = _float(dim.get("Length") or "0", "dimension Length")
        per_pixel = length / (count - 1) if count > 1 else 0.0
        # Bio-Formats scales metres to µm and kiloseconds to seconds and takes any other unit as µm
        unit = dim.get("Unit", "")
        per_pixel = per_pixel * METRE_TO_MICRON if unit == "m" else per_pixel / 1000 if unit == "Ks" else per_pixel
        if ident == 1:
            size_x = count
            if step not in PIXEL_TYPES:
                raise Declined(f"{step} bytes per pixel (RGB or floating point)")
            pixel = PIXEL_TYPES[step]
            physical_x = per_pixel
        elif ident == 2:
            if size_y == 0:
                size_y, physical_y = count, per_pixel
            elif size_z == 1:  # after an XZ scan's Z became Y
                size_z, physical_z = count, per_pixel
                put(step, "Z")
            else:
                raise Declined("a Y dimension Bio-Formats would drop")
        elif ident == 3:
            if size_y == 0:  # XZ scan: Z is shown as Y
                size_y, size_z, physical_y = count, 1, per_pixel
                put(step, "Y")
            else:
                size_z, physical_z = count, per_pixel
                put(step, "Z")
        else:
            if size_y == 0:  # XT scan: T is shown as Y
                size_y, size_t, physical_y = count, 1, per_pixel
                put(step, "Y")
            else:
                size_t = count
                put(step, "T")
    if pixel is None:
        raise Declined("an image without an X dimension")
    size_c = len(channels)
    size = (size_x, max(size_y, 1), max(size_z, 1), size_c, max(size_t, 1))
    order = "XY"
    for key in sorted(axes):
        if axes[key] not in order:
            order += axes[key]
    for axis in "ZCT":
        if axis not in order:
            order += axis
    if len(order) != 5:
        raise Declined("a dimension order Bio-Formats would not make")
    # a negative X or Y length gives no physical size (live Bio-Formats 7.3.1 on edited corpus files, as
    # for zero); a positive one below 1e-6 µm it writes in nm and 1e-6 itself not at all (the ND2
    # differential test), which is not reproduced
    z_step = abs(physical_z) if physical_z is not None else None
    for value in (physical_x, physical_y, z_step):
        if value is not None and 0 < value <= 1e-6:
            raise Declined("a vanishing pixel size")
    physical = tuple(v if v is not None and v > 0 else None for v in (physical_x, physical_y, z_step))
    return size, order, pixel[0], pixel[1], (physical[0], physical[1], physical[2])


def _colors(image: etree._Element) -> list[int]:
    """Each channel's colour from its ``LUTName`` (a missing name is blank, so white)."""
    channels = _first(_first(image, "ImageDescription"), "Channels")
    if channels is None:  # declined before: an image without channel descriptions
        return []
    return [LUT_COLORS.get(c.get("LUTName", "").lower(), WHITE) for c in _all(channels, "ChannelDescription")]


def _description(image: etree._Element) -> str | None:
    """The ``Content`` of the last ``ContextDescription`` attachment, else the text of the first
    ``User-Comment`` anywhere in the image (Bio-Formats' order of preference), trimmed."""
    contexts = [a for a in _all(image, "Attachment") if a.get("Name") == "ContextDescription"]
    comment = _first(image, "User-Comment")
    if contexts:
        text = contexts[-1].get("Content", "")
    elif comment is not None:
        text = "".join(comment.itertext())
    else:
        return None
    return ox.jtrim(text)  # Bio-Formats' printed document trims the text (its indenting)


def _hex_seconds(token: str) -> float:
    text = token.strip()
    if not text or len(text) > 16 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
        raise Declined(f"a time stamp Bio-Formats cannot read: {text[:20]!r}")
    ticks = int(text, 16)
    if ticks >= 1 << 63:
        raise Declined("a time stamp out of range")
    return (ticks // 10000) / 1000


def _timestamps(image: etree._Element) -> list[float] | None:
    stamps = _first(image, "TimeStampList")
    if stamps is None:
        return None
    if not (stamps.get("NumberOfTimeStamps") or ""):
        raise Declined("time stamps in the LAS AF 3.0 layout")
    tokens = "".join(stamps.itertext()).split(" ")
    while tokens and tokens[-1] == "":
        tokens.pop()  # Java's String.split drops trailing empty strings
    if not tokens:
        raise Declined("an empty time stamp list")
    return [_hex_seconds(token) for token in tokens]


def _flag(setting: etree._Element, name: str) -> bool:
    value = (setting.get(name) or "").strip()
    if value not in ("0", "1"):
        raise Declined(f"{name}={value[:10]!r} (only 0 and 1 are checked)")
    return value == "1"


def _text(setting: etree._Element, name: str) -> str:
    return ox.jtrim(setting.get(name, ""))


def _settings(image: etree._Element, hardware: etree._Element) -> list[etree._Element]:
    """The confocal settings Bio-Formats reads, masters pruned: the attachment's own first, then, for a
    sequential scan, one per sequence (``LDM_Block_Sequential_List``)."""
    settings = _all(image, "ATLConfocalSettingDefinition")
    if not settings or settings[0].getparent() is not hardware:
        raise Declined("no confocal setting first in the hardware attachment")
    for other in settings[1:]:
        parent = other.getparent()
        block = parent.getparent() if parent is not None else None
        if parent is None or parent.tag not in ("LDM_Block_Sequential_List", "LDM_Block_Sequential_Master") or \
                block is None or \
                block.tag != "LDM_Block_Sequential" or block.getparent() is not hardware:
            raise Declined(f"{len(settings)} confocal settings outside a sequential list")
    for setting in settings:  # the last one's flags count; the others are only checked to be flags
        for name in ("FlipX", "FlipY", "SwapXY"):
            _flag(setting, name)
    return settings


def _confocal(image: etree._Element, size_c: int) -> Confocal:
    attachments = _all(image, "Attachment")
    if any(a.get("Name") == "TileScanInfo" for a in attachments):
        raise Declined("a tile scan")
    hardware = [a for a in attachments if a.get("Name") == "HardwareSetting"]
    if len(hardware) != 1:
        raise Declined(f"{len(hardware)} hardware setting attachments")
    if _first(image, "ATLCameraSettingDefinition") is not None:
        raise Declined("a camera (widefield) image")
    settings = _settings(image, hardware[0])
    stages = [(_float(s.get("StagePosX"), "StagePosX"), _float(s.get("StagePosY"), "StagePosY")) for s in settings]
    setting = settings[-1]
    pinhole = None
    for holder in settings:  # the last given one counts
        if _text(holder, "Pinhole"):
            pinhole = _float(holder.get("Pinhole"), "Pinhole") * METRE_TO_MICRON
    objective = next((_text(h, "ObjectiveName") for h in reversed(settings) if _text(h, "ObjectiveName")), None)
    flags = (_flag(setting, "FlipX"), _flag(setting, "FlipY"), _flag(setting, "SwapXY"))
    lasers, intensities = _laser_lines(image)
    light = _light(lasers, intensities, _active(settings), size_c)
    return Confocal(stages, flags, _dye_names(settings, size_c), pinhole, objective,
                    [w for w in lasers if w != 0], light)


def _active(settings: list[etree._Element]) -> list[bool]:
    """Whether each setting has an active detector (Bio-Formats' per-setting laser activity)."""
    found = [_all(s, "Detector") for s in settings]
    if len(settings) > 1 and not all(found):  # Bio-Formats stops reading detectors there
        raise Declined("a sequential confocal setting without detectors")
    return [any(d.get("IsActive") == "1" for d in detectors) for s, detectors in zip(settings, found, strict=True)
            if not _is_master(s)]


def _is_master(setting: etree._Element) -> bool:
    parent = setting.getparent()
    return parent is not None and parent.tag.endswith("Master")


def _laser_lines(image: etree._Element) -> tuple[list[float], list[float]]:
    """Laser wavelengths (by line slot, 0 for none) and intensities (per sequence, per line) as Bio-Formats
    collects them from the sequences' ``AotfList`` entries; the attachment's own lines do not count."""
    wavelengths: list[float] = []
    intensities: list[float] = []
    base = 0
    for aotf in _all(image, "AotfList"):
        holder = aotf.getparent()
        grand = holder.getparent() if holder is not None else None
        gp = grand.tag if grand is not None and isinstance(grand.tag, str) else ""
        if gp.endswith("Attachment") or gp == "LDM_Block_Sequential_Master":
            continue
        if gp != "LDM_Block_Sequential_List":
            raise Declined("laser settings outside the attachment and the sequential list")
        for line in _all(aotf, "LaserLineSetting"):
            qualifier = _int(line.get("Qualifier") or "0", "Qualifier") if ox.jtrim(line.get("Qualifier", "")) \
                else 0
            if qualifier < 0:
                raise Declined("a negative laser line qualifier")
            index = (_int(line.get("LineIndex"), "LineIndex") if ox.jtrim(line.get("LineIndex", "")) else 0) \
                + 2 - qualifier // 10
            if index < 0:
                continue
            wavelength = _float(line.get("LaserLine"), "LaserLine") if ox.jtrim(line.get("LaserLine", "")) \
                else 0.0
            if wavelength < 0:
                raise Declined("a negative laser line")
            if index < len(wavelengths):
                wavelengths[index] = wavelength
            else:
                wavelengths.extend([0.0] * (index - len(wavelengths)))
                wavelengths.append(wavelength)
            dev = _float(line.get("IntensityDev"), "IntensityDev") if ox.jtrim(line.get("IntensityDev", "")) \
                else 0.0
            if not 0 <= dev <= 100:
                raise Declined("a laser intensity outside 0-100 %")
            if base + index < len(intensities):
                intensities[base + index] = 100 - dev
            else:  # Bio-Formats appends at the end whatever the slot
                intensities.append(100 - dev)
        base += len(wavelengths)
    return wavelengths, intensities


def _light(slots: list[float], intensities: list[float], active: list[bool],
           size_c: int) -> dict[int, tuple[int, float, float]]:
    """Channel -> (laser, attenuation, wavelength) as Bio-Formats assigns the sequences' laser lines: the
    intensities are read as rows of one per laser; every line in use (intensity below 100 %) goes to the
    next channel, except pairs in one row (two lasers at once) and those of settings without an active
    detector (by position, as Bio-Formats indexes them)."""
    lasers = [w for w in slots if w != 0]
    if not intensities:
        return {}
    if not lasers:
        raise Declined("laser intensities without laser lines (Bio-Formats fails)")
    size = len(lasers)
    valid = [k for k, intensity in enumerate(intensities) if intensity < 100]
    rows = {k // size for k in valid}
    ignored = {k // size for k in range(len(intensities))} - rows
    dropped: set[int] = set()
    for j, k in enumerate(valid):
        if j < len(active) and not active[j]:
            dropped.add(k)
        if j + 1 < len(valid) and valid[j + 1] // size == k // size:
            dropped.update((k, valid[j + 1]))
            ignored.add(j)
    light: dict[int, tuple[int, float, float]] = {}
    channel = 0
    for k in (k for k in valid if k not in dropped):
        while channel in ignored:
            channel += 1
        if channel < size_c:
            laser = k % size
            light[channel] = (laser, ox.f32(ox.f32(intensities[k]) / 100), lasers[laser])
        channel += 1
    return light


def _dye_names(settings: list[etree._Element], size_c: int) -> list[str | None]:
    """Channel names as Bio-Formats gives them: the active detectors' dye names in detector order, each name
    once (a detector without a band counts as a blank name every time), the last ``size_c`` of them to the
    channels - aligned at the end, so with fewer names the first channels have none."""
    if not _all(settings[0], "Detector"):
        return [None] * size_c
    dyes: list[str] = []
    for setting, detector in ((s, d) for s in settings for d in _all(s, "Detector")):
        bands = [] if _is_master(setting) else _all(setting, "MultiBand")  # a kept master: no dye names
        if detector.get("IsActive") != "1":
            continue
        channel = _int(detector.get("Channel"), "detector Channel")
        band = next((b for b in bands if _int(b.get("Channel"), "MultiBand Channel") == channel), None)
        if band is None:
            dyes.append("")
            continue
        for edge in ("LeftWorld", "RightWorld"):  # Bio-Formats reads both as numbers; others are not checked
            _float(band.get(edge), f"MultiBand {edge}")
        dye = band.get("DyeName", "")
        if dye not in dyes:
            dyes.append(dye)
    shift = len(dyes) - size_c
    return [dyes[i + shift] if 0 <= i + shift < len(dyes) else None for i in range(size_c)]


#: What Bio-Formats' ``XMLTools.sanitizeXML`` blanks before it parses the description: every ISO control
#: character (line breaks and tabs too, in text and between elements alike)
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def sanitize(xml: str) -> str:
    """The description as Bio-Formats parses it: control characters made spaces, and the ``&`` of each
    character reference (``&#10;``) too, so such a reference reads as its own text (``" #10;"``)."""
    return _CONTROLS.sub(" ", xml).replace("&#", " #")


def read_series(xml: str) -> list[Series]:
    """Every image of the XML description; raises :class:`Declined` for a kind not checked."""
    text = sanitize(xml.strip("\x00"))
    if not text.startswith("<") or text.startswith("<?"):
        raise Declined("XML description that does not start with its root element")
    root = ome.parse_or(text.encode("utf-8"), lambda why: ExtractionError(f"LIF XML refused: {why}"),
                        lambda why: ExtractionError(f"LIF XML cannot be parsed: {why}"))
    # Bio-Formats prunes the sequential masters first, but from a live node list it shrinks as it goes: it
    # removes the 1st, 3rd, 5th ... of the file and keeps the others (read as masters later)
    for master in list(root.iter("LDM_Block_Sequential_Master"))[::2]:
        parent = master.getparent()
        if parent is None:
            raise Declined("a sequential master as the root")
        parent.remove(master)
    for marker in ("ProcessingHistory", "FilterSettingRecord",
                   "ScannerSettingRecord"):
        if _first(root, marker) is not None or root.tag == marker:
            raise Declined(f"{marker} (not checked)")
    images = _all(root, "Image")
    if not images:
        raise Declined("no images")
    series = []
    stages: list[tuple[float, float]] = []
    flags: list[tuple[bool, bool, bool]] = []
    for image in images:
        parent = image.getparent()
        if parent is None or parent.tag != "Data" or parent.getparent() is None or \
                parent.getparent().tag != "Element":
            raise Declined("an Image outside Element/Data")
        if any(a.tag in ("Image", "Attachment") for a in image.iterancestors()):
            raise Declined("an image nested in another image")
        for marker in ("Annotation", "ROI"):  # ROIs, not reproduced
            if _first(image, marker) is not None:
                raise Declined(f"{marker} (not checked)")
        size, order, pixel_type, bits, physical = _dimensions(image)
        confocal = _confocal(image, size[3])
        stages.extend(confocal.stages)
        flags.append(confocal.flags)
        series.append(Series(_image_name(image), size, order, pixel_type, bits, physical, confocal.names,
                             (0.0, 0.0), _timestamps(image), _colors(image), confocal.pinhole,
                             confocal.objective, _description(image), confocal.lasers, confocal.light))
    for i, s in enumerate(series):
        # Bio-Formats lists every setting's stage position in one list for the whole file and gives image i
        # the i-th entry (so with sequential scans, a later image gets an earlier image's sequence position)
        x, y = stages[i]
        flip_x, flip_y, swap = flags[i]
        x, y = (y, x) if swap else (x, y)
        s.position = (-x if flip_x else x, -y if flip_y else y)
    return series


# -- the OME-XML ----------------------------------------------------------------------------------------
def _date(seconds: float) -> str:
    moment = COBOL_EPOCH + timedelta(milliseconds=int(seconds * 1000))
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def document(series: list[Series]) -> str:
    instruments = []
    images = []
    for i, s in enumerate(series):
        instrument = ox.El("Instrument", {"ID": f"Instrument:{i}"})
        instrument.add(ox.El("Microscope", {"Type": "Other"}))
        for k, wavelength in enumerate(s.lasers):
            instrument.add(ox.El("Laser", {"ID": f"LightSource:{i}:{k}", "LaserMedium": "Other", "Type": "Other",
                                           "Wavelength": ox.jdouble(wavelength), "WavelengthUnit": "nm"}))
        objective = {"ID": f"Objective:{i}:0", "Correction": "Other", "Immersion": "Other"}
        if s.objective is not None:
            objective["Model"] = s.objective
        instrument.add(ox.El("Objective", objective))
        filters = [c for c, color in enumerate(s.colors) if color != WHITE]  # one per coloured channel
        for f in range(len(filters)):
            instrument.add(ox.El("Filter", {"ID": f"Filter:{i}:{f}"}))
        instruments.append(instrument)
        image = ox.El("Image", {"ID": f"Image:{i}", "Name": s.name})
        stamps = s.timestamps
        if stamps and stamps[0] > 0:
            image.add(ox.El("AcquisitionDate", text=_date(stamps[0])))
        if s.description is not None:
            image.add(ox.El("Description", text=s.description))
        image.add(ox.El("InstrumentRef", {"ID": f"Instrument:{i}"}))
        image.add(ox.El("ObjectiveSettings", {"ID": f"Objective:{i}:0"}))
        pixels = image.add(ox.pixels(index=i, dimension_order=s.order, pixel_type=s.pixel_type, size=s.size,
                                     big_endian=False, significant_bits=s.bits, physical=s.physical))
        for c, name in enumerate(s.channel_names):
            attrs = {"Color": str(s.colors[c])}
            if name is not None:
                attrs["Name"] = name
            if s.pinhole is not None:
                attrs.update(PinholeSize=ox.jdouble(s.pinhole), PinholeSizeUnit=ox.MICRON)
            if c in s.light:
                laser, attenuation, wavelength = s.light[c]
                attrs.update(ExcitationWavelength=ox.jdouble(wavelength), ExcitationWavelengthUnit="nm")
            channel = pixels.add(ox.channel(i, c, 1, **attrs))
            if c in s.light:
                channel.children.insert(0, ox.El("LightSourceSettings", {
                    "Attenuation": ox.jfloat(attenuation), "ID": f"LightSource:{i}:{laser}"}))
            if c in filters:
                channel.children[-1].add(ox.El("EmissionFilterRef", {"ID": f"Filter:{i}:{filters.index(c)}"}))
        pixels.add(ox.El("MetadataOnly"))
        count = s.size[2] * s.size[3] * s.size[4]
        for plane in range(count):
            z, c, t = ox.zct(plane, s.order, s.size)
            attrs = {"TheZ": str(z), "TheC": str(c), "TheT": str(t),
                     "PositionX": ox.jdouble(s.position[0]), "PositionXUnit": "m",
                     "PositionY": ox.jdouble(s.position[1]), "PositionYUnit": "m"}
            if stamps is not None and plane < len(stamps):
                attrs.update(DeltaT=ox.jdouble(stamps[plane] - stamps[0]), DeltaTUnit="s")
            pixels.add(ox.El("Plane", attrs))
        images.append(image)
    return ox.document(*instruments, *images)


def check_blocks(series: list[Series], lif: LifFile) -> None:
    """Decline a file whose memory blocks Bio-Formats cannot assign to its images.

    With more (non-empty) blocks than images Bio-Formats gives each image, in order, the next block whose
    span (to the next block's data, or to the end of the file) holds all its planes, skipping the smaller
    ones; when it runs out of blocks it fails (an index past its list), so the file is left to it.
    """
    offsets = [start for _, start, size in lif.blocks if size > 0]
    if len(offsets) <= len(series):
        return
    index = 0
    for s in series:
        x, y, z, c, t = s.size
        needed = x * y * (s.bits // 8) * z * c * t
        while True:
            if index >= len(offsets):
                raise Declined("memory blocks too small for the images (Bio-Formats fails)")
            end = offsets[index + 1] if index + 1 < len(offsets) else lif.length
            if end - offsets[index] >= needed:
                break
            index += 1
        index += 1


def inspect_lif(path: str) -> list[Series]:
    """Read and classify ``path``; raises :class:`Declined` when this engine leaves it to Bio-Formats."""
    lif = read_lif(path)
    series = read_series(lif.xml)
    check_blocks(series, lif)
    return series


def _looks_like_lif(head: bytes) -> bool:
    return len(head) >= 13 and head[:4] == b"\x70\x00\x00\x00" and head[8] == MEMORY


class LifEngine(ReaderEngine[list[Series]]):
    """Single-tile confocal LIF (LAS X layout) from its own XML, Bio-Formats' whole document; every other LIF
    goes to Bio-Formats."""

    name = NAME
    score = CLAIM
    magic = b"\x70\x00\x00\x00"
    kind, label = "a LIF", "LIF"

    def wants(self, path: str, head: bytes) -> bool:
        return _looks_like_lif(head)

    def read(self, path: str) -> list[Series]:
        return inspect_lif(path)

    def render(self, found: list[Series]) -> str:
        return document(found)

    def check_unclaimed(self, path: str) -> None:
        head = head_of(path, 13)
        if not _looks_like_lif(head):
            raise UnsupportedFormatError(f"not a LIF file (first bytes: {head[:4]!r})")
