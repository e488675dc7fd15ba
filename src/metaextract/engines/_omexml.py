"""Write OME-XML the way Bio-Formats' ``showinf -omexml-only`` prints it, for the native engines.

Bio-Formats serialises its metadata store with attributes in alphabetical order, three spaces of
indentation, numbers as Java's ``Double.toString`` spells them and empty elements as ``<X/>``; a
native engine that writes the same bytes can be compared with it field by field and as a whole.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from decimal import Decimal

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://www.openmicroscopy.org/Schemas/OME/2016-06 '
    'http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd">'
)
MICRON = "µm"

#: numpy dtype name -> OME pixel type
PIXEL_TYPES = {
    "uint8": "uint8", "int8": "int8", "uint16": "uint16", "int16": "int16", "uint32": "uint32",
    "int32": "int32", "float32": "float", "float64": "double",
}


def zct(plane: int, order: str, size: tuple[int, int, int, int, int]) -> tuple[int, int, int]:
    """The (Z, C, T) of plane number ``plane`` for a dimension order such as ``XYZCT`` and sizes (X, Y, Z, C, T),
    as ``FormatTools.getZCTCoords`` gives them."""
    extent = {"Z": size[2], "C": size[3], "T": size[4]}
    found: dict[str, int] = {}
    for axis in order[2:]:
        found[axis] = plane % extent[axis]
        plane //= extent[axis]
    return found["Z"], found["C"], found["T"]


def f32(value: float) -> float:
    """``value`` rounded to a Java ``float`` (IEEE single precision)."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def jfloat(value: float) -> str:
    """A float32 as Java's ``Float.toString`` writes it (the shortest digits that give the float back)."""
    if not math.isfinite(value) or value == 0:
        return jdouble(value)
    for digits in range(1, 10):
        text = f"{value:.{digits - 1}e}"
        if f32(float(text)) == value:
            return jdouble(float(text))
    return jdouble(value)


_JAVA_TRIMMED = "".join(map(chr, range(33)))


def jtrim(text: str) -> str:
    """``String.trim()``: strips every character up to U+0020 from both ends (Python's ``strip`` differs)."""
    return text.strip(_JAVA_TRIMMED)


def jdouble(value: float) -> str:
    """``value`` as Java's ``Double.toString`` writes it (``1.0``, ``0.65``, ``1.0E-4``, ``1.5E7``)."""
    v = float(value)
    if v == 0:
        return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if 1e-3 <= abs(v) < 1e7:
        return repr(v)  # Python's shortest repr is positional here, as Java's is
    parts = Decimal(repr(abs(v))).as_tuple()
    digits = "".join(map(str, parts.digits))
    exponent = len(digits) - 1 + int(parts.exponent)
    digits = digits.rstrip("0") or "0"
    return f"{'-' if v < 0 else ''}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def jnumber(value: float | int) -> str:
    """A Java ``Double`` attribute (``1.0``) from any number."""
    return jdouble(float(value))


_ATTR_SPECIAL = re.compile(r'[&<>"\n\r\t]')


def _escape_attr(text: str) -> str:
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;"))


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


@dataclass
class El:
    """One element: tag, attributes (written sorted, like Bio-Formats), children or text."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[El] = field(default_factory=list)
    text: str | None = None

    def add(self, child: El) -> El:
        self.children.append(child)
        return child

    def write(self, out: list[str], depth: int) -> None:
        pad = "   " * depth
        attrs = "".join(f' {k}="{_escape_attr(v)}"' for k, v in sorted(self.attrs.items()))
        if self.text:
            out.append(f"{pad}<{self.tag}{attrs}>{_escape_text(self.text)}</{self.tag}>")
        elif self.children:
            out.append(f"{pad}<{self.tag}{attrs}>")
            for child in self.children:
                child.write(out, depth + 1)
            out.append(f"{pad}</{self.tag}>")
        else:
            out.append(f"{pad}<{self.tag}{attrs}/>")


def document(*elements: El) -> str:
    """The whole ``<OME>`` document around ``elements`` (Images, Plates, Instruments …)."""
    out = [HEADER]
    for element in elements:
        element.write(out, 1)
    out.append("</OME>")
    return "\n".join(out) + "\n"


def pixels(*, index: int = 0, dimension_order: str = "XYCZT", pixel_type: str, size: tuple[int, int, int, int, int],
           big_endian: bool, significant_bits: int, interleaved: bool = False,
           physical: tuple[float | None, float | None, float | None] = (None, None, None)) -> El:
    """A ``Pixels`` element as ``MetadataTools.populatePixels`` fills it (sizes are X, Y, Z, C, T)."""
    x, y, z, c, t = size
    attrs = {
        "BigEndian": "true" if big_endian else "false", "DimensionOrder": dimension_order,
        "ID": f"Pixels:{index}", "Interleaved": "true" if interleaved else "false",
        "SignificantBits": str(significant_bits), "SizeX": str(x), "SizeY": str(y), "SizeZ": str(z),
        "SizeC": str(c), "SizeT": str(t), "Type": pixel_type,
    }
    for axis, value in zip("XYZ", physical, strict=True):
        if value is not None:
            attrs[f"PhysicalSize{axis}"] = jdouble(value)
            attrs[f"PhysicalSize{axis}Unit"] = MICRON
    return El("Pixels", attrs)


def channel(image: int, index: int, samples: int, **attrs: str) -> El:
    """A ``Channel`` with its empty ``LightPath``, as Bio-Formats writes every channel."""
    el = El("Channel", {"ID": f"Channel:{image}:{index}", "SamplesPerPixel": str(samples), **attrs})
    el.add(El("LightPath"))
    return el
