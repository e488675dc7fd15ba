"""ICS (Image Cytometry Standard) from its text header: a rescue engine for files Bio-Formats cannot read.

An ICS file is a documented text header: its first two bytes are the field and line separators, then
``category [subcategory …] values`` lines (``ics_version``, ``filename``, ``layout``, ``representation``,
``parameter``, ``history``, … and ``end``). Version 1 keeps the pixels in a sibling ``.ids`` file,
version 2 after the header or in the file that ``source file NAME OFFSET`` names, either raw or gzip
compressed. The header alone gives every size, the pixel type, the byte order and the pixel sizes.

Bio-Formats' ICSReader refuses a header whose pixel data it cannot open (``IDS file not found``). This
engine never claims a file; ``auto`` asks it only after Bio-Formats failed, and its notes say what was
read and what was missing. It writes the OME-XML that Bio-Formats writes for a readable ICS with the same
header (checked field by field against live Bio-Formats in ``tests/test_engines_ics.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import _omexml as ox
from .base import ExtractionError, UnsupportedFormatError

NAME = "ics"
RESCUE = 50  # the header's own first line is the evidence
MAX_HEADER = 1 << 20
#: ICS axis label -> OME dimension (the ones Bio-Formats maps; any other axis of size > 1 is declined)
AXES = {"x": "X", "y": "Y", "z": "Z", "t": "T", "time": "T", "c": "C", "ch": "C", "channel": "C"}
MICRONS = frozenset({"micrometers", "micrometer", "microns", "micron", "um", "µm"})
_TYPES = {("integer", False, 8): "uint8", ("integer", True, 8): "int8", ("integer", False, 16): "uint16",
          ("integer", True, 16): "int16", ("integer", False, 32): "uint32", ("integer", True, 32): "int32",
          ("real", True, 32): "float", ("real", True, 64): "double", ("real", False, 32): "float",
          ("real", False, 64): "double"}


@dataclass
class IcsHeader:
    """The parsed header: each line's key (the words before the values) and values, in file order."""

    version: str
    fields: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    header_bytes: int = 0

    def get(self, *key: str) -> list[str]:
        return self.fields.get(key, [])

    def one(self, *key: str, default: str = "") -> str:
        values = self.get(*key)
        return values[0] if values else default


#: How many words of a line, by category, form its key (the rest are values).
_KEY_WORDS = {"ics_version": 1, "filename": 1, "layout": 2, "representation": 2, "parameter": 2,
              "source": 2, "history": 2, "sensor": 3, "end": 1}


def looks_like_ics(head: bytes) -> bool:
    """The two separator bytes followed by ``ics_version`` (the only way an ICS header may start)."""
    return len(head) > 13 and head[2:13].lower() == b"ics_version"


def parse_header(path: str) -> IcsHeader:
    """Read the header of ``path``; :class:`UnsupportedFormatError` when it is no ICS header."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_HEADER)
    if not looks_like_ics(raw):
        raise UnsupportedFormatError(f"not an ICS header (first 13 bytes: {raw[:13]!r})")
    field_sep, line_sep = chr(raw[0]), chr(raw[1])
    text = raw[2:].decode("latin-1")
    header = IcsHeader(version="")
    consumed = 2
    for line in text.split(line_sep):
        consumed += len(line) + 1
        words = line.rstrip("\r").split(field_sep)
        while words and words[-1] == "":
            words.pop()
        if not words:
            continue
        category = words[0].lower()
        if category == "end":
            break
        n = _KEY_WORDS.get(category, 1)
        key = tuple(w.lower() for w in words[:n])
        header.fields.setdefault(key, words[n:])
    header.header_bytes = consumed
    header.version = header.one("ics_version")
    if not header.version:
        raise UnsupportedFormatError("ICS header without an ics_version value")
    return header


def _ints(values: list[str], what: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ExtractionError(f"ICS header: {what} are not integers: {values}") from None


def _pixel_type(header: IcsHeader, bits: int) -> str:
    fmt = header.one("representation", "format", default="integer").lower()
    signed = header.one("representation", "sign", default="unsigned").lower() == "signed"
    pixel_type = _TYPES.get((fmt, signed, bits))
    if pixel_type is None:
        raise ExtractionError(f"ICS header: no OME pixel type for {fmt} {'signed' if signed else 'unsigned'} "
                              f"{bits}-bit samples")
    return pixel_type


def _data_file(path: str, header: IcsHeader) -> str | None:
    """Where the pixel data should be (None: no file named by the header exists)."""
    if header.version.startswith("2"):
        source = header.get("source", "file")
        name = source[0] if source else os.path.basename(path)
        candidates = [name, os.path.join(os.path.dirname(path), os.path.basename(name))]
    else:
        stem = os.path.splitext(path)[0]
        candidates = [stem + ext for ext in (".ids", ".IDS", ".ids.gz", ".IDS.GZ")]
    return next((c for c in candidates if os.path.isfile(c)), None)


@dataclass
class IcsImage:
    """What the header says about the image, in OME terms."""

    name: str
    order: str
    sizes: dict[str, int]
    pixel_type: str
    significant_bits: int
    big_endian: bool
    physical: dict[str, float]
    notes: list[str]


def describe(path: str) -> IcsImage:
    """Sizes, pixel type, byte order and pixel sizes of the ICS file ``path``, from its header."""
    header = parse_header(path)
    labels = [w.lower() for w in header.get("layout", "order")]
    sizes_raw = _ints(header.get("layout", "sizes"), "layout sizes")
    if not labels or labels[0] != "bits" or len(labels) != len(sizes_raw):
        raise ExtractionError(f"ICS header: layout order {labels} does not match layout sizes {sizes_raw}")
    bits = sizes_raw[0]
    sizes = {"X": 1, "Y": 1, "Z": 1, "C": 1, "T": 1}
    order = ""
    for label, size in zip(labels[1:], sizes_raw[1:], strict=True):
        dim = AXES.get(label)
        if dim is None or dim in order:
            if size == 1:
                continue
            raise ExtractionError(f"ICS header: axis {label!r} (size {size}) has no OME dimension")
        sizes[dim] = size
        order += dim
    if not order.startswith("XY"):
        raise ExtractionError(f"ICS header: axes {labels[1:]} do not start with x, y")
    order += "".join(d for d in "CZT" if d not in order)
    significant = header.one("layout", "significant_bits", default=str(bits))
    byte_order = _ints(header.get("representation", "byte_order"), "byte_order") or [1]
    scales = header.get("parameter", "scale")
    units = [u.lower() for u in header.get("parameter", "units")]
    physical = {}
    for index, label in enumerate(labels):
        dim = AXES.get(label)
        if dim not in ("X", "Y", "Z") or index >= len(scales) or index >= len(units) or units[index] not in MICRONS:
            continue
        try:
            value = float(scales[index])
        except ValueError:
            continue
        if value > 0:
            physical[dim] = value
    notes = []
    data = _data_file(path, header)
    if data is None:
        where = "the file named by 'source file'" if header.version.startswith("2") else "its .ids file"
        notes.append(f"ICS pixel data not found ({where}); metadata from the header alone")
    return IcsImage(
        name=os.path.splitext(os.path.basename(path))[0], order=order, sizes=sizes,
        pixel_type=_pixel_type(header, bits), significant_bits=_ints([significant], "significant_bits")[0],
        big_endian=len(byte_order) > 1 and byte_order[0] > byte_order[-1], physical=physical, notes=notes,
    )


def _planes(order: str, sizes: dict[str, int]) -> list[dict[str, int]]:
    dims = order[2:]
    planes: list[dict[str, int]] = []
    total = sizes["Z"] * sizes["C"] * sizes["T"]
    for index in range(total):
        rest, coords = index, {}
        for dim in dims:
            coords[dim] = rest % sizes[dim]
            rest //= sizes[dim]
        planes.append(coords)
    return planes


def omexml(image: IcsImage) -> str:
    """The OME-XML Bio-Formats' ICSReader writes for a header like ``image``'s."""
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    instrument.add(ox.El("Microscope"))
    instrument.add(ox.El("Detector", {"ID": "Detector:0:0", "Type": "Other"}))
    instrument.add(ox.El("Objective", {"Correction": "Other", "ID": "Objective:0:0", "Immersion": "Other"}))
    el = ox.El("Image", {"ID": "Image:0", "Name": image.name})
    el.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    el.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    s = image.sizes
    pixels = el.add(ox.pixels(
        dimension_order=image.order, pixel_type=image.pixel_type, size=(s["X"], s["Y"], s["Z"], s["C"], s["T"]),
        big_endian=image.big_endian, significant_bits=image.significant_bits,
        physical=(image.physical.get("X"), image.physical.get("Y"), image.physical.get("Z")),
    ))
    for c in range(s["C"]):
        pixels.add(ox.channel(0, c, 1))
    pixels.add(ox.El("MetadataOnly"))
    for plane in _planes(image.order, s):
        pixels.add(ox.El("Plane", {f"The{d}": str(plane[d]) for d in "CTZ"}))
    return ox.document(ox.El("Experiment", {"ID": "Experiment:0", "Type": "Other"}), instrument, el)


class IcsEngine:
    """ICS from its header; a rescuer only (it claims nothing, ``auto`` asks it after Bio-Formats failed)."""

    name = NAME

    def version(self) -> str:
        from .. import __version__

        return f"header-{__version__}"

    def claim(self, path: str, head: bytes) -> int:
        return 0  # Bio-Formats reads every ICS whose data it finds: never take a file from it

    def rescues(self, path: str, head: bytes) -> int:
        return RESCUE if looks_like_ics(head) else 0

    def rescue(self, path: str) -> tuple[str, list[str]]:
        image = describe(path)
        return omexml(image), image.notes

    def extract(self, path: str) -> str:
        return omexml(describe(path))
