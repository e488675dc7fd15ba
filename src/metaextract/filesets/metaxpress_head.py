"""What a MetaXpress plate TIFF's header says, read cheaply: IFD 0 and its MetaSeries description.

MetaXpress writes the pixels first and the IFD and description after them, so a header read is the
8-byte TIFF header, one IFD and the description it points to (a few KB), through a memory map: the cost
per file is flat whatever the image size. The TIFF walk is the sanity check's
(:class:`~metaextract.engines.tiff.ifd.Tiff`),
the property reader the MetaSeries engine's (:func:`~metaextract.engines.tiff.metaseries.read_props`).
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from dataclasses import dataclass
from datetime import datetime

from metaextract.engines.tiff import common, metaseries
from metaextract.engines.tiff.ifd import Damage, Tiff

_PIXEL_TYPES = {(1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (2, 8): "int8", (2, 16): "int16",
                (2, 32): "int32", (3, 32): "float", (3, 64): "double"}
#: the PlaneInfo properties a plate read needs from every file (the rest only from one file per wavelength)
_WANTED = re.compile(r'<prop id="(stage-position-x|stage-position-y|z-position|acquisition-time-local|wavelength)"'
                     r' type="[^"]*" value="([^"]*)"/>')
_TEMPERATURE = re.compile(r"Temperature: *(-?[0-9]+(?:\.[0-9]+)?)")
_EXPOSURE = re.compile(r"Exposure: *([0-9]+(?:\.[0-9]+)?) ms")
MAX_DESCRIPTION = 1 << 20


@dataclass(slots=True)
class Head:
    """One plate TIFF's header: shape and type, the MetaSeries description (text), the properties read
    from it, and its acquisition time (``acquisition-time-local``) as a datetime."""

    size_x: int
    size_y: int
    pixel_type: str
    bits: int
    big_endian: bool
    pages: int
    date: str | None  # the DateTime tag as Bio-Formats writes an AcquisitionDate
    description: str
    props: dict[str, str]
    acquired: datetime | None

    def number(self, key: str) -> float | None:
        raw = self.props.get(key)
        try:
            return None if raw is None else float(raw)
        except ValueError:
            return None

    @property
    def position(self) -> tuple[float | None, float | None, float | None]:
        return self.number("stage-position-x"), self.number("stage-position-y"), self.number("z-position")


def _time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.strptime(raw, "%Y%m%d %H:%M:%S.%f" if "." in raw else "%Y%m%d %H:%M:%S")
    except ValueError:
        return None


def _text(raw: bytes | None) -> str:
    if raw is None:
        return ""
    raw = raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _read(t: Tiff) -> Head | None:
    tags, following = t.ifd(t.first_ifd(), 0)

    def one(code: int, default: int | None) -> int | None:
        entry = tags.get(code)
        return default if entry is None else t.single(entry)

    width, length, bits, fmt = one(256, None), one(257, None), one(258, 1), one(339, 1)
    if width is None or length is None or bits is None or fmt is None or one(277, 1) != 1:
        return None
    pixel_type = _PIXEL_TYPES.get((fmt, bits))
    if pixel_type is None:
        return None
    entry = tags.get(270)
    description = _text(None if entry is None else t.bytes_of(entry, MAX_DESCRIPTION, "ImageDescription"))
    date_entry = tags.get(306)
    date = common.iso_date(_text(t.bytes_of(date_entry, 64, "DateTime")).strip()) if date_entry else None
    props = dict(_WANTED.findall(description))
    return Head(size_x=width, size_y=length, pixel_type=pixel_type, bits=bits, big_endian=t.order == ">",
                pages=1 if following == 0 else 2, date=date if isinstance(date, str) else None,
                description=description, props=props, acquired=_time(props.get("acquisition-time-local")))


def read_head(path: str) -> Head | None:
    """The header of a classic TIFF at ``path`` (None when unreadable, not a TIFF, or not one-sample)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < 8:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(bytes(data[:4]))
                if order is None:
                    return None
                return _read(Tiff(data, order, False))
    except (Damage, OSError, ValueError, struct.error, OverflowError):
        return None


@dataclass(slots=True)
class Settings:
    """What Bio-Formats' MetamorphReader takes from one file for a whole channel or plate: the emission
    wavelength, the objective's NA and refractive index, the physical pixel size, exposure, temperature."""

    emission: float | None = None
    lens_na: float | None = None
    refractive_index: float | None = None
    physical: tuple[float | None, float | None] = (None, None)
    exposure: float | None = None
    temperature: float = 0.0
    channel: str | None = None


def _float(raw: str | None) -> float | None:
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def settings(head: Head) -> Settings:
    """The full read of one file's description (the plate's first file, and one per wavelength)."""
    out = Settings()
    props = metaseries.read_props(head.description)
    if not props:
        return out
    top, plane, _ = props
    wavelength = _float(plane.get("wavelength"))
    out.emission = wavelength if wavelength else None
    out.lens_na = _float(plane.get("_MagNA_"))
    out.refractive_index = _float(plane.get("_MagRI_"))
    if plane.get("spatial-calibration-state", "on") == "on":
        out.physical = (_float(plane.get("spatial-calibration-x")), _float(plane.get("spatial-calibration-y")))
    out.channel = plane.get("_IllumSetting_")
    text = top.get("Description") or ""
    exposure = _EXPOSURE.search(text)
    out.exposure = float(exposure.group(1)) / 1000 if exposure else None
    temperature = _TEMPERATURE.search(text)
    out.temperature = float(temperature.group(1)) if temperature else 0.0
    return out
