"""Camera files: Princeton Instruments SPE and Andor SIF, as Bio-Formats 7.3.1's SPEReader and SIFReader
report them.

Both readers fill little more than the core metadata, so each engine reproduces the reader's arithmetic
on the header and writes the same (small) document. Neither needs a third-party package.

**spe** (``SPEEngine``). An SPE file is a 4100-byte little-endian header followed by the frames. The
reader takes the pixel type from the unsigned 16-bit ``datatype`` at byte 108 (0 float, 1 int32, 2 int16,
3 uint16, 4 uint32), SizeX from the unsigned 16-bit ``xdim`` at 42, SizeY from ``ydim`` at 656 and SizeT
from the signed 32-bit ``NumFrames`` at 1446, with Z = C = 1, DimensionOrder ``XYZTC``, no Plane elements
and SignificantBits the full width of the type. The version 3 XML footer (its offset is the 64-bit value
at 678) is not read by Bio-Formats and so not here either. Each of up to ten rectangular ROIs (count at
1510, six 16-bit values each from 1512) becomes an ROI with a Label and a Rectangle, as the reader writes
them. Claimed: files named ``*.spe`` of at least 4100 bytes with a known datatype, non-zero xdim/ydim,
``NumFrames`` >= 1 and at most ten ROIs. Not claimed: ``NumFrames`` < 1 (Bio-Formats then derives the
stack size from the old WinView ``noscan``/``lnoscan`` fields, a rule not checked here), other datatypes
(Bio-Formats fails on them), more than ten ROIs, shorter files.

**sif** (``SIFEngine``). A SIF file starts with the text ``Andor Technology Multi-Channel File`` and
holds text lines (some with binary content) before the binary frames. The reader reads lines until the
first one that starts with ``Pixel number`` and has more than two space-separated tokens (Java's
``split``, trailing empty tokens dropped): its tokens 2 to 6 are SizeC, SizeX, SizeY, SizeZ, SizeT. The
next line's tokens 1 to 6 (x1, y1, x2, y2, x3, y3) then override SizeX = ``|x1 - x2| + x3`` and
SizeY = ``|y1 - y2| + y3``. The pixels are 32-bit floats, DimensionOrder ``XYCZT``, and every plane
gets DeltaT 0.0 s (the reader stops before it would read the time stamps). Claimed: files named ``*.sif``
starting with that magic line, where the ``Pixel number`` line is plain ASCII, the six needed tokens of
both lines are plain decimal 32-bit integers, the next line ends in a newline, every size is >= 1, there
are at most 100000 planes, and no earlier header line contains ``Pixel number`` other than at its start
(Bio-Formats splits lines in characters but seeks in bytes, so after non-ASCII bytes it reads extra
"lines" that are tails of real ones; a tail starting with ``Pixel number`` would change its answer).
Everything else is left to Bio-Formats.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

from metaextract.engines.base import CLAIM, Declined, ExtractionError, ReaderEngine, UnsupportedFormatError
from metaextract.ome import writer as ox

# -- SPE ------------------------------------------------------------------------------------------------
SPE_HEADER = 4100
SPE_TYPES = {0: ("float", 32), 1: ("int32", 32), 2: ("int16", 16), 3: ("uint16", 16), 4: ("uint32", 32)}
SPE_MAX_ROIS = 10


@dataclass(frozen=True)
class SpeRoi:
    start_x: int
    end_x: int
    group_x: int
    start_y: int
    end_y: int
    group_y: int


@dataclass(frozen=True)
class Spe:
    name: str
    pixel_type: str
    bits: int
    size_x: int
    size_y: int
    frames: int
    rois: tuple[SpeRoi, ...]


def _suffix(path: str, suffix: str) -> bool:
    return os.path.basename(path).lower().endswith(suffix)


def read_spe(path: str) -> Spe:
    """The SPE header as Bio-Formats reads it; raises :class:`Declined` or :class:`ExtractionError`."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(SPE_HEADER)
    except OSError as exc:
        raise ExtractionError(f"cannot read: {exc.strerror or exc}") from None
    if len(header) < SPE_HEADER:
        raise ExtractionError(f"truncated SPE: {len(header)} bytes, the header alone is {SPE_HEADER}")

    def u16(at: int) -> int:
        value: int = struct.unpack_from("<H", header, at)[0]
        return value

    datatype = u16(108)
    if datatype not in SPE_TYPES:
        raise Declined(f"datatype {datatype} (Bio-Formats fails on it)")
    size_x, size_y = u16(42), u16(656)
    frames: int = struct.unpack_from("<i", header, 1446)[0]
    if size_x < 1 or size_y < 1:
        raise Declined(f"a zero dimension ({size_x} x {size_y})")
    if frames < 1:
        raise Declined(f"NumFrames {frames} (stack size from the old noscan fields, not checked)")
    count = u16(1510)
    if count > SPE_MAX_ROIS:
        raise Declined(f"{count} ROIs (more than the header's ten)")
    rois = tuple(SpeRoi(*struct.unpack_from("<6H", header, 1512 + 12 * i)) for i in range(count))
    pixel_type, bits = SPE_TYPES[datatype]
    return Spe(os.path.basename(path), pixel_type, bits, size_x, size_y, frames, rois)


def spe_document(spe: Spe) -> str:
    image = ox.El("Image", {"ID": "Image:0", "Name": spe.name})
    pixels = image.add(ox.pixels(dimension_order="XYZTC", pixel_type=spe.pixel_type,
                                 size=(spe.size_x, spe.size_y, 1, 1, spe.frames), big_endian=False,
                                 significant_bits=spe.bits))
    pixels.add(ox.channel(0, 0, 1))
    pixels.add(ox.El("MetadataOnly"))
    rois = []
    for i, r in enumerate(spe.rois):
        image.add(ox.El("ROIRef", {"ID": f"ROI:{i}"}))
        roi = ox.El("ROI", {"ID": f"ROI:{i}"})
        union = roi.add(ox.El("Union"))
        union.add(ox.El("Label", {
            "ID": f"Shape:{i}:0", "Text": f"ROI {i + 1}, X-Binning = {r.group_x}, Y-Binning = {r.group_y}",
            "X": ox.jnumber(r.start_x), "Y": ox.jnumber(r.start_y)}))
        union.add(ox.El("Rectangle", {
            "Height": ox.jnumber(r.end_y - r.start_y), "ID": f"Shape:{i}:1",
            "Width": ox.jnumber(r.end_x - r.start_x), "X": ox.jnumber(r.start_x), "Y": ox.jnumber(r.start_y)}))
        rois.append(roi)
    return ox.document(image, *rois)


# -- SIF ------------------------------------------------------------------------------------------------
SIF_MAGIC = b"Andor Technology Multi-Channel File\n"
SIF_PIXEL_LINE = b"Pixel number"
SIF_MAX_HEADER = 64 << 20
SIF_CHUNK = 1 << 16
SIF_MAX_PLANES = 100_000
_JAVA_INT = re.compile(rb"[+-]?[0-9]+\Z")


@dataclass(frozen=True)
class Sif:
    name: str
    size_x: int
    size_y: int
    size_z: int
    size_c: int
    size_t: int


def _java_split(line: bytes) -> list[bytes]:
    """``String.split(" ")``: trailing empty tokens are dropped."""
    tokens = line.split(b" ")
    while tokens and not tokens[-1]:
        tokens.pop()
    return tokens


def _java_ints(tokens: list[bytes], first: int, count: int, what: str) -> list[int]:
    """Tokens ``first`` to ``first + count - 1`` as Java's ``Integer.parseInt`` reads them (ASCII only)."""
    if len(tokens) < first + count:
        raise Declined(f"{what} has {len(tokens)} tokens, fewer than Bio-Formats reads")
    out = []
    for token in tokens[first:first + count]:
        if _JAVA_INT.match(token) is None:
            raise Declined(f"{what} token {token[:20]!r} is not a plain integer (Bio-Formats fails on it)")
        value = int(token)
        if not -(1 << 31) <= value < (1 << 31):
            raise Declined(f"{what} token {token[:20]!r} overflows a Java int")
        out.append(value)
    return out


def _sif_lines(path: str) -> tuple[bytes, bytes, bytes]:
    """The bytes before the first counting ``Pixel number`` line, that line and the next one (with
    their newlines)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(len(SIF_MAGIC))
            if data != SIF_MAGIC:
                raise UnsupportedFormatError("not an Andor SIF file (no 'Andor Technology Multi-Channel File')")
            start = 0  # where the line being looked at begins
            while True:
                end = data.find(b"\n", start)
                if end < 0:
                    if len(data) >= SIF_MAX_HEADER:
                        raise Declined(f"no 'Pixel number' line in the first {SIF_MAX_HEADER} bytes")
                    more = fh.read(SIF_CHUNK)
                    if not more:
                        raise ExtractionError("truncated SIF: no 'Pixel number' line with its area line")
                    data += more
                    continue
                line = data[start:end + 1]
                if line.startswith(SIF_PIXEL_LINE) and len(_java_split(line)) > 2:
                    after = data.find(b"\n", end + 1)
                    while after < 0:
                        more = fh.read(SIF_CHUNK)
                        if not more or len(data) >= SIF_MAX_HEADER:
                            raise ExtractionError("truncated SIF: the line after 'Pixel number' does not end")
                        data += more
                        after = data.find(b"\n", end + 1)
                    return data[:start], line, data[end + 1:after + 1]
                start = end + 1
    except OSError as exc:
        raise ExtractionError(f"cannot read: {exc.strerror or exc}") from None


def read_sif(path: str) -> Sif:
    """The sizes as Bio-Formats' SIFReader finds them; raises :class:`Declined` or :class:`ExtractionError`."""
    before, pixel_line, area_line = _sif_lines(path)
    at = before.find(SIF_PIXEL_LINE)
    while at >= 0:
        if at > 0 and before[at - 1:at] != b"\n":
            raise Declined("'Pixel number' inside an earlier header line (Bio-Formats may read its tail)")
        at = before.find(SIF_PIXEL_LINE, at + 1)
    if not pixel_line.isascii():
        raise Declined("the 'Pixel number' line is not plain ASCII")
    c, x, y, z, t = _java_ints(_java_split(pixel_line), 2, 5, "'Pixel number' line")
    x1, y1, x2, y2, x3, y3 = _java_ints(_java_split(area_line), 1, 6, "area line")
    x, y = abs(x1 - x2) + x3, abs(y1 - y2) + y3
    if min(x, y, z, c, t) < 1:
        raise Declined(f"a size below 1 (X {x}, Y {y}, Z {z}, C {c}, T {t})")
    if z * c * t > SIF_MAX_PLANES:
        raise Declined(f"{z * c * t} planes (more than {SIF_MAX_PLANES})")
    return Sif(os.path.basename(path), x, y, z, c, t)


def sif_document(sif: Sif) -> str:
    image = ox.El("Image", {"ID": "Image:0", "Name": sif.name})
    pixels = image.add(ox.pixels(dimension_order="XYCZT", pixel_type="float",
                                 size=(sif.size_x, sif.size_y, sif.size_z, sif.size_c, sif.size_t),
                                 big_endian=False, significant_bits=32))
    for c in range(sif.size_c):
        pixels.add(ox.channel(0, c, 1))
    pixels.add(ox.El("MetadataOnly"))
    for plane in range(sif.size_z * sif.size_c * sif.size_t):
        c, rest = plane % sif.size_c, plane // sif.size_c
        z, t = rest % sif.size_z, rest // sif.size_z
        pixels.add(ox.El("Plane", {"DeltaT": "0.0", "DeltaTUnit": "s", "TheC": str(c), "TheT": str(t),
                                   "TheZ": str(z)}))
    return ox.document(image)


# -- the engines ----------------------------------------------------------------------------------------
class SPEEngine(ReaderEngine[Spe]):
    """Princeton Instruments SPE from its 4100-byte header (see the module docstring for what it claims)."""

    name = "spe"
    score = CLAIM
    suffixes = (".spe",)
    kind, label = "an SPE", "SPE"

    def wants(self, path: str, head: bytes) -> bool:
        return _suffix(path, ".spe")

    def read(self, path: str) -> Spe:
        return read_spe(path)

    def render(self, found: Spe) -> str:
        return spe_document(found)


class SIFEngine(ReaderEngine[Sif]):
    """Andor SIF from its text header (see the module docstring for what it claims)."""

    name = "sif"
    score = CLAIM
    suffixes = (".sif",)
    magic = SIF_MAGIC
    kind, label = "a SIF", "SIF"
    unreadable = (OSError, ValueError, MemoryError)

    def wants(self, path: str, head: bytes) -> bool:
        return _suffix(path, ".sif") and head.startswith(SIF_MAGIC)

    def read(self, path: str) -> Sif:
        return read_sif(path)

    def render(self, found: Sif) -> str:
        return sif_document(found)
