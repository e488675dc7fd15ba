"""A TIFF's IFD chain walked with every offset checked against the file's size: the one walker of the
package (the sanity checks, the TIFF header reader, the SVS engine and the MetaXpress plate reader use it).

:func:`walk` checks every IFD, tag value, strip and tile lies inside the file and that the chain does not
loop; :func:`survey` is one such walk of a file with what the sanity checks need from it. Nothing here
keeps state between calls: a survey is kept for a file by whoever holds that file's context.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from functools import lru_cache
from typing import NamedTuple

MAX_IFDS = 20_000  # beyond this many IFDs the walk stops without a verdict
MAX_ARRAY = 65_536  # strip/tile arrays longer than this are not checked
MAX_DESCRIPTION = 64 << 20  # an ImageDescription longer than this is not read

KINDS = {b"II*\x00": ("<", False), b"MM\x00*": (">", False), b"II+\x00": ("<", True), b"MM\x00+": (">", True)}
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_INT_FMT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
_PAIRS = ((273, 279, "strip"), (324, 325, "tile"))


class Damage(Exception):
    """The walk found something the file cannot hold."""


@lru_cache(maxsize=512)
def _struct(fmt: str) -> struct.Struct:
    return struct.Struct(fmt)


@lru_cache(maxsize=1024)
def _ifd_struct(order: str, big: bool, n: int) -> struct.Struct:
    """The layout of an IFD of ``n`` entries and the next IFD's offset."""
    return struct.Struct(f"{order}{('HHQ8s' if big else 'HHI4s') * n}{'Q' if big else 'I'}")


@lru_cache(maxsize=4)
def _singles(order: str, offset_size: int) -> dict[int, struct.Struct]:
    """Per integer type, the Struct of one value held in the entry itself (the common case)."""
    return {typ: _struct(order + fmt) for typ, fmt in _INT_FMT.items() if _TYPE_SIZE[typ] <= offset_size}


class Tiff:
    """Just enough of a TIFF reader to walk the IFD chain with every offset checked against the size."""

    def __init__(self, data: mmap.mmap | bytes, order: str, big: bool) -> None:
        self.data, self.size, self.order, self.big = data, len(data), order, big
        self.offset_size = 8 if big else 4
        self._offset = _struct(order + ("Q" if big else "I"))
        self._single = _singles(order, self.offset_size)

    def read(self, offset: int, n: int, what: str) -> bytes:
        if offset < 0 or offset + n > self.size:
            raise Damage(f"{what} at byte {offset} (+{n}) lies beyond the end of the file ({self.size} bytes)")
        return self.data[offset:offset + n]

    def unpack(self, fmt: str, data: bytes) -> tuple[int, ...]:
        return _struct(self.order + fmt).unpack(data)

    def first_ifd(self) -> int:
        if self.big:
            return int(self.unpack("Q", self.read(8, 8, "BigTIFF header"))[0])
        return int(self.unpack("I", self.read(4, 4, "TIFF header"))[0])

    def ifd(self, offset: int, index: int) -> tuple[dict[int, tuple[int, int, bytes]], int]:
        """``({tag: (type, count, value-or-offset bytes)}, next IFD offset)`` of the IFD at ``offset``."""
        count_size = 8 if self.big else 2
        if offset < 0 or offset + count_size > self.size:
            self.read(offset, count_size, f"IFD {index}")  # (raises, saying where)
        (n,) = _struct(self.order + ("Q" if self.big else "H")).unpack_from(self.data, offset)
        length = n * (20 if self.big else 12) + self.offset_size
        if offset + count_size + length > self.size:
            self.read(offset + count_size, length, f"IFD {index} ({n} entries)")  # (raises)
        fields = _ifd_struct(self.order, self.big, n).unpack_from(self.data, offset + count_size)
        it = iter(fields)  # four fields an entry; the last one, the next offset, is left over
        tags = {code: (typ, count, raw) for code, typ, count, raw in zip(it, it, it, it, strict=False)}
        return tags, int(fields[-1])

    def single(self, entry: tuple[int, int, bytes]) -> int | None:
        """The value of an IFD entry holding one integer in itself (the common case), else None."""
        if entry[1] == 1:
            found = self._single.get(entry[0])
            if found is not None:
                return int(found.unpack_from(entry[2])[0])
        return None

    def values(self, entry: tuple[int, int, bytes], what: str) -> list[int] | None:
        """The integer values of an IFD entry (None when too many to check cheaply or not integers)."""
        value = self.single(entry)
        if value is not None:
            return [value]
        typ, count, raw = entry
        fmt = _INT_FMT.get(typ)
        if fmt is None or count > MAX_ARRAY:
            return None
        nbytes = count * _TYPE_SIZE[typ]
        if nbytes > self.offset_size:
            (where,) = self._offset.unpack(raw)
            raw = self.read(int(where), nbytes, what)
        return list(_struct(f"{self.order}{count}{fmt}").unpack_from(raw))

    def bytes_of(self, entry: tuple[int, int, bytes], limit: int, what: str) -> bytes | None:
        typ, count, raw = entry
        nbytes = count * _TYPE_SIZE.get(typ, 1)
        if nbytes > limit:
            return None
        if nbytes > self.offset_size:
            (where,) = self._offset.unpack(raw)
            return self.read(int(where), nbytes, what)
        return raw[:nbytes]


def _check_pixels(t: Tiff, tags: dict[int, tuple[int, int, bytes]], index: int) -> None:
    """An uncompressed image must hold the bytes its size declares."""
    def one(tag: int, default: int) -> int:
        entry = tags.get(tag)
        if entry is None:
            return default
        vals = t.values(entry, f"IFD {index} tag {tag}")
        return vals[0] if vals else default

    if one(259, 1) != 1 or 279 not in tags or 256 not in tags or 257 not in tags:
        return
    counts = t.values(tags[279], f"IFD {index} strip byte counts")
    if counts is None:
        return
    width, height, samples = one(256, 0), one(257, 0), one(277, 1)
    bits = one(258, 1)
    needed = (width * bits * samples + 7) // 8 * height
    held = sum(counts)
    if needed > held:
        raise Damage(f"IFD {index} declares {width} x {height} uncompressed pixels ({needed} bytes) but its strips "
                      f"hold {held} bytes")


@contextmanager
def mapped(path: str) -> Iterator[mmap.mmap]:
    """The file mapped read-only: pages are read only where the walk looks."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


Tags = dict[int, tuple[int, int, bytes]]
KEEP_TAGS = 4096  # a survey keeps the parsed IFDs of chains up to this long, for the TIFF engine to use


def walk(t: Tiff, kept: list[Tags] | None = None) -> int:
    """Walk the IFD chain, checking every IFD, strip and tile against the file size; returns the IFD count.

    With ``kept``, each IFD's tags are appended to it (up to :data:`KEEP_TAGS` IFDs).
    """
    offset, index, seen = t.first_ifd(), 0, set()
    if offset == 0:
        raise Damage("the TIFF has no IFD")
    while offset:
        if offset in seen:
            raise Damage(f"the IFD chain loops back to byte {offset} after {index} IFDs")
        if index >= MAX_IFDS:
            return index
        seen.add(offset)
        tags, nxt = t.ifd(offset, index)
        if kept is not None and index < KEEP_TAGS:
            kept.append(tags)
        for tag, (typ, count, raw) in tags.items():
            nbytes = count * _TYPE_SIZE.get(typ, 1)
            if nbytes > t.offset_size:
                (where,) = t._offset.unpack(raw)
                if where + nbytes > t.size:
                    raise Damage(f"IFD {index} tag {tag} (bytes {where}-{where + nbytes}) lies beyond the end of "
                                  f"the file ({t.size} bytes)")
        _check_pixels(t, tags, index)
        for off_tag, count_tag, label in _PAIRS:
            if off_tag not in tags or count_tag not in tags:
                continue
            offs = t.values(tags[off_tag], f"IFD {index} {label} offsets")
            cnts = t.values(tags[count_tag], f"IFD {index} {label} byte counts")
            if offs is None or cnts is None:
                continue
            for k, (o, c) in enumerate(zip(offs, cnts, strict=False)):
                if c and o + c > t.size:
                    raise Damage(f"IFD {index} {label} {k} (bytes {o}-{o + c}) lies beyond the end of the file "
                                  f"({t.size} bytes)")
        offset, index = nxt, index + 1
    return index



class Survey(NamedTuple):
    """One walk of a TIFF: what the sanity checks (and the tifffile engine) need from it."""

    damage: str | None  #: a one-line description of damage, or None
    ifds: int  #: IFDs in the chain (0 when damaged)
    description: bytes | None  #: IFD 0's ImageDescription (None when absent, unreadable or too long)
    first_size: tuple[int, int] | None  #: IFD 0's width and length
    #: every IFD's tags, when the file was walked whole from memory, is undamaged and has at most
    #: :data:`KEEP_TAGS` IFDs (values are read with a :class:`Tiff` over the same bytes)
    tags: tuple[Tags, ...] | None = None


DESCRIPTION = 270  #: the ImageDescription tag


def survey(path: str, kind: tuple[str, bool], held: bytes | None = None) -> Survey:
    """Walk ``path`` once: from ``held`` when that is the whole file, else mapped read-only. It keeps
    nothing: the caller that wants one walk per file keeps the result (the file's context does)."""
    whole = held is not None
    description: bytes | None = None
    first_size: tuple[int, int] | None = None

    def first(t: Tiff, tags: Tags) -> None:
        nonlocal description, first_size
        entry = tags.get(DESCRIPTION)
        description = t.bytes_of(entry, MAX_DESCRIPTION, "ImageDescription") if entry else None
        widths = t.values(tags[256], "ImageWidth") if 256 in tags else None
        heights = t.values(tags[257], "ImageLength") if 257 in tags else None
        if widths and heights:
            first_size = (widths[0], heights[0])

    try:
        with mapped(path) if held is None else nullcontext(held) as data:
            t = Tiff(data, *kind)
            kept: list[Tags] = []
            try:
                count = walk(t, kept)
            except (Damage, struct.error, ValueError, OverflowError):
                # what IFD 0 says is still wanted (its description is checked for DTDs)
                with suppress(Damage, struct.error, ValueError, OverflowError):
                    first(t, t.ifd(t.first_ifd(), 0)[0])
                raise
            first(t, kept[0])
            result = Survey(None, count, description, first_size,
                            tuple(kept) if whole and count <= KEEP_TAGS else None)
    except Damage as exc:
        result = Survey(f"damaged or truncated TIFF: {exc}", 0, description, first_size)
    except (OSError, struct.error, ValueError, OverflowError, MemoryError) as exc:
        result = Survey(f"damaged TIFF: {type(exc).__name__}: {exc}", 0, description, first_size)
    return result

