"""Cheap checks on a file that catch what an engine does not: damage it read past, and references it
should never follow.

:func:`check` runs after every successful read: a truncated OME-TIFF that Bio-Formats reads "fine" as a
plain TIFF is caught by walking the TIFF's IFD chain with bounds checks (IFDs, strips and tiles beyond
the end of the file, loops) and by comparing the planes the OME-XML maps to IFDs with the IFDs present.
:func:`refuse` runs before the engine: embedded XML that declares a DTD or entities, or that names files
outside the image's folder, is never handed to Bio-Formats (whose XML parser would fetch them). Besides a
TIFF's ImageDescription and an XML file's text, every other file's bytes (up to :data:`MAX_SCAN`) are searched
for ``<!DOCTYPE``/``<!ENTITY`` in UTF-8 and UTF-16 (the XML inside CZI, LIF, ND2, … segments), and an OLE2
compound document's streams one by one (their sectors need not lie in order in the file).

Both read a few kilobytes at most per IFD, stop after :data:`MAX_IFDS` IFDs, and never raise.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from functools import lru_cache
from typing import NamedTuple

from metaextract.extraction import snapshot

MAX_IFDS = 20_000  # beyond this many IFDs the walk stops without a verdict
MAX_ARRAY = 65_536  # strip/tile arrays longer than this are not checked
MAX_DESCRIPTION = 64 << 20  # an ImageDescription longer than this is not read

_TIFF = {b"II*\x00": ("<", False), b"MM\x00*": (">", False), b"II+\x00": ("<", True), b"MM\x00+": (">", True)}
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_INT_FMT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
_PAIRS = ((273, 279, "strip"), (324, 325, "tile"))
_DESCRIPTION = 270
_TIFFDATA = re.compile(r"<(?:\w+:)?TiffData\b([^>]*?)(/>|>(.*?)</(?:\w+:)?TiffData>)", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_FILENAME = re.compile(r'<(?:\w+:)?UUID\b[^>]*?\bFileName="([^"]*)"')
_REFERENCES = re.compile(rb'\b(?:FileName|MetadataFile)\s*=\s*["\']([^"\']*)["\']')
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
#: ``<!DOCTYPE`` and ``<!ENTITY`` as bytes of embedded XML: UTF-8/ASCII, and UTF-16 (one pattern serves
#: little and big endian: ``"<\0!\0D\0…E"`` lies inside both). XML keywords are case-sensitive, so a
#: parser refuses any other spelling. One regular expression searches ~2.5 GB/s, three times four ``find``s.
_DTD_MARKERS = re.compile(rb"<!(?:DOCTYPE|ENTITY)|<\x00!\x00(?:" + "DOCTYPE".encode("utf-16-le")[:-1] + b"|"
                          + "ENTITY".encode("utf-16-le")[:-1] + b")")
MAX_SCAN = 16 << 30  # bytes of a file searched for DTD markers (mmap + regex: ~2.5 GB/s); the rest is left to
#: the JVM's own refusal (metaextract.engines.bioformats.jvm.xml_options) and the sandbox
DTD_REFUSED = "declares a DTD or entities; refused, nothing was expanded or fetched"


class _Damage(Exception):
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


class _Tiff:
    """Just enough of a TIFF reader to walk the IFD chain with every offset checked against the size."""

    def __init__(self, data: mmap.mmap | bytes, order: str, big: bool) -> None:
        self.data, self.size, self.order, self.big = data, len(data), order, big
        self.offset_size = 8 if big else 4
        self._offset = _struct(order + ("Q" if big else "I"))
        self._single = _singles(order, self.offset_size)

    def read(self, offset: int, n: int, what: str) -> bytes:
        if offset < 0 or offset + n > self.size:
            raise _Damage(f"{what} at byte {offset} (+{n}) lies beyond the end of the file ({self.size} bytes)")
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


def _check_pixels(t: _Tiff, tags: dict[int, tuple[int, int, bytes]], index: int) -> None:
    """An uncompressed image must hold the bytes its size declares."""
    def one(tag: int, default: int) -> int:
        entry = tags.get(tag)
        if entry is None:
            return default
        value = t.single(entry)
        if value is not None:
            return value
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
        raise _Damage(f"IFD {index} declares {width} x {height} uncompressed pixels ({needed} bytes) but its strips "
                      f"hold {held} bytes")


@contextmanager
def _mapped(path: str) -> Iterator[mmap.mmap]:
    """The file mapped read-only: pages are read only where the walk looks."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


Tags = dict[int, tuple[int, int, bytes]]
KEEP_TAGS = 4096  # a survey keeps the parsed IFDs of chains up to this long, for the TIFF engine to use


def _walk(t: _Tiff, kept: list[Tags] | None = None) -> int:
    """Walk the IFD chain, checking every IFD, strip and tile against the file size; returns the IFD count.

    With ``kept``, each IFD's tags are appended to it (up to :data:`KEEP_TAGS` IFDs).
    """
    offset, index, seen = t.first_ifd(), 0, set()
    if offset == 0:
        raise _Damage("the TIFF has no IFD")
    while offset:
        if offset in seen:
            raise _Damage(f"the IFD chain loops back to byte {offset} after {index} IFDs")
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
                    raise _Damage(f"IFD {index} tag {tag} (bytes {where}-{where + nbytes}) lies beyond the end of "
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
                    raise _Damage(f"IFD {index} {label} {k} (bytes {o}-{o + c}) lies beyond the end of the file "
                                  f"({t.size} bytes)")
        offset, index = nxt, index + 1
    return index


def _planes_mapped(omexml: str, own_name: str) -> int:
    """The number of IFDs the OME-XML maps to planes of this file (1 + the highest IFD index named)."""
    highest = 0
    for m in _TIFFDATA.finditer(omexml):
        attrs = dict(_ATTR.findall(m.group(1)))
        inner = m.group(3) or ""
        ref = _FILENAME.search(inner)
        if ref is not None and os.path.basename(ref.group(1)) != own_name:
            continue  # a plane of another file of the set
        try:
            first = int(attrs.get("IFD", "0"))
            count = int(attrs.get("PlaneCount", "1"))
        except ValueError:
            continue
        highest = max(highest, first + max(count, 1))
    return highest


_PIXELS = re.compile(r"<(?:\w+:)?Pixels\b([^>]*)>(.*?)</(?:\w+:)?Pixels>", re.S)


def _plane_size_mismatch(path: str, first_size: tuple[int, int] | None, omexml: str) -> str | None:
    """An OME-TIFF whose first image, stored from IFD 0 of this file, declares another plane size than
    IFD 0 has (e.g. 2^20 x 2^20 pixels over a 4 x 4 strip): the embedded XML is forged or damaged."""
    m = _PIXELS.search(omexml)
    if m is None or first_size is None:
        return None
    td = _TIFFDATA.search(m.group(2))
    if td is None:
        return None  # not an OME-TIFF's XML: the sizes come from the TIFF itself
    attrs, ref = dict(_ATTR.findall(td.group(1))), _FILENAME.search(td.group(3) or "")
    if attrs.get("IFD", "0") != "0" or (ref is not None and os.path.basename(ref.group(1)) != os.path.basename(path)):
        return None
    pixels = dict(_ATTR.findall(m.group(1)))
    try:
        size_x, size_y = int(pixels["SizeX"]), int(pixels["SizeY"])
    except (KeyError, ValueError):
        return None
    width, height = first_size
    if (size_x, size_y) != (width, height):
        return (f"OME-TIFF's OME-XML declares planes of {size_x} x {size_y} pixels but its IFD 0 holds "
                f"{width} x {height}: the embedded metadata is damaged or forged")
    return None


class Survey(NamedTuple):
    """One walk of a TIFF: what :func:`refuse` and :func:`check` (and the tifffile engine) need from it."""

    damage: str | None  #: a one-line description of damage, or None
    ifds: int  #: IFDs in the chain (0 when damaged)
    description: bytes | None  #: IFD 0's ImageDescription (None when absent, unreadable or too long)
    first_size: tuple[int, int] | None  #: IFD 0's width and length
    #: every IFD's tags, when the file was walked whole from memory, is undamaged and has at most
    #: :data:`KEEP_TAGS` IFDs (values are read with a :class:`_Tiff` over the same snapshot)
    tags: tuple[Tags, ...] | None = None


_last: tuple[tuple[str, int, int, int], Survey] | None = None


def _stamp(path: str) -> tuple[str, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def survey(path: str, kind: tuple[str, bool]) -> Survey:
    """Walk ``path`` once (mapped read-only); the last file's survey is kept while it is unchanged, so the
    checks before and after the engine share one walk."""
    global _last
    snap = snapshot.current(path)
    whole = snap is not None and snap.complete
    stamp = (path, -1, -1, snap.token) if snap is not None and whole else _stamp(path)
    if stamp is not None and _last is not None and _last[0] == stamp:
        return _last[1]
    description: bytes | None = None
    first_size: tuple[int, int] | None = None

    def first(t: _Tiff, tags: Tags) -> None:
        nonlocal description, first_size
        entry = tags.get(_DESCRIPTION)
        description = t.bytes_of(entry, MAX_DESCRIPTION, "ImageDescription") if entry else None
        widths = t.values(tags[256], "ImageWidth") if 256 in tags else None
        heights = t.values(tags[257], "ImageLength") if 257 in tags else None
        if widths and heights:
            first_size = (widths[0], heights[0])

    try:
        with _mapped(path) if not whole or snap is None else nullcontext(snap.data) as data:
            t = _Tiff(data, *kind)
            kept: list[Tags] = []
            try:
                count = _walk(t, kept)
            except (_Damage, struct.error, ValueError, OverflowError):
                # what IFD 0 says is still wanted (its description is checked for DTDs)
                with suppress(_Damage, struct.error, ValueError, OverflowError):
                    first(t, t.ifd(t.first_ifd(), 0)[0])
                raise
            first(t, kept[0])
            result = Survey(None, count, description, first_size,
                            tuple(kept) if whole and count <= KEEP_TAGS else None)
    except _Damage as exc:
        result = Survey(f"damaged or truncated TIFF: {exc}", 0, description, first_size)
    except (OSError, struct.error, ValueError, OverflowError, MemoryError) as exc:
        result = Survey(f"damaged TIFF: {type(exc).__name__}: {exc}", 0, description, first_size)
    if stamp is not None and (whole or stamp == _stamp(path)):
        _last = (stamp, result)
    return result


def check(path: str, head: bytes, omexml: str) -> str | None:
    """Return a one-line description of damage, or None when the file looks whole.

    Parameters
    ----------
    path : str
        The file that was read.
    head : bytes
        Its first bytes (4096, as the engine chooser read them).
    omexml : str
        What the engine produced for it.
    """
    try:
        kind = _TIFF.get(head[:4])
        if kind is None:
            return None
        walked = survey(path, kind)
        if walked.damage is not None or walked.ifds >= MAX_IFDS:
            return walked.damage
        if "TiffData" not in omexml:
            return None  # no plane is mapped to an IFD: nothing more to compare
        wanted = _planes_mapped(omexml, os.path.basename(path))
        if wanted > walked.ifds:
            return f"truncated OME-TIFF: its OME-XML maps planes to {wanted} IFDs but the file holds {walked.ifds}"
        return _plane_size_mismatch(path, walked.first_size, omexml)
    except Exception as exc:  # noqa: BLE001 - a check must never cost the file its result
        return f"could not check the file: {type(exc).__name__}: {exc}"


def _escapes(ref: str) -> bool:
    """Whether a file reference leaves the folder of the file that holds it."""
    if ref.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]|^[a-z][a-z0-9+.-]*://", ref, re.I):
        return True
    return ".." in re.split(r"[\\/]", ref)


def refuse(path: str, head: bytes) -> str | None:
    """Return why the file must not be handed to an engine, or None.

    Embedded XML (a TIFF's ImageDescription, or an XML file itself) that declares a DTD or entities is
    refused, since the engine's XML parser would resolve them (files, URLs, entity bombs); so is
    OME-XML whose ``FileName``/``MetadataFile`` references leave the file's folder, and a TIFF whose
    IFD chain loops or points beyond the end of the file (Bio-Formats would loop until out of memory).
    """
    try:
        return _refuse(path, head)
    except Exception as exc:  # noqa: BLE001 - never raise; the engine then reports on the file
        return f"could not check the file: {type(exc).__name__}: {exc}"


def declares_dtd(data: bytes | mmap.mmap, end: int | None = None) -> bool:
    """Whether ``data[:end]`` holds ``<!DOCTYPE`` or ``<!ENTITY`` in UTF-8/ASCII or UTF-16 (a few GB/s)."""
    return _DTD_MARKERS.search(data, 0, len(data) if end is None else end) is not None


def _ole_dtd(path: str) -> str | None:
    """The first stream of an OLE2 compound document (OIB, ZVI) that declares a DTD or entities, or None."""
    from metaextract.engines.ole.storage import OleError, OleFile

    budget = MAX_SCAN
    try:
        with OleFile(path) as ole:
            for stream in ole.streams():
                data = ole.read(stream, budget)
                budget -= len(data)
                if declares_dtd(data):
                    return "/".join(stream)
                if budget <= 0:
                    break
    except (OleError, OSError):
        return None  # damaged: the engine says so on its own terms (the file's bytes were scanned too)
    return None


def _bytes_dtd(path: str, head: bytes) -> str | None:
    """Why a file that is not a TIFF must be refused for DTD markup in its bytes (or its OLE streams)."""
    snap = snapshot.current(path)
    if snap is not None and snap.complete:
        found = declares_dtd(snap.data)
    else:
        try:
            with _mapped(path) as data:
                found = declares_dtd(data, min(len(data), MAX_SCAN))
        except ValueError:  # an empty file cannot be mapped
            found = False
    if found:
        return f"its embedded XML {DTD_REFUSED}"
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        stream = _ole_dtd(path)
        if stream is not None:
            return f"its embedded XML (OLE stream {stream!r}) {DTD_REFUSED}"
    return None


def _refuse(path: str, head: bytes) -> str | None:
    kind = _TIFF.get(head[:4])
    if kind is None:
        found = _bytes_dtd(path, head)
        if found is not None:
            return found
    walked = survey(path, kind) if kind else None
    text: bytes | None = walked.description if walked else None
    if kind is None and head.lstrip()[:1] == b"<":
        with open(path, "rb") as fh:
            text = fh.read(MAX_DESCRIPTION)
    where = "its embedded XML (TIFF ImageDescription)" if kind else "its XML"
    if not text:
        return walked.damage if walked else None
    if b"<!" in text and _DTD.search(text):  # (the cheap test first: a plate's descriptions have neither)
        return f"{where} {DTD_REFUSED}"
    refs = _REFERENCES.findall(text) if b"FileName" in text or b"MetadataFile" in text else []
    for ref in refs:
        name = ref.decode("utf-8", "replace")
        if _escapes(name):
            return f"{where} references {name!r}, outside the file's folder; refused, not followed"
    return walked.damage if walked else None


@lru_cache(maxsize=1024)
def _real_root(root: str) -> str:
    """A registered folder, resolved once per process: if it is re-pointed later, its files resolve
    elsewhere and are refused, which is the safe side."""
    return os.path.realpath(root)


DIR_TTL = 0.1  # seconds a folder's resolved path is reused (a plate's files share a handful of folders)
_dirs: dict[str, tuple[float, str]] = {}


def _real_dir(folder: str) -> str:
    now = time.monotonic()
    hit = _dirs.get(folder)
    if hit is not None and now - hit[0] < DIR_TTL:
        return hit[1]
    if len(_dirs) > 4096:
        _dirs.clear()
    real = os.path.realpath(folder)
    _dirs[folder] = (now, real)
    return real


def _resolve(path: str) -> tuple[str, os.stat_result | None]:
    """``os.path.realpath(path)``, its folder part resolved at most every :data:`DIR_TTL` seconds; the file is
    always looked at (a symlink is resolved in full). Also the file's ``lstat`` when it is no symlink."""
    folder, name = os.path.split(path)
    if not folder or name in ("", ".", "..") or not os.path.isabs(path):
        return os.path.realpath(path), None
    try:
        st = os.lstat(path)
    except OSError:
        return os.path.realpath(path), None
    if stat.S_ISLNK(st.st_mode):
        return os.path.realpath(path), None
    return os.path.join(_real_dir(folder), name), st


def outside_root(path: str, root: str) -> str | None:
    """Why ``path`` must not be read as a file of the folder ``root`` (it resolves outside it), or None.

    Registration never follows a symlink out of the folder; this catches a link retargeted afterwards
    (a retargeted folder link within :data:`DIR_TTL` seconds of the last file read from it).
    """
    return outside_root_stat(path, root)[0]


def outside_root_stat(path: str, root: str) -> tuple[str | None, os.stat_result | None]:
    """:func:`outside_root`, and the file's ``stat`` when it was taken on the way (the file is no symlink)."""
    try:
        (real, st), top = _resolve(path), _real_root(root)
    except (OSError, ValueError) as exc:
        return f"cannot resolve the path: {exc}", None
    if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
        return None, st
    return f"resolves to {real}, outside the registered folder {top}; not followed", None


def in_folder(path: str, folder: str) -> bool:
    """Whether ``path`` (a file an engine would read beside the one it was given: a companion, a sibling
    of a group) resolves into ``folder`` itself; a link that leads anywhere else is not to be opened, so
    that no file outside the registered folders is read because of where a link points."""
    try:
        return os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder)
    except (OSError, ValueError):
        return False
