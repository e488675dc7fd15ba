"""DeltaVision ``.dv`` from its own header, as Bio-Formats 7.3.1's DeltavisionReader reports it.

A DV file is a 1024-byte MRC-like header (little or big endian, told by the short at byte 96: ``0xC0A0``
read little-endian means little endian), an extended header and the pixels. This engine reads the header
and, per plane, the extended-header floats Bio-Formats reads, never the pixels, with no third-party
package.

How each key field is made (the rules of DeltavisionReader, checked against the corpus reference):

* one image named after the file; X, Y at bytes 0 and 4, the plane count at 8, the pixel type at 12
  (0 uint8, 1 int16, 2 float, 6 uint16, 7 int32, 8 double), T at 180 (0 counts as 1), C at 196 (0 counts
  as 1), Z = planes / (C * T); the dimension order is ``XY`` plus the image sequence at 182 (0 ZTW,
  1 WZT, 2 ZWT …, unknown ones ZTW) with W as C;
* physical sizes are the float pixel sizes at 40/44/48 (µm), absent when 0;
* the extended header of plane ``i`` is read at ``1024 + 4 * ints + 4 * (ints + floats) * i`` (ints and
  floats per section are the shorts at 128 and 130) whatever the extended header size at 92 says, so a
  file whose extended header is empty gives whatever bytes lie there, as Bio-Formats does: time stamp
  (float 2) is the plane's DeltaT, stage X/Y/Z (floats 3-5) its position in "reference frame" units
  (printed as Java prints a float), exposure time (float 9) of the first plane of each channel is every
  plane's of that channel, excitation (float 11) of the channel's first plane is the channel's;
* emission wavelengths are the shorts at 198 (first five channels only in the old layout);
* the objective is the lens ID at 162 looked up in Bio-Formats' table (magnification, NA).

It claims only the kind checked: a ``.dv`` file with no ``.log``/``_log.txt`` companion beside it (those
override positions, channel names, objective), the old header layout (file type at 160 not 100: no
panels, no acquisition date), a whole file (every plane present, every extended-header read inside the
file), exactly one series by Bio-Formats' stage-tile rule, no complex pixel types, finite numbers, pixel
sizes 0 or above 1e-3 µm and a lens ID in the table below. Everything else is left to Bio-Formats (also the
stage layouts Bio-Formats fails on: a zero and a single non-zero X, or Y, position while the other axis has
two).
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass

from metaextract.engines.base import CLAIM, Declined, ExtractionError, ReaderEngine, UnsupportedFormatError
from metaextract.ome import writer as ox

NAME = "dv"
HEADER = 1024
LITTLE_MAGIC = 0xC0A0  # the short at 96 read little-endian
BIG_MAGIC = 0xA0C0
NEW_TYPE = 100
EPSILON = 1e-6  # loci.common.Constants.EPSILON
MIN_PHYSICAL = 1e-3  # below this Bio-Formats may switch units (not reproduced)
#: file pixel type -> (OME type, bytes per pixel); 3 and 4 (complex) are declined
PIXEL_TYPES = {0: ("uint8", 1), 1: ("int16", 2), 2: ("float", 4), 6: ("uint16", 2), 7: ("int32", 4),
               8: ("double", 8)}
SEQUENCES = {0: "ZTWP", 1: "WZTP", 2: "ZWTP", 3: "ZPWT", 4: "ZWPT", 5: "WZPT", 6: "WPTZ", 7: "PWTZ",
                    8: "PTWZ", 9: "PZWT", 10: "PWZT", 11: "WPZT", 12: "WTPZ", 13: "TWPZ", 14: "TPWZ"}


@dataclass(frozen=True)
class Lens:
    magnification: float
    na: float | None
    immersion: str
    correction: str
    manufacturer: str | None
    model: str | None
    working_distance: float | None


#: Lens IDs from Bio-Formats' DeltavisionReader.populateObjective that this engine knows (others declined);
#: 0 is its default case (checked live: Correction and Immersion Other, magnification 0.0, nothing else).
LENSES = {
    0: Lens(0.0, None, "Other", "Other", None, None, None),  # no lens recorded: Bio-Formats' default objective
    10000: Lens(100.0, 1.30, "Oil", "Apo", "Olympus", "1-LB393", None),
    10002: Lens(100.0, 1.40, "Oil", "PlanApo", "Olympus", "1-UB935", 0.10),
    10003: Lens(100.0, 1.35, "Oil", "PlanApo", "Olympus", "1-UB836", 0.10),
    10007: Lens(100.0, 1.40, "Oil", "Other", "Olympus", "1-U2B836", 0.13),
    10403: Lens(40.0, 1.35, "Oil", "Apo", "Olympus", "1-UB768", 0.10),
    10602: Lens(60.0, 1.40, "Oil", "PlanApo", "Olympus", "1-UB932", 0.1),
    10612: Lens(60.0, 1.42, "Oil", "PlanApo", "Olympus", "1-U2B933", 0.15),
}


@dataclass
class PlaneHeader:
    time: float
    position: tuple[float, float, float]
    exposure: float
    nd_filter: float
    excitation: float


@dataclass
class DvImage:
    name: str
    size: tuple[int, int, int, int, int]  # X, Y, Z, C, T
    order: str
    pixel_type: str
    bits: int
    big_endian: bool
    physical: tuple[float | None, float | None, float | None]
    emission: list[int]
    lens_id: int
    lens: Lens
    description: str | None
    planes: list[PlaneHeader]


def companions(path: str) -> list[str]:
    """The log files Bio-Formats would read beside ``path`` (whichever exist)."""
    base = path[:path.rfind(".")]
    found = []
    if path.endswith("_D3D.dv"):
        found.append(path[:path.index("_D3D.dv")] + ".dv.log")
    found += [path + ".log", base + ".log", base + "_log.txt"]
    return [name for name in found if os.path.exists(name)]


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise Declined(f"{what} is not finite")
    return value


def read_dv(path: str) -> DvImage:
    """Read and classify ``path``; raises :class:`Declined` for kinds not checked, ExtractionError on damage."""
    if not path.lower().endswith(".dv"):
        raise Declined("not named .dv")
    logs = companions(path)
    if logs:
        raise Declined(f"a companion log file ({os.path.basename(logs[0])}) that Bio-Formats would read")
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        length = fh.tell()
        fh.seek(0)
        head = fh.read(HEADER)
        if len(head) < 212:
            raise ExtractionError(f"truncated DV: {len(head)} bytes, not even a header")
        magic = struct.unpack_from("<H", head, 96)[0]
        if magic not in (LITTLE_MAGIC, BIG_MAGIC):
            raise UnsupportedFormatError("not a DV file (no 0xC0A0 magic at byte 96)")
        if len(head) < HEADER:
            raise ExtractionError(f"truncated DV: {len(head)} bytes, not even a header")
        e = "<" if magic == LITTLE_MAGIC else ">"
        size_x, size_y, count, file_type_pixels = struct.unpack_from(e + "4i", head, 0)
        if size_x <= 0 or size_y <= 0 or count <= 0:
            raise ExtractionError(f"DV header has impossible sizes ({size_x} x {size_y} x {count})")
        if file_type_pixels not in PIXEL_TYPES:
            raise Declined(f"pixel type {file_type_pixels} (complex or unknown)")
        pixel_type, nbytes = PIXEL_TYPES[file_type_pixels]
        file_type, lens_id = struct.unpack_from(e + "hh", head, 160)
        if file_type == NEW_TYPE:
            raise Declined("the new header layout (panels, acquisition date)")
        raw_t, sequence = struct.unpack_from(e + "Hh", head, 180)
        ext_size = struct.unpack_from(e + "i", head, 92)[0]
        raw_c = struct.unpack_from(e + "h", head, 196)[0]
        size_t = raw_t or 1
        size_c = raw_c or 1
        if size_c < 0:
            raise Declined("a negative channel count")
        size_z = count // (size_c * size_t)
        if size_z * size_c * size_t != count:
            raise Declined(f"{count} planes are not Z x {size_c} channels x {size_t} time points")
        order = "XY" + SEQUENCES.get(sequence, "ZTWP").replace("W", "C").replace("P", "")
        plane_size = size_x * size_y * nbytes
        if ext_size < 0 or (length - HEADER - ext_size) // plane_size < count:
            raise Declined("a truncated file (Bio-Formats shrinks its sizes to the planes present)")
        physical_raw = struct.unpack_from(e + "3f", head, 40)
        physical: list[float | None] = []
        for value in physical_raw:
            _finite(value, "a pixel size")
            if value == 0:
                physical.append(None)
            elif value < MIN_PHYSICAL:
                raise Declined("a negative or tiny pixel size (Bio-Formats changes its unit)")
            else:
                physical.append(float(value))
        emission = list(struct.unpack_from(e + "5h", head, 198)) + [0] * max(0, size_c - 5)
        if lens_id not in LENSES:
            raise Declined(f"lens ID {lens_id} (not in this engine's table)")
        description = _title(head[224:304])
        ints, floats = struct.unpack_from(e + "hh", head, 128)
        start = HEADER + ints * 4
        step = (ints + floats) * 4
        planes = []
        for i in range(count):
            at = start + step * i
            if at < 0 or at + 56 > length:
                raise Declined("extended header reads past the end of the file")
            fh.seek(at)
            values = struct.unpack(e + "14f", fh.read(56))
            nd = values[9]
            if nd >= 1:
                nd = ox.f32(nd / 100)
            planes.append(PlaneHeader(time=_finite(values[1], "a time stamp"),
                                      position=(_finite(values[2], "a stage position"),
                                                _finite(values[3], "a stage position"),
                                                _finite(values[4], "a stage position")),
                                      exposure=_finite(values[8], "an exposure time"), nd_filter=nd,
                                      excitation=values[10]))
    _check_one_series(planes, size_t)
    return DvImage(os.path.basename(path), (size_x, size_y, size_z, size_c, size_t), order, pixel_type,
                   nbytes * 8, e == ">", (physical[0], physical[1], physical[2]), emission, lens_id,
                   LENSES[lens_id], description, planes)


def _title(raw: bytes) -> str | None:
    """The first title as Bio-Formats' document holds it (checked live on crafted titles): Latin-1, NULs
    dropped (none left: no Description), ISO control characters but tab and newline dropped, then trimmed as
    Java trims unless only white space is left (kept: an empty Description is written differently). The
    title count at 220 is not consulted."""
    text = raw.replace(b"\x00", b"").decode("latin-1")
    if not text:
        return None
    kept = "".join(ch for ch in text if ch in "\t\n" or not (ch < " " or "\x7f" <= ch <= "\x9f"))
    return ox.jtrim(kept) or kept


def _tiles(values: list[float]) -> tuple[int, bool]:
    unique: list[float] = []
    zero = False
    for value in values:
        if value not in unique and abs(value) > EPSILON:
            unique.append(value)
        elif abs(value) <= EPSILON:
            zero = True
    return len(unique), zero


def _check_one_series(planes: list[PlaneHeader], size_t: int) -> None:
    """Bio-Formats splits T into stage positions when the distinct stage X times Y positions divide it (a zero
    position counts as a tile of its axis once either axis has two)."""
    x_unique, zero_x = _tiles([p.position[0] for p in planes])
    y_unique, zero_y = _tiles([p.position[1] for p in planes])
    x_tiles, y_tiles = x_unique, y_unique
    if x_tiles > 1 or y_tiles > 1:
        x_tiles += zero_x
        y_tiles += zero_y
    if (x_tiles > 1 and x_unique < 2) or (y_tiles > 1 and y_unique < 2):
        # it then compares its first two distinct non-zero positions of that axis, and there is one: it throws
        # IndexOutOfBoundsException (checked live: tests/test_differential_dv.py)
        raise Declined("one non-zero stage position beside zeros on an axis whose tiles Bio-Formats counts "
                       "(Bio-Formats fails on it)")
    positions = x_tiles * y_tiles
    if 0 < positions <= size_t and positions > 1 and size_t % positions == 0:
        raise Declined(f"{positions} stage positions (Bio-Formats makes one series each)")


def document(image: DvImage) -> str:
    lens = image.lens
    objective_id = f"Objective:{image.lens_id}"
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    objective = {"ID": objective_id, "Correction": lens.correction, "Immersion": lens.immersion,
                 "NominalMagnification": ox.jdouble(lens.magnification)}
    if lens.na is not None:
        objective["LensNA"] = ox.jdouble(lens.na)
    if lens.manufacturer is not None:
        objective["Manufacturer"] = lens.manufacturer
    if lens.model is not None:
        objective["Model"] = lens.model
    if lens.working_distance is not None:
        objective.update(WorkingDistance=ox.jdouble(lens.working_distance), WorkingDistanceUnit="mm")
    instrument.add(ox.El("Objective", objective))
    img = ox.El("Image", {"ID": "Image:0", "Name": image.name})
    if image.description is not None:
        img.add(ox.El("Description", text=image.description))
    img.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    img.add(ox.El("ObjectiveSettings", {"ID": objective_id}))
    pixels = img.add(ox.pixels(dimension_order=image.order, pixel_type=image.pixel_type, size=image.size,
                               big_endian=image.big_endian, significant_bits=image.bits,
                               physical=image.physical))
    count = len(image.planes)
    coords = [ox.zct(i, image.order, image.size) for i in range(count)]
    first: dict[int, PlaneHeader] = {}
    for (z, c, t), plane in zip(coords, image.planes, strict=True):
        if z == 0 and t == 0 and c not in first:
            first[c] = plane
    exposure: dict[int, float] = {}
    for (_, c, _), plane in zip(coords, image.planes, strict=True):
        exposure.setdefault(c, plane.exposure)
    for c in range(image.size[3]):
        attrs: dict[str, str] = {}
        if image.emission[c] > 0:
            attrs.update(EmissionWavelength=ox.jnumber(image.emission[c]), EmissionWavelengthUnit="nm")
        hdr = first[c]
        if math.isfinite(hdr.excitation) and hdr.excitation - EPSILON > 0:
            attrs.update(ExcitationWavelength=ox.jdouble(hdr.excitation), ExcitationWavelengthUnit="nm")
        if math.isfinite(hdr.nd_filter) and 0 <= hdr.nd_filter <= 1:
            attrs["NDFilter"] = ox.jdouble(hdr.nd_filter)
        pixels.add(ox.channel(0, c, 1, **attrs))
    pixels.add(ox.El("MetadataOnly"))
    for (z, c, t), plane in zip(coords, image.planes, strict=True):
        pixels.add(ox.El("Plane", {
            "TheZ": str(z), "TheC": str(c), "TheT": str(t),
            "DeltaT": ox.jdouble(plane.time), "DeltaTUnit": "s",
            "ExposureTime": ox.jdouble(exposure[c]), "ExposureTimeUnit": "s",
            **{f"Position{axis}": ox.jfloat(value) for axis, value in zip("XYZ", plane.position, strict=True)},
            **{f"Position{axis}Unit": "reference frame" for axis in "XYZ"},
        }))
    return ox.document(instrument, img)


def _looks_like_dv(head: bytes) -> bool:
    """Bio-Formats' isThisType: the magic at 96, not a TIFF, not an MRC ``MAP``, positive sizes."""
    if len(head) < 212 or head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return False
    magic = struct.unpack_from("<H", head, 96)[0]
    if magic not in (LITTLE_MAGIC, BIG_MAGIC) or head[208:212].strip() == b"MAP":
        return False
    x, y, count = struct.unpack_from("<3i" if magic == LITTLE_MAGIC else ">3i", head, 0)
    return bool(x > 0 and y > 0 and count > 0)


class DvEngine(ReaderEngine[DvImage]):
    """Single-series, log-less, old-layout DeltaVision from its own header; every other DV to Bio-Formats."""

    name = NAME
    score = CLAIM
    suffixes = (".dv",)
    kind, label = "a DV", "DV"
    unreadable = (OSError, ValueError, struct.error, MemoryError, ZeroDivisionError)

    def wants(self, path: str, head: bytes) -> bool:
        return path.lower().endswith(".dv") and _looks_like_dv(head)

    def read(self, path: str) -> DvImage:
        return read_dv(path)

    def render(self, found: DvImage) -> str:
        return document(found)
