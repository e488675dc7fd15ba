"""Native engines for TIFF kinds Bio-Formats 7.3.1 reads with more than a plain TIFF's metadata.

Today this is the ImageJ hyperstack: a TIFF whose ImageDescription starts with ``ImageJ=``. Bio-Formats
reads it with its ``TiffReader``, which takes the Z, C and T sizes from the ``channels=``, ``slices=`` and
``frames=`` lines (order XYCZT), the Z spacing from ``spacing=`` (always labelled µm), the time increment
from ``finterval=`` (seconds), the X/Y size from the resolution tags (centimetres converted to µm; any
other ResolutionUnit labelled with the unit of the last ``unit=WORD`` in the description), and reports
an empty Description. This engine writes the same OME-XML (checked against the live Bio-Formats engine on
hyperstacks written by tifffile, ``tests/test_engines_tiff_kinds.py``).

It claims only what has been proven: every description line must be a known ``key=value`` pair with
a value of the expected shape, the IFD count must match the hyperstack's sizes, a Z spacing is claimed
only when the unit is microns (Bio-Formats labels any spacing µm, which is wrong for mm, nm, …), and
the ImageJ metadata tag (50839, which Bio-Formats appends to the description before parsing it) must
not carry a size, spacing or interval line. Everything else — and every MetaMorph STK and Zeiss LSM
file — is left to Bio-Formats.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from metaextract.engines.base import FileContext
from metaextract.engines.tiff import common
from metaextract.engines.tiff.plain import PLAIN_TAGS, TiffKindEngine
from metaextract.ome import writer as ox

IMAGEJ = "tifffile-imagej"
CLAIM = 60  # beats Bio-Formats (1); the plain tifffile engine (50) declines ImageJ descriptions anyway
IMAGEJ_TAGS = frozenset({50838, 50839})  # IJMetadataByteCounts, IJMetadata
#: Tags an ImageJ TIFF may carry here: the plain TIFF tags without EXIF/GPS, and ImageJ's own two.
IMAGEJ_ALLOWED = (PLAIN_TAGS - {34665, 34853}) | IMAGEJ_TAGS
#: Description keys whose effect on Bio-Formats' OME-XML is known (most only fill original metadata).
KNOWN_KEYS = frozenset({
    "ImageJ", "images", "channels", "slices", "frames", "hyperstack", "mode", "loop", "unit", "spacing",
    "finterval", "fps", "min", "max", "xorigin", "yorigin", "zorigin", "cf", "c0", "c1", "vunit",
})
#: Lines in the ImageJ metadata tag that would change what Bio-Formats reports.
SENSITIVE = (b"channels=", b"slices=", b"frames=", b"spacing=", b"finterval=")
#: ``unit=WORD`` -> the unit Bio-Formats gives PhysicalSizeX/Y (``UnitsLength.fromString``; the words
#: it does not know give µm). Only the words checked against Bio-Formats are listed; others decline.
#: The last ``unit=WORD`` counts, so ImageJ's ``vunit=Gray Value`` (written for every calibrated image)
#: makes it "Gray": µm, whatever ``unit=`` said before (``tests/test_differential_tiff_instruments.py``).
XY_UNITS = {"micron": ox.MICRON, "um": ox.MICRON, "micrometer": ox.MICRON, "mm": "mm", "cm": "cm",
            "nm": "nm", "m": "m", "pixel": "pixel", "inch": ox.MICRON, "Gray": ox.MICRON,
            "Intensity": ox.MICRON}
#: ``unit=`` values that mean microns, the one unit Bio-Formats' µm label for ``spacing=`` is right for.
MICRON_WORDS = frozenset({"micron", "um", "micrometer", "\\u00B5m"})
_UNIT = re.compile(r"(.*)unit=(\w+)(.*)", re.DOTALL | re.ASCII)  # BaseTiffReader's unit-from-comment
_INT = re.compile(r"[0-9]{1,7}")
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")
_TIFF_SUFFIXES = (".tif", ".tiff")
MAX_IJ_TAG = 64 << 20  # a larger ImageJ metadata tag is not read (the file is left to Bio-Formats)


@dataclass
class ImageJInfo:
    """What the ImageJ engine writes for one file (read once by ``claim``, used again by ``extract``)."""

    name: str
    big_endian: bool
    size_x: int
    size_y: int
    size_z: int
    size_c: int
    size_t: int
    samples: int
    bits: int
    pixel_type: str
    date: str | None
    physical_x: float | None
    physical_y: float | None
    xy_unit: str
    physical_z: float | None
    time_increment: float | None


def java_resolution(page: Any, code: int) -> float | None:
    """``IFD.getXResolution`` as Bio-Formats computes it: ``1 / (num / den) * multiplier``.

    Parameters
    ----------
    page : tifffile.TiffPage
        The first IFD.
    code : int
        282 (XResolution) or 283 (YResolution).

    Returns
    -------
    float or None
        The pixel size in the resolution unit (µm for inch and centimetre), None when unset or not a
        positive finite size (Bio-Formats then writes no physical size).
    """
    tag = page.tags.get(code)
    if tag is None:
        return None
    num, den = tag.value
    if num == 0 or den == 0:
        return None
    unit_tag = page.tags.get(296)
    unit = int(unit_tag.value) if unit_tag is not None else 2
    factor = 25400 if unit == 2 else 10000 if unit == 3 else 1
    size = 1 / (num / den) * factor  # the same two roundings as Java's, so the same last digit
    return size if 1e-7 < size < float("inf") else None


def _ij_tag_bytes(fh: Any, page: Any) -> bytes:
    tag = page.tags.get(50839)
    if tag is None:
        return b""
    if tag.count > MAX_IJ_TAG:
        raise ValueError("ImageJ metadata tag too large to check")
    fh.seek(tag.valueoffset)
    return bytes(fh.read(tag.count))


@dataclass
class _Description:
    channels: int = 1
    slices: int = 1
    frames: int = 1
    unit: str | None = None
    spacing: float | None = None
    finterval: float | None = None


def parse_description(text: str) -> _Description | None:
    """The ImageJ description as Bio-Formats' ``TiffReader`` reads it; None for anything unproven.

    Parameters
    ----------
    text : str
        The ImageDescription, starting with ``ImageJ=``.

    Returns
    -------
    _Description or None
        Sizes, unit, spacing and frame interval (later lines win, as in Bio-Formats); None when a line
        is not a known ``key=value`` pair or a value is not of the shape both parsers read alike.
    """
    if not text.startswith("ImageJ=") or not text.isascii() or "\r" in text or "\x00" in text:
        return None
    out = _Description()
    for token in text.split("\n"):
        if not token:
            continue
        key, eq, value = token.partition("=")
        if not eq or key not in KNOWN_KEYS:
            return None
        if key in ("channels", "slices", "frames"):
            if not _INT.fullmatch(value) or int(value) < 1:
                return None
            setattr(out, key, int(value))
        elif key in ("spacing", "finterval"):
            if not _DECIMAL.fullmatch(value):
                return None
            setattr(out, key, float(value))
        elif key == "unit":
            out.unit = value
    return out


def _xy_unit(text: str) -> str | None:
    """The unit of PhysicalSizeX/Y when the ResolutionUnit tag says "none"; None when unproven."""
    found = _UNIT.fullmatch(text)
    if found is None:
        return ox.MICRON
    return XY_UNITS.get(found.group(2))


def inspect_imagej(path: str, listings: common.Listings | None = None) -> ImageJInfo | None:
    """Classify ``path``; an :class:`ImageJInfo` when this engine gives Bio-Formats' answer, else None.

    Parameters
    ----------
    path : str
        The file.
    listings : common.Listings, optional
        Cached folder listings; with them a file whose siblings could make Bio-Formats read it as part
        of a set is declined.

    Returns
    -------
    ImageJInfo or None
    """
    import tifffile

    if not os.path.basename(path).lower().endswith(_TIFF_SUFFIXES):
        return None
    if os.path.basename(path).lower().endswith((".ome.tif", ".ome.tiff")):
        return None
    with common.parsed(path) as tf:
        if tf is None:
            return None
        pages = tf.pages
        first = pages.first
        description = common.text(first, 270)
        if description is None or tf.is_bigtiff:
            return None
        desc = parse_description(description)
        if desc is None:
            return None
        codes = {tag.code for tag in first.tags}
        if not codes <= IMAGEJ_ALLOWED:
            return None
        software = common.text(first, 305)
        if software is not None and software not in ("tifffile.py", "ImageJ") and not software.startswith(
                ("ImageJ", "Fiji")):
            return None
        if any(key in _ij_tag_bytes(tf.filehandle, first).replace(b"\x00", b"") for key in SENSITIVE):
            return None
        if (282 in codes or 283 in codes) and 296 not in codes:
            return None
        shape = (first.imagewidth, first.imagelength, first.samplesperpixel, first.bitspersample,
                 first.sampleformat, first.photometric, first.planarconfig)
        count = len(pages)
        for page in pages:
            if not isinstance(page, tifffile.TiffPage) or int(page.subfiletype) != 0:
                return None
            if (page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample, page.sampleformat,
                    page.photometric, page.planarconfig) != shape:
                return None
        samples, bits, photometric = first.samplesperpixel, first.bitspersample, int(first.photometric)
        pixel_type = common.PIXEL_TYPES.get((int(first.sampleformat), bits))
        if pixel_type is None:
            return None
        rgb = samples == 3 and photometric == 2 and int(first.planarconfig) == 1
        if not rgb and (samples != 1 or photometric not in (0, 1)):
            return None
        z, c, t = desc.slices, desc.channels, desc.frames
        if rgb:
            if c != 1:
                return None
            if z * t == 1:
                t = count  # TiffReader: an RGB file without sizes is a time series of its IFDs
        if z * c * t != count:
            return None  # TiffReader then reports a plain series of IFDs: unproven here
        date = common.date(first)
        if date is False:
            return None
        unit = _xy_unit(description)
        if unit is None:
            return None
        resolution_unit = int(first.tags[296].value) if 296 in codes else 1
        if resolution_unit not in (1, 2, 3):
            return None
        if resolution_unit == 2 and unit != ox.MICRON:
            return None  # Bio-Formats converts inches to µm, then labels the µm with the comment's unit
        if desc.spacing is not None and (desc.unit not in MICRON_WORDS or unit != ox.MICRON
                                         or abs(desc.spacing) < 1e-3):
            return None
        if desc.finterval is not None and desc.finterval <= 0:
            return None
        info = ImageJInfo(
            name=os.path.basename(path), big_endian=tf.byteorder == ">", size_x=first.imagewidth,
            size_y=first.imagelength, size_z=z, size_c=c, size_t=t, samples=samples, bits=bits,
            pixel_type=pixel_type, date=date if isinstance(date, str) else None,
            physical_x=java_resolution(first, 282), physical_y=java_resolution(first, 283),
            xy_unit=ox.MICRON if resolution_unit == 3 else unit,
            physical_z=abs(desc.spacing) if desc.spacing is not None else None, time_increment=desc.finterval,
        )
    if listings is not None and common.companion(path, listings) is not None:
        return None
    return info


def imagej_image(info: ImageJInfo) -> ox.El:
    """The Image Bio-Formats' ``TiffReader`` reports for an ImageJ hyperstack.

    Parameters
    ----------
    info : ImageJInfo
        What :func:`inspect_imagej` read.

    Returns
    -------
    El
        The ``Image`` element.
    """
    image = ox.El("Image", {"ID": "Image:0", "Name": info.name})
    if info.date:
        image.add(ox.El("AcquisitionDate", text=info.date))
    image.add(ox.El("Description"))
    rgb = info.samples > 1
    pixels = image.add(ox.pixels(
        pixel_type=info.pixel_type, big_endian=info.big_endian, significant_bits=info.bits,
        size=(info.size_x, info.size_y, info.size_z, info.samples if rgb else info.size_c, info.size_t),
        physical=(info.physical_x, info.physical_y, info.physical_z),
    ))
    for axis in "XY":
        if f"PhysicalSize{axis}" in pixels.attrs:
            pixels.attrs[f"PhysicalSize{axis}Unit"] = info.xy_unit
    if info.time_increment is not None:
        pixels.attrs.update(TimeIncrement=ox.jdouble(info.time_increment), TimeIncrementUnit="s")
    for index in range(1 if rgb else info.size_c):
        pixels.add(ox.channel(0, index, info.samples))
    pixels.add(ox.El("MetadataOnly"))
    return image


class ImageJEngine(TiffKindEngine[ImageJInfo]):
    """ImageJ hyperstack TIFFs through tifffile; every other file is declined (Bio-Formats reads it)."""

    name = IMAGEJ
    score = CLAIM
    what = "an ImageJ TIFF"

    def wants(self, path: str, head: bytes) -> bool:
        # the description must lie in ``head`` (ImageJ writes it right after the first IFD); a file whose
        # description lies further on is left to Bio-Formats without opening it
        return head.startswith(common.TIFF_MAGIC) and b"ImageJ=" in head

    def inspect(self, ctx: FileContext, listings: common.Listings | None) -> ImageJInfo | None:
        return inspect_imagej(ctx.path, listings)

    def render(self, info: ImageJInfo) -> str:
        return ox.document(imagej_image(info))
