"""ICS (Image Cytometry Standard) from its text header, as Bio-Formats 7.3.1's ICSReader reports it.

An ICS file is a text header: two separator bytes, then ``category [subcategory …] values`` lines
(``ics_version``, ``filename``, ``layout``, ``representation``, ``parameter``, ``history`` … ``end``).
Version 1 keeps the pixels in a sibling ``.ids`` file, version 2 after the header. This engine reads the
header only, never the pixels, with no third-party package.

The rules of ICSReader reproduced here (read from its source and pinned against live Bio-Formats with
synthetic headers in ``tests/test_engines_ics.py``):

* the file's name decides: ``x.ics`` pairs with ``x.ids`` and back (the second-last letter moved by one,
  its case kept); the header is version 2 only when its first 17 bytes, trimmed, are
  ``ics_version<TAB>2.0`` — otherwise the ``.ids`` must exist or Bio-Formats fails ("IDS file not found.");
* the header is read line by line (a line ends at CR or LF, the separator bytes are ignored: words are split
  on white space, double quotes group) from the second line until a line ``end``; a line is used only when
  at least two bytes follow it, so the last line of a header without ``end`` is never read; a key
  repeated takes its last value; categories and keys are matched case-insensitively, values are not;
* the image is named by the ``filename`` value; axes are the ``layout order`` words: ``bits`` (rounded up
  to whole bytes, 24/48 read as 8/16), ``x``, ``y``, ``z``, ``t`` (several ``t`` multiply), every other word
  a channel axis (several multiply); the dimension order is XY, then Z/T/C as they first appear, then the
  missing ones in the order C, Z, T;
* the pixel type comes from the byte count, ``representation sign`` equal to ``signed`` and
  ``representation format`` equal to ``real``; ``BigEndian`` is Bio-Formats' own reading of
  ``byte_order``: little-endian when the first byte is 1 for reals and when it is not 1 for integers, then
  flipped for samples under 32 bits (no ``byte_order`` counts as little-endian before the flip);
* ``SignificantBits`` is ``layout significant_bits`` (else the sample size);
* ``parameter scale`` gives the physical size of axis ``x``/``y``/``z`` at the same index when its
  ``parameter units`` word is ``um``, ``microns``, ``micrometers`` or missing (case kept; a ``units``
  list one short gets ``nm`` inserted at the ``ch`` axis), values at or below zero giving none, and the
  time increment of axis ``t`` in ms (unit ``ms`` or missing) or s (``s``, ``seconds``), zero or negative
  as it is;
* channel axes of one length and one kind (``c…`` or other) add a ModuloAlongC annotation (type other,
  "TCSPC", 0 … length - 1) when that length is above 1;
* every other Bio-Formats element is the same for every such header (an Experiment of type Other, an
  Instrument with an empty Microscope, a Detector and an Objective of type/correction/immersion Other).

Claimed (score 50) are the ``.ics`` and ``.ids`` of a pair and a version-2 ``.ics``, when the header has
nothing beyond those rules. A version-1 ``.ics`` whose ``.ids`` is missing is claimed too: Bio-Formats
certainly fails on it, and this engine answers with the document Bio-Formats gives for the same header with
its data, its notes (:meth:`IcsEngine.extract_noted`) saying so. Declined (left to Bio-Formats):
``history`` and ``sensor`` lines and ``parameter ch`` (instrument, channel, date and lifetime data), a
channel axis before ``x`` (interleaved/RGB), phase or frequency axes, axes not starting ``bits x y``,
repeated x/y/z axes, sample sizes other than 8/16/32/64 bits (64 only real), a significant-bits count
above the sample size, physical sizes under 1 nm (Bio-Formats changes their unit), numbers Java and Python
may parse differently, non-ASCII text, a version-2 header without ``end`` (Bio-Formats never returns on it)
and more than 100,000 planes. As a rescuer (:mod:`metaextract.engines.rescue`) it still reads, after
Bio-Formats failed, a header with data missing that it declines to claim, ignoring the lines it does not
reproduce (the notes list them).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from metaextract.engines.base import (
    CLAIM,
    Declined,
    ExtractionError,
    FileContext,
    ReaderEngine,
    UnsupportedFormatError,
)
from metaextract.extraction import fence
from metaextract.ome import writer as ox

NAME = "ics"
RESCUE = 50  # the header's own first line is the evidence
MAX_HEADER = 1 << 20
MAX_PLANES = 100_000
MIN_PHYSICAL = 1e-3  # µm: below it Bio-Formats may write another unit (not reproduced)
V2_MARK = "ics_version\t2.0"
BF_MISSING_IDS = "Bio-Formats failed: FormatException: IDS file not found."  # checked live, 7.3.1
MICRONS = ("", "um", "microns", "micrometers")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WHITE = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x04")  # Character.isWhitespace (ASCII) and 0x04

#: Keys (words after the category) each category knows, most specific first, as ICSReader lists them; a
#: line's key is the category plus the first of these its next words match.
_KEYS = {
    "layout": (("coordinates",), ("order",), ("parameters",), ("real_significant_bits",), ("significant_bits",),
               ("significant_channels",), ("sizes",)),
    "representation": (("byte_order",), ("compression",), ("format",), ("sign",)),
    "parameter": (("allowedlinemodes",), ("ch",), ("higher_limit",), ("labels",), ("lower_limit",), ("origin",),
                  ("range",), ("sample_width", "ch"), ("sample_width",), ("scale",),
                  ("units", "adc-units", "channels"), ("units", "adc-units", "nm"), ("units",)),
}
#: Categories whose lines set fields this engine does not reproduce (claim declines, rescue ignores them).
_UNREPRODUCED = frozenset({"history", "sensor"})


def looks_like_ics(head: bytes) -> bool:
    """The two separator bytes followed by ``ics_version`` (the only way an ICS header may start)."""
    return len(head) > 13 and head[2:13].lower() == b"ics_version"


def _inside(ics: str, path: str) -> None:
    """Refuse the .ics header of an .ids when it is a link that resolves outside the folder."""
    if ics != path and not fence.in_folder(ics, os.path.dirname(os.path.abspath(path))):
        raise ExtractionError(f"its header {os.path.basename(ics)} resolves outside the file's folder; refused, "
                              "not read")


def companion(path: str) -> tuple[str, str] | None:
    """The (.ics, .ids) pair Bio-Formats forms from ``path`` (None for another extension)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".ics", ".ids"):
        return None
    step = 1 if ext == ".ics" else -1
    other = path[:-2] + chr(ord(path[-2]) + step) + path[-1]
    return (path, other) if ext == ".ics" else (other, path)


def _tokens(line: str) -> list[str]:
    """Words of a line as ICSReader splits them: on white space and 0x04, double quotes group."""
    words: list[str] = []
    word: list[str] | None = None
    quoted = False
    for ch in line:
        if ch in _WHITE and not quoted:
            if word:
                words.append("".join(word))
            word = None
            continue
        if ch == '"':
            quoted = not quoted
        if word is None:
            word = []
        word.append(ch)
    if word:
        words.append("".join(word))
    return words


def _key(category: str, words: list[str]) -> tuple[str, list[str]]:
    """The line's key (lower case, words joined by a space) and its value words."""
    for option in _KEYS.get(category, ()):
        if [w.lower() for w in words[1:1 + len(option)]] == list(option):
            return " ".join((category, *option)), words[1 + len(option):]
    return category, words[1:]


@dataclass
class IcsHeader:
    """The lines ICSReader uses: the last value of each key, and what it would read beyond them."""

    version_two: bool
    values: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    unreproduced: list[str] = field(default_factory=list)  #: keys this engine does not reproduce
    has_end: bool = False
    ascii: bool = True

    def get(self, key: str) -> list[str] | None:
        return self.values.get(key)


def parse_header(path: str) -> IcsHeader:
    """Read the header of the ICS file ``path`` line by line, as ICSReader does."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        raw = fh.read(MAX_HEADER)
    if not looks_like_ics(raw):
        raise UnsupportedFormatError(f"not an ICS header (first 13 bytes: {raw[:13]!r})")
    text = raw.decode("latin-1")
    header = IcsHeader(version_two=ox.jtrim(text[:17]) == V2_MARK)
    pos, lines = 0, []
    while pos < len(text):  # each pass consumes at least one character
        found = [i for i in (text.find("\r", pos), text.find("\n", pos)) if i >= 0]
        cut = min(found) if found else len(text)
        lines.append((text[pos:cut], min(cut + 1, len(text))))  # (the line, where the next one starts)
        pos = cut + 1
    for line, end in lines[1:]:  # the separators' line is skipped
        stripped = ox.jtrim(line)
        if stripped == "end":
            header.has_end = True
            break
        if end >= size - 1:  # ICSReader stops before a line with fewer than two bytes after it
            break
        words = _tokens(stripped)
        if not words:
            continue
        if not line.isascii():
            header.ascii = False
        category = words[0].lower()
        if category == "filename":
            header.filename = " ".join(words[1:])
        elif category in _UNREPRODUCED:
            header.unreproduced.append(" ".join(w.lower() for w in words[:3]))
        elif category in _KEYS:
            key, value = _key(category, words)
            if key == "parameter ch":
                header.unreproduced.append(key)
            header.values[key] = value
    else:
        if size > len(raw):
            raise Declined(f"no 'end' line in the first {MAX_HEADER} bytes of the header")
    return header


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
    time_increment: tuple[float, str] | None
    modulo_c: int  #: length of the ModuloAlongC annotation (0: none)
    notes: list[str] = field(default_factory=list)


def _int(values: list[str] | None, what: str) -> int:
    if not values or len(values) != 1 or not values[0].isdigit() or len(values[0]) > 9:
        raise Declined(f"{what} is not one integer: {values}")
    return int(values[0])


def _scales(values: list[str]) -> list[float]:
    if not all(_NUMBER.fullmatch(v) for v in values):
        raise Declined(f"parameter scale has a value Java and Python may read differently: {values}")
    return [float(v) for v in values]


def describe(header: IcsHeader, *, strict: bool) -> IcsImage:
    """Sizes, pixel type, byte order and pixel sizes of the image whose header is ``header``."""
    if strict and header.unreproduced:
        raise Declined(f"header lines this engine does not reproduce: {sorted(set(header.unreproduced))}")
    if strict and not header.ascii:
        raise Declined("header text is not ASCII")
    if header.version_two and not header.has_end:
        raise Declined("a version 2.0 header without an 'end' line (Bio-Formats never returns on it)")
    if header.filename is None:
        raise Declined("no filename line (Bio-Formats then names the image after the file)")
    axes = header.get("layout order") or []
    lengths_raw = header.get("layout sizes") or []
    if not all(v.isdigit() and 0 < len(v) < 10 for v in lengths_raw):
        raise Declined(f"layout sizes are not positive integers: {lengths_raw}")
    lengths = [int(v) for v in lengths_raw]
    if len(axes) != len(lengths) or axes[:3] != ["bits", "x", "y"]:
        raise Declined(f"layout order {axes} is not 'bits x y …' with one size each ({lengths_raw})")
    if min(lengths) < 1:
        raise Declined(f"an axis of size 0: {lengths}")
    sizes = {"X": lengths[1], "Y": lengths[2], "Z": 0, "C": 0, "T": 0}
    order = "XY"
    channel_axes: list[tuple[int, str]] = []
    for label, length in zip(axes[3:], lengths[3:], strict=True):
        if label in ("bits", "x", "y") or (label == "z" and sizes["Z"]):
            raise Declined(f"axis {label!r} appears twice in layout order {axes}")
        if label == "z":
            dim = "Z"
            sizes["Z"] = length
        elif label == "t":
            dim = "T"
            sizes["T"] = sizes["T"] * length if sizes["T"] else length
        else:
            if label in ("p", "f"):
                raise Declined(f"a {'phase' if label == 'p' else 'frequency'} axis ({label!r})")
            dim = "C"
            sizes["C"] = sizes["C"] * length if sizes["C"] else length
            channel_axes.append((length, "channel" if label.startswith("c") else ""))
        if dim not in order:
            order += dim
    order += "".join(d for d in "CZT" if d not in order)
    for dim in "ZCT":
        sizes[dim] = sizes[dim] or 1
    if sizes["Z"] * sizes["C"] * sizes["T"] > MAX_PLANES:
        raise Declined(f"more than {MAX_PLANES} planes")
    bits = lengths[0]
    fmt = " ".join(header.get("representation format") or [])
    if fmt not in ("integer", "real"):
        raise Declined(f"representation format {fmt!r} is neither 'integer' nor 'real'")
    if bits not in (8, 16, 32, 64) or (bits == 64 and fmt != "real"):
        raise Declined(f"{bits}-bit {fmt} samples")
    signed = " ".join(header.get("representation sign") or []) == "signed"
    pixel_type = {8: "int8" if signed else "uint8", 16: "int16" if signed else "uint16",
                  32: "float" if fmt == "real" else ("int32" if signed else "uint32"), 64: "double"}[bits]
    significant = header.get("layout significant_bits")
    significant_bits = bits if significant is None else _int(significant, "layout significant_bits")
    if not 0 < significant_bits <= bits:
        raise Declined(f"layout significant_bits {significant_bits} for {bits}-bit samples")
    byte_order = header.get("representation byte_order")
    little = True
    if byte_order is not None:
        first = _int(byte_order[:1], "the first byte_order value")
        little = first == 1 if fmt == "real" else first != 1
    if bits < 32:
        little = not little
    physical: dict[str, float] = {}
    time_increment: tuple[float, str] | None = None
    scale_words = header.get("parameter scale")
    if scale_words is not None:
        scales = _scales(scale_words)
        units = header.get("parameter units")
        if units is not None and len(units) == len(scales) - 1:
            lowered = [a.lower() for a in axes]
            if len(axes) != len(scales) or lowered.count("ch") != 1:
                raise Declined("parameter units one short without exactly one 'ch' axis to fill")
            units = list(units)
            units.insert(lowered.index("ch"), "nm")
        for index, value in enumerate(scales):
            axis = axes[index] if index < len(axes) else ""
            unit = units[index] if units is not None and index < len(units) else ""
            if not math.isfinite(value):
                raise Declined(f"parameter scale {value}")
            if axis in ("x", "y", "z") and unit in MICRONS:
                if 0 < value < MIN_PHYSICAL:
                    raise Declined(f"physical size {value} µm (Bio-Formats may change its unit)")
                if value > 0:
                    physical[axis.upper()] = value
            elif axis == "t" and unit in ("", "ms", "s", "seconds"):  # zero and negative ones too (checked live)
                time_increment = (value, "ms" if unit in ("", "ms") else "s")
    lengths_c = {length for length, _ in channel_axes} or {1}
    kinds = {kind for _, kind in channel_axes} or {"channel"}
    modulo = lengths_c.pop() if len(lengths_c) == 1 and len(kinds) == 1 else 0
    return IcsImage(name=header.filename, order=order, sizes=sizes, pixel_type=pixel_type,
                    significant_bits=significant_bits, big_endian=not little, physical=physical,
                    time_increment=time_increment, modulo_c=modulo if modulo > 1 else 0)


def _planes(order: str, sizes: dict[str, int]) -> list[dict[str, int]]:
    dims = order[2:]
    planes: list[dict[str, int]] = []
    for index in range(sizes["Z"] * sizes["C"] * sizes["T"]):
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
    if image.time_increment is not None:
        pixels.attrs["TimeIncrement"] = ox.jdouble(image.time_increment[0])
        pixels.attrs["TimeIncrementUnit"] = image.time_increment[1]
    for c in range(s["C"]):
        pixels.add(ox.channel(0, c, 1))
    pixels.add(ox.El("MetadataOnly"))
    for plane in _planes(image.order, s):
        pixels.add(ox.El("Plane", {f"The{d}": str(plane[d]) for d in "CTZ"}))
    parts = [ox.El("Experiment", {"ID": "Experiment:0", "Type": "Other"}), instrument, el]
    if image.modulo_c:
        el.add(ox.El("AnnotationRef", {"ID": "Annotation:0"}))
        annotations = ox.El("StructuredAnnotations")
        xml = annotations.add(ox.El("XMLAnnotation", {"ID": "Annotation:0",
                                                      "Namespace": "openmicroscopy.org/omero/dimension/modulo"}))
        modulo = xml.add(ox.El("Value")).add(
            ox.El("Modulo", {"namespace": "http://www.openmicroscopy.org/Schemas/Additions/2011-09"}))
        modulo.add(ox.El("ModuloAlongC", {"End": ox.jdouble(image.modulo_c - 1), "Start": "0.0", "Step": "1.0",
                                          "Type": "other", "TypeDescription": "TCSPC"}))
        parts.append(annotations)
    return ox.document(*parts)


@dataclass
class Found:
    """What ``claim`` read: the image and whether Bio-Formats fails on the file (its .ids is missing)."""

    image: IcsImage
    missing_ids: bool


class IcsEngine(ReaderEngine[Found]):
    """ICS headers whose document equals Bio-Formats'; a rescuer for the ones with data missing it declines."""

    name = NAME
    score = CLAIM
    suffixes = (".ics", ".ids")
    kind = "an ICS file"
    label = "the ICS header"

    def wants(self, path: str, head: bytes) -> bool:
        pair = companion(path)
        if pair is None:
            return False
        if path == pair[0]:
            return looks_like_ics(head)
        if not fence.in_folder(pair[0], os.path.dirname(os.path.abspath(path))):
            return False  # its header links outside the folder: not read
        try:
            with open(pair[0], "rb") as fh:
                return looks_like_ics(fh.read(16))
        except OSError:
            return False

    def check_unclaimed(self, path: str) -> None:
        if companion(path) is None:
            raise UnsupportedFormatError("not an .ics or .ids file name")

    def read(self, path: str) -> Found:
        pair = companion(path)
        if pair is None:
            raise UnsupportedFormatError("not an .ics or .ids file name")
        ics, ids = pair
        _inside(ics, path)
        header = parse_header(ics)
        missing = not header.version_two and not os.path.isfile(ids)
        image = describe(header, strict=True)
        if missing:
            image.notes = [f"read by {self.name} {self.version()} because Bio-Formats cannot read it "
                           f"({BF_MISSING_IDS})", _missing_note(header)]
        return Found(image, missing)

    def render(self, found: Found) -> str:
        return omexml(found.image)

    def extract_noted_in(self, ctx: FileContext, found: Found | None = None) -> tuple[str, list[str]]:
        """The OME-XML and the notes for the Result (why Bio-Formats is not asked, what is missing)."""
        found = self.found_in(ctx, found)
        return self.render(found), list(found.image.notes)

    def extract_noted(self, path: str) -> tuple[str, list[str]]:
        """:meth:`extract_noted_in` of ``path`` alone."""
        return self.extract_noted_in(FileContext(path))

    # -- rescue (after Bio-Formats failed) ---------------------------------------------------------------
    def rescues(self, path: str, head: bytes) -> int:
        return RESCUE if looks_like_ics(head) else 0

    def rescue(self, path: str) -> tuple[str, list[str]]:
        try:
            header = parse_header(path)
            image = describe(header, strict=False)
        except Declined as exc:
            raise ExtractionError(f"ICS header not mapped: {exc}") from None
        except (OSError, ValueError) as exc:
            raise ExtractionError(f"the ICS header cannot be read: {exc}") from None
        notes = []
        pair = companion(path)
        if not header.version_two and (pair is None or not os.path.isfile(pair[1])):
            notes.append(_missing_note(header))
        if header.unreproduced:
            notes.append(f"header lines not reproduced: {', '.join(sorted(set(header.unreproduced)))}")
        return omexml(image), notes


def _missing_note(header: IcsHeader) -> str:
    where = "the file named by 'source file'" if header.version_two else "its .ids file"
    return f"ICS pixel data not found ({where}); metadata from the header alone"
