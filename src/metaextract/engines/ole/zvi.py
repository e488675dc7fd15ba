"""Zeiss AxioVision ``.zvi`` from its own OLE2 streams, as Bio-Formats 7.3.1's ZeissZVIReader reports it.

A ZVI is an OLE2 compound document (read by :mod:`._ole`): ``Image/Tags/Contents`` holds the document's
tags, ``Image/Item(n)/Tags/Contents`` plane n's, ``Image/Item(n)/Contents`` plane n's header and pixels,
``Image/Layers/Item(n)/Shapes/Contents`` the ROIs. A tag stream is a count at byte 8 and then, per tag, a
VARIANT value (type short, then the value), two bytes, the tag ID (int) and six bytes. Only tag streams
and the first bytes of each plane stream (its header) are read, never the pixels.

The rules of ZeissZVIReader/BaseZeissReader reproduced here (checked against the corpus reference and
against live Bio-Formats on edited copies and on ZVIs written by the tests):

* streams are taken in Bio-Formats' order (sorted by their ``Item(n)`` number, unnumbered first); the
  image count is the number of ``…Contents`` streams above 1024 bytes under ``Image`` or an item whose
  number is not below the count so far (at least 1);
* a plane header (``Image/Item(n)/Contents`` above 1024 bytes): eleven values, 2 bytes, a block length, 8
  bytes, the Z/C/T indices, 4 bytes, the tile index, the block's rest, five values, 4 bytes, SizeX/SizeY
  (the last header's), 4 bytes, bytes per pixel (the first non-zero), 4 bytes, a compression flag and mark;
  SizeZ/C/T are the numbers of distinct indices; bytes per pixel 1/3 give uint8, 2/6 uint16, anything else
  (0 when there is no header, as in the corpus file) Bio-Formats' default int8; a multiple of 3 (0 too)
  makes the image RGB: SizeC times 3, channels of 3 samples; always interleaved, little endian;
* the dimension order is ``XY`` (``C`` when RGB) plus Z, C, T in the order their index first grows from one
  item to the next, the rest appended in CZT order;
* tags: the document's first (into Bio-Formats' state only), then each item's (into the metadata), with
  the rules of parseMainTags: the channel index (2820) keys the channel name (1284), excitation/emission
  wavelengths (16777488/9), exposure in ms (2564, the first per channel) and detector gain/offset; false
  colours (1282) fill a table of the effective channel count (shifted as Bio-Formats shifts it); the first
  scale factors (769/772/775) are the physical sizes; an item's stage position (2073/2074) goes to the
  plane of its item number; camera acquisition times (1025, days since 1899-12-30) are numbered with
  Bio-Formats' duplicate of the first, the first is the acquisition date, each plane's DeltaT (ms) is its
  time minus the first; the objective from 2076/2077/2151 and a ``… 40x/0.95 …`` name (2049); a comment
  (1540), even empty, is the description; SizeX/SizeY tags (515/516) only ever lower the size;
* the objective's correction and immersion are always ``Other`` and its ID ``Objective:0:0``; one
  ``Other`` detector per channel; channel i takes the i-th smallest named channel index.

Declined (left to Bio-Formats): tiles or several series, planes whose headers do not cover the image
count, JPEG planes or other bytes per pixel, plane data outside ``Image/Item(n)/Contents``, two tag streams
for one item or several document tag streams, ROI shapes, experimenter names, acquisition-date tags
(1793), non-ASCII text in a value that is used, unknown VARIANT types, scale factors or wavelengths in
(0, 1e-6], and every spelling Bio-Formats would fail on.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import struct
from dataclasses import dataclass, field

from metaextract.engines.base import CLAIM, Declined
from metaextract.engines.ole.common import CONTROL, OleEngine, not_tiny, positive, read_storage
from metaextract.engines.ole.storage import JavaNumberError, OleFile, parse_double, parse_int, strip_string
from metaextract.ome import writer as ox

NAME = "zvi"
MAX_TAGS = 4 * 1024 * 1024  # a tag stream larger than this is not a header
SKIPPED_TAG = 1047  # ZeissZVIReader.parseTags drops it
#: tag ID -> BaseZeissReader's key, for the keys that change the document (others only go to metadata)
KEYS = {
    515: "ImageWidth", 516: "ImageHeight", 769: "Scale Factor for X", 772: "Scale Factor for Y",
    775: "Scale Factor for Z", 1025: "Camera Acquisition Time", 1282: "MultiChannel Color",
    1284: "Channel Name", 1540: "Comments", 1793: "Acquisition Date", 1801: "User Name",
    2049: "Objective Name", 2073: "Stage Position X", 2074: "Stage Position Y", 2076: "Objective Magnification",
    2077: "Objective N.A.", 2151: "Objective Working Distance", 2261: "Objective ID",
    2105: "Objective Immersion Type", 2564: "Exposure Time [ms]", 2820: "Image Channel Index",
    2822: "ImageTile Index", 65633: "Orca Analog Gain", 65634: "Orca Analog Offset",
    16777488: "Excitation Wavelength", 16777489: "Emission Wavelength",
}


class _Unreadable(str):
    """A text value with non-ASCII bytes: Java's UTF-8 reading of it is not reproduced."""

    __slots__ = ()


@dataclass
class Tag:
    key: int
    value: str


def next_value(data: bytes, pos: int) -> tuple[str, int]:
    """ZeissZVIReader.getNextTag: one VARIANT at ``pos`` spelled as Java's ``String.valueOf``; the next position."""
    kind = struct.unpack_from("<h", data, pos)[0]
    pos += 2
    value: str
    if kind in (0, 1):
        value = ""
    elif kind == 2:
        value, pos = str(struct.unpack_from("<h", data, pos)[0]), pos + 2
    elif kind in (3, 22):
        value, pos = str(struct.unpack_from("<i", data, pos)[0]), pos + 4
    elif kind in (19, 23):
        value, pos = str(struct.unpack_from("<I", data, pos)[0]), pos + 4
    elif kind == 4:
        value, pos = ox.jfloat(struct.unpack_from("<f", data, pos)[0]), pos + 4
    elif kind in (5, 7):
        value, pos = ox.jdouble(struct.unpack_from("<d", data, pos)[0]), pos + 8
    elif kind == 20:
        value, pos = str(struct.unpack_from("<q", data, pos)[0]), pos + 8
    elif kind == 21:
        if pos + 8 > len(data):
            raise Declined("a stream cut inside a value (Bio-Formats fails on it)")
        value, pos = str(int.from_bytes(data[pos:pos + 8], "big")), pos + 8
    elif kind in (8, 69, 66):
        if kind == 66:
            length, pos = struct.unpack_from("<h", data, pos)[0], pos + 2
        else:
            length, pos = struct.unpack_from("<i", data, pos)[0], pos + 4
        if length < 0 or pos + length > len(data):
            raise Declined("a string value longer than its stream (Bio-Formats fails on it)")
        raw = data[pos:pos + length]
        pos += length
        text = strip_string(raw.decode("latin-1"))
        value = _Unreadable(text) if any(b >= 0x80 for b in raw) else text
    elif kind in (9, 13):
        value, pos = "", pos + 16
    elif kind == 11:
        value, pos = ("true" if struct.unpack_from("<h", data, pos)[0] != 0 else "false"), pos + 2
    elif kind in (63, 65):
        length = struct.unpack_from("<i", data, pos)[0]
        if length < 0:
            raise Declined("a blob value with a negative length")
        value, pos = "", pos + 4 + length
    else:
        raise Declined(f"VARIANT type {kind} (Bio-Formats scans such values its own way)")
    return value, pos


def read_tags(data: bytes) -> list[Tag]:
    """ZeissZVIReader.parseTags on one tag stream: a count at byte 8, then value, 2 bytes, ID, 6 bytes each."""
    if len(data) < 12:
        raise Declined("a tag stream shorter than its header (Bio-Formats fails on it)")
    count = struct.unpack_from("<i", data, 8)[0]
    pos = 12
    tags: list[Tag] = []
    for _ in range(max(0, count)):
        if pos + 2 >= len(data):
            break
        value, pos = next_value(data, pos)
        key = struct.unpack_from("<i", data, pos + 2)[0]
        pos += 12
        if key != SKIPPED_TAG:
            tags.append(Tag(key, value))
    return tags


@dataclass
class Header:
    """What ZeissZVIReader reads from the start of an ``Image/Item(n)/Contents`` stream."""

    z: int
    c: int
    t: int
    tile: int
    size_x: int
    size_y: int
    bpp: int
    valid: int
    check: str


def read_header(data: bytes) -> Header:
    """Eleven values, 2 bytes, a block length, 8 bytes, Z/C/T, 4 bytes, the tile, the block's rest, five
    values, 4 bytes, X and Y sizes, 4 bytes, bytes per pixel, 4 bytes, the compression flag and mark."""
    try:
        pos = 0
        for _ in range(11):
            pos = next_value(data, pos)[1]
        length = struct.unpack_from("<i", data, pos + 2)[0] - 20
        z, c, t = struct.unpack_from("<3i", data, pos + 14)
        tile = struct.unpack_from("<i", data, pos + 30)[0]
        if length - 8 < 0:
            raise Declined("a plane header with a negative block length")
        pos += 34 + length - 8
        for _ in range(5):
            pos = next_value(data, pos)[1]
        size_x, size_y = struct.unpack_from("<2i", data, pos + 4)
        bpp = struct.unpack_from("<i", data, pos + 16)[0]
        valid = struct.unpack_from("<i", data, pos + 24)[0]
        check = data[pos + 28:pos + 32]
        if len(check) < 4:
            raise Declined("a plane header cut short (Bio-Formats fails on it)")
    except struct.error:
        raise Declined("a plane header cut short (Bio-Formats fails on it)") from None
    return Header(z, c, t, tile, size_x, size_y, bpp, valid, ox.jtrim(check.decode("latin-1")))


def image_number(name: str, default: int) -> int:
    """ZeissZVIReader.getImageNumber: the number in the first ``(...)`` of a name containing ``ITEM``."""
    if "ITEM" not in name.upper():
        return default
    start, end = name.find("("), name.find(")")
    if start < 0 or end < 0 or end < start:
        return default
    try:
        return parse_int(name[start + 1:end])
    except JavaNumberError:
        raise Declined(f"item name {name!r} (Bio-Formats fails on its number)") from None


def timestamp_millis(value: str) -> int:
    """BaseZeissReader.parseTimestamp for a day count: UNIX milliseconds (string dates are declined)."""
    try:
        days_float = parse_double(value)
    except JavaNumberError:
        raise Declined(f"a date tag that is not a day count ({value!r})") from None
    if not 61 <= days_float < 2958466:
        raise Declined(f"a day count out of range ({value!r})")
    days = math.floor(days_float)
    millis = int((days_float - days) * 86_400_000 + 0.5)
    days -= 1
    if days > 60:
        days -= 1
    epoch = dt.datetime(1900, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=days, milliseconds=millis)
    return int((epoch - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(milliseconds=1))


def iso_ms(millis: int) -> str:
    """An OME Timestamp as Bio-Formats prints it: milliseconds only when not zero (checked live)."""
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis % 1000:03d}" if millis % 1000 else "")


@dataclass
class State:
    """BaseZeissReader's fields that parseMainTags fills."""

    size_x: int = 0
    size_y: int = 0
    c_index: int = -1
    physical: dict[str, float] = field(default_factory=dict)
    channel_name: dict[int, str] = field(default_factory=dict)
    em: dict[int, float] = field(default_factory=dict)
    ex: dict[int, float] = field(default_factory=dict)
    exposure: dict[int, str] = field(default_factory=dict)
    gain: dict[int, float] = field(default_factory=dict)
    offset: dict[int, float] = field(default_factory=dict)
    colors: list[int] | None = None
    stage_x: dict[int, float] = field(default_factory=dict)
    stage_y: dict[int, float] = field(default_factory=dict)
    timestamps: dict[int, int] = field(default_factory=dict)
    timepoint: int = 0
    description: str | None = None
    objective: dict[str, float] = field(default_factory=dict)


def _used(value: str) -> str:
    if isinstance(value, _Unreadable):
        raise Declined("a non-ASCII text value that Bio-Formats decodes its own way")
    if CONTROL.search(value):
        raise Declined("a text value with control characters (not XML text)")
    return value


def parse_main_tags(state: State, image: int, tags: list[Tag], effective_c: int, real: bool) -> None:
    """BaseZeissReader.parseMainTags; ``real`` is False for the DummyMetadata pass (store calls dropped)."""
    for tag in tags:
        key = KEYS.get(tag.key)
        if key is None:
            continue
        value = tag.value
        try:
            if key == "Image Channel Index":
                state.c_index = parse_int(value)
                continue
            if key == "ImageWidth":
                v = parse_int(value)
                if state.size_x == 0 or v < state.size_x:
                    state.size_x = v
            elif key == "ImageHeight":
                v = parse_int(value)
                if state.size_y == 0 or v < state.size_y:
                    state.size_y = v
            if key == "ImageTile Index":
                continue  # counted into tiles that only matter with plane data (declined)
            c = state.c_index
            if key == "MultiChannel Color":
                if 0 <= c < effective_c:
                    if state.colors is None or effective_c > len(state.colors):
                        state.colors = [0] * effective_c
                    if state.colors[c] == 0:
                        state.colors[c] = parse_int(value)
                elif state.colors is not None and c == effective_c and state.colors[0] == 0:
                    state.colors[:-1] = state.colors[1:]  # shifted down, the last slot gets the colour
                    state.colors[c - 1] = parse_int(value)
                elif state.colors is not None and state.colors[0] > 0 and len(state.colors) > 1:
                    slot = 1
                    while slot < len(state.colors) - 1 and state.colors[slot] != 0:
                        slot += 1
                    if state.colors[slot] == 0:
                        state.colors[slot] = parse_int(value)
            elif key.startswith("Scale Factor for "):
                axis = key[-1]
                if axis not in state.physical:
                    state.physical[axis] = parse_double(value)
            elif key == "Emission Wavelength" and c != -1:
                wave = positive(not_tiny(parse_double(value), key))
                if wave is not None:
                    state.em[c] = wave
            elif key == "Excitation Wavelength" and c != -1:
                wave = positive(not_tiny(parse_double(value), key))
                if wave is not None:
                    state.ex[c] = wave
            elif key == "Channel Name" and c != -1:
                state.channel_name[c] = _used(value)
            elif key == "Exposure Time [ms]":
                if c not in state.exposure:
                    state.exposure[c] = ox.jdouble(parse_double(_used(value)) / 1000)
            elif key == "User Name":
                if len(_used(value).split(" ")) >= 2 and real:
                    raise Declined("an experimenter name (not checked)")
            elif key == "Objective Magnification" and real:
                state.objective["magnification"] = parse_double(value)
            elif key == "Objective N.A." and real:
                state.objective["na"] = parse_double(value)
            elif key == "Objective Name":
                _objective_name(state, _used(value), real)
            elif key == "Objective Working Distance" and real:
                state.objective["wd"] = parse_double(value)
            elif key == "Objective Immersion Type" and real:
                parse_int(value)  # overwritten by "Other" later; a bad number is only skipped
            elif key == "Stage Position X":
                state.stage_x[image] = parse_double(value)
            elif key == "Stage Position Y":
                state.stage_y[image] = parse_double(value)
            elif key == "Orca Analog Gain":
                state.gain[c] = parse_double(value)
            elif key == "Orca Analog Offset":
                state.offset[c] = parse_double(value)
            elif key == "Comments":
                state.description = _used(value)
            elif key == "Acquisition Date":
                raise Declined("an acquisition date tag (1793; not checked)")
            elif key == "Camera Acquisition Time" and image >= 0:
                stamp = timestamp_millis(value)
                state.timestamps[state.timepoint - 1 if state.timepoint else 0] = stamp
                state.timepoint += 1
        except JavaNumberError:
            continue  # Bio-Formats catches NumberFormatException per tag


def _objective_name(state: State, value: str, real: bool) -> None:
    """``Plan-Apochromat 40x/0.95 Korr``: the first token with a slash past its own index gives mag and NA."""
    tokens = value.split(" ")
    while tokens and tokens[-1] == "":
        tokens.pop()
    for q, token in enumerate(tokens):
        slash = token.find("/")
        if slash != -1 and slash - q > 0:
            magnification = parse_double(token[:slash - q])
            if real:
                state.objective["magnification"] = magnification
            na = parse_double(token[slash + 1:])
            if real:
                state.objective["na"] = na
            if q == 0:
                raise Declined("an objective name Bio-Formats fails on (no token before the magnification)")
            return


@dataclass
class ZviImage:
    name: str
    state: State
    size: tuple[int, int, int, int, int]  # X, Y, Z, C (samples included), T
    order: str
    rgb: bool
    pixel_type: str
    bits: int
    image_count: int


def _parse_rois(data: bytes) -> None:
    """ZeissZVIReader.parseROIs up to the shape count: any shape is declined."""
    if len(data) < 8:
        return  # EOF: Bio-Formats logs it and goes on
    if struct.unpack_from("<h", data, 6)[0] == 8:
        raise Declined("a named ROI layer (not checked)")
    if len(data) < 18:
        return
    if struct.unpack_from("<h", data, 16)[0] != 0:
        raise Declined("ROI shapes (not reproduced)")


def read_zvi(path: str) -> ZviImage:
    """Read and classify ``path``; raises :class:`Declined` for kinds not checked, errors on damage."""
    return read_storage(path, ".zvi", "ZVI", lambda ole: _read(ole, os.path.basename(path)))


def _read(ole: OleFile, name: str) -> ZviImage:
    streams = ole.streams()
    if not any(p[:1] == ("Image",) for p in streams):
        raise Declined("no Image storage (not checked)")
    full = {p: "/".join(("Root Entry", *p)) for p in streams}
    for p in streams:
        image_number(full[p], -1)  # the sort's comparator: Bio-Formats fails on a bad number
    ordered = sorted(streams, key=lambda p: image_number(full[p], -1))  # stable, as Java's sort
    counted = 0  # ZeissZVIReader.countImages
    for p in ordered:
        upper = "/".join(p).upper()
        if upper.endswith("CONTENTS") and (upper.startswith("IMAGE") or "ITEM" in upper) \
                and _size(ole, p) > 1024 and image_number(full[p], 0) >= counted:
            counted += 1
    counted = max(counted, 1)

    # pass 1: document tags now (into Bio-Formats' state only), item tags later, plane headers, ROIs
    state = State()
    document_tags: list[tuple[str, ...]] = []
    item_tags: list[tuple[int, tuple[str, ...]]] = []
    headers: dict[int, Header] = {}
    bpp, is_jpeg = 0, False
    for p in ordered:
        if len(p) < 2 or p[-1].upper() != "CONTENTS":
            continue
        folder = p[-2]
        if "Scaling" not in full[p] and folder == "Tags":
            number = image_number(full[p], -1)
            if number == -1:
                document_tags.append(p)
                if len(document_tags) > 1:
                    raise Declined("several document tag streams (their order is not checked)")
                parse_main_tags(state, -1, read_tags(_stream(ole, p)), 0, real=False)
            else:
                item_tags.append((number, p))
        elif folder == "Shapes" and "Item" in full[p]:
            if image_number(full[p], -1) != -1:
                _parse_rois(_stream(ole, p))
        elif folder == "Image" or "ITEM" in folder.upper():
            number = image_number(folder, 0 if counted == 1 else -1)
            if number == -1 or _size(ole, p) <= 1024:
                continue
            if p != ("Image", folder, "Contents") or not folder.startswith("Item("):
                raise Declined(f"plane data in {'/'.join(p)} (not checked)")
            if number >= counted:
                raise Declined(f"plane {number} beyond the {counted} counted (Bio-Formats fails on it)")
            header = _header(ole, p)
            headers[number] = header
            state.size_x, state.size_y = header.size_x, header.size_y
            if bpp == 0:
                bpp = header.bpp
            is_zlib = header.valid in (0, 1) and header.check == "WZL"
            is_jpeg = header.valid in (0, 1) and not is_zlib
    if len({len(item_tags), len({n for n, _ in item_tags})}) > 1:
        raise Declined("two tag streams for one item (their order is not checked)")
    if not item_tags:
        raise Declined("no item tag stream (not checked)")

    # pass 2: sizes from the distinct plane indices
    size_z = len({h.z for h in headers.values()})
    size_c = len({h.c for h in headers.values()})
    size_t = len({h.t for h in headers.values()})
    image_count = size_z * size_c * size_t
    if image_count in (0, 1):
        image_count, size_z, size_c, size_t = 1, 1, 1, 1
    rgb = bpp % 3 == 0
    if len({h.tile for h in headers.values()}) > 1 or counted // image_count > 1:
        raise Declined("tiles (Bio-Formats makes a series of each)")
    if headers and (sorted(headers) != list(range(counted)) or counted != image_count):
        raise Declined(f"{counted} counted planes, {len(headers)} headers, {image_count} = Z x C x T (not checked)")
    if bpp not in (0, 1, 2, 3, 6) or is_jpeg:
        raise Declined(f"{bpp} bytes per pixel{' (JPEG)' if is_jpeg else ''} (not checked)")
    # pass 4: the dimension order from the plane indices, in item order
    order = "XYC" if rgb else "XY"
    coordinates = [headers.get(i) for i in range(counted)]
    for first, second in zip(coordinates, coordinates[1:], strict=False):
        a = (first.z, first.c, first.t) if first else (0, 0, 0)
        b = (second.z, second.c, second.t) if second else (0, 0, 0)
        for axis, delta in zip("ZCT", (b[0] - a[0], b[1] - a[1], b[2] - a[2]), strict=True):
            if delta > 0 and axis not in order:
                order += axis
    for axis in "CZT":
        if axis not in order:
            order += axis
    # pass 5: the item tags into the metadata
    effective_c = image_count // (size_z * size_t)
    state.stage_x.clear()
    state.stage_y.clear()
    for number, p in item_tags:
        parse_main_tags(state, number, read_tags(_stream(ole, p)), effective_c, real=True)
    for axis, scale in state.physical.items():
        not_tiny(scale, f"Scale Factor for {axis}")
    # pass 6: sizes and pixel type
    if state.size_x < 0 or state.size_y < 0:
        raise Declined("a negative image size")
    pixel_type, bits = {1: ("uint8", 8), 3: ("uint8", 8), 2: ("uint16", 16), 6: ("uint16", 16)}.get(bpp, ("int8", 8))
    size = (state.size_x or 1, state.size_y or 1, size_z, size_c * 3 if rgb else size_c, size_t)
    return ZviImage(name, state, size, order, rgb, pixel_type, bits, image_count)


def _header(ole: OleFile, p: tuple[str, ...]) -> Header:
    """The plane header from the stream's first 4 KiB, or its first MiB when the values run longer."""
    for limit in (4096, 1 << 20):
        data = ole.read(p, limit)
        try:
            return read_header(data)
        except Declined:
            if len(data) < limit:
                raise
    raise Declined("a plane header longer than 1 MiB")


def _size(ole: OleFile, p: tuple[str, ...]) -> int:
    entry = ole.entry(p)
    return entry.size if entry is not None else 0


def _stream(ole: OleFile, p: tuple[str, ...]) -> bytes:
    entry = ole.entry(p)
    if entry is None or entry.size > MAX_TAGS:
        raise Declined(f"stream {'/'.join(p)} is too large for a header")
    return ole.read(p)


def _color(value: int) -> str:
    red, green, blue = value & 0xFF, (value & 0xFF00) >> 8, (value & 0xFF0000) >> 16
    rgba = (red << 24) | (green << 16) | (blue << 8) | 255
    return str(rgba - (1 << 32) if rgba >= 1 << 31 else rgba)


def _zct(plane: int, order: str, sizes: dict[str, int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for axis in order[2:]:
        found[axis] = plane % sizes[axis]
        plane //= sizes[axis]
    return found


def document(image: ZviImage) -> str:
    st = image.state
    size_x, size_y, size_z, size_c, size_t = image.size
    samples = 3 if image.rgb else 1
    effective_c = size_c // samples
    keys = sorted(st.channel_name)
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    for i in range(effective_c):
        instrument.add(ox.El("Detector", {"ID": f"Detector:0:{i}", "Type": "Other"}))
    objective = {"ID": "Objective:0:0", "Correction": "Other", "Immersion": "Other"}
    if "na" in st.objective:
        objective["LensNA"] = ox.jdouble(st.objective["na"])
    if "magnification" in st.objective:
        objective["NominalMagnification"] = ox.jdouble(st.objective["magnification"])
    if "wd" in st.objective:
        objective.update(WorkingDistance=ox.jdouble(st.objective["wd"]), WorkingDistanceUnit="µm")
    instrument.add(ox.El("Objective", objective))
    img = ox.El("Image", {"ID": "Image:0", "Name": image.name})
    if st.timestamps.get(0) is not None:
        img.add(ox.El("AcquisitionDate", text=iso_ms(st.timestamps[0])))
    if st.description is not None:
        img.add(ox.El("Description", text=st.description))
    img.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    img.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    physical = (positive(st.physical.get("X")), positive(st.physical.get("Y")), positive(st.physical.get("Z")))
    pixels = img.add(ox.pixels(dimension_order=image.order, pixel_type=image.pixel_type, size=image.size,
                               big_endian=False, significant_bits=image.bits, interleaved=True, physical=physical))
    for i in range(effective_c):
        c = keys[i] if i < len(keys) else i
        attrs: dict[str, str] = {}
        if c in st.channel_name:
            attrs["Name"] = st.channel_name[c]
        if c in st.em:
            attrs.update(EmissionWavelength=ox.jdouble(st.em[c]), EmissionWavelengthUnit="nm")
        if c in st.ex:
            attrs.update(ExcitationWavelength=ox.jdouble(st.ex[c]), ExcitationWavelengthUnit="nm")
        if st.colors is not None and i < len(st.colors):
            attrs["Color"] = _color(st.colors[i])
        channel = ox.El("Channel", {"ID": f"Channel:0:{i}", "SamplesPerPixel": str(samples), **attrs})
        settings = channel.add(ox.El("DetectorSettings", {"ID": f"Detector:0:{i}"}))
        if c in st.gain:
            settings.attrs["Gain"] = ox.jdouble(st.gain[c])
        if c in st.offset:
            settings.attrs["Offset"] = ox.jdouble(st.offset[c])
        channel.add(ox.El("LightPath"))
        pixels.add(channel)
    pixels.add(ox.El("MetadataOnly"))
    sizes = {"Z": size_z, "C": effective_c, "T": size_t}
    first = st.timestamps.get(0)
    for p in range(image.image_count):
        zct = _zct(p, image.order, sizes)
        exposure = st.exposure.get(zct["C"] + (keys[0] if keys else 0))
        if exposure is None and len(st.exposure) == 1:
            exposure = next(iter(st.exposure.values()))
        try:
            seconds = parse_double(exposure) if exposure is not None else 0.0
        except JavaNumberError:
            seconds = 0.0
        plane = {"TheZ": str(zct["Z"]), "TheC": str(zct["C"]), "TheT": str(zct["T"]),
                 "ExposureTime": ox.jdouble(seconds), "ExposureTimeUnit": "s"}
        if p < len(st.timestamps) and first is not None and p in st.timestamps:
            plane.update(DeltaT=ox.jdouble(float(st.timestamps[p] - first)), DeltaTUnit="ms")
        ox.positions(plane, (st.stage_x.get(p), st.stage_y.get(p)), "XY")
        pixels.add(ox.El("Plane", plane))
    return ox.document(instrument, img)


class ZviEngine(OleEngine[ZviImage]):
    """Single-series ZVI files from their tag streams and plane headers; the rest to Bio-Formats."""

    name = NAME
    score = CLAIM
    suffixes = (".zvi",)
    kind, label = "a ZVI", "ZVI"
    unreadable = (*OleEngine.unreadable, OverflowError)

    def read(self, path: str) -> ZviImage:
        return read_zvi(path)

    def render(self, found: ZviImage) -> str:
        return document(found)
