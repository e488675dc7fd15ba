"""DICOM through pydicom: a rescue engine for DICOM images Bio-Formats cannot read even alone.

It reads the header only (never the pixels) and writes the image the way Bio-Formats 7.3.1's DicomReader
reports it, as checked against Bio-Formats on the corpus DICOMs and on synthetic ones
(``tests/test_engines_dicom.py``):

- one Image, named by the third value of ImageType (the last when there are fewer), described by all of
  ImageType joined with ``\\``;
- X, Y: the total pixel matrix of a tiled whole-slide image (its frames are tiles of one plane), else
  Columns, Rows; the frames of a classic multi-frame image are its Z planes;
- C: SamplesPerPixel in one channel (RGB), named by the optical path's description when there is one;
- type from BitsAllocated and PixelRepresentation (1-bit segmentations are uint8), SignificantBits is
  BitsAllocated; physical sizes are PixelSpacing in mm (column spacing is X).

A tiled image whose frames are more than one plane (several focal planes, optical paths or segments) is
declined: Bio-Formats' report of those has not been checked.
"""

from __future__ import annotations

import math
import os
from typing import Any

from . import _omexml as ox
from .base import ExtractionError, UnsupportedFormatError

NAME = "pydicom"
RESCUE = 50
PREAMBLE = 128
_TYPES = {(8, 0): "uint8", (8, 1): "int8", (16, 0): "uint16", (16, 1): "int16", (32, 0): "uint32",
          (32, 1): "int32", (1, 0): "uint8"}


def is_dicom(head: bytes) -> bool:
    return head[PREAMBLE:PREAMBLE + 4] == b"DICM"


def _spacing(ds: Any) -> tuple[float | None, float | None]:
    """(X, Y) pixel size in mm: PixelSpacing is (row spacing, column spacing)."""
    spacing = ds.get("PixelSpacing")
    if spacing is None:
        for group in ds.get("SharedFunctionalGroupsSequence", []):
            for measures in group.get("PixelMeasuresSequence", []):
                spacing = measures.get("PixelSpacing", spacing)
    if spacing is None or len(spacing) != 2:
        return None, None
    row, col = (float(v) for v in spacing)
    return (col if col > 0 else None), (row if row > 0 else None)


def _int(ds: Any, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        raise ExtractionError(f"DICOM header has no {keyword}")
    return int(value)


def image_of(ds: Any, name_fallback: str) -> ox.El:
    """The ``Image`` element for the dataset ``ds`` (read without pixel data)."""
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    frames = _int(ds, "NumberOfFrames", 1)
    samples = _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated")
    pixel_type = _TYPES.get((bits, _int(ds, "PixelRepresentation", 0)))
    if pixel_type is None:
        raise ExtractionError(f"DICOM pixel data of {bits} bits allocated has no OME pixel type")
    size_x, size_y, size_z = cols, rows, frames
    tiled = ds.get("DimensionOrganizationType") == "TILED_FULL" and "TotalPixelMatrixColumns" in ds
    if tiled:
        size_x, size_y = _int(ds, "TotalPixelMatrixColumns"), _int(ds, "TotalPixelMatrixRows")
        tiles = math.ceil(size_x / cols) * math.ceil(size_y / rows)
        if frames != tiles:
            raise ExtractionError(f"tiled DICOM with {frames} frames of {tiles} tiles each plane: "
                                  "more than one plane is not mapped")
        size_z = 1
    raw_type = ds.get("ImageType") or []
    image_type = [raw_type] if isinstance(raw_type, str) else [str(v) for v in raw_type]
    name = image_type[min(2, len(image_type) - 1)] if image_type else name_fallback
    image = ox.El("Image", {"ID": "Image:0", "Name": name})
    if image_type:
        image.add(ox.El("Description", text="\\".join(image_type)))
    pixels = image.add(ox.pixels(
        pixel_type=pixel_type, size=(size_x, size_y, size_z, samples, 1), big_endian=False,
        significant_bits=bits, interleaved=samples > 1 or tiled,
    ))
    px, py = _spacing(ds)
    for axis, value in (("X", px), ("Y", py)):
        if value is not None:
            pixels.attrs[f"PhysicalSize{axis}"] = ox.jdouble(value)
            pixels.attrs[f"PhysicalSize{axis}Unit"] = "mm"
    paths = ds.get("OpticalPathSequence") or []
    described = paths[0].get("OpticalPathDescription") if len(paths) == 1 else None
    pixels.add(ox.channel(0, 0, samples, **({"Name": str(described)} if described else {})))
    pixels.add(ox.El("MetadataOnly"))
    for z in range(size_z):
        pixels.add(ox.El("Plane", {"TheC": "0", "TheT": "0", "TheZ": str(z)}))
    return image


class DicomEngine:
    """DICOM images from their header through pydicom; a rescuer only (it claims nothing)."""

    name = NAME

    def version(self) -> str:
        import pydicom

        return str(pydicom.__version__)

    def claim(self, path: str, head: bytes) -> int:
        return 0  # Bio-Formats reads DICOM (alone, when a sibling breaks the group): never take it

    def rescues(self, path: str, head: bytes) -> int:
        return RESCUE if is_dicom(head) else 0

    def rescue(self, path: str) -> tuple[str, list[str]]:
        return self.extract(path), ["DICOM header read by pydicom (no pixel data decoded)"]

    def extract(self, path: str) -> str:
        import pydicom

        with open(path, "rb") as fh:
            head = fh.read(PREAMBLE + 4)
        if not is_dicom(head):
            raise UnsupportedFormatError(f"not a DICOM file (bytes 128-131: {head[PREAMBLE:]!r})")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds; one line says which
            raise ExtractionError(f"pydicom cannot read the header: {type(exc).__name__}: {exc}") from None
        if "Rows" not in ds:
            raise UnsupportedFormatError("DICOM object without an image (no Rows)")
        name = os.path.splitext(os.path.basename(path))[0]
        return ox.document(image_of(ds, name))
