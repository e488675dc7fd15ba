"""Native engines for two vendor TIFFs Bio-Formats 7.3.1 reads with its own readers: Zeiss LSM and MetaMorph.

**Zeiss LSM** (``tifffile-lsm``). Bio-Formats' ``ZeissLSMReader`` takes the sizes from the image IFD and the
``CZ_LSMINFO`` tag (34412), the dimension order from its scan type, the physical sizes from its voxel sizes
(metres, written in µm, or in the first smaller unit that makes the value at least 1e-6), the stage
position from its position and tile-position tables (each added to the origin), and from the scan
information blocks: the acquisition date (``Sample 0Time``, days since 1899-12-30, with Bio-Formats'
Microsoft epoch, which is five hours off), the objective (``"<correction> <mag>x/<NA> <immersion>"``), the
significant bits (the last data channel's ``Bits Per Sample``) and the channel name (from the channel
colours-and-names block). The image is named after the file without its extension. The experimenter,
the instrument (lasers, detectors, objective, dichroics), the description, the time increment and the
channel's colour, pinhole and detector settings come from replaying the reader's walk over the scan
information (:mod:`.lsm_scan`): the document is Bio-Formats' whole, so the engine answers in ``auto``.

The kind claimed is the one proven on the corpus sample and on byte-edited copies of it checked against
the live Bio-Formats engine (``tests/test_engines_lsm_stk.py``): a little-endian classic TIFF named
``*.lsm`` with exactly two IFDs (one image plane, one thumbnail), one sample per pixel of 8 or 16 bits,
``DimensionZ = DimensionTime = 1``, one position (``DimensionM * DimensionP <= 1``), no rotations, phases or
illuminations, no drawn overlays (ROIs), no application tags (SIM), no events, exactly one recording block
whose objective text and sample time parse unambiguously, scan information the replay models (no
emission filters, named detection and data channels; ``tests/test_differential_lsm.py`` checks edited
copies against live Bio-Formats), and no ``.mdb`` in the folder (Bio-Formats would read the whole
database). Stacks, time series and multi-channel files (samples per pixel > 1, which Bio-Formats splits
into channels) are left to Bio-Formats: no corpus file proves them.

**MetaMorph TIFF** (``tifffile-stk``). The kind claimed is the one in the corpus: a single-plane TIFF written
by MetaMorph (``Software`` starting with "MetaMorph", which is what makes Bio-Formats' ``MetamorphReader``
take it) that carries only the UIC1 tag (33628) — no UIC2/UIC3/UIC4, so Bio-Formats builds no plane table,
no light source and no z step. Bio-Formats then names the image "" (no ``.nd``, not a plate), takes the
date from the TIFF ``DateTime``, the pixel size from UIC1 ``XCalibration``/``YCalibration`` (µm whatever
the calibration unit says: ``um``, ``mm``, ``nm``, ``in``, ``pixel`` were checked), the stage position from
UIC1 ``StagePosition``, the channel name from the first ``_IllumSetting_`` plane property, the exposure
from an ``Exposure: N ms`` description line, and writes DeltaT 0; a binning outside the OME enumeration is
``Other``. Files with UIC2/3/4 tables (true STK stacks), a ``<MetaData>`` description, a ``Bit Depth``
description line, no calibration unit (or one that is not UTF-8), a binning that is not of two positive
factors, or an ``.nd``/``.scan``/``.htd`` or other companion in the folder are left to Bio-Formats. (Stage
labels, which can make Bio-Formats build a plate, live in UIC4: excluded.)
"""

from __future__ import annotations

import functools
import math
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from metaextract.engines.base import FileContext
from metaextract.engines.tiff import common, lsm_scan
from metaextract.engines.tiff.plain import TiffKindEngine
from metaextract.extraction.snapshot import Snapshot
from metaextract.ome import writer as ox

LSM = "tifffile-lsm"
STK = "tifffile-stk"
P = ParamSpec("P")
R = TypeVar("R")
CLAIM = 60  # beats Bio-Formats (1); the plain tifffile engine (50) declines both kinds anyway

#: ``loci.common.Constants.EPSILON``: a physical size below it (in its unit) moves to a smaller unit.
EPSILON = 1e-6
#: The length units ``FormatTools.getPhysicalSize`` walks down from µm, with ome.units' scale factors.
#: (After ym it would walk into Å and imperial units: such a file is declined.)
_SMALLER_UNITS = (("µm", 1e-6), ("nm", 1e-9), ("pm", 1e-12), ("fm", 1e-15), ("am", 1e-18), ("zm", 1e-21),
                  ("ym", 1.0000000000000001e-24))
#: ``DateTools.MICROSOFT_EPOCH``: milliseconds from 1899-12-30 to 1970-01-01, less five hours.
MICROSOFT_EPOCH_MS = 2209143600000
_UNIX = datetime(1970, 1, 1)
_STRICT_NUMBER = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,12})?")


@contextmanager
def _mapped(fh: Any) -> Iterator[Any]:
    """The file's bytes, memory-mapped (an LSM can be gigabytes; only a few structures are read)."""
    if os.fstat(fh.fileno()).st_size == 0:
        yield b""
        return
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


class _Decline(Exception):
    """The file is not of a kind this engine has proven (it is left to Bio-Formats)."""


def _declined_as_none(inspect: Callable[P, R | None]) -> Callable[P, R | None]:
    """``inspect`` answering None for a file it declines (raises :class:`_Decline` for)."""

    @functools.wraps(inspect)
    def inspect_or_none(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return inspect(*args, **kwargs)
        except _Decline:
            return None

    return inspect_or_none


def physical_size(microns: float) -> tuple[float, str] | None:
    """``FormatTools.getPhysicalSize(value, "µm")``: the value and unit Bio-Formats writes, or None.

    Parameters
    ----------
    microns : float
        The size in µm.

    Returns
    -------
    tuple or None
        ``(value, unit)``; None when Bio-Formats writes no physical size (zero, negative, not finite).

    Raises
    ------
    _Decline
        When Bio-Formats would walk past yoctometres (into units this function does not model).
    """
    if microns <= 0 or math.isnan(microns) or not microns < math.inf:
        return None  # a negative value is walked down every unit and still not positive: None too
    value, unit, steps = microns, ox.MICRON, iter(zip(_SMALLER_UNITS, _SMALLER_UNITS[1:], strict=False))
    while value < EPSILON:  # exactly EPSILON is neither walked down nor written
        step = next(steps, None)
        if step is None:
            raise _Decline("physical size below the units modelled here")
        (_, scale), (unit, smaller) = step
        value = value * scale / smaller  # ome.units' Unit.convertValue, one step at a time
    return (value, unit) if EPSILON < value < math.inf else None


def _set_physical(pixels: ox.El, axis: str, size: tuple[float, str] | None) -> None:
    if size is not None:
        pixels.attrs[f"PhysicalSize{axis}"] = ox.jdouble(size[0])
        pixels.attrs[f"PhysicalSize{axis}Unit"] = size[1]


# -- Zeiss LSM ----------------------------------------------------------------------------------------------
#: ``CZ_LSMINFO`` scan type -> Bio-Formats' dimension order (anything else: XYZCT).
SCAN_ORDERS = {0: "XYZCT", 1: "XYZCT", 2: "XYZCT", 3: "XYTCZ", 4: "XYZTC", 5: "XYTCZ", 6: "XYZTC", 7: "XYCTZ",
               8: "XYCZT", 9: "XYTCZ", 10: "XYZCT"}
LSM_MAGICS = frozenset({0x00300494C, 0x00400494C})
MIN_CZ_BYTES = 380  # Bio-Formats reads up to the position-table offset at byte 376
#: Scan-information sub-block kinds Bio-Formats reads (each then reads entries up to the next sub-block).
_RECORDING, _DATA_CHANNEL = 0x10000000, 0xD0000000
_BLOCK_KINDS = frozenset({_RECORDING, 0x50000000, 0x40000000, 0x70000000, 0x90000000, 0xB0000000, _DATA_CHANNEL,
                          0x12000000, 0x14000000})
_RECORDING_OBJECTIVE, _RECORDING_SAMPLE_0TIME = 0x10000004, 0x10000036
_BITS_PER_SAMPLE = 0xD0000006
#: Overlay offsets in CZ_LSMINFO (vector, input LUT, output LUT, ROI, bleach ROI, mean of ROIs, topo
#: isoline, topo profile, line scan): Bio-Formats reads shapes from each.
_OVERLAY_AT = (96, 100, 104, 140, 144, 184, 188, 192, 196)
MAX_POSITIONS = 1  # the claimed kind has one plane at one position


@dataclass
class LsmInfo:
    """What the LSM engine writes for one file."""

    name: str
    size_x: int
    size_y: int
    pixel_type: str
    significant_bits: int
    dimension_order: str
    physical: tuple[tuple[float, str] | None, tuple[float, str] | None, tuple[float, str] | None]
    date: str | None
    channel_name: str | None
    magnification: float | None
    lens_na: float | None
    position: tuple[float, float, float] | None
    scan: lsm_scan.LsmScan
    color: int | None  #: the channel's colour as OME's signed RGBA integer


class _Reader:
    """Bounds-checked little-endian reads over the file's bytes (any overrun declines the file)."""

    def __init__(self, data: Any) -> None:
        self.data = data  # bytes or an mmap

    def unpack(self, fmt: str, offset: int) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        if offset < 0 or offset + size > len(self.data):
            raise _Decline("a structure lies outside the file")
        return struct.unpack_from("<" + fmt, self.data, offset)

    def int32(self, offset: int) -> int:
        return int(self.unpack("i", offset)[0])

    def text(self, offset: int, length: int) -> str:
        if length < 0 or offset < 0 or offset + length > len(self.data):
            raise _Decline("a string lies outside the file")
        try:
            return bytes(self.data[offset:offset + length]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Decline("a string is not UTF-8") from exc


def _read_value(r: _Reader, pos: int) -> tuple[object | None, int]:
    """One scan-information value as ``ZeissLSMReader.readValue`` reads it (None: a sub-block header)."""
    block_type, size = r.unpack("ii", pos)
    pos += 8
    if block_type == 4:  # long: 4 bytes, whatever the size says
        return int(r.unpack("i", pos)[0]), pos + 4
    if block_type == 5:  # rational: a double
        return float(r.unpack("d", pos)[0]), pos + 8
    if block_type == 2:  # ASCII: trimmed, cut at the first control character below 10
        text = ox.jtrim(r.text(pos, size))
        cut = next((i for i, ch in enumerate(text) if ord(ch) < 10), len(text))
        return text[:cut], pos + size
    if block_type == 0:
        return None, pos
    if size < 0:
        raise _Decline("a negative value size")
    return "", pos + size


def scan_blocks(r: _Reader, start: int) -> list[tuple[int, dict[int, object]]]:
    """The scan-information sub-blocks Bio-Formats builds, in file order, with their first values."""
    blocks: list[tuple[int, dict[int, object]]] = []
    pos, end = start, len(r.data)
    while pos < end - 12:
        entry, block_type, size = r.unpack("iii", pos)
        pos += 12
        if block_type == 0:
            kind = entry & 0xFFFFFFFF
            if kind in _BLOCK_KINDS:
                values: dict[int, object] = {}
                key = r.int32(pos) & 0xFFFFFFFF
                value, pos = _read_value(r, pos + 4)
                while value is not None and pos < end:
                    values.setdefault(key, value)
                    key = r.int32(pos) & 0xFFFFFFFF
                    value, pos = _read_value(r, pos + 4)
                blocks.append((kind, values))
                if len(blocks) > 10000:
                    raise _Decline("too many scan-information blocks")
        elif size > 0 and pos + size <= end:
            pos += size
        else:
            break
    return blocks


def parse_objective(text: str) -> tuple[float | None, float | None]:
    """Magnification and NA as ``ZeissLSMReader``'s recording block reads them from the objective text.

    The token holding the first ``/`` gives both: the magnification is the text before the slash less
    its last character (the ``x`` of ``40x/1.30``), the NA the text after it.

    Raises
    ------
    _Decline
        When a number is not a plain decimal (Bio-Formats' lenient parsing is not modelled).
    """
    tokens = text.split(" ")
    while tokens and tokens[-1] == "":
        tokens.pop()  # Java's split drops trailing empty strings
    token = next((t for t in tokens if "/" in t), None)
    if token is None:
        return None, None
    slash = token.index("/")
    magnification = lens_na = None
    if slash > 0:
        mag = token[:slash - 1]
        if not _STRICT_NUMBER.fullmatch(mag):
            raise _Decline("objective magnification not a plain number")
        magnification = float(mag)
    if slash < len(token) - 1:
        na = token[slash + 1:]
        if not _STRICT_NUMBER.fullmatch(na):
            raise _Decline("objective NA not a plain number")
        lens_na = float(na)
    return magnification, lens_na


def microsoft_date(days: float) -> str | None:
    """``Sample 0Time`` (days since 1899-12-30) as Bio-Formats writes it; None when it writes no date."""
    if math.isnan(days) or not abs(days) < 1e8:
        raise _Decline("sample time out of range")
    stamp = int(days * 86400000)  # Java's (long) cast truncates toward zero
    if stamp <= 0:
        return None
    when = _UNIX + timedelta(milliseconds=stamp - MICROSOFT_EPOCH_MS)
    if not 1000 <= when.year <= 9999:
        raise _Decline("sample time out of range")
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _positions(r: _Reader, offset: int) -> list[tuple[float, float, float]]:
    if offset == 0:
        return []
    count = r.int32(offset)
    if not 0 <= count <= MAX_POSITIONS:
        raise _Decline("position tables of this size are not claimed")
    return [tuple(v * 1000000 for v in r.unpack("ddd", offset + 4 + 24 * i)) for i in range(count)]


def _lsm_position(r: _Reader, cz: _Reader, origin: tuple[float, float, float]) -> tuple[float, float, float] | None:
    """The stage position Bio-Formats gives the planes: position table plus tile table, each + origin."""
    coords = [[o + v for o, v in zip(origin, p, strict=True)] for p in _positions(r, cz.int32(376))]
    for i, tile in enumerate(_positions(r, cz.int32(336))):
        moved = [o + v for o, v in zip(origin, tile, strict=True)]
        if i < len(coords):
            coords[i] = [m + c for m, c in zip(moved, coords[i], strict=True)]
        elif i == len(coords):
            coords.append(moved)
    if not coords:
        return None
    x, y, z = coords[0]
    return x, y, z


@_declined_as_none
def inspect_lsm(path: str, listings: common.Listings | None = None) -> LsmInfo | None:
    """Classify ``path``; an :class:`LsmInfo` when this engine gives Bio-Formats' answer, else None.

    Parameters
    ----------
    path : str
        The file.
    listings : common.Listings, optional
        Cached folder listings; with them a file next to an ``.mdb`` is declined.
    """
    base = os.path.basename(path)
    if not base.lower().endswith(".lsm") or len(base) <= 4:
        return None
    with open(path, "rb") as fh, _mapped(fh) as data:
        return _inspect_lsm_mapped(path, base, data, listings)


def _inspect_lsm_mapped(path: str, base: str, data: Any, listings: common.Listings | None) -> LsmInfo | None:
    import tifffile

    if data[:4] != b"II*\x00":
        return None
    with common.parsed(path) as tf:
        if tf is None:
            return None
        pages = tf.pages
        if tf.is_bigtiff or len(pages) != 2:
            return None
        first, thumb = pages[0], pages[1]
        if not isinstance(first, tifffile.TiffPage) or not isinstance(thumb, tifffile.TiffPage):
            return None
        tag = first.tags.get(34412)
        if tag is None or tag.count < MIN_CZ_BYTES or tag.dtype not in (1, 7):
            return None
        cz = _Reader(data[tag.valueoffset:tag.valueoffset + tag.count])
        if len(cz.data) != tag.count:
            return None
        samples, bits, photometric = first.samplesperpixel, first.bitspersample, int(first.photometric)
        if samples != 1 or photometric == 2 or int(first.sampleformat) != 1 or bits not in (8, 16):
            return None
        size_x, size_y = first.imagewidth, first.imagelength
    r = _Reader(data)
    if cz.int32(0) & 0xFFFFFFFF not in LSM_MAGICS:
        return None
    size_z, size_t = cz.int32(16), cz.int32(24)
    if size_z != 1 or size_t != 1:
        return None
    if cz.int32(264) * cz.int32(268) > 1:  # DimensionP * DimensionM: more than one series
        return None
    if any(v > 1 for v in cz.unpack("iii", 272)):  # rotations, phases, illuminations
        return None
    for at in _OVERLAY_AT:
        offset = cz.int32(at)
        if offset:
            shapes, size = r.unpack("ii", offset)
            if size > 194 and shapes != 0:
                return None  # drawn ROIs: not modelled
    app = cz.int32(128)
    if app and r.int32(app + 4) != 0:
        return None  # application tags (SIM data changes channel colours): not modelled
    events = cz.int32(136)
    if events and r.int32(events + 4) != 0:
        return None
    scan_type = int(cz.unpack("h", 88)[0])
    voxel = cz.unpack("ddd", 40)
    origin = tuple(v * 1000000 for v in cz.unpack("ddd", 64))

    scan_info = cz.int32(124)
    if scan_info <= 0:
        return None
    blocks = scan_blocks(r, scan_info)
    recordings = [values for kind, values in blocks if kind == _RECORDING]
    if len(recordings) != 1:
        return None
    recording = recordings[0]
    objective = recording.get(_RECORDING_OBJECTIVE)
    magnification, lens_na = parse_objective(objective) if isinstance(objective, str) else (None, None)
    sample_time = recording.get(_RECORDING_SAMPLE_0TIME)
    if sample_time is not None and not isinstance(sample_time, float):
        return None
    date = microsoft_date(sample_time) if sample_time is not None else None
    bit_values = [values[_BITS_PER_SAMPLE] for _, values in blocks if _BITS_PER_SAMPLE in values]
    if any(not isinstance(v, int) for v in bit_values) or len(set(bit_values)) > 1:
        return None
    significant = int(bit_values[-1]) if bit_values else bits  # type: ignore[call-overload]
    if not 1 <= significant <= 64:
        return None

    try:
        scan = lsm_scan.replay(blocks)
    except lsm_scan.Unproven:
        return None
    channel_name = color = None
    colors = cz.int32(108)
    if colors:
        colors_offset = r.int32(colors + 12)
        if colors_offset > 0:
            color = _channel_color(r.int32(colors + colors_offset))
        names_offset = r.int32(colors + 16)
        if names_offset > 0:
            at = colors + names_offset
            if at >= len(data) - 1:
                return None
            length = r.int32(at)
            name = r.text(at + 4, length).rstrip("\x00")
            if not name.isprintable():
                return None
            channel_name = name

    info = LsmInfo(
        name=base[:base.rindex(".")], size_x=size_x, size_y=size_y, pixel_type="uint8" if bits == 8 else "uint16",
        significant_bits=significant, dimension_order=SCAN_ORDERS.get(scan_type, "XYZCT"),
        physical=(physical_size(voxel[0] * 1000000), physical_size(voxel[1] * 1000000),
                  physical_size(voxel[2] * 1000000)),
        date=date, channel_name=channel_name, magnification=magnification, lens_na=lens_na,
        position=_lsm_position(r, cz, origin), scan=scan, color=color,
    )
    if listings is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if listings.first_ending(folder, (".mdb",)) is not None:
            return None
    return info


def _channel_color(stored: int) -> int:
    """The channel colour Bio-Formats writes for a stored ``0x00BBGGRR`` (black becomes white)."""
    red, green, blue = stored & 0xFF, (stored >> 8) & 0xFF, (stored >> 16) & 0xFF
    if red == green == blue == 0:
        red = green = blue = 255  # (SIM files copy the previous channel's instead: declined)
    rgba = (red << 24) | (green << 16) | (blue << 8) | 0xFF
    return rgba - (1 << 32) if rgba >= 1 << 31 else rgba


def lsm_document(info: LsmInfo) -> str:
    """The OME-XML Bio-Formats' ``ZeissLSMReader`` gives for a file :func:`inspect_lsm` accepted: the
    experimenter, the instrument and channel settings of the scan information (:mod:`.lsm_scan`), and
    the image."""
    scan = info.scan
    elements = []
    if scan.user is not None:
        elements.append(ox.El("Experimenter", {"ID": "Experimenter:0", "UserName": scan.user}))
    elements.append(lsm_scan.instrument(scan, info.magnification, info.lens_na))
    image = ox.El("Image", {"ID": "Image:0", "Name": info.name})
    if info.date:
        image.add(ox.El("AcquisitionDate", text=info.date))
    if scan.description is not None:
        image.add(ox.El("Description", text=scan.description))
    image.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    if scan.objective_settings:
        image.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    pixels = image.add(ox.pixels(
        dimension_order=info.dimension_order, pixel_type=info.pixel_type, big_endian=False,
        significant_bits=info.significant_bits, size=(info.size_x, info.size_y, 1, 1, 1),
    ))
    for axis, size in zip("XYZ", info.physical, strict=True):
        _set_physical(pixels, axis, size)
    if scan.time_increment is not None:
        pixels.attrs.update(TimeIncrement=ox.jdouble(scan.time_increment), TimeIncrementUnit="s")
    channel = pixels.add(ox.El("Channel", {"ID": "Channel:0:0", "SamplesPerPixel": "1"}))
    if info.color is not None:
        channel.attrs["Color"] = str(info.color)
    if info.channel_name is not None:
        channel.attrs["Name"] = info.channel_name
    if scan.pinhole is not None:
        channel.attrs.update(PinholeSize=ox.jdouble(scan.pinhole), PinholeSizeUnit=ox.MICRON)
    if scan.detector_settings is not None:
        channel.add(ox.El("DetectorSettings", {"ID": f"Detector:0:{scan.detector_settings}"}))
    channel.add(ox.El("LightPath"))
    pixels.add(ox.El("MetadataOnly"))
    plane = {"TheC": "0", "TheT": "0", "TheZ": "0"}
    if info.position is not None:
        ox.positions(plane, info.position)
    pixels.add(ox.El("Plane", plane))
    return ox.document(*elements, image)


class LsmEngine(TiffKindEngine[LsmInfo]):
    """Single-plane Zeiss LSM files through tifffile; every other file is declined (Bio-Formats reads it)."""

    name = LSM
    score = CLAIM
    #: its documents are Bio-Formats' whole (the corpus file, and edited copies in
    #: ``tests/test_differential_lsm.py``), so it answers in ``auto``
    what = "a Zeiss LSM file"

    def wants(self, path: str, head: bytes) -> bool:
        return head.startswith(b"II*\x00") and path.lower().endswith(".lsm")

    def inspect(self, ctx: FileContext, listings: common.Listings | None) -> LsmInfo | None:
        return inspect_lsm(ctx.path, listings)

    def render(self, info: LsmInfo) -> str:
        return lsm_document(info)


# -- MetaMorph ---------------------------------------------------------------------------------------------
UIC1, UIC2, UIC3, UIC4 = 33628, 33629, 33630, 33631
#: Tags a claimed MetaMorph TIFF may carry: baseline tags written by MetaMorph, and UIC1.
STK_ALLOWED = frozenset({254, 256, 257, 258, 259, 262, 266, 270, 273, 277, 278, 279, 282, 283, 284, 296, 305,
                         306, 317, UIC1})
#: ``MetadataTools.getBinning`` values the engine writes as they are (anything else is declined).
BINNINGS = frozenset({"1x1", "2x2", "4x4", "8x8"})
#: a binning of positive factors: one outside :data:`BINNINGS` is written ``Other``
_BINNING = re.compile(r"[1-9][0-9]{0,5}x[1-9][0-9]{0,5}")
#: Siblings that make Bio-Formats read a MetaMorph file as part of a set (or a plate).
STK_COMPANIONS = (".nd", ".scan", ".htd")
_EXPOSURE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")
_STK_SUFFIXES = (".tif", ".tiff", ".stk")


@dataclass
class StkInfo:
    """What the MetaMorph engine writes for one file."""

    big_endian: bool
    size_x: int
    size_y: int
    pixel_type: str
    bits: int
    date: str | None
    physical_x: tuple[float, str] | None
    physical_y: tuple[float, str] | None
    channel_name: str | None
    binning: str | None
    exposure: float | None
    stage: tuple[float, float] | None


def description_exposure(description: str) -> float | None:
    """The exposure (s) Bio-Formats' ``MetamorphReader`` reads from the TIFF description, None without one.

    Raises
    ------
    _Decline
        For a ``Bit Depth`` line (it changes the significant bits) or an exposure that is not a plain
        number.
    """
    exposure = None
    for index, raw in enumerate(description.split("\n")):
        line = ox.jtrim(raw)
        if line.startswith("<") and line.endswith(">"):
            break
        colon = line.find(":")
        if colon < 0:
            continue
        if index == 0:  # the first line may start with a sentence: the key follows its last dot
            dot = line.rfind(".", 0, colon + 1)
            line = line[dot + 1:]
            colon -= dot + 1
        key, value = line[:colon], ox.jtrim(line[colon + 1:])
        if key == "Bit Depth":
            raise _Decline("a Bit Depth line")
        if key == "Exposure":
            if "=" in value:
                value = ox.jtrim(value[value.index("=") + 1:])
            if " " in value:
                value = value[:value.index(" ")]
            value = value.replace(",", ".")
            if not _EXPOSURE.fullmatch(value):
                raise _Decline("an exposure that is not a plain number")
            exposure = float(value) / 1000
    return exposure


@_declined_as_none
def inspect_stk(path: str, listings: common.Listings | None = None) -> StkInfo | None:
    """Classify ``path``; a :class:`StkInfo` when this engine gives Bio-Formats' answer, else None.

    Parameters
    ----------
    path : str
        The file.
    listings : common.Listings, optional
        Cached folder listings; with them a file with a companion in its folder is declined.
    """
    base = os.path.basename(path)
    if not base.lower().endswith(_STK_SUFFIXES) or base.lower().endswith((".ome.tif", ".ome.tiff")):
        return None
    with common.parsed(path) as tf:
        if tf is None:
            return None
        if tf.is_bigtiff or len(tf.pages) != 1:
            return None
        first = tf.pages.first
        codes = {tag.code for tag in first.tags}
        if UIC1 not in codes or not codes <= STK_ALLOWED:
            return None  # UIC2/3/4 (a plane table), or tags whose effect is not modelled
        software = common.text(first, 305)
        if software is None or not ox.jtrim(software).lower().startswith("metamorph"):
            return None
        description = common.text(first, 270)
        if description is not None:
            stripped = ox.jtrim(description)
            if stripped.startswith("<") or "ImageJ=" in description or "\x00" in description:
                return None
            exposure = description_exposure(description)
        else:
            exposure = None
        samples, bits, photometric = first.samplesperpixel, first.bitspersample, int(first.photometric)
        if samples != 1 or photometric not in (0, 1) or int(first.sampleformat) != 1 or bits not in (8, 16):
            return None
        date = common.date(first)
        if date is False:
            return None
        if tf.byteorder != "<":
            return None
        tag = first.tags[UIC1]
        if tag.dtype != 4 or not 0 < tag.count <= 4096:
            return None
        with open(path, "rb") as fh, _mapped(fh) as data:
            info = _stk_info(parse_uic1(_Reader(data), tag.valueoffset, tag.count))
        info.size_x, info.size_y = first.imagewidth, first.imagelength
        info.pixel_type, info.bits = ("uint8" if bits == 8 else "uint16"), bits
        info.date = date if isinstance(date, str) else None
        info.exposure = exposure
    if listings is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if listings.first_ending(folder, STK_COMPANIONS) is not None or common.companion(path, listings) is not None:
            return None
    return info


def parse_uic1(r: _Reader, offset: int, count: int) -> dict[str, Any]:
    """The UIC1 entries ``MetamorphReader.parseUIC1Tags`` maps, read as it reads them (signed rationals).

    Returns a dict with ``x``/``y`` (calibration), ``units``, ``stage`` (one x, y pair), ``binning`` and
    ``illum`` (the ``_IllumSetting_`` plane properties, in order). Raises :class:`_Decline` for a table
    Bio-Formats would read only partly (a value outside the file).
    """
    end = len(r.data)
    out: dict[str, Any] = {"illum": []}
    pos = offset
    for _ in range(count):
        if pos >= end:
            break
        ident, value = r.unpack("iI", pos)
        pos += 8
        if ident in (4, 5):
            if value >= end - 8:
                raise _Decline("a calibration outside the file")
            num, den = r.unpack("ii", value)
            out["x" if ident == 4 else "y"] = num / den if den else math.copysign(math.inf, num) if num else math.nan
        elif ident == 6 and value < end:
            length = r.int32(value)
            out["units"] = r.text(value + 4, length).split("\x00")[0] if 0 <= length < 4096 else None
        elif ident == 28 and value < end:
            if value >= end - 16:
                raise _Decline("a stage position outside the file")
            nx, dx, ny, dy = r.unpack("iiii", value)
            if dx == 0 or dy == 0:
                raise _Decline("a stage position with a zero denominator")
            out["stage"] = (nx / dx, ny / dy)
        elif ident == 46 and value < end:
            out["binning"] = "{}x{}".format(*r.unpack("ii", value))
        elif ident == 49 and value < end:
            key_length = r.data[value + 4] if value + 4 < end else -1
            if key_length < 0:
                raise _Decline("a plane property outside the file")
            key = r.text(value + 5, key_length)
            at = value + 5 + key_length + 4
            kind = r.data[at] if at < end else -1
            if kind == 2 and key == "_IllumSetting_":
                length = r.data[at + 1] if at + 1 < end else -1
                if length <= 0:
                    raise _Decline("an empty illumination setting")
                out["illum"].append(r.text(at + 2, length))
            elif kind not in (1, 2):
                raise _Decline("a plane property of an unknown kind")
        elif ident in (7, 16, 17, 25, 26, 29, 40, 41, 42) or ident > 66 or ident < 0:
            continue  # names, dates, LUTs, chip offsets, absolute Z: nothing this kind's OME-XML shows
    return out


def _stk_info(uic1: dict[str, Any]) -> StkInfo:
    """:class:`StkInfo` from :func:`parse_uic1`'s fields (raises :class:`_Decline` for anything unproven)."""
    if not isinstance(uic1.get("units"), str):
        raise _Decline("no calibration unit")  # any unit is read as µm (mm, nm, in, pixel: differential test)
    x, y = uic1.get("x"), uic1.get("y")
    if not isinstance(x, float) or not isinstance(y, float) or not (EPSILON < x < 1e6 and EPSILON < y < 1e6):
        raise _Decline("no usable spatial calibration")
    stage = uic1.get("stage")
    if stage is not None and not all(math.isfinite(v) for v in stage):
        raise _Decline("a stage position that is not finite")
    channel_name = None
    if uic1["illum"]:
        name = ox.jtrim(uic1["illum"][0])
        if not name.isprintable():
            raise _Decline("an illumination setting that is not plain text")
        channel_name = name
    binning = uic1.get("binning")
    if binning is not None and not _BINNING.fullmatch(binning):
        raise _Decline("camera binning not modelled")
    if binning is not None and binning not in BINNINGS:
        binning = "Other"  # MetadataTools.getBinning's fallback (1x2, 3x3: differential test)
    return StkInfo(big_endian=False, size_x=0, size_y=0, pixel_type="uint16", bits=16, date=None,
                   physical_x=physical_size(x), physical_y=physical_size(y), channel_name=channel_name,
                   binning=binning, exposure=None, stage=stage)


def stk_document(info: StkInfo) -> str:
    """The OME-XML Bio-Formats' ``MetamorphReader`` gives for a file :func:`inspect_stk` accepted."""
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    instrument.add(ox.El("Detector", {"ID": "Detector:0:0", "Type": "Other"}))
    image = ox.El("Image", {"ID": "Image:0", "Name": ""})
    if info.date:
        image.add(ox.El("AcquisitionDate", text=info.date))
    image.add(ox.El("Description"))
    image.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    image.add(ox.El("ImagingEnvironment", {"Temperature": "0.0", "TemperatureUnit": "°C"}))
    pixels = image.add(ox.pixels(
        pixel_type=info.pixel_type, big_endian=info.big_endian, significant_bits=info.bits,
        size=(info.size_x, info.size_y, 1, 1, 1),
    ))
    _set_physical(pixels, "X", info.physical_x)
    _set_physical(pixels, "Y", info.physical_y)
    channel = ox.El("Channel", {"ID": "Channel:0:0", "SamplesPerPixel": "1"})
    if info.channel_name is not None:
        channel.attrs["Name"] = info.channel_name
    settings = channel.add(ox.El("DetectorSettings", {"ID": "Detector:0:0"}))
    if info.binning is not None:
        settings.attrs["Binning"] = info.binning
    channel.add(ox.El("LightPath"))
    pixels.add(channel)
    pixels.add(ox.El("MetadataOnly"))
    plane = {"DeltaT": "0.0", "DeltaTUnit": "s", "TheC": "0", "TheT": "0", "TheZ": "0"}
    if info.exposure is not None:
        plane.update(ExposureTime=ox.jdouble(info.exposure), ExposureTimeUnit="s")
    if info.stage is not None:
        plane.update(PositionX=ox.jdouble(info.stage[0]), PositionXUnit="reference frame",
                     PositionY=ox.jdouble(info.stage[1]), PositionYUnit="reference frame")
    pixels.add(ox.El("Plane", plane))
    return ox.document(instrument, image)


class StkEngine(TiffKindEngine[StkInfo]):
    """Single-plane MetaMorph TIFFs (UIC1 only) through tifffile; every other file is left to Bio-Formats."""

    name = STK
    score = CLAIM
    what = "a MetaMorph TIFF"

    def wants(self, path: str, head: bytes) -> bool:
        return self.wants_in(FileContext(path, head))

    def wants_in(self, ctx: FileContext) -> bool:
        # every TIFF passes here in auto: the UIC1 tag is checked without tifffile
        if not ctx.head.startswith((b"II*\x00", b"MM\x00*")):
            return False
        try:
            return UIC1 in first_ifd_codes(ctx.path, ctx.head, ctx.held)
        except Exception:  # noqa: BLE001 - an unreadable IFD is simply not claimed
            return False

    def inspect(self, ctx: FileContext, listings: common.Listings | None) -> StkInfo | None:
        return inspect_stk(ctx.path, listings)

    def render(self, info: StkInfo) -> str:
        return stk_document(info)


@functools.lru_cache(maxsize=256)
def _codes_of(order: str, count: int) -> struct.Struct:
    """The tag codes of ``count`` IFD entries in one unpack (each entry: a code and ten bytes more)."""
    return struct.Struct(order + "H10x" * count)


def first_ifd_codes(path: str, head: bytes, held: Snapshot | None = None) -> frozenset[int]:
    """The tag codes of a classic TIFF's first IFD, read with two small reads (empty when unreadable), or
    from ``held`` (the bytes the extraction holds of ``path``) when the IFD lies in them."""
    order = "<" if head.startswith(b"II") else ">"
    if len(head) < 8:
        return frozenset()
    (offset,) = struct.unpack(order + "I", head[4:8])
    snap = held if held is not None and held.path == path else None
    if snap is not None and offset + 2 <= len(snap.data):
        (count,) = struct.unpack_from(order + "H", snap.data, offset)
        if offset + 2 + 12 * count <= len(snap.data):
            return frozenset(_codes_of(order, count).unpack_from(snap.data, offset + 2))
    with open(path, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(2)
        if len(raw) < 2:
            return frozenset()
        (count,) = struct.unpack(order + "H", raw)
        entries = fh.read(12 * count)
    if len(entries) < 12 * count:
        return frozenset()
    return frozenset(_codes_of(order, count).unpack_from(entries))


