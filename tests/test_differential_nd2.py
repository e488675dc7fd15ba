"""Differential testing of the nd2 engine against the live Bio-Formats engine on edited corpus ND2s (issue 20).

An ND2 locates every block through the chunk map at its end, so only edits that keep every byte in its
place are safe: the variants are copies of the corpus's ``nd2/cluster.nd2`` (in ``tmp_path``) with values
overwritten in place - the LV doubles (``dCalibration`` of either block, ``dZStep``, ``dExposureTime``,
``EmWavelength``, ``dObjectiveNA``, ``dObjectiveMag``), the LV objective name, the text info's numerical
aperture and refractive index, the ``CustomData`` frame times and stage positions, the XML's camera name,
channel colour and dye name, and channel names of the same length (everywhere, or in the text info only).
Half of them first keep only the first 1-3 time points and 1-10 Z planes of the corpus file's 3 x 10,
40 % have their frames deflated (lossless compression, zlib levels 0-9), 30 % keep only the first channel,
a quarter keep one time point or one Z plane under an experiment of the other loop alone, and of the
others 30 % have the Z stack around the time loop (frames and their custom data in that order): the
frames left out and their custom data are dropped, the picture planes cut to one, the experiment and
text info re-encoded, and the file is laid out again under a new chunk map.
Each is read by the live Bio-Formats engine and in ``auto`` (:func:`tests._differential.compare_with_bioformats`):
wherever the nd2 engine answers, its document must equal Bio-Formats' whole; what it declines is counted.

Multi-position copies (:func:`_xy_loop`: the time loop turned into an XY loop of 2-4 stage positions, as
``uLoopPars`` ``Points`` with ``dPosX``/``dPosY``/``dPosZ``/``pPosName``, and the per-frame stage X/Y custom
data at those positions; :func:`_time_xy_z` puts the XY level between a time loop and a Z stack), 72
deflated ones around 1-10 Z planes or alone, some under 2-3 time points, one or two channels, with the
value edits above, are compared the same way; raw ones the engine declines (Bio-Formats reads their two
channels as three), which is pinned here with what Bio-Formats makes of them.
"""

from __future__ import annotations

import copy
import random
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from metaextract import engines
from metaextract.engines.nd2 import Declined, inspect_nd2
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields

from ._differential import compare_with_bioformats

SEED = 20
VARIANTS = 112
AGREE_FLOOR = 70  #: native answers that must equal Bio-Formats' whole (the rest are declined kinds)
SOURCE = "nd2/cluster.nd2"
#: same-length replacements of the corpus file's two channel names
NAMES = {"5-FAM/pH 9.0": ("GFP channel1", "Alexa 488 nm", "5-FAM/pH 7.4"),
         "FM 4-64/2% CHAPS": ("mCherry channel2", "Cy5 far red 650n", "FM 4-64/5% CHAPS")}
#: how often each kind of edit is made; "text names" (names changed in the text info only) makes the engine decline
EDITS = {"calibration": 0.3, "calibration seq": 0.2, "z step": 0.3, "exposure": 0.3, "emission": 0.3,
         "na lv": 0.2, "na text": 0.3, "times": 0.3, "stage": 0.3, "names": 0.3, "text names": 0.08,
         "magnification": 0.3, "objective": 0.3, "refractive index": 0.3, "camera": 0.3, "colour": 0.3,
         "dye": 0.15}
OBJECTIVE = "Plan Apo λ 60x"  #: the LV sObjective (also its wsObjectiveName and a text info line)
#: same-length replacements in the XML: the camera's unique name, channel 0's colour and its dye name
CAMERA = b'value="Nikon_A1_New"'
COLOUR = b'CH2ChannelColor runtype="lx_int32" value="1042808"'
DYE = b'CH2ChannelDyeName runtype="CLxStringW" value="5-FAM/pH 9.0"'
LOOPS = 0.5  #: how often a variant keeps fewer time points and Z planes than the corpus file's 3 x 10
#: the kinds the edits above make the engine decline (the text names, the tiny calibrations, one channel's
#: spacing): each must be drawn, and no other kind may be declined
DECLINED = ("a physical size below 1e-6 µm (Bio-Formats writes it in nm)",
            "channel names missing or not the same in the XML and the text info",
            "frame chunks spaced so that Bio-Formats would guess other sizes")
DEFLATE = 0.4  #: how often its frames are deflated (lossless ND2 compression)
ONE_CHANNEL = 0.3  #: how often it keeps only its first channel
ONE_LOOP = 0.25  #: how often its experiment is a time loop alone or a Z stack alone
Z_AROUND_T = 0.3  #: how often (else) its experiment is a Z stack around a time loop
TIMES, PLANES = 3, 10
CHUNK_MAGIC = b"\xda\xce\xbe\x0a"
LV_SIZES = {1: 1, 2: 4, 3: 4, 4: 8, 5: 8, 6: 8, 7: 8}  #: LV value sizes by type (8: string, 9: bytes, 11: level)
MAP_SIGNATURE = b"ND2 CHUNK MAP SIGNATURE 0000001!"



def _lv_double(data: bytearray, name: str) -> list[int]:
    """Offsets of the values of every LV double called ``name`` (type 6, the name's length, UTF-16 name)."""
    key = bytes([6, len(name) + 1]) + (name + "\0").encode("utf-16-le")
    found, at = [], data.find(key)
    while at >= 0:
        found.append(at + len(key))
        at = data.find(key, at + 1)
    return found


def _block(data: bytearray, name: str) -> tuple[int, int]:
    """(start, end) of the data of the chunk called ``name`` (its header: magic, name and data lengths)."""
    at = data.find(name.encode("ascii") + b"!")
    start = at - 16
    assert data[start:start + 4] == b"\xda\xce\xbe\x0a", name
    name_length, data_length = struct.unpack_from("<IQ", data, start + 4)
    return start + 16 + name_length, start + 16 + name_length + data_length


def _set(data: bytearray, offset: int, value: float) -> None:
    struct.pack_into("<d", data, offset, value)


def _replace(data: bytearray, old: bytes, new: bytes, within: tuple[int, int] | None = None) -> None:
    assert len(old) == len(new)
    lo, hi = within or (0, len(data))
    at = data.find(old, lo, hi)
    while at >= 0:
        data[at:at + len(old)] = new
        at = data.find(old, at + 1, hi)


def _chunk_map(data: bytes) -> tuple[int, bytes, list[tuple[bytes, int, int]]]:
    """The chunk map's position, its chunk header and name, and its entries (name, position, data length)."""
    (at,) = struct.unpack_from("<q", data, len(data) - 8)
    name_length, data_length = struct.unpack_from("<IQ", data, at + 4)
    body = data[at + 16 + name_length:at + 16 + name_length + data_length]
    entries, i = [], 0
    while not body.startswith(MAP_SIGNATURE, i):
        end = body.index(b"!", i) + 1
        position, length = struct.unpack_from("<QQ", body, end)
        entries.append((body[i:end], position, length))
        i = end + 16
    return at, data[at:at + 16 + name_length], entries


def _lv_uints(data: bytearray, within: tuple[int, int], name: str) -> list[int]:
    """Offsets of the values of the LV uint32s called ``name`` (type 3) in ``within``."""
    key = bytes([3, len(name) + 1]) + (name + "\0").encode("utf-16-le")
    found, at = [], data.find(key, *within)
    while at >= 0:
        found.append(at + len(key))
        at = data.find(key, at + 1, within[1])
    return found


def _lv_items(data: bytes, pos: int, end: int, count: int | None = None) -> list[list[Any]]:
    """An LV ("light variant") block as [name, bytes up to the value or children, children (a level) or None]:
    type byte, name length, UTF-16 name, then the value, or a level's item count, length and items (and an
    index of its items that neither reader uses)."""
    items: list[list[Any]] = []
    while pos < end and (count is None or len(items) < count):
        start, kind = pos, data[pos]
        pos += 2 + 2 * data[pos + 1]
        name = data[start + 2:pos].decode("utf-16-le")[:-1]
        if kind == 11:
            n, length = struct.unpack_from("<IQ", data, pos)
            items.append([name, data[start:pos], _lv_items(data, pos + 12, start + length, n)])
            pos = start + length + 8 * n
            continue
        if kind == 8:
            while data[pos:pos + 2] != b"\0\0":
                pos += 2
            pos += 2
        else:
            pos += struct.unpack_from("<Q", data, pos)[0] + 8 if kind == 9 else LV_SIZES[kind]
        items.append([name, data[start:pos], None])
    return items


def _lv_bytes(items: list[list[Any]]) -> bytes:
    out = b""
    for _, head, children in items:
        if children is None:
            out += head
            continue
        parts = [_lv_bytes([child]) for child in children]
        index = [len(head) + 12 + sum(map(len, parts[:i])) for i in range(len(parts))]
        out += head + struct.pack("<IQ", len(parts), len(head) + 12 + sum(map(len, parts))) + b"".join(parts)
        out += struct.pack(f"<{len(index)}Q", *index)
    return out


def _lv_find(items: list[list[Any]], *path: str) -> list[Any]:
    item = next(item for item in items if item[0] == path[0])
    return item if len(path) == 1 else _lv_find(item[2], *path[1:])


def _first_plane_only(body: bytes) -> bytes:
    """``ImageMetadataSeqLV``'s picture planes cut to the first: its counts 1 and the second plane left out."""
    items = _lv_items(body, 0, len(body))
    planes = _lv_find(items, "SLxPictureMetadata", "sPicturePlanes")
    for count in ("uiCount", "uiCompCount"):
        item = _lv_find(planes[2], count)
        item[1] = item[1][:-4] + struct.pack("<I", 1)
    described = _lv_find(planes[2], "sPlaneNew")
    described[2] = described[2][:1]
    return _lv_bytes(items)


def _rechunk(chunk: bytearray, body: bytes) -> tuple[bytearray, int]:
    """``chunk`` (header, name, data) with ``body`` as its data, padded to whole 4 KiB pages."""
    name_length = struct.unpack_from("<I", chunk, 4)[0]
    out = chunk[:16 + name_length] + body
    struct.pack_into("<Q", out, 8, len(body))
    return out + bytes(-len(out) % 4096), len(body)


def _relay(source: bytes, times: int = TIMES, planes: int = PLANES, level: int | None = None,
           channels: int = 2) -> bytes:
    """The corpus file with only its first ``times`` time points and ``planes`` Z planes, its frames deflated
    at zlib ``level`` (None: as they are), and only its first channel if ``channels`` is 1: the frames and
    the per-frame custom data of the others left out, the rest laid out again (4 KiB aligned) under a new
    chunk map, and every count that names the loops (attributes, experiment, text info, NDControl XML), the
    channels (attributes, picture planes, text info) and the compression rewritten."""
    kept = [t * PLANES + z for t in range(times) for z in range(planes)]
    renumber = {old: new for new, old in enumerate(kept)}
    map_at, map_head, entries = _chunk_map(source)
    ordered = sorted(entries, key=lambda e: e[1])
    out = bytearray(source[:ordered[0][1]])
    placed: dict[bytes, tuple[int, int]] = {}
    for (name, position, length), following in zip(ordered, [e[1] for e in ordered[1:]] + [map_at], strict=True):
        chunk = bytearray(source[position:following])  # header, name, data and the padding to the next chunk
        name_length, data_length = struct.unpack_from("<IQ", chunk, 4)
        data = bytes(chunk[16 + name_length:16 + name_length + data_length])
        if name.startswith(b"ImageDataSeq|"):
            if int(name[13:-1]) not in renumber:
                continue
            name = b"ImageDataSeq|%d!" % renumber[int(name[13:-1])]
            chunk[16:16 + name_length] = name.ljust(name_length, b"\0")
            stamp, pixels = data[:8], data[8:]
            if channels == 1:  # 16-bit samples, two channels interleaved
                pixels = b"".join(pixels[i:i + 2] for i in range(0, len(pixels), 4))
            if level is not None:  # the time stamp, then the deflated pixels
                pixels = zlib.compress(bytes(pixels), level)
            chunk, length = _rechunk(chunk, stamp + pixels)
        elif name == b"ImageMetadataSeqLV|0!" and channels == 1:
            chunk, length = _rechunk(chunk, _first_plane_only(data))
        elif name.startswith(b"CustomData|") and data_length in (8 * TIMES * PLANES, 4 * TIMES * PLANES):
            width, start = data_length // (TIMES * PLANES), 16 + name_length
            body = b"".join(chunk[start + width * f:start + width * (f + 1)] for f in kept)
            chunk[start:] = body + bytes(len(chunk) - start - len(body))
            struct.pack_into("<Q", chunk, 8, len(body))
            length = len(body)
        placed[name] = (len(out), length)
        out += chunk

    def block(name: bytes) -> tuple[int, int]:
        name_length, data_length = struct.unpack_from("<IQ", out, placed[name][0] + 4)
        start = placed[name][0] + 16 + name_length
        return start, start + data_length

    struct.pack_into("<I", out, _lv_uints(out, block(b"ImageAttributesLV!"), "uiSequenceCount")[0], len(kept))
    if channels == 1:
        attributes = block(b"ImageAttributesLV!")
        for key, value in (("uiComp", 1), ("uiVirtualComponents", 1), ("uiWidthBytes", 76)):
            struct.pack_into("<I", out, _lv_uints(out, attributes, key)[0], value)
        _replace(out, "Picture Planes: 2".encode("utf-16-le"), "Picture Planes: 1".encode("utf-16-le"),
                 block(b"ImageTextInfoLV!"))
    if level is not None:  # eCompression (an LV int32): 0, lossless
        key = bytes([2, 13]) + "eCompression\0".encode("utf-16-le")
        at = out.find(key, *block(b"ImageAttributesLV!"))
        struct.pack_into("<i", out, at + len(key), 0)
    time_count, z_count = _lv_uints(out, block(b"ImageMetadataLV!"), "uiCount")[:2]
    struct.pack_into("<I", out, time_count, times)
    struct.pack_into("<I", out, z_count, planes)
    counts = ((f"T({TIMES}) x Z({PLANES})", f"T({times}) x Z({planes})"),
              (f"Time Loop: {TIMES}", f"Time Loop: {times}"), (f"Z Stack Loop: {PLANES}", f"Z Stack Loop: {planes}"))
    for old, new in counts:  # a shorter count is padded with a space (Bio-Formats trims it)
        _replace(out, old.encode("utf-16-le"), new.ljust(len(old)).encode("utf-16-le"), block(b"ImageTextInfoLV!"))
    loop_sizes = b'<LoopSize runtype="CLxListVariant">' + b'<no_name runtype="lx_uint32" value="%d"/>' * 2
    before, after = loop_sizes % (TIMES, PLANES), loop_sizes % (times, planes)
    _replace(out, before, after.ljust(len(before)), block(b"CustomDataVar|NDControlV1_0!"))
    body = b"".join(name + struct.pack("<QQ", *where) for name, where in placed.items())
    body += MAP_SIGNATURE + struct.pack("<Q", len(out))
    head = bytearray(map_head)
    struct.pack_into("<Q", head, 8, len(body))
    return bytes(out + head + body)


def _rewrite(source: bytes, change: Callable[[bytes, bytes], bytes | None]) -> bytes:
    """``source`` laid out again (4 KiB aligned) under a new chunk map, each chunk's data ``change(name,
    data)`` where that is not None."""
    map_at, map_head, entries = _chunk_map(source)
    ordered = sorted(entries, key=lambda e: e[1])
    out = bytearray(source[:ordered[0][1]])
    placed: dict[bytes, tuple[int, int]] = {}
    for (name, position, length), following in zip(ordered, [e[1] for e in ordered[1:]] + [map_at], strict=True):
        chunk = bytearray(source[position:following])
        name_length, data_length = struct.unpack_from("<IQ", chunk, 4)
        changed = change(name, bytes(chunk[16 + name_length:16 + name_length + data_length]))
        if changed is not None:
            chunk, length = _rechunk(chunk, changed)
        placed[name] = (len(out), length)
        out += chunk
    body = b"".join(name + struct.pack("<QQ", *where) for name, where in placed.items())
    body += MAP_SIGNATURE + struct.pack("<Q", len(out))
    head = bytearray(map_head)
    struct.pack_into("<Q", head, 8, len(body))
    return bytes(out + head + body)


def _edit_text_info(data: bytes, edit: Callable[[str], str]) -> bytes:
    """``ImageTextInfoLV!`` with ``edit`` applied to the text of each of its TextInfoItem strings."""
    items = _lv_items(data, 0, len(data))
    for item in items[0][2]:
        if item[2] is None and item[1][0] == 8:  # a TextInfoItem string
            start = 2 + 2 * item[1][1]
            item[1] = item[1][:start] + edit(item[1][start:-2].decode("utf-16-le")).encode("utf-16-le") + b"\0\0"
    return _lv_bytes(items)


def _one_loop(source: bytes, loop: str) -> bytes:
    """A re-laid copy of one time point ("Z") or one Z plane ("T") whose experiment is that loop alone: the
    other level left out of ``SLxExperiment``, and the text info without the other loop's lines."""
    dropped = ("Time Loop:", "- Equidistant") if loop == "Z" else ("Z Stack Loop:", "- Step")

    def text_info(text: str) -> str:
        text = "\r\n".join(line for line in text.split("\r\n") if not line.startswith(dropped))
        return re.sub(r"T\(1\) x (Z\(\d+\)) *", r"\1", text) if loop == "Z" else \
            re.sub(r"(T\(\d+\)) x Z\(1\) *", r"\1", text)

    def change(name: bytes, data: bytes) -> bytes | None:
        if name == b"ImageTextInfoLV!":
            return _edit_text_info(data, text_info)
        if name == b"ImageMetadataLV!":
            items = _lv_items(data, 0, len(data))
            experiment = _lv_find(items, "SLxExperiment")
            if loop == "Z":  # the Z level, which was the time loop's next level, in its place
                experiment[2] = _lv_find(experiment[2], "ppNextLevelEx")[2][0][2]
            else:
                experiment[2] = [item for item in experiment[2] if item[0] != "ppNextLevelEx"]
                last = _lv_find(experiment[2], "uiNextLevelCount")
                last[1] = last[1][:-4] + struct.pack("<I", 0)
            return _lv_bytes(items)
        return None

    return _rewrite(source, change)


def _z_around_t(source: bytes, times: int, planes: int) -> bytes:
    """A re-laid copy (of ``times`` x ``planes`` frames, time outermost) whose experiment is a Z stack around
    a time loop: the levels of ``SLxExperiment`` swapped, the frames and their custom data in the new order
    (frame ``z * times + t`` is (z, t)), and the NDControl loop sizes and states swapped."""
    map_at, _, entries = _chunk_map(source)
    frames = {}
    for name, position, _length in entries:
        if name.startswith(b"ImageDataSeq|"):
            name_length, data_length = struct.unpack_from("<IQ", source, position + 4)
            frames[int(name[13:-1])] = source[position + 16 + name_length:position + 16 + name_length + data_length]
    order = [t * planes + z for z in range(planes) for t in range(times)]  # the frame now at f was order[f]
    count = times * planes

    def change(name: bytes, data: bytes) -> bytes | None:
        if name.startswith(b"ImageDataSeq|"):
            return frames[order[int(name[13:-1])]]
        if name.startswith(b"CustomData|") and len(data) in (8 * count, 4 * count):
            width = len(data) // count
            return b"".join(data[width * f:width * (f + 1)] for f in order)
        if name == b"CustomDataVar|NDControlV1_0!":
            for list_name in (b"LoopSize", b"LoopState"):
                found = re.search(b"<" + list_name + b' runtype="CLxListVariant">(<no_name [^>]*/>)(<no_name [^>]*/>)',
                                  data)
                assert found is not None
                data = data[:found.start(1)] + found.group(2) + found.group(1) + data[found.end(2):]
            return data
        if name != b"ImageMetadataLV!":
            return None
        items = _lv_items(data, 0, len(data))
        experiment = _lv_find(items, "SLxExperiment")
        outer_next = _lv_find(experiment[2], "ppNextLevelEx")
        z_level = outer_next[2][0]
        time_children = [item for item in experiment[2] if item[0] != "ppNextLevelEx"]
        z_children = list(z_level[2])
        for children, last in ((time_children, 0), (z_children, 1)):
            item = _lv_find(children, "uiNextLevelCount")
            item[1] = item[1][:-4] + struct.pack("<I", last)
        at = next(i for i, item in enumerate(z_children) if item[0] == "uiNextLevelCount")
        z_children.insert(at + 1, [outer_next[0], outer_next[1], [[z_level[0], z_level[1], time_children]]])
        experiment[2] = z_children
        return _lv_bytes(items)

    return _rewrite(source, change)


def _lv_value(kind: int, name: str, value: float | str) -> list[Any]:
    """An LV item (as :func:`_lv_items` gives it) of a double (6), uint32 (3), bool (1) or string (8)."""
    head = bytes([kind, len(name) + 1]) + (name + "\0").encode("utf-16-le")
    packed = {6: lambda: struct.pack("<d", value), 3: lambda: struct.pack("<I", int(value)),
              1: lambda: bytes([int(value)]), 8: lambda: (str(value) + "\0").encode("utf-16-le")}[kind]()
    return [name, head + packed, None]


def _lv_level(name: str, children: list[list[Any]]) -> list[Any]:
    return [name, bytes([11, len(name) + 1]) + (name + "\0").encode("utf-16-le"), children]


#: the stage positions of the XY-loop copies (µm): the corpus file's first, then 100 µm right and 200 µm down
XY_POINTS = [(-26056.95 + 100.0 * p, -4155.46 + 200.0 * p, 3916.725) for p in range(4)]


def _time_xy_z(source: bytes, times: int, positions: int, planes: int) -> bytes:
    """A re-laid copy of ``times`` x ``positions * planes`` frames (:func:`_relay`) whose experiment is a
    time loop around an XY loop around a Z stack of ``planes``: an XY level (the time level's copy, of type 2
    and :data:`XY_POINTS`) put between the two, the text info's dimensions rewritten, and the per-frame stage
    X/Y at the frame's position."""
    def change(name: bytes, data: bytes) -> bytes | None:
        if name == b"ImageMetadataLV!":
            items = _lv_items(data, 0, len(data))
            experiment = _lv_find(items, "SLxExperiment")
            outer_next = _lv_find(experiment[2], "ppNextLevelEx")
            z_level = outer_next[2][0]
            item = _lv_find(_lv_find(z_level[2], "uLoopPars")[2], "uiCount")
            item[1] = item[1][:-4] + struct.pack("<I", planes)
            xy_children = copy.deepcopy([item for item in experiment[2] if item[0] != "ppNextLevelEx"])
            loop_type = _lv_find(xy_children, "eType")
            loop_type[1] = loop_type[1][:-4] + struct.pack("<I", 2)
            points = [_lv_level(f"i{i:010d}", [
                _lv_value(6, "dPosX", x), _lv_value(6, "dPosY", y), _lv_value(6, "dPosZ", z),
                _lv_value(6, "dPFSOffset", -1.0), _lv_value(8, "pPosName", "")])
                for i, (x, y, z) in enumerate(XY_POINTS[:positions])]
            _lv_find(xy_children, "uLoopPars")[2] = [
                _lv_value(3, "uiCount", positions), _lv_value(1, "bUseZ", 0), _lv_value(1, "bRelativeXY", 0),
                _lv_level("Points", points)]
            at = next(i for i, item in enumerate(xy_children) if item[0] == "uiNextLevelCount")
            xy_children.insert(at + 1, [outer_next[0], outer_next[1], [z_level]])
            outer_next[2] = [[z_level[0], z_level[1], xy_children]]
            return _lv_bytes(items)
        if name == b"ImageTextInfoLV!":
            return _edit_text_info(data, lambda text: re.sub(
                r"Z Stack Loop: \d+", f"Z Stack Loop: {planes}",
                re.sub(r"T\((\d+)\) x Z\(\d+\)", rf"T(\1) x XY({positions}) x Z({planes})", text)))
        if name in (b"CustomData|X!", b"CustomData|Y!") and len(data) == 8 * times * positions * planes:
            axis = 0 if name == b"CustomData|X!" else 1
            return struct.pack(f"<{len(data) // 8}d", *(XY_POINTS[f // planes % positions][axis]
                                                       for f in range(len(data) // 8)))
        return None

    return _rewrite(source, change)


def _z_split(source: bytes, positions: int, planes: int) -> bytes:
    """A re-laid copy of one time point of ``positions * planes`` Z planes (:func:`_relay`) whose Z stack is
    cut to ``planes`` and whose time loop counts ``positions``: so :func:`_xy_loop` can make more positions
    than the corpus file has time points (each position's frames are ``planes`` of its Z planes)."""
    def change(name: bytes, data: bytes) -> bytes | None:
        if name == b"ImageMetadataLV!":
            items = _lv_items(data, 0, len(data))
            experiment = _lv_find(items, "SLxExperiment")
            for children, count in ((experiment[2], positions),
                                    (_lv_find(experiment[2], "ppNextLevelEx")[2][0][2], planes)):
                item = _lv_find(_lv_find(children, "uLoopPars")[2], "uiCount")
                item[1] = item[1][:-4] + struct.pack("<I", count)
            return _lv_bytes(items)
        if name == b"ImageTextInfoLV!":
            def text_info(text: str) -> str:
                text = re.sub(r"T\(1\) x Z\(\d+\)", f"T({positions}) x Z({planes})", text)
                text = re.sub(r"Z Stack Loop: \d+", f"Z Stack Loop: {planes}", text)
                return re.sub(r"Time Loop: \d+", f"Time Loop: {positions}", text)
            return _edit_text_info(data, text_info)
        if name == b"CustomDataVar|NDControlV1_0!":
            sizes = re.search(rb'<LoopSize runtype="CLxListVariant"><no_name [^>]*/><no_name [^>]*/>', data)
            assert sizes is not None
            new = (b'<LoopSize runtype="CLxListVariant">'
                   + b"".join(b'<no_name runtype="lx_uint32" value="%d"/>' % n for n in (positions, planes)))
            return data[:sizes.start()] + new + data[sizes.end():]
        return None

    return _rewrite(source, change)


def _xy_loop(source: bytes, positions: int, planes: int, names: tuple[str, ...] = ()) -> bytes:
    """A re-laid copy of ``positions`` x ``planes`` frames (from :func:`_relay` with ``times=positions``) whose
    outer loop is an XY loop: ``eType`` 2 and ``uLoopPars`` of ``Points`` (:data:`XY_POINTS`, named
    ``names``), the text info's dimensions and time loop lines rewritten, and the per-frame stage X/Y at the
    frame's position."""
    count = positions * planes

    def change(name: bytes, data: bytes) -> bytes | None:
        if name == b"ImageMetadataLV!":
            items = _lv_items(data, 0, len(data))
            experiment = _lv_find(items, "SLxExperiment")
            loop_type = _lv_find(experiment[2], "eType")
            loop_type[1] = loop_type[1][:-4] + struct.pack("<I", 2)
            points = [_lv_level(f"i{i:010d}", [
                _lv_value(6, "dPosX", x), _lv_value(6, "dPosY", y), _lv_value(6, "dPosZ", z),
                _lv_value(6, "dPFSOffset", -1.0), _lv_value(8, "pPosName", names[i] if names else "")])
                for i, (x, y, z) in enumerate(XY_POINTS[:positions])]
            _lv_find(experiment[2], "uLoopPars")[2] = [
                _lv_value(3, "uiCount", positions), _lv_value(1, "bUseZ", 0), _lv_value(1, "bRelativeXY", 0),
                _lv_level("Points", points)]
            return _lv_bytes(items)
        if name == b"ImageTextInfoLV!":
            return _edit_text_info(data, lambda text: re.sub(
                r"Time Loop: \d+\r\n- Equidistant \(Duration 3600 s\)", f"XY Positions: {positions}",
                re.sub(r"(?<![A-Z])T\(\d+\)", f"XY({positions})", text)))
        if name in (b"CustomData|X!", b"CustomData|Y!") and len(data) == 8 * count:
            axis = 0 if name == b"CustomData|X!" else 1
            return struct.pack(f"<{count}d", *(XY_POINTS[f // planes][axis] for f in range(count)))
        return None

    return _rewrite(source, change)


def _edit(rng: random.Random, source: bytes) -> tuple[bytes, list[str]]:
    data = bytearray(source)
    edits = [kind for kind, p in EDITS.items() if rng.random() < p]
    calibration = _lv_double(data, "dCalibration")  # the calibration block's first, then the sequence block's
    if "calibration" in edits:
        _set(data, calibration[0], rng.choice((0.1, 0.325, 1.0, 0.0, -0.2, 1e-8)))
    if "calibration seq" in edits:
        _set(data, calibration[-1], rng.choice((0.2, 0.65)))
    if "z step" in edits and _lv_double(data, "dZStep"):  # (a time loop alone has none)
        _set(data, _lv_double(data, "dZStep")[0], rng.choice((0.25, 1.0, 2.5, -0.5, 0.0, 1e-8)))
    if "exposure" in edits:
        _set(data, _lv_double(data, "dExposureTime")[0], rng.choice((10.0, 250.5, 1999.25)))
    if "emission" in edits:
        for offset in _lv_double(data, "EmWavelength"):
            _set(data, offset, rng.choice((510.0, 600.0, 455.5)))
    if "na lv" in edits:
        _set(data, _lv_double(data, "dObjectiveNA")[0], rng.choice((1.4, 0.3)))
    if "magnification" in edits:
        _set(data, _lv_double(data, "dObjectiveMag")[0], rng.choice((20.0, 60.0, 0.0, 100.5)))
    if "objective" in edits:
        new_objective = rng.choice(("Plan Flu λ 40x", "Apo TIRF 100xO", "CFI Plan 10x  "))
        _replace(data, OBJECTIVE.encode("utf-16-le"), new_objective.encode("utf-16-le"))
    if "camera" in edits:
        _replace(data, CAMERA, rng.choice((b'value="Nikon_Ti_Cam"', b'value="DS-Qi2 Mono "', b'value="A1 &amp; Ti2"')))
    if "colour" in edits:  # black (no colour), green, white, a colour that is not a number
        _replace(data, COLOUR, COLOUR[:-9] + rng.choice((b'"0000000"', b'"0065280"', b'"-000001"', b'"12ab345"')))
    if "dye" in edits:  # channel 0's dye no longer names it: no colour for it
        _replace(data, DYE, DYE[:-14] + b'"5-FAM/pH 7.4"')
    info = _block(data, "ImageTextInfoLV")
    if "refractive index" in edits:
        _replace(data, "Index: 1\r".encode("utf-16-le"),
                 f"Index: {rng.choice(('2', '1', 'x'))}\r".encode("utf-16-le"), info)
    if "na text" in edits:
        _replace(data, "Numerical Aperture: 0.95".encode("utf-16-le"),
                 f"Numerical Aperture: {rng.choice(('1.40', '0.75', '0.30'))}".encode("utf-16-le"), info)
    if "times" in edits:
        start, end = _block(data, "CustomData|AcqTimesCache")
        scale, shift = rng.choice((0.5, 2.0, 1.0)), rng.choice((0.0, 1000.0, 37.5))
        for offset in range(start, end, 8):
            _set(data, offset, struct.unpack_from("<d", data, offset)[0] * scale + shift)
    if "stage" in edits:
        for axis in ("X", "Y", "Z1"):
            start, end = _block(data, f"CustomData|{axis}")
            shift = rng.choice((-100.0, 0.5, 2500.0))
            for offset in range(start, end, 8):
                _set(data, offset, struct.unpack_from("<d", data, offset)[0] + shift)
    for old, choices in NAMES.items():
        new = rng.choice(choices)
        if "names" in edits:  # everywhere: the LV blocks, the text info, the XML
            _replace(data, old.encode("utf-16-le"), new.encode("utf-16-le"))
            _replace(data, old.encode("utf-8"), new.encode("utf-8"))
        elif "text names" in edits:
            _replace(data, old.encode("utf-16-le"), new.encode("utf-16-le"), info)
    return bytes(data), edits


def _why_declined(path: Path, _edits: object) -> str:
    """The reason the engine declines a variant (a forced read falls back to ``nd2``'s own mapping, which
    gives no error to name it by)."""
    try:
        inspect_nd2(str(path))
    except Declined as exc:
        return str(exc)
    return "claimed, yet auto went to Bio-Formats"


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> list[tuple[Path, list[str]]]:
    folder = tmp_path_factory.mktemp("nd2-variants")
    rng = random.Random(SEED)
    source = (corpus / SOURCE).read_bytes()
    made = []
    for index in range(VARIANTS):
        layout: list[str] = []
        times, planes, level = TIMES, PLANES, None
        if rng.random() < LOOPS:
            times, planes = rng.randint(1, TIMES), rng.randint(1, PLANES)
            layout.append(f"T={times} Z={planes}")
        if rng.random() < DEFLATE:
            level = rng.randint(0, 9)
            layout.append(f"zlib {level}")
        channels = 1 if rng.random() < ONE_CHANNEL else 2
        layout += ["C=1"] if channels == 1 else []
        loop = rng.choice("ZT") if rng.random() < ONE_LOOP else ""
        if loop:  # one time point or one Z plane, and the experiment that loop alone
            times, planes = (1, rng.randint(1, PLANES)) if loop == "Z" else (rng.randint(1, TIMES), 1)
            layout += [f"{loop} loop only", f"T={times} Z={planes}"]
        swap = not loop and rng.random() < Z_AROUND_T
        layout += ["Z around T"] if swap else []
        relaid = _relay(source, times, planes, level, channels) if layout else source
        relaid = _one_loop(relaid, loop) if loop else _z_around_t(relaid, times, planes) if swap else relaid
        data, edits = _edit(rng, relaid)
        edits += layout
        path = folder / f"v{index:03d}.nd2"
        path.write_bytes(data)
        made.append((path, edits))
    return made


@pytest.mark.slow
def test_every_native_answer_on_edited_nd2s_equals_live_bioformats(variants: list[tuple[Path, list[str]]]) -> None:
    tally = compare_with_bioformats(variants, "nd2", _why_declined)
    # each answer equals Bio-Formats' whole document; the kinds drawn to be declined are (the 2356-byte frames
    # of one uncompressed channel, a 4 KiB page apart, Bio-Formats takes for three channels), and only they
    tally.assert_proven(len(variants), "nd2", AGREE_FLOOR, reasons=DECLINED, known=DECLINED)
    assert tally.bioformats_fails == []
    answered = [edits for path, edits in variants if _why_declined(path, edits).startswith("claimed")]
    layouts = Counter(edit for edits in answered for edit in edits if edit.startswith(("T=", "zlib", "C=")) or
                      edit.endswith(("loop only", "around T")))
    print(f"layouts answered: {dict(layouts)}")
    assert sum(n for e, n in layouts.items() if e.startswith("T=")) >= 15 and layouts["C=1"] >= 5
    assert sum(n for e, n in layouts.items() if e.startswith("zlib")) >= 8
    assert any(e.startswith("T=1 ") for e in layouts) and any(e.endswith(" Z=1") for e in layouts)
    assert layouts["Z loop only"] >= 3 and layouts["T loop only"] >= 3 and layouts["Z around T"] >= 5


@pytest.mark.parametrize(("key", "value", "expected"), [
    # as live Bio-Formats 7.3.1 gave them for these edits: none for a value that is not positive and for
    # 1e-6 itself; below 1e-6 it writes nm (0.0005 nm for 5e-7 µm), which the engine declines
    ("dCalibration", -0.2, ("physical_size_x", None)),
    ("dCalibration", 0.0, ("physical_size_x", None)),
    ("dCalibration", 1e-6, ("physical_size_x", None)),
    ("dCalibration", 1.01e-6, ("physical_size_x", [1.01e-6, "µm"])),
    ("dZStep", -0.5, ("physical_size_z", None)),
    ("dZStep", 5e-7, None),
    ("dCalibration", 1e-8, None),
])
def test_physical_sizes_bioformats_drops_or_writes_in_nm(key: str, value: float, expected: tuple[str, object] | None,
                                                         corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / SOURCE).read_bytes())
    _set(data, _lv_double(data, key)[0], value)
    path = tmp_path / "edited.nd2"
    path.write_bytes(bytes(data))
    nd2 = engines.get("nd2")
    claimed = nd2.claim(str(path), read_head(str(path)))
    if expected is None:
        assert claimed == 0
        return
    assert claimed > 0
    field, size = expected
    assert key_fields(nd2.extract(str(path)))["images"][0]["pixels"][field] == size


@pytest.mark.parametrize("level", [None, 0, 9])
def test_a_relaid_or_deflated_copy_reads_as_the_original(level: int | None, corpus: Path, tmp_path: Path) -> None:
    # the layout the variants start from changes nothing the document says (but the file's name); a stream
    # cut short does not inflate to one plane, so Bio-Formats would read the frames raw: declined
    original = engines.get("nd2").extract(str(corpus / SOURCE))
    copy = tmp_path / "copy.nd2"
    copy.write_bytes(_relay((corpus / SOURCE).read_bytes(), level=level))
    assert engines.get("nd2").claim(str(copy), read_head(str(copy))) > 0
    assert engines.get("nd2").extract(str(copy)) == original.replace("cluster.nd2", "copy.nd2")
    if level is not None:
        data = bytearray(copy.read_bytes())
        start, _ = _block(data, "ImageDataSeq|0")
        data[start + 8:start + 20] = bytes(12)  # the zlib header and the first deflated bytes
        copy.write_bytes(bytes(data))
        with pytest.raises(Declined, match="inflate"):
            inspect_nd2(str(copy))


@pytest.mark.slow
@pytest.mark.parametrize(("positions", "planes", "level", "size_c"), [
    # as live Bio-Formats 7.3.1 read them: deflated frames keep the two channels; raw ones (a 4 KiB-padded
    # frame of two channels) it takes for three, as if it weighed the spacing against a one-channel plane
    (2, 10, None, 3), (3, 4, None, 3),
])
def test_raw_multi_position_nd2s_are_declined_and_bioformats_reads_one_image_per_position(
        positions: int, planes: int, level: int | None, size_c: int, corpus: Path, tmp_path: Path) -> None:
    from metaextract.extraction.pipeline import extract_file

    path = tmp_path / "xy.nd2"
    path.write_bytes(_xy_loop(_relay((corpus / SOURCE).read_bytes(), positions, planes, level), positions, planes,
                              names=("A1", "B2", "C3")))
    with pytest.raises(Declined, match="raw frames of several stage positions"):
        inspect_nd2(str(path))
    auto, theirs = extract_file(str(path), "auto"), extract_file(str(path), "bioformats")
    assert auto.engine is not None and auto.engine.startswith("bioformats")
    assert theirs.status == "ok" and theirs.omexml is not None
    images = re.findall(r"<Image .*?</Image>", theirs.omexml, re.S)
    # one Image per position, named by series (the LV pPosName is not read), each with its own planes
    assert [re.search(r'Name="([^"]*)"', image)[1] for image in images] == [  # type: ignore[index]
        f"xy.nd2 (series {i + 1})" for i in range(positions)]
    times = struct.unpack_from(f"<{positions * planes}d", *_times(path.read_bytes(), positions * planes))
    for i, image in enumerate(images):
        assert f'SizeC="{size_c}"' in image and 'SizeT="1"' in image
        first = re.search(r"<Plane [^>]*>", image)
        assert first is not None
        assert f'PositionX="{XY_POINTS[i][0]!r}" ' in first[0] and f'PositionY="{XY_POINTS[i][1]!r}" ' in first[0]
        if size_c == 2:  # plane 0 of series i: frame i * planes's time, but plane n's (frame n's) where there
            # are as many frame times as planes in one series (as many positions as channels)
            frame = 0 if positions == size_c else i * planes
            assert f'DeltaT="{times[frame] / 1000!r}"' in first[0], first[0]


def _times(data: bytes, count: int) -> tuple[bytes, int]:
    """(data, offset) of the last ``count`` doubles of the ``AcqTimesCache`` block (the frame times, ms)."""
    _, end = _block(bytearray(data), "CustomData|AcqTimesCache")
    return data, end - 8 * count


XY_VARIANTS = 72  #: deflated multi-position copies


@pytest.fixture(scope="module")
def xy_variants(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> list[tuple[Path, list[str]]]:
    """Deflated multi-position copies: 2-4 positions (4 from split Z planes) around 1-10 Z planes (or the XY
    loop alone), one or two channels, then the value edits of the main variants."""
    folder = tmp_path_factory.mktemp("nd2-xy-variants")
    rng = random.Random(SEED + 1)
    source = (corpus / SOURCE).read_bytes()
    made = []
    for index in range(XY_VARIANTS):
        positions, planes, level = rng.randint(2, 4), rng.randint(1, PLANES), rng.randint(0, 9)
        channels = 1 if rng.random() < ONE_CHANNEL else 2
        alone = rng.random() < ONE_LOOP
        planes = 1 if alone else planes
        times = rng.randint(2, TIMES) if not alone and rng.random() < 0.3 else 1
        if times > 1:  # a time loop around the positions: each time point's Z planes split among them
            planes = max(1, min(planes, PLANES // positions))
            relaid = _time_xy_z(_relay(source, times, positions * planes, level, channels), times, positions, planes)
        elif positions > TIMES:  # more positions than time points: split the Z planes among them
            planes = min(planes, PLANES // positions)
            relaid = _z_split(_relay(source, 1, positions * planes, level, channels), positions, planes)
        else:
            relaid = _relay(source, positions, planes, level, channels)
        relaid = _one_loop(relaid, "T") if alone else relaid
        data, edits = _edit(rng, relaid if times > 1 else _xy_loop(relaid, positions, planes))
        edits += [f"XY={positions} Z={planes}", f"zlib {level}"] + ([f"T={times}"] if times > 1 else [])
        edits += (["C=1"] if channels == 1 else []) + (["XY loop only"] if alone else [])
        path = folder / f"xy{index:03d}.nd2"
        path.write_bytes(data)
        made.append((path, edits))
    return made


@pytest.mark.slow
def test_every_native_answer_on_multi_position_nd2s_equals_live_bioformats(
        xy_variants: list[tuple[Path, list[str]]]) -> None:
    tally = compare_with_bioformats(xy_variants, "nd2", _why_declined)
    tally.assert_proven(len(xy_variants), "nd2", 55, known=DECLINED)
    assert tally.bioformats_fails == []
    answered = [edits for path, edits in xy_variants if _why_declined(path, edits).startswith("claimed")]
    layouts = Counter(edit for edits in answered for edit in edits if edit.startswith(("XY=", "C=", "XY loop", "T=")))
    print(f"layouts answered: {dict(layouts)}")
    # as many positions as channels (Bio-Formats then gives plane n frame n's time) and not; the XY loop
    # alone; one channel; 2 and 3 positions
    two_by_two = sum(1 for edits in answered if any(e.startswith("XY=2 ") for e in edits) and "C=1" not in edits)
    assert two_by_two >= 3 and len(answered) - two_by_two >= 10
    assert layouts["XY loop only"] >= 3 and layouts["C=1"] >= 3
    assert sum(n for e, n in layouts.items() if e.startswith("XY=3 ")) >= 5
    assert sum(n for e, n in layouts.items() if e.startswith("XY=4 ")) >= 5
    assert sum(n for e, n in layouts.items() if e.startswith("T=")) >= 8
    assert any("T=" in " ".join(edits) and any(e.startswith("XY=2 ") for e in edits) and "C=1" not in edits
               for edits in answered)  # as many positions as channels under a time loop
