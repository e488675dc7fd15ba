"""The tifffile engine: plain TIFF and MetaSeries (MetaXpress) TIFF, as Bio-Formats 7.3.1 reads them.

It claims a file only when the bytes say it is a kind the conformance test has proven
(``tests/test_conformance.py``): a TIFF whose tags are all baseline or EXIF/XMP/ICC/Photoshop tags, with
no description or a one-line description that no Bio-Formats reader treats specially, whose pages all
have the same shape; or a single-plane MetaSeries TIFF with only the ``PlaneInfo`` properties whose
mapping has been checked. It also declines when a sibling file could make Bio-Formats group the TIFF
with others (a MetaMorph ``.nd``, a MetaXpress ``.HTD``, a Micro-Manager ``metadata.txt`` …). Every
other TIFF (OME-TIFF, ImageJ, STK, LSM, Micro-Manager, pyramids, …) is left to Bio-Formats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

from metaextract.engines.base import (
    CLAIM,
    ExtractionError,
    FileContext,
    ReaderEngine,
    UnsupportedFormatError,
    head_of,
    package_version,
)
from metaextract.engines.tiff import common
from metaextract.engines.tiff import scan as _tiffscan
from metaextract.engines.tiff.metaseries import MetaSeries, metaseries_tree, metaseries_values, parse_metaseries
from metaextract.extraction.snapshot import Snapshot
from metaextract.ome import writer as ox

NAME = "tifffile"
T = TypeVar("T")

#: Tags that change nothing in what Bio-Formats' TiffReader reports beyond what this engine writes.
PLAIN_TAGS = frozenset({
    11, 254, 255, 256, 257, 258, 259, 262, 266, 270, 271, 272, 273, 274, 277, 278, 279, 280, 281, 282, 283,
    284, 296, 305, 306, 316, 317, 318, 319, 320, 322, 323, 324, 325, 338, 339, 347, 529, 530, 531, 532,
    700, 32781, 33432, 34377, 34665, 34675, 34853, 36867, 37398,
})
_VENDOR_HINTS = ("imagej=", "<", "aperio", "improvision", "hamamatsu", "metamorph", "metaseries", "nikon",
                 "leica", "zeiss", "olympus", "perkinelmer", "ionpath", "trestle", "imaris", "ventana",
                 "slidebook", "fluoview", "visitron", "andor", "photon", "pco", "hamamatsu",
                 # Software "EZ-C1 …" makes Bio-Formats use its NikonTiffReader, which parses the description
                 # (and fails without EZ-C1's): tests/test_differential_tiff_instruments.py
                 "ez-c1")

@dataclass
class TiffInfo:
    """What the engine needs from a TIFF, read once (by ``claim``) and used again by ``extract``."""

    kind: str  # "plain" or "metaseries"
    name: str
    big_endian: bool
    size_x: int
    size_y: int
    planes: int
    samples: int
    bits: int
    pixel_type: str
    description: str | None
    date: str | None
    physical: tuple[float | None, float | None]
    exif: dict[str, Any] | None
    metaseries: MetaSeries | None = None
    notes: list[str] = field(default_factory=list)



def _plain_description_ok(text: str | None, software: str | None) -> bool:
    if text is not None:
        # a NUL inside: Bio-Formats reads the tag as several strings, one line each ("a; b;"), not written here
        if "\n" in text or "\r" in text or "\x00" in text or "=" in text or not text.strip():
            return False
        lowered = text.lower()
        if any(hint in lowered for hint in _VENDOR_HINTS):
            return False
    if software is not None:
        lowered = software.lower()
        if any(hint in lowered for hint in _VENDOR_HINTS[2:]):
            return False
    return True


def _classify_fast(path: str, h: _tiffscan.Header) -> TiffInfo | None | bool:
    """:func:`inspect_tiff`'s decision from :func:`_tiffscan.scan`'s header; True: ask tifffile instead."""
    if 34665 in h.codes or any(code in h.codes and code not in h.rationals for code in (282, 283)):
        return True  # EXIF (tifffile decodes it) or a resolution that is not one rational
    first = h.pages[0]
    if first.has_subifds:
        return None
    description, software = common.as_text(h.text.get(270)), common.as_text(h.text.get(305))
    meta = parse_metaseries(description) if description and "<MetaData>" in description else None
    if meta is not None:
        if len(h.pages) != 1 or not meta.supported or not h.codes <= PLAIN_TAGS:
            return None
        kind = "metaseries"
    else:
        if not h.codes <= PLAIN_TAGS or not _plain_description_ok(description, software):
            return None
        kind = "plain"
    if len(h.pages) > 1 and any(p.has_subifds or p.subfiletype != 0 or p.shape != first.shape for p in h.pages):
        return None
    samples, bits, photometric = first.samples, first.bits, first.photometric
    pixel_type = common.PIXEL_TYPES.get((first.sampleformat, bits))
    if pixel_type is None or photometric not in (0, 1, 2, 3) or samples not in (1, 3):
        return None
    if (samples == 3) != (photometric == 2) or (kind == "metaseries" and samples != 1):
        return None
    date = common.iso_date(common.as_text(h.text.get(306)))
    if date is False:
        return None
    return TiffInfo(
        kind=kind, name=os.path.basename(path), big_endian=h.big_endian, size_x=first.width,
        size_y=first.length, planes=len(h.pages), samples=samples, bits=bits, pixel_type=pixel_type,
        description=description, date=date if isinstance(date, str) else None,
        physical=(common.java_resolution(h.rationals.get(282), h.resolution_unit),
                  common.java_resolution(h.rationals.get(283), h.resolution_unit)),
        exif=None, metaseries=meta,
    )


def inspect_tiff(path: str, listings: common.Listings | None = None, *, fast: bool = True,
                 held: Snapshot | None = None) -> TiffInfo | None:
    """Classify ``path``; None when this engine should leave the file to Bio-Formats.

    A clean classic TIFF is read by :mod:`._tiffscan` (from ``held``, the bytes the extraction holds, when
    they are the whole file); anything it stands aside for (and every file with ``fast=False``) by
    tifffile. Both give the same answer (``tests/test_engines_tiff.py``).
    """
    header = _tiffscan.scan(path, held) if fast else None
    verdict = _classify_fast(path, header) if header is not None else True
    info = _inspect_tifffile(path) if verdict is True else verdict if isinstance(verdict, TiffInfo) else None
    if info is not None and listings is not None and common.companion(path, listings) is not None:
        return None
    return info


def _inspect_tifffile(path: str) -> TiffInfo | None:
    import tifffile

    with common.parsed(path) as tf:
        if tf is None:
            return None
        pages = tf.pages
        first = pages.first
        if first.tags.get(330) is not None:  # SubIFDs: pyramids
            return None
        description = common.text(first, 270)
        software = common.text(first, 305)
        meta = parse_metaseries(description) if description and "<MetaData>" in description else None
        codes = {tag.code for tag in first.tags}
        if meta is not None:
            if len(pages) != 1 or not meta.supported or not codes <= PLAIN_TAGS:
                return None
            kind = "metaseries"
        else:
            if not codes <= PLAIN_TAGS or not _plain_description_ok(description, software):
                return None
            kind = "plain"
        shape = (first.imagewidth, first.imagelength, first.samplesperpixel, first.bitspersample,
                 first.sampleformat, first.photometric)
        count = len(pages)
        if count > 1:
            for page in pages:
                if not isinstance(page, tifffile.TiffPage):
                    return None
                if page.tags.get(330) is not None or int(page.subfiletype) != 0:
                    return None
                if (page.imagewidth, page.imagelength, page.samplesperpixel, page.bitspersample,
                        page.sampleformat, page.photometric) != shape:
                    return None
        samples, bits, photometric = first.samplesperpixel, first.bitspersample, int(first.photometric)
        pixel_type = common.PIXEL_TYPES.get((int(first.sampleformat), bits))
        if pixel_type is None or photometric not in (0, 1, 2, 3) or samples not in (1, 3):
            return None
        if (samples == 3) != (photometric == 2) or (kind == "metaseries" and samples != 1):
            return None
        date = common.date(first)
        if date is False:
            return None
        exif = first.tags.get(34665)
        exif_value = exif.value if exif is not None else None
        if exif is not None and (count != 1 or not isinstance(exif_value, dict)):
            return None
        info = TiffInfo(
            kind=kind, name=os.path.basename(path), big_endian=tf.byteorder == ">",
            size_x=first.imagewidth, size_y=first.imagelength, planes=count, samples=samples, bits=bits,
            pixel_type=pixel_type, description=description, date=date if isinstance(date, str) else None,
            physical=(common.resolution(first, 282), common.resolution(first, 283)), exif=exif_value, metaseries=meta,
        )
    return info


def plain_values(info: TiffInfo) -> ox.Values:
    """What of a plain TIFF reaches its OME-XML, written as :func:`plain_tree` writes it."""
    exposure = None
    if info.exif is not None:
        found = info.exif.get("ExposureTime")
        if isinstance(found, tuple) and len(found) == 2 and found[1]:
            exposure = ox.jdouble(found[0] / found[1])
    px, py = info.physical
    return {
        "name": info.name, "date": info.date or None, "description": info.description, "type": info.pixel_type,
        "x": str(info.size_x), "y": str(info.size_y), "c": str(info.samples if info.samples > 1 else 1),
        "t": str(info.planes), "big_endian": "true" if info.big_endian else "false", "bits": str(info.bits),
        "px": None if px is None else ox.jdouble(px), "py": None if py is None else ox.jdouble(py),
        "samples": str(info.samples), "plane": info.exif is not None, "exposure": exposure,
    }


def plain_tree(v: ox.Values) -> ox.El:
    """The Image Bio-Formats' TiffReader reports for a plain TIFF, from :func:`plain_values`."""
    image = ox.El("Image", {"ID": "Image:0", "Name": ox.string(v["name"])})
    if v["date"] is not None:
        image.add(ox.El("AcquisitionDate", text=ox.string(v["date"])))
    if v["description"] is not None:
        image.add(ox.El("Description", text=ox.string(v["description"])))
    pixels = image.add(ox.pixels(
        pixel_type=ox.string(v["type"]),
        size=(ox.string(v["x"]), ox.string(v["y"]), 1, ox.string(v["c"]), ox.string(v["t"])),
        big_endian=ox.string(v["big_endian"]), significant_bits=ox.string(v["bits"]),
        physical=(ox.maybe(v["px"]), ox.maybe(v["py"]), None),
    ))
    pixels.add(ox.channel(0, 0, ox.string(v["samples"])))
    pixels.add(ox.El("MetadataOnly"))
    if v["plane"]:
        plane = {"TheC": "0", "TheT": "0", "TheZ": "0"}
        if v["exposure"] is not None:
            plane.update(ExposureTime=ox.string(v["exposure"]), ExposureTimeUnit="s")
        pixels.add(ox.El("Plane", plane))
    return image


def plain_image(info: TiffInfo) -> ox.El:
    """The Image Bio-Formats' TiffReader reports for a plain TIFF."""
    return plain_tree(plain_values(info))


class NotOfKind(Exception):
    """A TIFF that is not of the kind an engine has been shown to read."""


class TiffKindEngine(ReaderEngine[T]):
    """A :class:`ReaderEngine` for one kind of TIFF read with tifffile: only what differs is said here.

    A subclass says how to read a file (:meth:`inspect`: None when it is not of the kind proven; given the
    claim's folder listings, and the bytes :class:`FileContext` holds) and how to write its OME-XML
    (:meth:`render`); it may narrow :meth:`wants`.
    """

    score: int = CLAIM  #: what ``claim`` answers for a file of its kind
    what: str = "a TIFF"  #: the kind, for messages ("not {what} of a kind this engine reads")

    def __init__(self) -> None:
        self._listings = common.Listings()

    def version(self) -> str:
        """The tifffile version (the library that reads the file)."""
        return package_version("tifffile")

    def wants(self, path: str, head: bytes) -> bool:
        return head.startswith(common.TIFF_MAGIC)

    def inspect(self, ctx: FileContext, listings: common.Listings | None) -> T | None:
        raise NotImplementedError

    def read_in(self, ctx: FileContext) -> T:
        return self._of_kind(self.inspect(ctx, self._listings))

    def read_unclaimed(self, ctx: FileContext) -> T:
        return self._of_kind(self.inspect(ctx, None))

    @staticmethod
    def _of_kind(info: T | None) -> T:
        if info is None:
            raise NotOfKind
        return info

    def check_unclaimed(self, path: str) -> None:
        head = head_of(path, 4)
        if not head.startswith(common.TIFF_MAGIC):
            raise UnsupportedFormatError(f"not a TIFF file (first 4 bytes: {head!r})")

    def failure(self, exc: Exception) -> Exception:
        if isinstance(exc, NotOfKind):
            return ExtractionError(f"not {self.what} of a kind this engine reads (use Bio-Formats)")
        return ExtractionError(f"cannot read {self.what}: {type(exc).__name__}: {exc}")


class TiffEngine(TiffKindEngine[TiffInfo]):
    """Plain and MetaSeries TIFF through tifffile; everything else is declined (Bio-Formats reads it)."""

    name = NAME
    what = "a plain or MetaSeries TIFF"

    def inspect(self, ctx: FileContext, listings: common.Listings | None) -> TiffInfo | None:
        return inspect_tiff(ctx.path, listings, held=ctx.held)

    def render(self, info: TiffInfo) -> str:
        if info.kind == "metaseries" and info.metaseries is not None:
            return ox.templated(metaseries_tree, metaseries_values(info.metaseries, info))
        return ox.templated(plain_tree, plain_values(info))
