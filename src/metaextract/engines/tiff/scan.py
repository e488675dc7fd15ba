"""A small TIFF header reader for the common, clean case, so a plate of plain TIFFs is classified without
tifffile (whose general machinery is most of a warm read's cost on a 16x16 file).

It reads a classic (not Big) TIFF's IFD chain with every offset checked against the file size, decodes
the few tags the tifffile engine needs exactly as tifffile would, and answers ``None`` whenever anything
is unusual (BigTIFF, EXIF, compressions tifffile special-cases, missing or mixed per-sample values, more
than :data:`MAX_PAGES` pages, any damage): the engine then asks tifffile. So it can only agree with
tifffile or stand aside; ``tests/test_engines_tiff.py`` compares the two on every synthetic variant.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from metaextract.engines.tiff.ifd import Damage, Tags, Tiff
from metaextract.extraction.sanity import survey_of
from metaextract.extraction.snapshot import Snapshot

MAX_PAGES = 4096
SMALL_FILE = 4 << 20  # read whole up to this size; map larger files
#: Compressions for which tifffile changes nothing in the fields read here (none, CCITT RLE/G3/G4, LZW,
#: deflate, PackBits, Adobe deflate, LZMA, Zstandard, WebP, JPEG XL excluded: JPEG kinds are left to it).
PLAIN_COMPRESSION = frozenset({1, 5, 8, 32773, 32946, 34925, 50000})
_ASCII = 2
_RATIONAL = 5


@dataclass
class Page:
    """The fields of one IFD the tifffile engine compares across pages."""

    width: int
    length: int
    samples: int
    bits: int
    sampleformat: int
    photometric: int
    subfiletype: int
    has_subifds: bool

    @property
    def shape(self) -> tuple[int, int, int, int, int, int]:
        return (self.width, self.length, self.samples, self.bits, self.sampleformat, self.photometric)


@dataclass
class Header:
    """What :func:`scan` read: IFD 0's tag codes and decoded values, and every page's shape."""

    big_endian: bool
    codes: frozenset[int]
    text: dict[int, Any]  # ASCII tags of IFD 0 decoded as tifffile decodes them (str, or bytes if undecodable)
    rationals: dict[int, tuple[int, int]]
    resolution_unit: int | None
    pages: list[Page]


def _ascii(raw: bytes) -> str | bytes:
    """tifffile's decoding of an ASCII tag: trailing NULs dropped, UTF-8 else cp1252, whitespace stripped."""
    raw = raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252").strip()
        except UnicodeDecodeError:
            return raw


def _one(t: Tiff, tags: dict[int, tuple[int, int, bytes]], code: int, default: int | None) -> int | None:
    """A tag with one integer value, or one repeated for every sample (None when mixed or unreadable)."""
    entry = tags.get(code)
    if entry is None:
        return default
    values = t.values(entry, f"tag {code}")
    if not values or len(values) > 1 and len(set(values)) != 1:
        return None
    return values[0]


def _page(t: Tiff, tags: dict[int, tuple[int, int, bytes]]) -> Page | None:
    if 256 not in tags or 257 not in tags or 262 not in tags:
        return None
    compression = _one(t, tags, 259, 1)
    if compression not in PLAIN_COMPRESSION:
        return None
    fields = [_one(t, tags, code, default) for code, default in
              ((256, None), (257, None), (277, 1), (258, 1), (339, 1), (262, None), (254, 0))]
    if any(v is None for v in fields):
        return None
    width, length, samples, bits, sampleformat, photometric, subfiletype = (int(v) for v in fields if v is not None)
    return Page(width, length, samples, bits, sampleformat, photometric, subfiletype, 330 in tags)


def _kind(data: Any) -> str | None:
    return {b"II*\x00": "<", b"MM\x00*": ">"}.get(bytes(data[:4]))


def _read(data: Any, size: int) -> Header | None:
    kind = _kind(data)
    if kind is None:
        return None
    t = Tiff(data, kind, False)
    offset, index, seen = t.first_ifd(), 0, set()
    ifds: list[Tags] = []
    while offset:
        if offset in seen or index >= MAX_PAGES:
            return None
        seen.add(offset)
        tags, offset = t.ifd(offset, index)
        ifds.append(tags)
        index += 1
    return _header(t, ifds, size)


def _header(t: Tiff, ifds: Sequence[Tags], size: int) -> Header | None:
    if not ifds or len(ifds) > MAX_PAGES:
        return None
    pages: list[Page] = []
    for tags in ifds:
        page = _page(t, tags)
        if page is None:
            return None
        pages.append(page)
    first = ifds[0]
    text: dict[int, Any] = {}
    rationals: dict[int, tuple[int, int]] = {}
    for code, (typ, count, raw) in first.items():
        if typ == _ASCII:
            value = t.bytes_of((typ, count, raw), size, f"tag {code}")
            if value is None:
                return None
            text[code] = _ascii(value)
        elif typ == _RATIONAL and count == 1:
            (where,) = t.unpack("I", raw)
            num, den = t.unpack("2I", t.read(int(where), 8, f"tag {code}"))
            rationals[code] = (int(num), int(den))
    unit = _one(t, first, 296, None) if 296 in first else None
    if 296 in first and unit is None:
        return None
    return Header(big_endian=t.order == ">", codes=frozenset(first), text=text, rationals=rationals,
                  resolution_unit=unit, pages=pages)


def scan(path: str, held: Snapshot | None = None) -> Header | None:
    """The header of a clean classic TIFF, or None (tifffile should look at it); ``held``: the bytes the
    extraction holds of ``path`` (read from them when they are the whole file, sharing the checks' walk)."""
    snap = held if held is not None and held.path == path else None
    try:
        if snap is not None and snap.complete:
            kind = _kind(snap.data)
            if kind is None:
                return None
            walked = survey_of(path, (kind, False), snap)  # the sanity check's walk of these same bytes
            if walked.damage is not None or walked.tags is None:
                return None
            return _header(Tiff(snap.data, kind, False), walked.tags, len(snap.data))
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= SMALL_FILE:
                return _read(fh.read(), size)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _read(data, size)
    except (Damage, OSError, struct.error, ValueError, OverflowError, KeyError):
        return None
