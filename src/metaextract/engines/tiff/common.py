"""What the TIFF engines share: the sibling files that make Bio-Formats group a TIFF, the DateTime and
resolution tags as Bio-Formats reads them, text tags, and the pixel types of (sample format, bits).

Every name here is public to the ``engines.tiff`` family (and the plate readers): one place to change.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tifffile

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Siblings (in the folder, or for ``PARENT_COMPANIONS`` in the parent) that can make a Bio-Formats
#: reader take the TIFF as part of a set. Not a CellVoyager ``.wpi``: Bio-Formats' CV7000 reader is chosen
#: for the ``.wpi`` alone and reads each TIFF beside it as a plain TIFF (checked live in
#: ``tests/test_filesets_read.py``), so the TIFFs of a CellVoyager measurement stay native.
COMPANION_SUFFIXES = (
    ".nd", ".htd", ".xdce", ".xml", ".txt", ".exp", ".apl", ".tnb", ".mtb", ".pattern", ".lei",
    ".oif", ".vsi", ".ome", ".idx", ".mea", ".flex", ".pnl", ".ets", ".csv", ".cfg", ".db", ".zpo", ".ini",
)
PARENT_COMPANIONS = (".htd", ".xml", ".idx", ".mea", ".exp", ".db", ".pnl")
LISTING_TTL = 60.0
# The DateTime spellings Bio-Formats 7.3.1 was seen to read (live, for plain and MetaSeries TIFFs):
# yyyy:MM:dd or yyyyMMdd (MetaMorph's), a time, and optionally milliseconds; exactly three digits of them,
# since Java reads ".7" as 7 ms
DATE = re.compile(r"(?:(\d{4}):(\d{2}):(\d{2})|(\d{4})(\d{2})(\d{2})) (\d{2}):(\d{2}):(\d{2})(\.\d{3})?")
PIXEL_TYPES = {(1, 8): "uint8", (2, 8): "int8", (1, 16): "uint16", (2, 16): "int16", (1, 32): "uint32",
          (2, 32): "int32", (3, 32): "float", (3, 64): "double"}


class Listings:
    """Folder listings, cached like Bio-Formats caches them, so a plate folder is listed once a minute.

    A listing is kept as one lower-case text of the names, each followed by a newline, with the set of
    the names' endings from their last dot: whether any name has one of some endings is then a few set
    lookups, not a loop over 10,000 names (a name that holds a newline itself can only make a search say
    yes: the engine then declines the file).
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, str, frozenset[str]]] = {}
        self._found: dict[tuple[str, tuple[str, ...]], tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def _listing(self, folder: str) -> tuple[str, frozenset[str]]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(folder)
            if hit and now - hit[0] < LISTING_TTL:
                return hit[1], hit[2]
        try:
            names = os.listdir(folder)
        except OSError:
            names = []
        text = "\n" + "\n".join(names).lower() + "\n" if names else ""
        endings = frozenset(_ENDING.findall(text))
        with self._lock:
            self._cache[folder] = (now, text, endings)
        return text, endings

    def first_ending(self, folder: str, suffixes: tuple[str, ...]) -> str | None:
        """A name in ``folder`` ending with one of ``suffixes`` (lower case), or None; cached with the
        listing, so a plate folder of 20,000 files is searched once, not once per file."""
        key = (folder, suffixes)
        now = time.monotonic()
        with self._lock:
            hit = self._found.get(key)
            if hit and now - hit[0] < LISTING_TTL:
                return hit[1]
        text, endings = self._listing(folder)
        found = None
        for suffix in suffixes:
            if suffix.count(".") == 1 and suffix.startswith(".") and suffix not in endings:
                continue  # no name ends so: nothing to search
            end = text.find(suffix + "\n")
            if end >= 0:
                found = text[text.rfind("\n", 0, end) + 1:end + len(suffix)]
                break
        with self._lock:
            self._found[key] = (now, found)
        return found


_ENDING = re.compile(r"(\.[^.\n]*)\n")


def companion(path: str, listings: Listings) -> str | None:
    if path.startswith("/") and "/." not in path and "//" not in path:
        folder = path[:path.rfind("/")] or "/"  # an absolute, normal path (what extraction is given)
    else:
        folder = os.path.dirname(os.path.abspath(path))
    return (listings.first_ending(folder, COMPANION_SUFFIXES)
            or listings.first_ending(os.path.dirname(folder), PARENT_COMPANIONS))


def java_resolution(value: tuple[int, int] | None, unit: int | None) -> float | None:
    """``1 / resolution`` in µm, as Bio-Formats' ``IFD.getXResolution`` computes it (None when unset)."""
    if value is None:
        return None
    num, den = value
    if num == 0 or den == 0:
        return None
    unit = 2 if unit is None else unit
    factor = 25400 if unit == 2 else 10000 if unit == 3 else 1
    size = 1 / (num / den) * factor  # Java's two roundings (not den / num), so the same last digit
    return size if 1e-7 < size < float("inf") else None


def resolution(page: Any, code: int) -> float | None:
    tag = page.tags.get(code)
    unit_tag = page.tags.get(296)
    return java_resolution(tuple(tag.value) if tag is not None else None,
                            int(unit_tag.value) if unit_tag is not None else None)


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).rstrip("\x00")


def text(page: Any, code: int) -> str | None:
    tag = page.tags.get(code)
    return None if tag is None else as_text(tag.value)


def date(page: Any) -> str | None | bool:
    """A tifffile page's DateTime tag as :func:`iso_date` gives it."""
    return iso_date(text(page, 306))


def iso_date(raw: str | None) -> str | None | bool:
    """The DateTime tag as ISO 8601; None without the tag; False when Bio-Formats might read it otherwise."""
    if raw is None:
        return None
    m = DATE.fullmatch(raw.strip())
    if m is None:
        return False
    g = m.groups()
    year, month, day = (g[0], g[1], g[2]) if g[0] is not None else (g[3], g[4], g[5])
    if not 1900 <= int(year) <= 2999:
        return False  # not checked against Bio-Formats
    try:
        datetime(int(year), int(month), int(day), int(g[6]), int(g[7]), int(g[8]))
    except ValueError:
        return False  # no such day or time: Bio-Formats leaves the date out; not checked further
    millis = g[9] if g[9] and g[9] != ".000" else ""  # Bio-Formats writes .010 as it is and leaves .000 out
    return f"{year}-{month}-{day}T{g[6]}:{g[7]}:{g[8]}{millis}"



@contextmanager
def parsed(path: str) -> Iterator[tifffile.TiffFile | None]:
    """tifffile's reading of ``path``, closed after the block; None when tifffile cannot parse the file
    (Bio-Formats reads it then)."""
    import tifffile

    try:
        tf = tifffile.TiffFile(path)
    except Exception:  # noqa: BLE001 - anything tifffile cannot parse goes to Bio-Formats
        yield None
        return
    with tf:
        yield tf
