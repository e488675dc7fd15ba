"""PerkinElmer Opera Phenix / Operetta (Harmony export) plates as filesets, read from ``Index.idx.xml``.

Harmony writes ``Index.idx.xml`` (older exports ``Index.xml`` or ``Index.ref.xml``) beside the TIFFs
``r<row>c<col>f<field>p<plane>-ch<channel>sk<timepoint + 1>fk1fl1.tiff``: the plate (id, name, type,
rows, columns, start time) and one ``Image`` entry per TIFF (row, column, field, plane, time point,
channel with its name and wavelengths, pixel size, X/Y size, stage position in metres, exposure time, time
offset and absolute time, objective). Bio-Formats 7.3.1's Operetta reader reads the index (and any of its
TIFFs) as the plate; this module writes the same key fields, as checked against its reference output in
``tests/test_filesets_harmony.py``:

* the wells the index has entries for (row-major; a well without entries gets no Image, as in 7.3.1) and
  its distinct fields, sorted; one Image per well x field (a field a well lacks still gets one, with no
  plane data), named ``Well <row letter><column, two digits>, Field <field rank + 1>``; one Well per well
  with entries, its WellSamples the fields in order;
* an image's C, Z and T are the index's distinct channels, planes and time points, sorted; order ``XYCZT``;
  X/Y from ``ImageSizeX/Y``, the pixel type from the first TIFF's header (the index does not say it);
* channels named as the index names them, with the main excitation/emission wavelengths (absent when 0);
  Planes with the stage position (metres, as the index gives it: 7.3.1 does not apply the orientation
  matrix), exposure time and time offset; the acquisition date from the image's first plane;
* the objective's magnification and NA from the first entry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from lxml import etree

from metaextract.filesets._hcs import (
    VendorFileError,
    by_folder,
    java_timestamp,
    local,
    row_letters,
    vendor_xml,
    well_name,
)
from metaextract.filesets.model import FilesetLayout, FilesetRead, FilesetSpec, Place
from metaextract.ome import writer as ox

KIND = "harmony"
#: index names in the order a folder's master is chosen
INDEX_NAMES = ("Index.idx.xml", "Index.xml", "Index.ref.xml")
#: a Harmony TIFF's name: row, column, field, plane, channel, time point (from 1)
NAME = re.compile(r"r(\d+)c(\d+)f(\d+)p(\d+)-ch(\d+)sk(\d+)fk\d+fl\d+\.tiff?", re.IGNORECASE)
_CONTRAST = {"brightfield", "phase", "dic", "hoffmanmodulation", "obliqueillumination",
             "polarizedlight", "darkfield", "fluorescence"}


class Entry(NamedTuple):
    """One ``Image`` entry of the index (indices as the index gives them; row/column 0-based)."""

    file: str | None
    row: int
    column: int
    field: int
    plane: int
    timepoint: int
    channel: int
    values: dict[str, str]  # the entry's other elements' texts by local name
    units: dict[str, str]  # their Unit attributes
    z_key: str = "PositionZ"  # Harmony's stage Z; an Operetta index's is AbsPositionZ (as Bio-Formats takes it)


# -- detection ---------------------------------------------------------------------------------------------
def detect(paths: Sequence[str]) -> tuple[list[FilesetSpec], list[str]]:
    """One fileset per folder holding an index: the master is the first of :data:`INDEX_NAMES` present, the
    other index files are metadata, the images are the TIFFs the index names that are in the listing."""
    specs: list[FilesetSpec] = []
    taken: set[str] = set()
    for folder_paths in by_folder(paths).values():
        names = {os.path.basename(p): p for p in folder_paths}
        indexes = [names[n] for n in INDEX_NAMES if n in names]
        if not indexes:
            continue
        present = set(folder_paths)
        try:
            named = [e.file for e in read_index(indexes[0])[1] if e.file is not None]
        except VendorFileError:
            named = []
        images = tuple(dict.fromkeys(f for f in named if f in present))
        spec = FilesetSpec(KIND, indexes[0], images, tuple(indexes[1:]))
        specs.append(spec)
        taken.update((spec.master, *spec.metadata, *spec.images))
    return specs, [p for p in paths if p not in taken]


# -- the index ---------------------------------------------------------------------------------------------
@dataclass
class Plate:
    """The index's plate and measurement."""

    plate_id: str | None = None
    name: str | None = None
    description: str | None = None
    rows: int | None = None
    columns: int | None = None
    start: str | None = None
    user: str | None = None
    harmony: bool = True
    extra: dict[str, str] = field(default_factory=dict)


def read_index(path: str) -> tuple[Plate, list[Entry]]:
    """The plate and the image entries of the index ``path`` (refused, naming the file, if unsafe)."""
    root = vendor_xml(path)
    plate = Plate(harmony="harmony" in (etree.QName(root).namespace or "").lower())
    folder = os.path.dirname(path)
    entries: list[Entry] = []
    for el in root.iter():
        tag = local(el.tag)
        if tag == "User":
            plate.user = el.text
        elif tag == "Plate" and el.getparent() is not None and local(el.getparent().tag) == "Plates":
            _plate(el, plate)
        elif tag == "Image" and el.get("id") is None and len(el):
            entries.append(_entry(el, folder, path, "PositionZ" if plate.harmony else "AbsPositionZ"))
    return plate, entries


def _plate(el: etree._Element, plate: Plate) -> None:
    texts = {local(child.tag): (child.text or "") for child in el}
    plate.plate_id, plate.name = texts.get("PlateID"), texts.get("Name")
    plate.description, plate.start = texts.get("PlateTypeName"), texts.get("MeasurementStartTime")
    plate.rows, plate.columns = _int(texts.get("PlateRows")), _int(texts.get("PlateColumns"))


def _entry(el: etree._Element, folder: str, index: str, z_key: str) -> Entry:
    values = {local(child.tag): (child.text or "").strip() for child in el}
    units = {local(child.tag): child.get("Unit", "") for child in el}
    url = values.get("URL", "")
    file = os.path.join(folder, url) if url and not url.startswith("http") else None
    try:
        return Entry(file, int(values["Row"]) - 1, int(values["Col"]) - 1, int(values["FieldID"]),
                     int(values["PlaneID"]), int(values["TimepointID"]), int(values["ChannelID"]), values, units, z_key)
    except (KeyError, ValueError) as exc:
        raise VendorFileError(f"{index}: an Image entry lacks or garbles {exc}") from None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


# -- the read ----------------------------------------------------------------------------------------------
class _Axes(NamedTuple):
    wells: list[tuple[int, int]]  # the (row, column) pairs the index has entries for, row-major
    fields: list[int]
    zs: list[int]
    cs: list[int]
    ts: list[int]


def read(spec: FilesetSpec) -> FilesetRead:
    """The plate as one OME-XML document and each TIFF's place in it."""
    plate, entries, axes = _indexed(spec)
    grid = {(e.row, e.column, e.field, e.plane, e.channel, e.timepoint): e for e in entries}
    pixel_type, note = _pixel_type(spec, entries)
    images = [[grid.get((r, c, f, z, ch, t)) for t in axes.ts for z in axes.zs for ch in axes.cs]
              for r, c in axes.wells for f in axes.fields]
    xml = ox.document(*_document(plate, axes, images, pixel_type, entries[0]))
    return FilesetRead(spec=spec, omexml=xml, places=_places(spec, entries, axes, plate), notes=note)


def layout(spec: FilesetSpec) -> FilesetLayout:
    """Each TIFF's place, as :func:`read` gives it, from the index alone (positions and time offsets
    included); no TIFF is opened."""
    plate, entries, axes = _indexed(spec)
    return FilesetLayout(spec=spec, places=_places(spec, entries, axes, plate))


def _indexed(spec: FilesetSpec) -> tuple[Plate, list[Entry], _Axes]:
    plate, entries = read_index(spec.master)
    if not entries:
        raise VendorFileError(f"{spec.master}: no Image entry, so no plate layout")
    axes = _Axes(sorted({(e.row, e.column) for e in entries}),
                 *(sorted({getattr(e, k) for e in entries}) for k in ("field", "plane", "channel", "timepoint")))
    return plate, entries, axes


def _pixel_type(spec: FilesetSpec, entries: list[Entry]) -> tuple[str, list[str]]:
    """The first present TIFF's pixel type (the index does not say it), as Bio-Formats reads it."""
    import tifffile

    for entry in entries:
        if entry.file is None or entry.file not in spec.images:
            continue
        try:
            with tifffile.TiffFile(entry.file) as tif:
                page = tif.pages[0]
                if isinstance(page, tifffile.TiffPage) and page.dtype is not None:
                    return ox.PIXEL_TYPES.get(page.dtype.name, "uint16"), []
        except (OSError, ValueError, IndexError):
            continue
    return "uint16", ["no TIFF of the index could be read: the pixel type is taken to be uint16"]


def _document(plate: Plate, axes: _Axes, images: list[list[Entry | None]], pixel_type: str,
              fallback: Entry) -> list[ox.El]:
    """The document's elements; an image with no entry of its own (a well x field the index skips) takes its
    X/Y size from ``fallback``, as Bio-Formats copies a valid series' size to an unrecorded one."""
    first = images[0][0]
    elements = [_plate_el(plate, axes, images)]
    if plate.user is not None:
        elements.append(ox.El("Experimenter", {"ID": "Experimenter:0", "LastName": plate.user}))
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    objective = {"ID": "Objective:0:0"}
    if first is not None:
        for attr, key in (("NominalMagnification", "ObjectiveMagnification"), ("LensNA", "ObjectiveNA")):
            value = _float(first.values.get(key))
            if value is not None:
                objective[attr] = ox.jdouble(value)
    instrument.add(ox.El("Objective", objective))
    elements.append(instrument)
    elements.extend(_image(i, planes, plate, axes, pixel_type, fallback) for i, planes in enumerate(images))
    return elements


def _plate_el(plate: Plate, axes: _Axes, images: list[list[Entry | None]]) -> ox.El:
    attrs = {"ID": "Plate:0", "Rows": str(plate.rows or max(r for r, _ in axes.wells) + 1),
             "Columns": str(plate.columns or max(c for _, c in axes.wells) + 1)}
    for key, value in (("Name", plate.name), ("ExternalIdentifier", plate.plate_id)):
        if value:
            attrs[key] = value
    el = ox.El("Plate", attrs)
    if plate.description:
        el.add(ox.El("Description", text=plate.description))
    acquisition = {"ID": "PlateAcquisition:0:0", "MaximumFieldCount": str(len(axes.fields))}
    start = java_timestamp(plate.start)
    if start is not None:
        acquisition["StartTime"] = start
    acq = ox.El("PlateAcquisition", acquisition)
    for w, (row, column) in enumerate(axes.wells):
        well = el.add(ox.El("Well", {"ID": f"Well:0:{w}", "Row": str(row), "Column": str(column)}))
        for f in range(len(axes.fields)):
            index = w * len(axes.fields) + f
            sample_id = f"WellSample:0:{w}:{f}"
            sample = well.add(ox.El("WellSample", {"ID": sample_id, "Index": str(index),
                                                   **_position(images[index][0], "XY")}))
            sample.add(ox.El("ImageRef", {"ID": f"Image:{index}"}))
            acq.add(ox.El("WellSampleRef", {"ID": sample_id}))
    el.add(acq)
    return el


def _position(entry: Entry | None, axes: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if entry is None:
        return attrs
    for axis in axes:
        key = entry.z_key if axis == "Z" else f"Position{axis}"
        value = _float(entry.values.get(key))
        if value is not None:
            attrs[f"Position{axis}"] = ox.jdouble(value)
            attrs[f"Position{axis}Unit"] = entry.units.get(key) or "m"
    return attrs


def _image(index: int, planes: list[Entry | None], plate: Plate, axes: _Axes, pixel_type: str,
           fallback: Entry) -> ox.El:
    row, column, field_rank = _image_position(index, axes)
    name = f"Well {row_letters(row)}{column + 1:02d}, Field {field_rank + 1}"
    el = ox.El("Image", {"ID": f"Image:{index}", "Name": name})
    first = planes[0]
    stamp = java_timestamp(first.values.get("AbsTime")) if first is not None else None
    if stamp is not None:
        el.add(ox.El("AcquisitionDate", text=stamp))
    if plate.user is not None:
        el.add(ox.El("ExperimenterRef", {"ID": "Experimenter:0"}))
    el.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    el.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    sample = next((p for p in planes if p is not None), fallback)
    size = (_int(sample.values.get("ImageSizeX")) or 0, _int(sample.values.get("ImageSizeY")) or 0,
            len(axes.zs), len(axes.cs), len(axes.ts))
    physical = (_micron(first, "ImageResolutionX"), _micron(first, "ImageResolutionY"), None)
    bits = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "float": 32, "uint32": 32, "int32": 32}
    pixels = el.add(ox.pixels(index=index, pixel_type=pixel_type, size=size, big_endian=False,
                              significant_bits=bits.get(pixel_type, 64), physical=physical))
    for c in range(len(axes.cs)):
        pixels.add(ox.channel(index, c, 1, **_channel(planes[c])))
    pixels.add(ox.El("MetadataOnly"))
    for number, entry in enumerate(planes):
        pixels.add(_plane(number, entry, size))
    return el


def _image_position(index: int, axes: _Axes) -> tuple[int, int, int]:
    well, field_rank = divmod(index, len(axes.fields))
    row, column = axes.wells[well]
    return row, column, field_rank


def _micron(entry: Entry | None, key: str) -> float | None:
    value = _float(entry.values.get(key)) if entry is not None else None
    return value * 1000000 if value is not None and value > 0 else None


def _channel(entry: Entry | None) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if entry is None:
        return attrs
    v = entry.values
    if v.get("ChannelName"):
        attrs["Name"] = v["ChannelName"]
    if v.get("ChannelType", "").lower() in _CONTRAST:
        attrs["ContrastMethod"] = next(m for m in ("Brightfield", "Phase", "DIC", "HoffmanModulation",
                                                   "ObliqueIllumination", "PolarizedLight", "Darkfield",
                                                   "Fluorescence") if m.lower() == v["ChannelType"].lower())
    if v.get("AcquisitionType"):
        attrs["AcquisitionMode"] = "Other"
    for attr, key in (("EmissionWavelength", "MainEmissionWavelength"),
                      ("ExcitationWavelength", "MainExcitationWavelength")):
        nm = _float(v.get(key))
        if nm is not None and nm > 0:
            attrs[attr] = ox.jdouble(nm)
            attrs[f"{attr}Unit"] = "nm"
    return attrs


def _plane(number: int, entry: Entry | None, size: tuple[int, int, int, int, int]) -> ox.El:
    z, c, t = ox.zct(number, "XYCZT", size)
    attrs = {"TheZ": str(z), "TheC": str(c), "TheT": str(t)}
    if entry is not None:
        attrs.update(_position(entry, "XYZ"))
        for attr, key in (("ExposureTime", "ExposureTime"), ("DeltaT", "MeasurementTimeOffset")):
            value = _float(entry.values.get(key))
            if value is not None:
                attrs[attr] = ox.jdouble(value)
                attrs[f"{attr}Unit"] = entry.units.get(key) or "s"
    return ox.El("Plane", attrs)


def _places(spec: FilesetSpec, entries: list[Entry], axes: _Axes, plate: Plate) -> dict[str, list[Place]]:
    """Each member TIFF's plane: image, well, field rank, C/Z/T ranks, stage position (µm) and time offset."""
    members = set(spec.images)
    rank: dict[str, dict[object, int]] = {k: {v: i for i, v in enumerate(getattr(axes, k))} for k in axes._fields}
    places: dict[str, list[Place]] = {}
    for e in entries:
        if e.file is None or e.file not in members:
            continue
        well = rank["wells"][(e.row, e.column)]
        position = [_metres_to_micron(e, key) for key in ("PositionX", "PositionY", e.z_key)]
        places.setdefault(e.file, []).append(Place(
            image=well * len(axes.fields) + rank["fields"][e.field], z=rank["zs"][e.plane],
            c=rank["cs"][e.channel], t=rank["ts"][e.timepoint], plate=plate.name,
            well=well_name(e.row, e.column), field=rank["fields"][e.field],
            position=(position[0], position[1], position[2]), time=_float(e.values.get("MeasurementTimeOffset"))))
    return places


def _metres_to_micron(entry: Entry, key: str) -> float | None:
    value = _float(entry.values.get(key))
    if value is None:
        return None
    unit = entry.units.get(key, "m")
    return value * 1e6 if unit in ("m", "") else value
