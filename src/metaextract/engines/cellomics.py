"""Cellomics ``.c01`` from its own header, as Bio-Formats 7.3.1's CellomicsReader reports a lone file.

A C01 file is a 4-byte big-endian magic (16) and then one zlib stream holding a DIB-like header (little
endian: at 4 the width, 8 the height, 12 the plane count as a short, 14 the bits per pixel as a short, 16
the compression, 24/28 the pixels per metre in X/Y) with the pixels from byte 52. This engine reads that
header, never keeps a pixel, and uses only the standard library's zlib.

The rules reproduced (CellomicsReader, checked against the corpus reference and live Bio-Formats):

* the file name is matched against ``(.*)_(<letter><2 digits>)(f<2-3 digits>)?(o<digits>)?[^_]+`` and,
  unless that matches with an ``o`` channel, the same with ``d`` for the channel: group 1 is the plate
  name, group 2 the well (row letter, any case; column = the two digits - 1), group 3 the field, group 4
  the channel. A name that does not match gives a plate with no name, well A01, field 0;
* one Image ``Well <row letter><column + 1, two digits>, Field #<field, at least two digits>`` with X, Y
  from the header, Z = the plane count, C = T = 1, order XYCZT, unsigned pixels of ``bits // 8`` bytes
  (so 12 bits read as uint8 with 8 significant bits), little endian, one Plane per Z;
* physical sizes 1e6 / pixels per metre (µm), absent when 0;
* one Plate (letter rows, number columns, 1 x 1) holding one Well at the file's row and column, with one
  WellSample (index 0) referring to the image;
* Bio-Formats inflates the whole stream when it opens the file and refuses a file whose inflated length is
  short of the header's pixel count ("compressed pixel data"), so this engine inflates it too, in bounded
  chunks that are thrown away, and declines a short, broken or trailing-data stream.

What is declined (left to Bio-Formats, or refused where Bio-Formats fails too): a name that matches the
pattern while another entry of its folder has the same plate name (Bio-Formats then groups the plate's
wells, fields and channels, and reads channel names from a ``.mdb``), a matching name without a channel
(Bio-Formats fails: no series) or with column 00 (it fails: negative column), names that are not plain
printable ASCII, ``.dib`` files, a first int that is not 16, sizes or plane counts that are not positive,
pixel sizes of other than 1, 2 or 4 bytes, negative pixels-per-metre, pixel counts past Java's int and
streams inflating to more than 256 MiB (a bound on the work a hostile file can cause).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from metaextract.engines.base import CLAIM, Declined, ExtractionError, ReaderEngine, UnsupportedFormatError
from metaextract.ome import writer as ox

NAME = "cellomics"
MAGIC = b"\x00\x00\x00\x10"
HEADER = 52
INT_MAX = (1 << 31) - 1
MAX_INFLATED = 256 << 20  # a larger image is left to Bio-Formats (it holds the whole inflated file in memory)
IN_CHUNK = 1 << 16
OUT_CHUNK = 1 << 20
PATTERN_O = re.compile(r"(.*)_([A-Za-z][0-9]{2})(f[0-9]{2,3})?(o[0-9]+)?[^_]+", re.ASCII | re.DOTALL)
PATTERN_D = re.compile(r"(.*)_([A-Za-z][0-9]{2})(f[0-9]{2,3})?(d[0-9]+)?[^_]+", re.ASCII | re.DOTALL)
PIXEL_TYPES = {1: "uint8", 2: "uint16", 4: "uint32"}


@dataclass
class C01Image:
    plate: str | None
    row: int
    column: int
    field: int
    size: tuple[int, int, int]  # X, Y, Z
    pixel_type: str
    bits: int
    physical: tuple[float | None, float | None]


@dataclass
class _Name:
    plate: str | None
    row: int
    column: int
    field: int
    channel: int


class _Namer:
    """Bio-Formats' file-name rules, with its choice of the ``o`` or ``d`` pattern fixed by the first name."""

    def __init__(self, first: str) -> None:
        m = PATTERN_O.fullmatch(first)
        self.pattern = PATTERN_O if m is not None and m.group(4) is not None else PATTERN_D

    def plate(self, name: str) -> str | None:
        m = self.pattern.fullmatch(name)
        if m is not None:
            return m.group(1)
        if name.lower().endswith((".c01", ".dib")):
            return None
        dot = name.rfind(".")
        return name[:dot] if dot >= 0 else name

    def parse(self, name: str) -> _Name:
        m = self.pattern.fullmatch(name)
        if m is None:
            return _Name(self.plate(name), 0, 0, 0, -1)
        well = m.group(2)
        row = ord(well[0].upper()) - ord("A")
        column = int(well[1:3]) - 1
        field = int(m.group(3)[1:]) if m.group(3) else 0
        channel = m.group(4)
        if channel is not None and len(channel) > 10:
            raise Declined(f"channel number {channel[1:]} (past Java's int)")
        return _Name(m.group(1), row, column, field, int(channel[1:]) if channel else -1)


def _plain_name(name: str) -> bool:
    return name.isascii() and name.isprintable()


def _siblings(path: str, namer: _Namer, plate: str) -> str | None:
    """An entry of ``path``'s folder (other than itself) that Bio-Formats would take as part of its plate."""
    folder = os.path.dirname(os.path.abspath(path))
    own = os.path.basename(path)
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise Declined(f"its folder cannot be listed ({exc.strerror})") from None
    for name in names:
        if name != own and namer.plate(name) == plate:
            return name
    return None


def _inflate(fh: BinaryIO) -> tuple[bytes, int]:
    """The first 52 inflated bytes and the inflated length, the whole stream inflated in bounded chunks
    (thrown away) and checked to end cleanly, as Bio-Formats inflates it all when it opens the file."""
    inflater = zlib.decompressobj()
    head = b""
    total = 0
    pending = b""
    while True:  # each turn consumes input or yields output, and the output is capped
        if not pending:
            if inflater.eof:
                break
            pending = fh.read(IN_CHUNK)
            if not pending:
                break
        try:
            out = inflater.decompress(pending, OUT_CHUNK)
        except zlib.error as exc:
            raise ExtractionError(f"C01 pixel stream is broken: {exc}") from None
        pending = inflater.unconsumed_tail
        if len(head) < HEADER:
            head += out[:HEADER - len(head)]
        total += len(out)
        if total > MAX_INFLATED:
            raise Declined(f"an image of more than {MAX_INFLATED} inflated bytes")
    if not inflater.eof:
        raise ExtractionError("truncated C01: the zlib stream ends early")
    if inflater.unused_data or fh.read(1):
        raise Declined("data after the zlib stream")
    if len(head) < HEADER:
        raise ExtractionError(f"truncated C01: {len(head)} inflated bytes, not even a header")
    return head, total


def read_c01(path: str) -> C01Image:
    """Read and classify ``path``; raises :class:`Declined` for kinds not checked, ExtractionError on damage."""
    name = os.path.basename(path)
    if not name.lower().endswith(".c01"):
        raise Declined("not named .c01")
    if not _plain_name(name):
        raise Declined("a file name that is not printable ASCII")
    namer = _Namer(name)
    parsed = namer.parse(name)
    if parsed.plate is not None:
        if parsed.channel < 0:
            raise ExtractionError("a Cellomics name without a channel (Bio-Formats finds no series in it)")
        if parsed.column < 0:
            raise ExtractionError("well column 00 (Bio-Formats fails on a negative column)")
        sibling = _siblings(path, namer, parsed.plate)
        if sibling is not None:
            raise Declined(f"a sibling of its plate ({sibling}) that Bio-Formats would group with it")
    with open(path, "rb") as fh:
        magic = fh.read(4)
        if magic != MAGIC:
            if len(magic) < 4:
                raise ExtractionError(f"truncated C01: {len(magic)} bytes")
            raise UnsupportedFormatError("not a C01 file (first int is not 16)")
        head, total = _inflate(fh)
    size_x, size_y, planes, bits = struct.unpack_from("<iihh", head, 4)
    if size_x <= 0 or size_y <= 0 or planes <= 0:
        raise Declined(f"sizes that are not positive ({size_x} x {size_y} x {planes})")
    nbytes = bits // 8 if bits > 0 else 0
    if nbytes not in PIXEL_TYPES:
        raise Declined(f"{bits} bits per pixel")
    need = size_x * size_y * planes * nbytes + HEADER
    if need > INT_MAX:
        raise Declined("more pixel bytes than Java's int holds")
    if total < need:
        raise ExtractionError(f"C01 holds {total} inflated bytes, short of the {need} its header needs "
                              "(Bio-Formats: compressed pixel data is not supported)")
    ppm_x, ppm_y = struct.unpack_from("<ii", head, 24)
    if ppm_x < 0 or ppm_y < 0:
        raise Declined("negative pixels per metre")
    physical = (1000000.0 / ppm_x if ppm_x else None, 1000000.0 / ppm_y if ppm_y else None)
    return C01Image(plate=parsed.plate, row=parsed.row, column=parsed.column, field=parsed.field,
                    size=(size_x, size_y, planes), pixel_type=PIXEL_TYPES[nbytes], bits=nbytes * 8,
                    physical=physical)


def document(image: C01Image) -> str:
    plate_attrs = {"ID": "Plate:0", "ColumnNamingConvention": "number", "RowNamingConvention": "letter",
                   "Rows": "1", "Columns": "1"}
    if image.plate is not None:
        plate_attrs["Name"] = image.plate
    plate = ox.El("Plate", plate_attrs)
    well = plate.add(ox.El("Well", {"ID": "Well:0:0", "Row": str(image.row), "Column": str(image.column)}))
    sample = well.add(ox.El("WellSample", {"ID": "WellSample:0:0:0", "Index": "0"}))
    sample.add(ox.El("ImageRef", {"ID": "Image:0"}))
    name = f"Well {chr(ord('A') + image.row)}{image.column + 1:02d}, Field #{image.field:02d}"
    img = ox.El("Image", {"ID": "Image:0", "Name": name})
    size_x, size_y, planes = image.size
    pixels = img.add(ox.pixels(pixel_type=image.pixel_type, size=(size_x, size_y, planes, 1, 1),
                               big_endian=False, significant_bits=image.bits,
                               physical=(image.physical[0], image.physical[1], None)))
    pixels.add(ox.channel(0, 0, 1))
    pixels.add(ox.El("MetadataOnly"))
    for z in range(planes):
        pixels.add(ox.El("Plane", {"TheC": "0", "TheT": "0", "TheZ": str(z)}))
    return ox.document(plate, img)


class CellomicsEngine(ReaderEngine[C01Image]):
    """A lone Cellomics ``.c01`` (no sibling of its plate) from its own header; every other to Bio-Formats."""

    name = NAME
    score = CLAIM
    suffixes = (".c01",)
    magic = MAGIC
    kind, label = "a Cellomics C01", "C01"
    unreadable = (OSError, ValueError, struct.error, MemoryError, zlib.error)

    def wants(self, path: str, head: bytes) -> bool:
        return path.lower().endswith(".c01") and head[:4] == MAGIC and len(head) > 6 and head[4] & 0x0F == 8

    def read(self, path: str) -> C01Image:
        return read_c01(path)

    def render(self, found: C01Image) -> str:
        return document(found)
