"""The tifffile engine: plain TIFF and MetaSeries (MetaXpress) TIFF, as Bio-Formats 7.3.1 reads them.

It claims a file only when the bytes say it is a kind the conformance test has proven
(``tests/test_conformance.py``): a TIFF whose tags are all baseline or EXIF/XMP/ICC/Photoshop tags, with
no description or a one-line description that no Bio-Formats reader treats specially, whose pages all
have the same shape; or a single-plane MetaSeries TIFF with only the ``PlaneInfo`` properties whose
mapping has been checked. It also declines when a sibling file could make Bio-Formats group the TIFF
with others (a MetaMorph ``.nd``, a MetaXpress ``.HTD``, a Micro-Manager ``metadata.txt`` …). Every
other TIFF (OME-TIFF, ImageJ, STK, LSM, Micro-Manager, pyramids, …) is left to Bio-Formats.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from metaextract.engines.base import ClaimMemo, ExtractionError, UnsupportedFormatError, package_version
from metaextract.engines.tiff import scan as _tiffscan
from metaextract.engines.tiff.metaseries import MetaSeries, metaseries_tree, metaseries_values, parse_metaseries
from metaextract.ome import writer as ox

NAME = "tifffile"
CLAIM = 50  # magic bytes plus a structural check: beats Bio-Formats' catch-all 1
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
T = TypeVar("T")

#: Tags that change nothing in what Bio-Formats' TiffReader reports beyond what this engine writes.
PLAIN_TAGS = frozenset({
    11, 254, 255, 256, 257, 258, 259, 262, 266, 270, 271, 272, 273, 274, 277, 278, 279, 280, 281, 282, 283,
    284, 296, 305, 306, 316, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 347, 529, 530, 531, 532,
    700, 32781, 33432, 34377, 34665, 34675, 34853, 36867, 37398,
})
#: Siblings (in the folder, or for ``PARENT_COMPANIONS`` in the parent) that can make a Bio-Formats
#: reader take the TIFF as part of a set.
COMPANION_SUFFIXES = (
    ".nd", ".htd", ".xdce", ".xml", ".txt", ".exp", ".apl", ".tnb", ".mtb", ".wpi", ".pattern", ".lei",
    ".oif", ".vsi", ".ome", ".idx", ".mea", ".flex", ".pnl", ".ets", ".csv", ".cfg", ".db", ".zpo", ".ini",
)
PARENT_COMPANIONS = (".htd", ".xml", ".idx", ".mea", ".exp", ".db", ".pnl")
LISTING_TTL = 60.0
# The DateTime spellings Bio-Formats 7.3.1 was seen to read (live, for plain and MetaSeries TIFFs):
# yyyy:MM:dd or yyyyMMdd (MetaMorph's), a time, and optionally milliseconds; exactly three digits of them,
# since Java reads ".7" as 7 ms
_DATE = re.compile(r"(?:(\d{4}):(\d{2}):(\d{2})|(\d{4})(\d{2})(\d{2})) (\d{2}):(\d{2}):(\d{2})(\.\d{3})?")
_VENDOR_HINTS = ("imagej=", "<", "aperio", "improvision", "hamamatsu", "metamorph", "metaseries", "nikon",
                 "leica", "zeiss", "olympus", "perkinelmer", "ionpath", "trestle", "imaris", "ventana",
                 "slidebook", "fluoview", "visitron", "andor", "photon", "pco", "hamamatsu")
_PIXEL = {(1, 8): "uint8", (2, 8): "int8", (1, 16): "uint16", (2, 16): "int16", (1, 32): "uint32",
          (2, 32): "int32", (3, 32): "float", (3, 64): "double"}


@dataclass
class TiffInfo:
    """What the engine needs from a TIFF, read once (by ``claim``) and used again by ``extract``."""

    kind: str  # "plain" or "metaseries"
    name: str
    big_endian: bool
    size_x: int
    size_y: int
    planes: int
    samples: int
    bits: int
    pixel_type: str
    description: str | None
    date: str | None
    physical: tuple[float | None, float | None]
    exif: dict[str, Any] | None
    metaseries: MetaSeries | None = None
    notes: list[str] = field(default_factory=list)


class _Listings:
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


def _companion(path: str, listings: _Listings) -> str | None:
    if path.startswith("/") and "/." not in path and "//" not in path:
        folder = path[:path.rfind("/")] or "/"  # an absolute, normal path (what extraction is given)
    else:
        folder = os.path.dirname(os.path.abspath(path))
    return (listings.first_ending(folder, COMPANION_SUFFIXES)
            or listings.first_ending(os.path.dirname(folder), PARENT_COMPANIONS))


def _java_resolution(value: tuple[int, int] | None, unit: int | None) -> float | None:
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


def _resolution(page: Any, code: int) -> float | None:
    tag = page.tags.get(code)
    unit_tag = page.tags.get(296)
    return _java_resolution(tuple(tag.value) if tag is not None else None,
                            int(unit_tag.value) if unit_tag is not None else None)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).rstrip("\x00")


def _text(page: Any, code: int) -> str | None:
    tag = page.tags.get(code)
    return None if tag is None else _as_text(tag.value)


def _date(page: Any) -> str | None | bool:
    """A tifffile page's DateTime tag as :func:`_iso_date` gives it."""
    return _iso_date(_text(page, 306))


def _iso_date(raw: str | None) -> str | None | bool:
    """The DateTime tag as ISO 8601; None without the tag; False when Bio-Formats might read it otherwise."""
    if raw is None:
        return None
    m = _DATE.fullmatch(raw.strip())
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


def _plain_description_ok(text: str | None, software: str | None) -> bool:
    if text is not None:
        # a NUL inside: Bio-Formats reads the tag as several strings, one line each ("a; b;"), not written here
        if "\n" in text or "\r" in text or "\x00" in text or "=" in text or not text.strip():
            return False
        lowered = text.lower()
        if any(hint in lowered for hint in _VENDOR_HINTS):
            return False
    if software is not None:
        lowered = software.lower()
        if any(hint in lowered for hint in _VENDOR_HINTS[2:]):
            return False
    return True


def _classify_fast(path: str, h: _tiffscan.Header) -> TiffInfo | None | bool:
    """:func:`inspect_tiff`'s decision from :func:`_tiffscan.scan`'s header; True: ask tifffile instead."""
    if 34665 in h.codes or any(code in h.codes and code not in h.rationals for code in (282, 283)):
        return True  # EXIF (tifffile decodes it) or a resolution that is not one rational
    first = h.pages[0]
    if first.has_subifds:
        return None
    description, software = _as_text(h.text.get(270)), _as_text(h.text.get(305))
    meta = parse_metaseries(description) if description and "<MetaData>" in description else None
    if meta is not None:
        if len(h.pages) != 1 or not meta.supported or not h.codes <= PLAIN_TAGS:
            return None
        kind = "metaseries"
    else:
        if not h.codes <= PLAIN_TAGS or not _plain_description_ok(description, software):
            return None
        kind = "plain"
    if len(h.pages) > 1 and any(p.has_subifds or p.subfiletype != 0 or p.shape != first.shape for p in h.pages):
        return None
    samples, bits, photometric = first.samples, first.bits, first.photometric
    pixel_type = _PIXEL.get((first.sampleformat, bits))
    if pixel_type is None or photometric not in (0, 1, 2, 3) or samples not in (1, 3):
        return None
    if (samples == 3) != (photometric == 2) or (kind == "metaseries" and samples != 1):
        return None
    date = _iso_date(_as_text(h.text.get(306)))
    if date is False:
        return None
    return TiffInfo(
        kind=kind, name=os.path.basename(path), big_endian=h.big_endian, size_x=first.width,
        size_y=first.length, planes=len(h.pages), samples=samples, bits=bits, pixel_type=pixel_type,
        description=description, date=date if isinstance(date, str) else None,
        physical=(_java_resolution(h.rationals.get(282), h.resolution_unit),
                  _java_resolution(h.rationals.get(283), h.resolution_unit)),
        exif=None, metaseries=meta,
    )


def inspect_tiff(path: str, listings: _Listings | None = None, *, fast: bool = True) -> TiffInfo | None:
    """Classify ``path``; None when this engine should leave the file to Bio-Formats.

    A clean classic TIFF is read by :mod:`._tiffscan`; anything it stands aside for (and every file with
    ``fast=False``) by tifffile. Both give the same answer (``tests/test_engines_tiff.py``).
    """
    header = _tiffscan.scan(path) if fast else None
    verdict = _classify_fast(path, header) if header is not None else True
    info = _inspect_tifffile(path) if verdict is True else verdict if isinstance(verdict, TiffInfo) else None
    if info is not None and listings is not None and _companion(path, listings) is not None:
        return None
    return info


def _inspect_tifffile(path: str) -> TiffInfo | None:
    import tifffile

    try:
        tf = tifffile.TiffFile(path)
    except Exception:  # noqa: BLE001 - anything tifffile cannot parse goes to Bio-Formats
        return None
    with tf:
        pages = tf.pages
        first = pages.first
        if first.tags.get(330) is not None:  # SubIFDs: pyramids
            return None
        description = _text(first, 270)
        software = _text(first, 305)
        meta = parse_metaseries(description) if description and "<MetaData>" in description else None
        codes = {tag.code for tag in first.tags}
        if meta is not None:
            if len(pages) != 1 or not meta.supported or not codes <= PLAIN_TAGS:
                return None
            kind = "metaseries"
        else:
            if not codes <= PLAIN_TAGS or not _plain_description_ok(description, software):
                return None
            kind = "plain"
        shape = (first.imagewidth, first.imagelength, first.samplesperpixel, first.bitspersample,
                 first.sampleformat, first.photometric)
        count = len(pages)
        if count > 1:
            for page in pages:
                if not isinstance(page, tifffile.TiffPage):
                    return None
                if page.tags.get(330) is not None or int(page.subfiletype) != 0:
                    return None
                if (page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                        page.sampleformat, page.photometric) != shape:
                    return None
        samples, bits, photometric = first.samplesperpixel, first.bitspersample, int(first.photometric)
        pixel_type = _PIXEL.get((int(first.sampleformat), bits))
        if pixel_type is None or photometric not in (0, 1, 2, 3) or samples not in (1, 3):
            return None
        if (samples == 3) != (photometric == 2) or (kind == "metaseries" and samples != 1):
            return None
        date = _date(first)
        if date is False:
            return None
        exif = first.tags.get(34665)
        exif_value = exif.value if exif is not None else None
        if exif is not None and (count != 1 or not isinstance(exif_value, dict)):
            return None
        info = TiffInfo(
            kind=kind, name=os.path.basename(path), big_endian=tf.byteorder == ">",
            size_x=first.imagewidth, size_y=first.imagelength, planes=count, samples=samples, bits=bits,
            pixel_type=pixel_type, description=description, date=date if isinstance(date, str) else None,
            physical=(_resolution(first, 282), _resolution(first, 283)), exif=exif_value, metaseries=meta,
        )
    return info


def plain_values(info: TiffInfo) -> ox.Values:
    """What of a plain TIFF reaches its OME-XML, written as :func:`plain_tree` writes it."""
    exposure = None
    if info.exif is not None:
        found = info.exif.get("ExposureTime")
        if isinstance(found, tuple) and len(found) == 2 and found[1]:
            exposure = ox.jdouble(found[0] / found[1])
    px, py = info.physical
    return {
        "name": info.name, "date": info.date or None, "description": info.description, "type": info.pixel_type,
        "x": str(info.size_x), "y": str(info.size_y), "c": str(info.samples if info.samples > 1 else 1),
        "t": str(info.planes), "big_endian": "true" if info.big_endian else "false", "bits": str(info.bits),
        "px": None if px is None else ox.jdouble(px), "py": None if py is None else ox.jdouble(py),
        "samples": str(info.samples), "plane": info.exif is not None, "exposure": exposure,
    }


def plain_tree(v: ox.Values) -> ox.El:
    """The Image Bio-Formats' TiffReader reports for a plain TIFF, from :func:`plain_values`."""
    image = ox.El("Image", {"ID": "Image:0", "Name": ox.string(v["name"])})
    if v["date"] is not None:
        image.add(ox.El("AcquisitionDate", text=ox.string(v["date"])))
    if v["description"] is not None:
        image.add(ox.El("Description", text=ox.string(v["description"])))
    pixels = image.add(ox.pixels(
        pixel_type=ox.string(v["type"]),
        size=(ox.string(v["x"]), ox.string(v["y"]), 1, ox.string(v["c"]), ox.string(v["t"])),
        big_endian=ox.string(v["big_endian"]), significant_bits=ox.string(v["bits"]),
        physical=(ox.maybe(v["px"]), ox.maybe(v["py"]), None),
    ))
    pixels.add(ox.channel(0, 0, ox.string(v["samples"])))
    pixels.add(ox.El("MetadataOnly"))
    if v["plane"]:
        plane = {"TheC": "0", "TheT": "0", "TheZ": "0"}
        if v["exposure"] is not None:
            plane.update(ExposureTime=ox.string(v["exposure"]), ExposureTimeUnit="s")
        pixels.add(ox.El("Plane", plane))
    return image


def plain_image(info: TiffInfo) -> ox.El:
    """The Image Bio-Formats' TiffReader reports for a plain TIFF."""
    return plain_tree(plain_values(info))


class TiffKindEngine(Generic[T]):
    """The claim and extract of an engine for one kind of TIFF read with tifffile.

    A subclass says which files may be its kind at all (:meth:`wants`, from the name and the first bytes),
    how to read one (:meth:`inspect`: None when the file is not of the kind proven) and how to write its
    OME-XML (:meth:`render`). What ``claim`` found is kept for ``extract`` (:class:`ClaimMemo`).
    """

    name: str
    score: int = CLAIM  #: what ``claim`` answers for a file of its kind
    what: str = "a TIFF"  #: the kind, for messages ("not {what} of a kind this engine reads")

    def __init__(self) -> None:
        self._listings = _Listings()
        self._memo: ClaimMemo[T] = ClaimMemo()

    def version(self) -> str:
        """The tifffile version (the library that reads the file)."""
        return package_version("tifffile")

    def wants(self, path: str, head: bytes) -> bool:
        return head.startswith(TIFF_MAGIC)

    def inspect(self, path: str, listings: _Listings | None) -> T | None:
        raise NotImplementedError

    def render(self, info: T) -> str:
        raise NotImplementedError

    def claim(self, path: str, head: bytes) -> int:
        """:attr:`score` for a file of the kind this engine has been shown to read as Bio-Formats does, else 0."""
        if not self.wants(path, head):
            return 0
        try:
            info = self.inspect(path, self._listings)
        except Exception:  # noqa: BLE001 - a file tifffile cannot parse is simply not claimed
            return 0
        if info is None:
            return 0
        self._memo.keep(path, info)
        return self.score

    def extract(self, path: str) -> str:
        """The OME-XML of ``path`` (raises :class:`ExtractionError` for a file this engine declines)."""
        info = self._memo.take(path)
        if info is None:
            try:
                with open(path, "rb") as fh:
                    head = fh.read(4)
            except OSError as exc:
                raise ExtractionError(f"cannot read the file: {exc}") from None
            if not head.startswith(TIFF_MAGIC):
                raise UnsupportedFormatError(f"not a TIFF file (first 4 bytes: {head!r})")
            try:
                info = self.inspect(path, None)
            except Exception as exc:  # noqa: BLE001 - a broken file is an extraction error, never another type
                raise ExtractionError(f"cannot read {self.what}: {type(exc).__name__}: {exc}") from None
            if info is None:
                raise ExtractionError(f"not {self.what} of a kind this engine reads (use Bio-Formats)")
        return self.render(info)


class TiffEngine(TiffKindEngine[TiffInfo]):
    """Plain and MetaSeries TIFF through tifffile; everything else is declined (Bio-Formats reads it)."""

    name = NAME
    what = "a plain or MetaSeries TIFF"

    def inspect(self, path: str, listings: _Listings | None) -> TiffInfo | None:
        return inspect_tiff(path, listings)

    def render(self, info: TiffInfo) -> str:
        if info.kind == "metaseries" and info.metaseries is not None:
            return ox.templated(metaseries_tree, metaseries_values(info.metaseries, info))
        return ox.templated(plain_tree, plain_values(info))
