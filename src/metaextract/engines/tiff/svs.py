"""Aperio SVS from its TIFF header, as Bio-Formats 7.3.1's SVSReader (a BaseTiffReader) reports it.

An SVS file is a TIFF whose first ImageDescription starts with ``Aperio Image``: the pyramid levels
(tiled), usually a stripped thumbnail after the full level, then a label and a macro image; each
description holds ``key = value`` pairs between ``|``. This engine walks the IFD chain (classic or Big
TIFF, every IFD, tag value, strip and tile checked against the file size) and reads the tags, never a
pixel.

The rules reproduced (SVSReader, checked on the corpus file and on synthetic files against live
Bio-Formats, see tests/test_engines_svs.py):

* every IFD with an ImageWidth is an image; an IFD is the label (else the macro) when its description
  has a ``|``-token without ``=`` containing "label" ("macro"), or, when it has no description or one
  naming neither, when its NewSubfileType is not 0 (absent counts as -1) and the slot is free;
* the other IFDs are the pyramid: IFD 0, then IFDs ``n-1 … 1`` of the pyramid, sorted by (Y, X)
  descending (stable); when IFD 1 has StripByteCounts (the thumbnail) the smallest level is dropped,
  whichever it is; label and macro follow in IFD order; every image is named ``Series <i+1>``;
* each image: X, Y, the pixel type and byte order of its IFD; RGB (3 samples) is one channel of 3
  samples, grey one of 1; order XYCZT; Z = T = 1; its Description is the last ``=``-less token of its
  own description (trimmed); its physical X = Y size is its own description's ``MPP`` (µm);
* global values, the last one met over the IFDs in the order above winning: ``AppMag`` (the one
  Objective's NominalMagnification, the Objective written even without it), ``Date`` + ``Time``
  (``MM/dd/yy HH:mm:ss``: every image's AcquisitionDate), ``Left``/``Top`` (image 0's plane position X/Y in
  mm; with either, every image gets a Plane), ``Dye`` (the first one names every image's channel).

What is declined (left to Bio-Formats): a file not named ``.svs`` or with one IFD, Z stacks
(``TotalDepth``/``OffsetZ``), emission/excitation wavelengths, a label or macro named twice or IFDs of
them not at the end, pyramid levels of another pixel type, a single stripped pyramid level, SubIFDs,
EXIF/DateTime/Artist tags in IFD 0 (BaseTiffReader's), resolution tags in IFD 0 without an ``MPP`` for
image 0, palette or other photometric kinds, descriptions that are not plain ASCII text (or hold NULs),
numbers that are not plain decimals, MPP in (0, 1e-3] (Bio-Formats switches units), dates that are
not strict ``MM/dd/yy HH:mm:ss`` or whose two-digit year is near Java's century pivot, and a ``DisplayColor``
that is not an int (Bio-Formats fails on it).
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from metaextract.engines.base import (
    CLAIM,
    Declined,
    ExtractionError,
    FileContext,
    ReaderEngine,
    UnsupportedFormatError,
)
from metaextract.engines.tiff.ifd import Damage, Tiff, walk
from metaextract.ome import writer as ox

NAME = "svs"
PREFIX = "Aperio Image"
MAX_IFDS = 4096
MAX_DESCRIPTION = 1 << 20
MIN_MPP = 1e-3  # at or below 1e-6 Bio-Formats changes the unit; keep well clear of it
_ASCII = 2
#: IFD 0 tags that change nothing in what BaseTiffReader + SVSReader report beyond what is written here
#: (282/283/296 only when image 0 has an MPP, which then overrides them)
FIRST_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 266, 269, 270, 271, 272, 273, 274, 277, 278, 279, 280, 281, 282,
    283, 284, 296, 305, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 347, 529, 530, 531, 532, 32997,
    32998,
})
PIXEL = {(1, 8): "uint8", (2, 8): "int8", (1, 16): "uint16", (2, 16): "int16", (1, 32): "uint32",
         (2, 32): "int32", (3, 32): "float", (3, 64): "double"}
_NUMBER = re.compile(r"-?\d{1,12}(?:\.\d{1,12})?")
_INT = re.compile(r"-?\d{1,9}")
_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})")
_JAVA_SPACE = "".join(chr(i) for i in range(33))  # what Java's String.trim removes


@dataclass
class Ifd:
    index: int
    width: int
    length: int
    samples: int
    pixel_type: str
    bits: int
    photometric: int
    subfile: int
    stripped: bool
    description: str | None


@dataclass
class Series:
    ifd: Ifd
    comment: str | None
    mpp: float | None


@dataclass
class SvsImage:
    big_endian: bool
    series: list[Series]
    magnification: float | None
    acquired: str | None
    left: float | None
    top: float | None
    dye: str | None


def java_split(text: str, sep: str) -> list[str]:
    """``text.split(sep)`` as Java splits on a literal: trailing empty strings dropped."""
    parts = text.split(sep)
    if len(parts) == 1:
        return parts
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def java_trim(text: str) -> str:
    return text.strip(_JAVA_SPACE)


@contextmanager
def _bytes_of(path: str, whole: bytes | None) -> Iterator[Any]:
    """``whole`` (the file's bytes, when the extraction holds all of them), else the file mapped."""
    if whole is not None:
        yield whole
        return
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield data


def _one(t: Tiff, tags: dict[int, tuple[int, int, bytes]], code: int, default: int | None, what: str) -> int:
    entry = tags.get(code)
    if entry is None:
        if default is None:
            raise Declined(f"{what} has no tag {code}")
        return default
    values = t.values(entry, f"tag {code}")
    if not values or len(set(values)) != 1:
        raise Declined(f"{what}: tag {code} is not one value")
    return int(values[0])


def _description(t: Tiff, entry: tuple[int, int, bytes] | None, what: str) -> str | None:
    if entry is None:
        return None
    if entry[0] != _ASCII:
        raise Declined(f"{what}: an ImageDescription that is not ASCII-typed")
    raw = t.bytes_of(entry, MAX_DESCRIPTION, "ImageDescription")
    if raw is None:
        raise Declined(f"{what}: an ImageDescription longer than {MAX_DESCRIPTION} bytes")
    raw = bytes(raw)
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    if b"\x00" in raw:
        raise Declined(f"{what}: an ImageDescription holding NULs (several strings)")
    if any(b > 0x7E or (b < 0x20 and b not in (9, 10, 13)) for b in raw):
        raise Declined(f"{what}: an ImageDescription that is not plain ASCII text")
    return raw.decode("ascii")


def _ifds(data: Any) -> tuple[bool, list[Ifd], frozenset[int]]:
    """The byte order, every IFD's fields, and IFD 0's tag codes."""
    head = bytes(data[:4])
    kinds = {b"II*\x00": ("<", False), b"MM\x00*": (">", False), b"II+\x00": ("<", True),
             b"MM\x00+": (">", True)}
    if head not in kinds:
        raise UnsupportedFormatError("not a TIFF")
    order, big = kinds[head]
    t = Tiff(data, order, big)
    walk(t)  # every IFD, tag value, strip and tile inside the file (a cut file is damage, not an SVS)
    offset = t.first_ifd()
    seen: set[int] = set()
    out: list[Ifd] = []
    first_codes: frozenset[int] = frozenset()
    while offset:
        index = len(out)
        if offset in seen:
            raise ExtractionError(f"SVS IFD chain loops back at IFD {index}")
        if index >= MAX_IFDS:
            raise Declined(f"more than {MAX_IFDS} IFDs")
        seen.add(offset)
        tags, offset = t.ifd(offset, index)
        what = f"IFD {index}"
        if index == 0:
            first_codes = frozenset(tags)
        if 256 not in tags:
            raise Declined(f"{what} has no ImageWidth (Bio-Formats skips it)")
        if 330 in tags:
            raise Declined(f"{what} has SubIFDs")
        bits_entry = tags.get(258)
        bits_values = t.values(bits_entry, "BitsPerSample") if bits_entry is not None else [1]
        if not bits_values or len(set(bits_values)) != 1:
            raise Declined(f"{what}: mixed bits per sample")
        samples = _one(t, tags, 277, 1, what)
        sample_format = _one(t, tags, 339, 1, what)
        photometric = _one(t, tags, 262, None, what)
        pixel_type = PIXEL.get((sample_format, int(bits_values[0])))
        if pixel_type is None:
            raise Declined(f"{what}: {bits_values[0]}-bit samples of format {sample_format}")
        if not ((samples == 3 and photometric in (2, 6)) or (samples == 1 and photometric in (0, 1))):
            raise Declined(f"{what}: {samples} samples of photometric {photometric}")
        width = _one(t, tags, 256, None, what)
        length = _one(t, tags, 257, None, what)
        if not (0 < width < 1 << 31 and 0 < length < 1 << 31):
            raise Declined(f"{what}: sizes {width} x {length}")
        out.append(Ifd(index=index, width=width, length=length, samples=samples, pixel_type=pixel_type,
                       bits=int(bits_values[0]), photometric=photometric,
                       subfile=_one(t, tags, 254, -1, what),
                       stripped=279 in tags, description=_description(t, tags.get(270), what)))
    return order == ">", out, first_codes


def _tokens(description: str) -> Iterator[str]:
    for line in java_split(description, "\n"):
        yield from java_split(line, "|")


def _number(key: str, value: str) -> float:
    if not _NUMBER.fullmatch(value):
        raise Declined(f"{key} = {value!r} (not a plain decimal number)")
    return float(value)


def _pivot_ok(yy: int, today: date) -> int:
    """The year Java's SimpleDateFormat gives ``yy`` (within 80 years before and 20 after today)."""
    start = today.year - 80
    for year in (start - start % 100 + yy, start - start % 100 + 100 + yy):
        if start + 1 < year < start + 99:
            return year
    raise Declined(f"a two-digit year ({yy:02d}) at Java's century pivot")


def _timestamp(day: str, clock: str) -> str:
    d, t = _DATE.fullmatch(day), _TIME.fullmatch(clock)
    if d is None or t is None:
        raise Declined(f"date {day!r} {clock!r} (not MM/dd/yy HH:mm:ss)")
    year = _pivot_ok(int(d.group(3)), date.today())
    try:
        when = datetime(year, int(d.group(1)), int(d.group(2)), int(t.group(1)), int(t.group(2)),
                        int(t.group(3)))
    except ValueError:
        raise Declined(f"date {day!r} {clock!r} (out of range: Java's lenient parse rolls it over)") from None
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _classify(ifds: list[Ifd]) -> tuple[int, int]:
    """The label and macro IFD indexes (-1 when absent), as SVSReader picks them."""
    label = macro = -1
    for ifd in ifds:
        found_label = found_macro = False
        if ifd.description is not None:
            for token in _tokens(ifd.description):
                if "=" in token:
                    key = java_trim(token[:token.index("=")])
                    if key in ("TotalDepth", "OffsetZ"):
                        raise Declined(f"a Z stack ({key} in IFD {ifd.index})")
                elif "label" in token.lower():
                    if label not in (-1, ifd.index):
                        raise Declined(f"a second label image (IFD {ifd.index})")
                    label, found_label = ifd.index, True
                elif "macro" in token.lower():
                    if macro not in (-1, ifd.index):
                        raise Declined(f"a second macro image (IFD {ifd.index})")
                    macro, found_macro = ifd.index, True
        if ifd.description is None or (not found_label and not found_macro and ifd.subfile != 0):
            if label == -1:
                label = ifd.index
            elif macro == -1:
                macro = ifd.index
            else:
                raise Declined(f"a third image outside the pyramid (IFD {ifd.index})")
    return label, macro


def read_svs(path: str, whole: bytes | None = None) -> SvsImage:
    """Read and classify ``path`` (from ``whole``, all its bytes, when given); raises :class:`Declined` for
    kinds not checked, ExtractionError on damage."""
    if not path.lower().endswith(".svs"):
        raise Declined("not named .svs")
    try:
        with _bytes_of(path, whole) as data:
            big_endian, ifds, first_codes = _ifds(data)
    except Damage as exc:
        raise ExtractionError(f"damaged SVS: {exc}") from None
    if not ifds or ifds[0].description is None or not ifds[0].description.startswith(PREFIX):
        raise UnsupportedFormatError("not an Aperio SVS (IFD 0's description does not start 'Aperio Image')")
    if len(ifds) < 2:
        raise Declined("a single IFD")
    unknown = sorted(first_codes - FIRST_TAGS)
    if unknown:
        raise Declined(f"IFD 0 tags {unknown} (BaseTiffReader would report them)")
    label, macro = _classify(ifds)
    extras = sorted(i for i in (label, macro) if i >= 0)
    n = len(ifds)
    levels = n - len(extras)
    if extras != list(range(levels, n)):
        raise Declined(f"label/macro IFDs {extras} not the last ones")
    if levels < 1 or (levels == 1 and ifds[0].stripped):
        raise Declined("no tiled pyramid level")
    for ifd in ifds[1:levels]:
        if ifd.pixel_type != ifds[0].pixel_type:
            raise Declined(f"IFD {ifd.index} is a level of another pixel type")
    # the order SVSReader fills its series in: IFD 0, then the pyramid backwards, then label and macro
    order = [ifds[0]] + [ifds[levels - s] for s in range(1, levels)] + ifds[levels:]
    found: dict[str, Any] = {}
    dyes: list[str] = []
    series = []
    for ifd in order:
        comment: str | None = None
        mpp: float | None = None
        for token in _tokens(ifd.description) if ifd.description is not None else ():
            if "=" not in token:
                comment = token
                continue
            key, value = java_trim(token[:token.index("=")]), java_trim(token[token.index("=") + 1:])
            if key == "MPP":
                number = _number(key, value)
                if number != 0 and number <= MIN_MPP:
                    raise Declined(f"MPP = {value} (Bio-Formats changes units or drops it)")
                mpp = number or None
            elif key in ("AppMag", "Left", "Top"):
                number = _number(key, value)
                if key == "AppMag" and number <= 0:
                    raise Declined(f"AppMag = {value}")
                found[key] = number
            elif key in ("Date", "Time"):
                found[key] = value
            elif key == "Dye":
                dyes.append(value)
            elif key in ("Emission Wavelength", "Excitation Wavelength"):
                raise Declined(f"{key} (not checked against Bio-Formats)")
            elif key == "DisplayColor" and not _INT.fullmatch(value):
                raise Declined(f"DisplayColor = {value!r} (Bio-Formats fails on it)")
        if comment is not None:
            comment = java_trim(comment)
            if not comment or not comment.isprintable():
                raise Declined(f"IFD {ifd.index}: a description comment that is empty or holds control characters")
        series.append(Series(ifd, comment, mpp))
    pyramid = sorted(series[:levels], key=lambda s: (-s.ifd.length, -s.ifd.width))
    if ifds[1 if levels > 1 else 0].stripped:
        pyramid.pop()  # Bio-Formats' thumbnail rule: looks at IFD 1, drops the smallest level
    final = pyramid + series[levels:]
    if final[0].comment is None:
        raise Declined("image 0 has no description comment (BaseTiffReader's full description would stay)")
    if first_codes & {282, 283} and final[0].mpp is None:
        raise Declined("resolution tags in IFD 0 and no MPP for image 0")
    acquired = None
    if "Date" in found and "Time" in found:
        acquired = _timestamp(found["Date"], found["Time"])
    for key in ("AppMag", "Left", "Top"):
        if key in found and not math.isfinite(found[key]):
            raise Declined(f"{key} is not finite")
    return SvsImage(big_endian=big_endian, series=final, magnification=found.get("AppMag"),
                    acquired=acquired, left=found.get("Left"), top=found.get("Top"),
                    dye=dyes[0] if dyes else None)


def document(svs: SvsImage) -> str:
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    objective = {"ID": "Objective:0:0"}
    if svs.magnification is not None:
        objective["NominalMagnification"] = ox.jdouble(svs.magnification)
    instrument.add(ox.El("Objective", objective))
    images = []
    planes = svs.left is not None or svs.top is not None
    for i, s in enumerate(svs.series):
        img = ox.El("Image", {"ID": f"Image:{i}", "Name": f"Series {i + 1}"})
        if svs.acquired:
            img.add(ox.El("AcquisitionDate", text=svs.acquired))
        if s.comment is not None:
            img.add(ox.El("Description", text=s.comment))
        img.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
        img.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
        ifd = s.ifd
        pixels = img.add(ox.pixels(index=i, pixel_type=ifd.pixel_type,
                                   size=(ifd.width, ifd.length, 1, ifd.samples, 1), big_endian=svs.big_endian,
                                   significant_bits=ifd.bits, physical=(s.mpp, s.mpp, None)))
        attrs = {"Name": svs.dye} if svs.dye is not None else {}
        pixels.add(ox.channel(i, 0, ifd.samples, **attrs))
        pixels.add(ox.El("MetadataOnly"))
        if planes:
            plane = {"TheC": "0", "TheT": "0", "TheZ": "0"}
            if i == 0 and svs.left is not None:
                plane.update(PositionX=ox.jdouble(svs.left), PositionXUnit="mm")
            if i == 0 and svs.top is not None:
                plane.update(PositionY=ox.jdouble(svs.top), PositionYUnit="mm")
            pixels.add(ox.El("Plane", plane))
        images.append(img)
    return ox.document(instrument, *images)


class SvsEngine(ReaderEngine[SvsImage]):
    """Aperio SVS pyramids with label/macro from their TIFF tags; Z stacks and the unusual to Bio-Formats."""

    name = NAME
    score = CLAIM
    suffixes = (".svs",)
    kind, label = "an Aperio SVS", "SVS"
    unreadable = (OSError, ValueError, struct.error, MemoryError, OverflowError, Damage)

    def wants(self, path: str, head: bytes) -> bool:
        return path.lower().endswith(".svs") and head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

    def read(self, path: str) -> SvsImage:
        return read_svs(path)

    def read_in(self, ctx: FileContext) -> SvsImage:
        return read_svs(ctx.path, ctx.whole)

    def render(self, found: SvsImage) -> str:
        return document(found)
