"""Olympus ScanR acquisitions as filesets, their layout from the file names.

ScanR writes TIFFs named ``[<well>--]W<well number>--P<position>--Z<z>--T<t>--<channel>.tif`` into ``data/``
beside ``experiment_descriptor.xml`` (the plate, the channels). Without the descriptor (the corpus case,
kind ``scanr-names``) Bio-Formats 7.3.1 reads each TIFF alone as a one-image document with no plate; the
names are then all the layout there is, and this module says so (``layout_from_names=True`` and a note).

What the names can show, and what they cannot:

* the well *number* (``W00013``) is the well's index in the plate, row-major, but the names do not give the
  plate's column count, so a number alone is not turned into a row and column; a well is named (``B01``)
  only where the name carries the well too (``B1--W00013--...``, as ScanR's plate viewer export writes);
* a position (``P00001``) is a field: its rank among the well's positions, from 0;
* ``Z`` and ``T`` are 0-based in the names and are kept as their rank among the set's values; channels
  are ranked by name (the names do not give the acquisition order).

The document holds one Image per well and position (``XYCZT``, X/Y and pixel type from the first TIFF's
header, as every file of an acquisition shares the camera frame) and, where wells are named, a Plate.
With an ``experiment_descriptor.xml`` (kind ``scanr``) the descriptor is a member and the master, but it is
not parsed yet: the layout still comes from the names, with a note saying so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import NamedTuple

from metaextract.filesets._hcs import by_folder, well_name
from metaextract.filesets.model import FilesetLayout, FilesetRead, FilesetSpec, Place
from metaextract.ome import writer as ox

KIND_NAMES = "scanr-names"
KIND = "scanr"
DESCRIPTOR = "experiment_descriptor.xml"
NAME = re.compile(r"(?:(.*?)--)?W(\d+)--P(\d+)--Z(\d+)--T(\d+)--(.+)\.tiff?", re.IGNORECASE)
_TAIL = re.compile(r"W\d+--P\d+--Z\d+--T\d+--[^/]+\.tiff?\Z", re.IGNORECASE)  # detection's cheaper test
WELL = re.compile(r"([A-Z]{1,2})(\d{1,3})", re.IGNORECASE)


class Name(NamedTuple):
    """What one ScanR file name says (row/column 0-based, only where the name carries the well)."""

    path: str
    row: int | None
    column: int | None
    well_number: int
    position: int
    z: int
    t: int
    channel: str


def parse_name(path: str) -> Name | None:
    """The layout ``path``'s name gives, or None if it is not a ScanR image name."""
    m = NAME.fullmatch(os.path.basename(path))
    if m is None:
        return None
    prefix, number, position, z, t, channel = m.groups()
    well = WELL.fullmatch(prefix or "")
    row = col = None
    if well is not None and int(well.group(2)) > 0:
        row = 0
        for letter in well.group(1).upper():
            row = row * 26 + ord(letter) - ord("A") + 1
        row, col = row - 1, int(well.group(2)) - 1
    return Name(path, row, col, int(number), int(position), int(z), int(t), channel)


# -- detection ---------------------------------------------------------------------------------------------
def detect(paths: Sequence[str]) -> tuple[list[FilesetSpec], list[str]]:
    """One fileset per folder of ScanR-named TIFFs: kind ``scanr`` with the folder's (or, for ``data/``,
    its parent's) ``experiment_descriptor.xml`` as master, else ``scanr-names`` with the first TIFF (by name)
    as master. Names only: no file is read."""
    folders = by_folder(paths)
    descriptors = {folder: p for folder, ps in folders.items() for p in ps if os.path.basename(p) == DESCRIPTOR}
    specs: list[FilesetSpec] = []
    taken: set[str] = set()
    for folder, folder_paths in folders.items():
        images = tuple(sorted(p for p in folder_paths if _is_scanr(p)))
        if not images:
            continue
        descriptor = descriptors.get(folder) or (descriptors.get(folder.rpartition("/")[0])
                                                 if folder.endswith("/data") else None)
        if descriptor is not None:
            spec = FilesetSpec(KIND, descriptor, images, ())
        else:
            spec = FilesetSpec(KIND_NAMES, images[0], images, ())
        specs.append(spec)
        taken.update((spec.master, *spec.images))
    return specs, [p for p in paths if p not in taken]


def _is_scanr(path: str) -> bool:
    """What :func:`parse_name` accepts, tested on the name's tail only (detection sees every path)."""
    name = path[path.rfind("/") + 1:]
    at = name.find("W")
    while at >= 0:
        if (at == 0 or name.startswith("--", at - 2)) and _TAIL.match(name, at):
            return True
        at = name.find("W", at + 1)
    return False


# -- the read ----------------------------------------------------------------------------------------------
class _Frame(NamedTuple):
    x: int
    y: int
    pixel_type: str
    bits: int


def read(spec: FilesetSpec) -> FilesetRead:
    """The acquisition as one document laid out from the names, and each TIFF's place in it."""
    lay, grid = _laid_out(spec)
    frame, frame_notes = _frame(spec.images[0])
    images, channels, zs, ts, named, fields = grid
    xml = ox.document(*_document(images, channels, zs, ts, frame, named, fields))
    return FilesetRead(spec=spec, omexml=xml, places=lay.places, notes=lay.notes + frame_notes,
                       layout_from_names=True)


def layout(spec: FilesetSpec) -> FilesetLayout:
    """Each TIFF's place, as :func:`read` gives it, from the names alone; no TIFF is opened."""
    return _laid_out(spec)[0]


_Grid = tuple[list[tuple[tuple[int, int], int]], list[str], int, int, bool, dict[tuple[int, int], list[int]]]


def _laid_out(spec: FilesetSpec) -> tuple[FilesetLayout, _Grid]:
    """The layout from the names, and what the document needs of it (images, channels, Z and T counts,
    whether the names carry the well, each well's positions)."""
    names = [n for n in (parse_name(p) for p in spec.images) if n is not None]
    if not names:
        raise ValueError(f"{spec.master}: no ScanR-named TIFF in the fileset")
    notes = ["layout from the ScanR file names (Bio-Formats 7.3.1 reads each of these TIFFs alone, with no plate); "
             "channels ranked by name"]
    if spec.kind == KIND:
        notes.append(f"{DESCRIPTOR} present but not parsed: the layout comes from the names")
    named = all(n.row is not None for n in names)
    if not named:
        notes.append("well numbers kept as numbers: the names do not give the plate's column count")
    wells = sorted({_well_key(n, named) for n in names})
    fields = {w: sorted({n.position for n in names if _well_key(n, named) == w}) for w in wells}
    images = [(w, p) for w in wells for p in fields[w]]
    channels = sorted({n.channel for n in names})
    zs, ts = sorted({n.z for n in names}), sorted({n.t for n in names})
    image_of = {key: i for i, key in enumerate(images)}
    c_of, z_of, t_of = _ranks(channels), _ranks(zs), _ranks(ts)
    field_of = {(w, p): f for w in wells for f, p in enumerate(fields[w])}
    places: dict[str, list[Place]] = {}
    for n in names:
        w = _well_key(n, named)
        places[n.path] = [Place(
            image=image_of[(w, n.position)], z=z_of[n.z], c=c_of[n.channel], t=t_of[n.t],
            well=well_name(w[0], w[1]) if named else None, field=field_of[(w, n.position)])]
    lay = FilesetLayout(spec=spec, places=places, notes=notes, layout_from_names=True)
    return lay, (images, channels, len(zs), len(ts), named, fields)


def _ranks(values: Sequence[object]) -> dict[object, int]:
    return {v: i for i, v in enumerate(values)}


def _well_key(n: Name, named: bool) -> tuple[int, int]:
    """(row, column) where the names carry the well, else (well number, 0): a sort key, never shown as a well."""
    if named and n.row is not None and n.column is not None:
        return (n.row, n.column)
    return (n.well_number, 0)


def _frame(first: str) -> tuple[_Frame, list[str]]:
    import tifffile

    try:
        with tifffile.TiffFile(first) as tif:
            page = tif.pages[0]
            if isinstance(page, tifffile.TiffPage) and page.dtype is not None:
                bits = int(page.bitspersample)
                return _Frame(int(page.imagewidth), int(page.imagelength),
                              ox.PIXEL_TYPES.get(page.dtype.name, "uint16"), bits), []
    except (OSError, ValueError, IndexError):
        pass
    return _Frame(0, 0, "uint16", 16), [f"{os.path.basename(first)} could not be read: no X/Y size"]


def _document(images: list[tuple[tuple[int, int], int]], channels: list[str], size_z: int, size_t: int,
              frame: _Frame, named: bool, fields: dict[tuple[int, int], list[int]]) -> list[ox.El]:
    elements: list[ox.El] = []
    if named:
        plate = ox.El("Plate", {"ID": "Plate:0"})
        index = 0
        for w, key in enumerate(fields):
            well = plate.add(ox.El("Well", {"ID": f"Well:0:{w}", "Row": str(key[0]), "Column": str(key[1])}))
            for f in range(len(fields[key])):
                sample = well.add(ox.El("WellSample", {"ID": f"WellSample:0:{w}:{f}", "Index": str(index)}))
                sample.add(ox.El("ImageRef", {"ID": f"Image:{index}"}))
                index += 1
        elements.append(plate)
    for i, ((a, b), position) in enumerate(images):
        label = f"Well {well_name(a, b)}" if named else f"Well number {a}"
        el = ox.El("Image", {"ID": f"Image:{i}", "Name": f"{label}, Position {position}"})
        pixels = el.add(ox.pixels(index=i, pixel_type=frame.pixel_type, big_endian=False,
                                  size=(frame.x, frame.y, size_z, len(channels), size_t),
                                  significant_bits=frame.bits))
        for c, name in enumerate(channels):
            pixels.add(ox.channel(i, c, 1, Name=name))
        pixels.add(ox.El("MetadataOnly"))
        for t in range(size_t):
            for z in range(size_z):
                for c in range(len(channels)):
                    pixels.add(ox.El("Plane", {"TheC": str(c), "TheZ": str(z), "TheT": str(t)}))
        elements.append(el)
    return elements
