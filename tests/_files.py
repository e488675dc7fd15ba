"""Small hostile and healthy files that the tests write themselves."""

from __future__ import annotations

import struct
from pathlib import Path


def _ifd(entries: list[tuple[int, int, int, int]], next_offset: int) -> bytes:
    out = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack("<HHII", tag, typ, count, value)
    return out + struct.pack("<I", next_offset)


_BASIC = [(256, 3, 1, 4), (257, 3, 1, 4), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
          (273, 4, 1, 200), (277, 3, 1, 1), (278, 3, 1, 4), (279, 4, 1, 16)]


def looping_tiff(path: Path) -> Path:
    """A TIFF whose first IFD names itself as the next one: Bio-Formats loops until OutOfMemoryError."""
    data = b"II*\x00" + struct.pack("<I", 8) + _ifd(_BASIC, 8)
    path.write_bytes(data + b"\0" * (216 - len(data)))
    return path


def tiny_tiff(path: Path) -> Path:
    """A valid 4x4 8-bit grey TIFF."""
    data = b"II*\x00" + struct.pack("<I", 8) + _ifd(_BASIC, 0)
    path.write_bytes(data + b"\0" * (216 - len(data)))
    return path


def big_omexml(path: Path, planes: int = 300_000) -> Path:
    """A valid OME-XML file of ~36 MB: Bio-Formats parses it into a DOM, which takes many seconds with a
    large heap and ends in OutOfMemoryError with a small one. Passes every sanity check: it is healthy."""
    head = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="big">'
            f'<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="1" SizeY="1" SizeZ="{planes}" '
            'SizeC="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>')
    plane = ('<Plane TheZ="{}" TheC="0" TheT="0" DeltaT="0.5" ExposureTime="10.0" PositionX="1.0" '
             'PositionY="2.0" PositionZ="3.0"/>')
    with open(path, "w") as fh:
        fh.write(head)
        fh.write("".join(plane.format(i) for i in range(planes)))
        fh.write("<MetadataOnly/></Pixels></Image></OME>")
    return path
