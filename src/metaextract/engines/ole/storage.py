"""A small, bounded reader of OLE2 compound documents (Microsoft's Compound File Binary format).

Olympus ``.oib`` and Zeiss ``.zvi`` files are compound documents: a 512-byte header, a FAT (one 32-bit
"next sector" entry per sector, its own sectors listed by the header's 109-entry DIFAT and a chain of
DIFAT sectors), a directory of 128-byte entries kept as a red-black tree of siblings under each storage,
and a mini stream (small streams stored in 64-byte mini sectors of the root entry's stream, chained by
the mini FAT). This module reads the header, the FAT, the mini FAT and the directory, and the bytes of a
stream (or only its first bytes), and nothing else; :meth:`OleFile.extents` tells where a stream's bytes
lie in the file (the tests edit copies in place through it).

Every structure comes from an untrusted file, so every walk is bounded: a sector chain may not visit a
sector twice (a looping FAT raises) nor run longer than the file has sectors, every sector must lie
inside the file (a truncated file raises when a stream that is read reaches past its end, not before),
the directory tree may not revisit an entry nor hold two entries of one name in a storage, and no
allocation exceeds what the file's size allows.
Errors are :class:`OleError` (a ``ValueError``), with a one-line reason.

It also holds the Java spellings both OLE2 engines need to read strings as Bio-Formats' readers do
(``String.trim``, ``Integer.parseInt``, ``Double.parseDouble`` for decimal spellings, ``Float.toString``,
``DataTools.stripString``); a spelling Java would reject raises :class:`JavaNumberError`.

Sector sizes of 512 and 4096 bytes are accepted whatever the header's major version says (AxioVision
writes version 3 files with 4096-byte sectors, which Apache POI reads too); a version 3 stream size is
its low 32 bits, as the format says.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from metaextract.closing import Closing
from metaextract.ome import writer as ox

MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEADER_SIZE = 512
ENTRY_SIZE = 128
FREESECT = 0xFFFFFFFF
ENDOFCHAIN = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
DIFSECT = 0xFFFFFFFC
MAXREGSECT = 0xFFFFFFFA
NOSTREAM = 0xFFFFFFFF
#: directory entry types
EMPTY, STORAGE, STREAM, ROOT = 0, 1, 2, 5


class OleError(ValueError):
    """The compound document is damaged or not one (the message says how, in one line)."""


@dataclass
class Entry:
    """One directory entry: a storage (folder) or a stream (file) and where its bytes are."""

    index: int
    name: str
    kind: int
    start: int
    size: int
    left: int
    right: int
    child: int
    path: tuple[str, ...] = ()
    children: list[int] = field(default_factory=list)

    @property
    def is_stream(self) -> bool:
        return self.kind == STREAM

    @property
    def is_storage(self) -> bool:
        return self.kind in (STORAGE, ROOT)


def is_ole(head: bytes) -> bool:
    """Whether ``head`` starts with the compound document signature."""
    return head[:8] == MAGIC


class OleFile(Closing):
    """An open compound document: ``streams()`` lists it, ``read(path)`` gives a stream's bytes.

    Paths are tuples of entry names below the root (``("Image", "Contents")``); :meth:`find` looks one
    up from a ``/``-separated string. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        try:
            self._load()
        except BaseException:
            self._fh.close()
            raise

    # -- life cycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        self._fh.close()

    # -- loading -------------------------------------------------------------------------------------
    def _load(self) -> None:
        fh = self._fh
        fh.seek(0, os.SEEK_END)
        self.length = fh.tell()
        fh.seek(0)
        header = fh.read(HEADER_SIZE)
        if len(header) < 8 or header[:8] != MAGIC:
            raise OleError("not an OLE2 compound document (no D0CF11E0 signature)")
        if len(header) < HEADER_SIZE:
            raise OleError(f"truncated OLE2 header ({len(header)} of {HEADER_SIZE} bytes)")
        self.major = struct.unpack_from("<H", header, 0x1A)[0]
        (byte_order, sector_shift, mini_shift) = struct.unpack_from("<HHH", header, 0x1C)
        if byte_order != 0xFFFE:
            raise OleError(f"OLE2 byte order mark is 0x{byte_order:04X}, not 0xFFFE")
        if sector_shift not in (9, 12):
            raise OleError(f"OLE2 sector shift {sector_shift} (only 512- and 4096-byte sectors are read)")
        if mini_shift != 6:
            raise OleError(f"OLE2 mini sector shift {mini_shift} (only 64-byte mini sectors are read)")
        self.sector_size = 1 << sector_shift
        self.mini_sector_size = 1 << mini_shift
        (n_fat, first_dir, _txn, self.mini_cutoff, first_minifat, n_minifat, first_difat,
         n_difat) = struct.unpack_from("<IIIIIIII", header, 0x2C)
        if self.mini_cutoff != 4096:
            raise OleError(f"OLE2 mini stream cutoff {self.mini_cutoff}, not 4096")
        # sectors that exist in the file (a last partial sector counts: its bytes are read as far as present)
        self.sector_count = max(0, (self.length - self.sector_size + self.sector_size - 1) // self.sector_size)
        if n_fat > self.sector_count or n_difat > self.sector_count or n_minifat > self.sector_count:
            raise OleError(f"OLE2 header counts more FAT/DIFAT/mini FAT sectors than the file has "
                           f"({n_fat}/{n_difat}/{n_minifat} of {self.sector_count})")
        fat_sectors = self._difat(header, first_difat, n_difat, n_fat)
        self._fat = self._read_table(fat_sectors, "FAT")
        dir_chain = self._chain(first_dir, self._fat, self.sector_count, "directory")
        raw_dir = b"".join(self._sector(s) for s in dir_chain)
        self.entries = self._directory(raw_dir)
        root = self.entries[0]
        if first_minifat in (ENDOFCHAIN, FREESECT) or n_minifat == 0:
            self._minifat: list[int] = []
        else:
            self._minifat = self._read_table(self._chain(first_minifat, self._fat, self.sector_count,
                                                         "mini FAT"), "mini FAT")
        self._ministream_chain: list[int] | None = None
        self._root = root
        self._by_path = {entry.path: entry for entry in self.entries if entry.path or entry.index == 0}
        if len(self._by_path) != 1 + sum(1 for entry in self.entries if entry.path):
            raise OleError("two OLE2 directory entries with the same name in one storage")

    def _difat(self, header: bytes, first: int, count: int, n_fat: int) -> list[int]:
        """The FAT's own sectors: the header's 109 slots, then the DIFAT chain (each sector's last slot links)."""
        found = [s for s in struct.unpack_from("<109I", header, 0x4C) if s <= MAXREGSECT]
        per = self.sector_size // 4 - 1
        seen: set[int] = set()
        sector = first
        while sector not in (ENDOFCHAIN, FREESECT) and len(found) < n_fat:
            if sector > MAXREGSECT or sector >= self.sector_count:
                raise OleError(f"DIFAT sector {sector} lies outside the file")
            if sector in seen or len(seen) >= max(count, 1) + 1:
                raise OleError("the DIFAT chain loops")
            seen.add(sector)
            values = struct.unpack(f"<{per + 1}I", self._sector(sector))
            found += [s for s in values[:per] if s <= MAXREGSECT]
            sector = values[per]
        if len(found) < n_fat:
            raise OleError(f"the DIFAT lists {len(found)} FAT sectors, the header says {n_fat}")
        return found[:n_fat]

    def _read_table(self, sectors: list[int], what: str) -> list[int]:
        out: list[int] = []
        for sector in sectors:
            if sector >= self.sector_count:
                raise OleError(f"{what} sector {sector} lies outside the file")
            data = self._sector(sector)
            out.extend(struct.unpack(f"<{len(data) // 4}I", data[: len(data) // 4 * 4]))
        return out

    def _sector(self, sector: int, *, whole: bool = True) -> bytes:
        """The bytes of a regular sector (a short last sector is padded only if ``whole`` is False)."""
        if sector > MAXREGSECT or sector >= self.sector_count:
            raise OleError(f"sector {sector} lies outside the file (truncated?)")
        at = (sector + 1) * self.sector_size
        self._fh.seek(at)
        data = self._fh.read(self.sector_size)
        if len(data) < self.sector_size:
            if whole:
                raise OleError(f"sector {sector} is cut short by the end of the file (truncated)")
            data += bytes(self.sector_size - len(data))
        return data

    @staticmethod
    def _chain(start: int, table: list[int], limit: int, what: str, *, stop: int | None = None) -> list[int]:
        """Follow ``table`` from ``start``; every sector below ``limit``, none twice; at most ``stop`` sectors."""
        out: list[int] = []
        seen: set[int] = set()
        sector = start
        while sector != ENDOFCHAIN:
            if stop is not None and len(out) >= stop:
                break
            if sector > MAXREGSECT or sector >= limit:
                raise OleError(f"the {what} chain leaves the file (sector {sector})")
            if sector in seen:
                raise OleError(f"the {what} chain loops (sector {sector} twice)")
            seen.add(sector)
            out.append(sector)
            if sector >= len(table):
                raise OleError(f"the {what} chain reaches sector {sector}, which the FAT does not cover")
            sector = table[sector]
        return out

    def _directory(self, raw: bytes) -> list[Entry]:
        count = len(raw) // ENTRY_SIZE
        if count == 0:
            raise OleError("the OLE2 directory is empty")
        entries: list[Entry] = []
        for i in range(count):
            at = i * ENTRY_SIZE
            name_len = struct.unpack_from("<H", raw, at + 64)[0]
            kind = raw[at + 66]
            left, right, child = struct.unpack_from("<III", raw, at + 68)
            start, size_lo, size_hi = struct.unpack_from("<III", raw, at + 116)
            size = size_lo if self.major == 3 else size_lo | (size_hi << 32)  # v3: high half is garbage
            if name_len > 64 or name_len % 2:
                name_len = 0
            name = raw[at: at + max(0, name_len - 2)].decode("utf-16-le", errors="replace")
            entries.append(Entry(i, name, kind, start, size, left, right, child))
        root = entries[0]
        if root.kind != ROOT:
            raise OleError("the first OLE2 directory entry is not the root")
        root.path = ()
        # walk the tree: each storage's children are the red-black tree under its child pointer
        visited = {0}
        todo = [0]
        while todo:
            parent = entries[todo.pop()]
            stack = [parent.child]
            while stack:
                index = stack.pop()
                if index == NOSTREAM:
                    continue
                if index >= count:
                    raise OleError(f"an OLE2 directory link points past the directory ({index})")
                if index in visited:
                    raise OleError(f"the OLE2 directory tree loops (entry {index} twice)")
                visited.add(index)
                entry = entries[index]
                if entry.kind not in (STORAGE, STREAM):
                    raise OleError(f"OLE2 directory entry {index} has type {entry.kind} inside a storage")
                entry.path = (*parent.path, entry.name)
                parent.children.append(index)
                stack += [entry.left, entry.right]
                if entry.kind == STORAGE:
                    todo.append(index)
        return entries

    # -- reading -------------------------------------------------------------------------------------
    def streams(self) -> list[tuple[str, ...]]:
        """Every stream's path, in directory order."""
        return [e.path for e in self.entries if e.kind == STREAM and e.path]

    def storages(self) -> list[tuple[str, ...]]:
        """Every storage's path below the root, in directory order."""
        return [e.path for e in self.entries if e.kind == STORAGE and e.path]

    def entry(self, path: tuple[str, ...] | str) -> Entry | None:
        """The entry at ``path`` (a tuple, or names joined by ``/``), or None."""
        key = tuple(part for part in path.split("/") if part) if isinstance(path, str) else path
        return self._by_path.get(key)

    def listdir(self, path: tuple[str, ...] | str = ()) -> list[Entry]:
        """The entries directly inside the storage at ``path``, sorted by name."""
        parent = self.entry(path)
        if parent is None or not parent.is_storage:
            raise OleError(f"no storage {path!r} in the compound document")
        return sorted((self.entries[i] for i in parent.children), key=lambda e: e.name)

    def _mini_stream(self) -> list[int]:
        if self._ministream_chain is None:
            root = self._root
            needed = (root.size + self.sector_size - 1) // self.sector_size
            if root.size > self.length:
                raise OleError("the OLE2 mini stream is larger than the file")
            self._ministream_chain = self._chain(root.start, self._fat, self.sector_count, "mini stream",
                                                 stop=needed) if needed else []
        return self._ministream_chain

    def read(self, path: tuple[str, ...] | str, limit: int | None = None) -> bytes:
        """The bytes of the stream at ``path`` (only its first ``limit`` bytes when given)."""
        entry = self.entry(path)
        if entry is None or entry.kind != STREAM:
            raise OleError(f"no stream {path!r} in the compound document")
        want = entry.size if limit is None else min(limit, entry.size)
        if want <= 0:
            return b""
        if entry.size < self.mini_cutoff:
            return self._read_mini(entry, want)
        if entry.size > self.length:
            raise OleError(f"stream {'/'.join(entry.path)} claims {entry.size} bytes, more than the file")
        count = (want + self.sector_size - 1) // self.sector_size
        chain = self._chain(entry.start, self._fat, self.sector_count, "stream", stop=count)
        if len(chain) < count:
            raise OleError(f"stream {'/'.join(entry.path)} ends before its size")
        out = []
        for i, sector in enumerate(chain):
            needed = min(self.sector_size, want - i * self.sector_size)
            if (sector + 1) * self.sector_size + needed > self.length:
                raise OleError(f"stream {'/'.join(entry.path)} is cut short by the end of the file (truncated)")
            out.append(self._sector(sector, whole=False)[:needed])
        return b"".join(out)

    def extents(self, path: tuple[str, ...] | str) -> list[tuple[int, int]]:
        """Where the stream's bytes lie in the file: (offset, length) pieces in stream order."""
        entry = self.entry(path)
        if entry is None or entry.kind != STREAM:
            raise OleError(f"no stream {path!r} in the compound document")
        out: list[tuple[int, int]] = []
        if entry.size < self.mini_cutoff:
            mini = self.mini_sector_size
            per = self.sector_size // mini
            ministream = self._mini_stream()
            count = (entry.size + mini - 1) // mini
            chain = self._chain(entry.start, self._minifat, len(ministream) * per, "mini stream", stop=count)
            for i, m in enumerate(chain):
                at = (ministream[m // per] + 1) * self.sector_size + (m % per) * mini
                out.append((at, min(mini, entry.size - i * mini)))
        else:
            count = (entry.size + self.sector_size - 1) // self.sector_size
            chain = self._chain(entry.start, self._fat, self.sector_count, "stream", stop=count)
            for i, sector in enumerate(chain):
                out.append(((sector + 1) * self.sector_size, min(self.sector_size, entry.size - i * self.sector_size)))
        return out

    def _read_mini(self, entry: Entry, want: int) -> bytes:
        mini = self.mini_sector_size
        count = (want + mini - 1) // mini
        ministream = self._mini_stream()
        limit = len(ministream) * self.sector_size // mini
        chain = self._chain(entry.start, self._minifat, limit, "mini stream", stop=count)
        if len(chain) < count:
            raise OleError(f"stream {'/'.join(entry.path)} ends before its size")
        per = self.sector_size // mini
        out = []
        for i, m in enumerate(chain):
            needed = min(mini, want - i * mini)
            if m * mini + needed > self._root.size:
                raise OleError(f"stream {'/'.join(entry.path)} reaches past the mini stream")
            at = (ministream[m // per] + 1) * self.sector_size + (m % per) * mini
            if at + needed > self.length:
                raise OleError(f"stream {'/'.join(entry.path)} is cut short by the end of the file (truncated)")
            self._fh.seek(at)
            out.append(self._fh.read(needed))
        return b"".join(out)


# -- Java text and numbers, as Bio-Formats' OLE2 readers parse the strings they find -----------------------
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class JavaNumberError(ValueError):
    """Java would throw NumberFormatException on this text (or it is a spelling not reproduced)."""


def parse_int(text: str | None) -> int:
    """``Integer.parseInt``."""
    if text is None or not _INTEGER.fullmatch(text):
        raise JavaNumberError(f"not an int: {text!r}")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise JavaNumberError(f"int out of range: {text!r}")
    return value


def parse_double(text: str | None) -> float:
    """``Double.parseDouble`` for decimal spellings (Java trims the text first)."""
    if text is None:
        raise JavaNumberError("null")
    body = ox.jtrim(text)
    if not _DECIMAL.fullmatch(body):
        raise JavaNumberError(f"not a decimal number: {text!r}")
    if body[-1] in "fFdD":
        body = body[:-1]
    value = float(body)
    if not math.isfinite(value):
        raise JavaNumberError(f"overflows a double: {text!r}")
    return value


def strip_string(text: str) -> str:
    """loci.common ``DataTools.stripString``: drops NUL characters, then trims."""
    return ox.jtrim(text.replace("\x00", ""))


