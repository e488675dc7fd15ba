"""MetaSeries (MetaXpress) TIFF: the ``<MetaData>`` XML in the ImageDescription, as Bio-Formats 7.3.1's
MetamorphReader turns a single-plane file of that kind into OME-XML.

The mapping was established against the live Bio-Formats engine, one property at a time
(``tests/test_engines_tiff.py`` keeps each case): ``image-name`` is the Image name, ``_IllumSetting_``
the channel name, an integer ``wavelength`` above 0 the emission wavelength, ``spatial-calibration-x/y``
the physical size (the unit is ignored by Bio-Formats, so only ``um`` is claimed), ``stage-position-x/y``
the plane position in "reference frame" units, ``Exposure: N ms`` in the Description the exposure time,
``Temperature: T`` the imaging temperature (0.0 without it), ``acquisition-time-local`` a DeltaT of 0.
A file with any property or Description line outside what was checked is not claimed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lxml import etree

from metaextract import ome
from metaextract.ome import writer as ox

if TYPE_CHECKING:
    from metaextract.engines.tiff.plain import TiffInfo

TOP_PROPS = frozenset({"Description", "MetaDataVersion", "ApplicationName", "ApplicationVersion"})
#: PlaneInfo properties whose effect (or lack of one) on Bio-Formats' output has been checked.
PLANE_PROPS = frozenset({
    "image-name", "spatial-calibration-state", "spatial-calibration-x", "spatial-calibration-y",
    "spatial-calibration-units", "stage-position-x", "stage-position-y", "z-position",
    "acquisition-time-local", "modification-time-local", "wavelength", "_IllumSetting_", "plane-type",
    "pixel-size-x", "pixel-size-y", "bits-per-pixel", "autoscale-state", "autoscale-min-percent",
    "autoscale-max-percent", "scale-min", "scale-max", "threshold-state", "threshold-low", "threshold-high",
    "threshold-color", "stage-label", "camera-binning-x", "camera-binning-y", "camera-chip-offset-x",
    "camera-chip-offset-y", "gain", "photonfactor", "_MagNA_", "_MagRI_", "_MagSetting_",
    "ImageXpress Micro Filter Cube", "ImageXpress Micro Objective", "ImageXpress Micro Shutter",
})
#: Description lines checked against Bio-Formats (only Exposure and Temperature change the output).
DESCRIPTION_KEYS = frozenset({
    "Exposure", "Binning", "Region", "Subtract", "Shading", "Sensor Mode", "Digitizer", "Gain",
    "Camera Shutter", "Clear Count", "Clear Mode", "Frames to Average", "Trigger Mode", "Temperature",
})
_INT = re.compile(r"\d+")
_LINES = re.compile(r"[\r\n]+")
_EXPOSURE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ms")
_TIME = re.compile(r"\d{8} \d{2}:\d{2}:\d{2}(\.\d{1,3})?")


@dataclass
class MetaSeries:
    """The parts of a MetaSeries description that reach the OME-XML; ``supported`` False to decline."""

    supported: bool
    name: str | None = None
    channel: str | None = None
    emission: int | None = None
    calibration: tuple[float, float] | None = None
    position: tuple[float | None, float | None] = (None, None)
    exposure: float | None = None
    temperature: float = 0.0
    timed: bool = False


_NO = MetaSeries(supported=False)


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _description(text: str, meta: MetaSeries) -> bool:
    for line in _LINES.split(text):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or key not in DESCRIPTION_KEYS:
            return False
        if key == "Exposure":
            match = _EXPOSURE.fullmatch(value)
            if match is None:
                return False  # Bio-Formats reads every exposure as milliseconds: only "N ms" agrees
            meta.exposure = float(match.group(1)) / 1000
        elif key == "Temperature":
            temperature = _float(value)
            if temperature is None:
                return False
            meta.temperature = temperature
    return True


Props = dict[str | None, str | None]

#: one prop as MetaSeries writes it, with the white space after it: (the whole of it, id, value)
_PROP = re.compile(r'(<prop id="([^"<>&]*)" type="[^"<>&]*" value="([^"<>\x00-\x08\x0b\x0c\x0e-\x1f]*)"/>\s*)')
#: the same, for a value with nothing to normalise (no reference, no line end or tab)
_PROP_PLAIN = re.compile(r'(<prop id="([^"<>&]*)" type="[^"<>&]*" value="([^"<>&\x00-\x1f]*)"/>\s*)')
_REFERENCE = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#(9|10|13|3[2-9]|[4-9]\d|1[01]\d|12[0-6]));")
_SPECIAL = re.compile(r"[&\r\n\t]")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _value(raw: str) -> str | None:
    """An attribute value as an XML parser reports it (line ends and literal white space normalised,
    references replaced); None for a reference this reader does not know."""
    if _SPECIAL.search(raw) is None:
        return raw
    if ("\r" not in raw and "\n" not in raw and "\t" not in raw
            and raw.count("&") == raw.count("&#13;") + raw.count("&#10;")):
        return raw.replace("&#13;", "\r").replace("&#10;", "\n")  # MetaXpress' line ends in a Description
    raw = raw.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if "&" not in raw:
        return raw
    if raw.count("&") != len(_REFERENCE.findall(raw)):
        return None
    return _REFERENCE.sub(lambda m: _NAMED[m.group(1)] if m.group(1) else chr(int(m.group(2))), raw)


def _whole(found: list[tuple[str, str, str]], block: str, n: int) -> bool:
    """Whether the props found make up the whole block (white space after each included): one per ``<``,
    and nothing between them."""
    return len(found) == n and sum([len(whole) for whole, _, _ in found]) == len(block)


def _props(block: str) -> Props | None:
    """A block's props, when it holds props and white space only."""
    block = block.lstrip()
    n = block.count("<")
    found = _PROP_PLAIN.findall(block)
    if _whole(found, block, n):
        return {key: value for _, key, value in found}  # no value needs normalising (a plate's usual case)
    found = _PROP.findall(block)
    if not _whole(found, block, n):
        return None  # a prop written otherwise (other attribute order, quotes, more attributes), or text
    out: Props = {}
    for _, key, raw in found:
        value = _value(raw)
        if value is None:
            return None
        out[key] = value
    return out


def _read_fast(text: str) -> tuple[Props, Props, Props] | None:
    """The top, PlaneInfo and SetInfo properties of MetaSeries XML in the usual layout, without an XML
    parser (a plate has one per file); None for anything else, which :func:`_read_xml` then reads."""
    if not text.startswith("<MetaData>") or not text.endswith("</MetaData>"):
        return None
    plane_at = text.find("<PlaneInfo>")
    plane_end = text.find("</PlaneInfo>", plane_at)
    set_at = text.find("<SetInfo>", plane_end)
    set_end = text.find("</SetInfo>", set_at)
    if min(plane_at, plane_end, set_at, set_end) < 0:
        return None
    if text[plane_end + 12:set_at].strip() or text[set_end + 10:-11].strip():
        return None  # only white space between the blocks and around them
    top, plane, sets = (_props(block) for block in (text[10:plane_at], text[plane_at + 11:plane_end],
                                                     text[set_at + 9:set_end]))
    if top is None or plane is None or sets is None:
        return None
    return top, plane, sets


def _read_xml(text: str) -> tuple[Props, Props, Props] | Literal[False] | None:
    """The same with a (safe) XML parser: None when not XML or not MetaData, False without PlaneInfo."""
    try:
        root = ome.parse(text)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag != "MetaData":
        return None
    if root.find("PlaneInfo") is None:
        return False
    top = {p.get("id"): p.get("value") for p in root.findall("prop")}
    plane = {p.get("id"): p.get("value") for p in root.findall("PlaneInfo/prop")}
    sets = {p.get("id"): p.get("value") for p in root.findall("SetInfo/prop")}
    return top, plane, sets


def read_props(text: str) -> tuple[Props, Props, Props] | Literal[False] | None:
    """MetaSeries XML's properties: ``(top, PlaneInfo, SetInfo)``; None when ``text`` is not MetaSeries
    XML, False when it has no PlaneInfo. The fast reader and the XML parser agree wherever the fast one
    answers (``tests/test_engines_tiff.py``)."""
    text = text.strip()
    fast = _read_fast(text)
    return fast if fast is not None else _read_xml(text)


def parse_metaseries(text: str) -> MetaSeries | None:
    """None when ``text`` is not MetaSeries XML; ``supported=False`` when it is, but is not claimed."""
    props = read_props(text)
    if props is None:
        return None
    if props is False:
        return _NO
    top, plane, sets = props
    if not top.keys() <= TOP_PROPS or not plane.keys() <= PLANE_PROPS or "Description" not in top:
        return _NO
    if sets.get("number-of-planes") != "1":
        return _NO
    meta = MetaSeries(supported=True, name=plane.get("image-name"), channel=plane.get("_IllumSetting_"))
    if not _description(top["Description"] or "", meta):
        return _NO
    wavelength = plane.get("wavelength")
    if wavelength is not None:
        if not _INT.fullmatch(wavelength):
            return _NO  # Bio-Formats fails on a fractional wavelength (NumberFormatException)
        meta.emission = int(wavelength) or None
    cal = (plane.get("spatial-calibration-x"), plane.get("spatial-calibration-y"))
    if cal != (None, None):
        x, y = _float(cal[0]), _float(cal[1])
        if x is None or y is None or x <= 0 or y <= 0:
            return _NO
        if plane.get("spatial-calibration-units", "um") != "um":
            return _NO  # Bio-Formats takes any unit as µm
        if plane.get("spatial-calibration-state", "on") != "on":
            return _NO
        meta.calibration = (x, y)
    raw = (plane.get("stage-position-x"), plane.get("stage-position-y"))
    meta.position = (_float(raw[0]), _float(raw[1]))
    if any(r is not None and p is None for r, p in zip(raw, meta.position, strict=True)):
        return _NO
    stamp = plane.get("acquisition-time-local")
    if stamp is not None:
        if not _TIME.fullmatch(stamp):
            return _NO
        meta.timed = True
    return meta


def metaseries_values(meta: MetaSeries, info: TiffInfo) -> ox.Values:
    """What of a single-plane MetaSeries TIFF reaches its OME-XML, written as :func:`metaseries_tree` writes it."""
    physical = meta.calibration or info.physical
    px, py = physical[0], physical[1]
    x, y = meta.position
    return {
        "name": meta.name, "date": info.date or None, "temperature": ox.jdouble(meta.temperature),
        "type": info.pixel_type, "x": str(info.size_x), "y": str(info.size_y),
        "big_endian": "true" if info.big_endian else "false", "bits": str(info.bits),
        "px": None if px is None else ox.jdouble(px), "py": None if py is None else ox.jdouble(py),
        "samples": str(info.samples), "emission": ox.jdouble(meta.emission) if meta.emission else None,
        "channel": meta.channel, "timed": meta.timed,
        "exposure": None if meta.exposure is None else ox.jdouble(meta.exposure),
        "position_x": None if x is None else ox.jdouble(x), "position_y": None if y is None else ox.jdouble(y),
    }


def metaseries_tree(v: ox.Values) -> ox.El:
    """The Image Bio-Formats' MetamorphReader reports for a single-plane MetaSeries TIFF, from
    :func:`metaseries_values`."""
    attrs = {"ID": "Image:0"}
    if v["name"] is not None:
        attrs["Name"] = ox.string(v["name"])
    image = ox.El("Image", attrs)
    if v["date"] is not None:
        image.add(ox.El("AcquisitionDate", text=ox.string(v["date"])))
    image.add(ox.El("Description"))
    image.add(ox.El("ImagingEnvironment", {"Temperature": ox.string(v["temperature"]), "TemperatureUnit": "°C"}))
    pixels = image.add(ox.pixels(
        pixel_type=ox.string(v["type"]), size=(ox.string(v["x"]), ox.string(v["y"]), 1, 1, 1),
        big_endian=ox.string(v["big_endian"]), significant_bits=ox.string(v["bits"]),
        physical=(ox.maybe(v["px"]), ox.maybe(v["py"]), None),
    ))
    channel: dict[str, str] = {}
    if v["emission"] is not None:
        channel.update(EmissionWavelength=ox.string(v["emission"]), EmissionWavelengthUnit="nm")
    if v["channel"] is not None:
        channel["Name"] = ox.string(v["channel"])
    pixels.add(ox.channel(0, 0, ox.string(v["samples"]), **channel))
    pixels.add(ox.El("MetadataOnly"))
    plane = {"TheC": "0", "TheT": "0", "TheZ": "0"}
    if v["timed"]:
        plane.update(DeltaT="0.0", DeltaTUnit="s")
    if v["exposure"] is not None:
        plane.update(ExposureTime=ox.string(v["exposure"]), ExposureTimeUnit="s")
    for axis in "XY":
        value = v[f"position_{axis.lower()}"]
        if value is not None:
            plane[f"Position{axis}"] = ox.string(value)
            plane[f"Position{axis}Unit"] = "reference frame"
    pixels.add(ox.El("Plane", plane))
    return image
