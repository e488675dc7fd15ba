"""Yokogawa CellVoyager (CV7000/CV8000) measurements as filesets, read from the instrument's own files.

A measurement folder holds ``MeasurementData.mlf`` (one ``MeasurementRecord`` per TIFF: well row/column,
time point, field, Z index, timeline, action, channel, stage X/Y/Z in µm and time, the file name as text),
``MeasurementDetail.mrf`` (pixel size and camera per channel, begin/end times), the ``.mes`` settings
(objective, exposure time and filter per channel), the ``.wpi`` plate (name, product id, rows, columns) and
the ``.wpp`` plate product. Bio-Formats' CV7000 reader takes the ``.wpi`` as its master file and needs the
TIFFs (it opens the first one the ``.mlf`` names for the pixel type and the X/Y sizes).

The document follows what Bio-Formats 7.3.1 writes for such a measurement, as checked against its live
grouped read in ``tests/test_filesets_cellvoyager.py``:

* one Image per acquired well (row-major) and field (``0 .. highest FieldIndex``), named
  ``Well <row letter><column>, Field <field + 1>``, order ``XYCZT``;
* an image's channels are its records' distinct (timeline, action, channel) in that order, each named
  ``Action #<action>, Channel #<ch>, Camera #<camera from the .mrf>``, with the excitation wavelength the
  ``.mes`` filter names (``BP600/37`` -> 600 nm); its Z and T are its records' distinct Z indices and time
  points, in order;
* one Plane per C x Z x T with the record's stage X/Y/Z (unit ``reference frame``) and the ``.mes``
  exposure time (ms);
* physical X/Y size from the ``.mrf``; the Plate with every well of the ``.wpi``'s rows x columns,
  WellSamples only in acquired wells; the objective's magnification from the ``.mes``.

Without the TIFFs the layout still comes from the ``.mlf``; the X/Y sizes then come from the ``.mrf`` and
the pixel type from its bit depth, with a note. Without a ``.wpi`` the ``.mlf`` is the master (and the
plate size comes from the ``.mrf``/``.wpp``), with a note: Bio-Formats would not read such a folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from metaextract.filesets._hcs import (
    VendorFileError,
    by_folder,
    instant,
    java_timestamp,
    local,
    vendor_xml,
    well_name,
)
from metaextract.filesets.model import FilesetLayout, FilesetRead, FilesetSpec, Place
from metaextract.ome import writer as ox

KIND = "cellvoyager"
MLF = "MeasurementData.mlf"
MRF = "MeasurementDetail.mrf"
_SUFFIXES = (".wpi", ".mlf", ".mrf", ".mes", ".wpp")
_FILTER = re.compile(r"[A-Za-z]*(\d+(?:\.\d+)?)")


class Record(NamedTuple):
    """One ``MeasurementRecord`` of type ``IMG``; indices 0-based as Bio-Formats takes them."""

    file: str  # absolute path of the TIFF
    row: int
    column: int
    timepoint: int
    field: int
    z: int
    timeline: int
    action: int
    channel: int  # the .mlf's Ch, 1-based as the vendor numbers it (names use it)
    x: float | None
    y: float | None
    zpos: float | None
    time: str | None


# -- detection ---------------------------------------------------------------------------------------------
def detect(paths: Sequence[str]) -> tuple[list[FilesetSpec], list[str]]:
    """Group a listing into CellVoyager measurements: per folder with an ``.mlf``, the master (the
    ``.wpi``, else the ``.mlf``), the vendor files and the TIFFs the ``.mlf`` names that are in the listing.

    Only the ``.mlf`` files are read. A folder with several ``.mlf`` (renamed copies) and no ``.wpi`` gives
    one fileset per ``.mlf``; an ``.mlf`` that cannot be used leaves its TIFFs untaken (its own read then
    says why).
    """
    specs: list[FilesetSpec] = []
    taken: set[str] = set()
    for folder_paths in by_folder(paths).values():
        vendor = [p for p in folder_paths if p.lower().endswith(_SUFFIXES)]
        mlfs = [p for p in vendor if p.lower().endswith(".mlf")]
        if not mlfs:
            continue
        present = set(folder_paths)
        for spec in _folder_specs(vendor, mlfs, present):
            specs.append(spec)
            taken.update(spec.images)
            taken.update(spec.metadata)
            taken.add(spec.master)
    return specs, [p for p in paths if p not in taken]


def _folder_specs(vendor: list[str], mlfs: list[str], present: set[str]) -> list[FilesetSpec]:
    wpis = sorted(p for p in vendor if p.lower().endswith(".wpi"))
    standard = [p for p in mlfs if os.path.basename(p) == MLF]
    if wpis and standard:
        mlf = standard[0]
        others = tuple(p for p in sorted(vendor) if p != wpis[0])
        return [FilesetSpec(KIND, wpis[0], _named_images(mlf, present), others)]
    partners = {mlf: [p for p in vendor if p != mlf and _belongs(p, mlf, len(mlfs))] for mlf in sorted(mlfs)}
    claimed = {p for ps in partners.values() for p in ps}
    unclaimed = [p for p in sorted(vendor) if p not in claimed and not p.lower().endswith(".mlf")]
    lonely = [mlf for mlf, ps in partners.items() if not any(p.lower().endswith(".mrf") for p in ps)]
    if lonely:
        partners[lonely[0]].extend(unclaimed)  # the plain MeasurementDetail.mrf goes to the first .mlf lacking one
    return [FilesetSpec(KIND, mlf, _named_images(mlf, present), tuple(sorted(ps))) for mlf, ps in partners.items()]


def _belongs(path: str, mlf: str, count: int) -> bool:
    """Whether vendor file ``path`` goes with ``mlf`` when there is no ``.wpi``: all of them when the
    folder has one ``.mlf``; else the ``.mrf`` of the same suffix (``MeasurementData_X.mlf`` with
    ``MeasurementDetail_X.mrf``)."""
    if count == 1:
        return not path.lower().endswith(".mlf")
    tail = os.path.basename(mlf)[len("MeasurementData"):-len(".mlf")]
    return os.path.basename(path) == f"MeasurementDetail{tail}.mrf"


def _named_images(mlf: str, present: set[str]) -> tuple[str, ...]:
    try:
        records = read_records(mlf)
    except VendorFileError:
        return ()
    seen: dict[str, None] = {}
    for record in records:
        if record.file in present:
            seen.setdefault(record.file, None)
    return tuple(seen)


# -- the vendor files --------------------------------------------------------------------------------------
def read_records(mlf: str) -> list[Record]:
    """The ``IMG`` records of ``mlf`` (``ERR`` records, the instrument's failed acquisitions, are skipped).

    Registration asks twice (which TIFFs the set names, then their places) and a plate's ``.mlf`` is
    megabytes of XML: the last one read is kept, keyed by its size and modification time so an edited
    file is read again."""
    try:
        st = os.stat(mlf)
    except OSError:
        return list(_read_records.__wrapped__(mlf, -1, -1))  # (not kept: it cannot be told from its edit)
    return list(_read_records(mlf, st.st_size, st.st_mtime_ns))


@lru_cache(maxsize=2)
def _read_records(mlf: str, size: int, mtime_ns: int) -> tuple[Record, ...]:
    root = vendor_xml(mlf)
    folder = os.path.dirname(mlf)
    records = []
    for el in root:
        if local(el.tag) != "MeasurementRecord":
            continue
        attrs = {local(k): v for k, v in el.attrib.items()}
        if attrs.get("Type") != "IMG":
            continue
        try:
            records.append(_record(attrs, os.path.join(folder, (el.text or "").strip())))
        except (KeyError, ValueError) as exc:
            raise VendorFileError(f"{mlf}: a MeasurementRecord lacks or garbles {exc}") from None
    return tuple(records)


def _record(a: dict[str, str], file: str) -> Record:
    return Record(
        file=file, row=int(a["Row"]) - 1, column=int(a["Column"]) - 1, timepoint=int(a["TimePoint"]) - 1,
        field=int(a["FieldIndex"]) - 1, z=int(a["ZIndex"]) - 1, timeline=int(a.get("TimelineIndex", "1")),
        action=int(a.get("ActionIndex", "1")), channel=int(a["Ch"]), x=_float(a.get("X")),
        y=_float(a.get("Y")), zpos=_float(a.get("Z")), time=a.get("Time"),
    )


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


@dataclass
class Measurement:
    """What the vendor files other than the ``.mlf`` say."""

    plate_name: str | None = None
    product_id: str | None = None
    rows: int | None = None
    columns: int | None = None
    begin: str | None = None
    end: str | None = None
    pixel_size: dict[int, float] = field(default_factory=dict)  # Ch -> µm
    camera: dict[int, str] = field(default_factory=dict)
    frame: tuple[int, int] | None = None  # X, Y pixels of the .mrf
    bit_depth: int | None = None
    excitation: dict[int, float] = field(default_factory=dict)  # Ch -> nm
    exposure: dict[int, float] = field(default_factory=dict)  # Ch -> ms
    magnification: float | None = None
    objective: str | None = None


def _attrs(el: object) -> dict[str, str]:
    return {local(k): v for k, v in getattr(el, "attrib", {}).items()}


def read_wpi(path: str, into: Measurement) -> None:
    a = _attrs(vendor_xml(path))
    into.plate_name, into.product_id = a.get("Name"), a.get("ProductID")
    into.rows, into.columns = _int(a.get("Rows")), _int(a.get("Columns"))


def read_mrf(path: str, into: Measurement) -> None:
    root = vendor_xml(path)
    a = _attrs(root)
    into.begin, into.end = a.get("BeginTime"), a.get("EndTime")
    into.rows = into.rows or _int(a.get("RowCount"))
    into.columns = into.columns or _int(a.get("ColumnCount"))
    for el in root:
        ea = _attrs(el)
        if local(el.tag) == "MeasurementSamplePlate":
            into.plate_name = into.plate_name or ea.get("Name")
        elif local(el.tag) == "MeasurementChannel" and _int(ea.get("Ch")) is not None:
            ch = int(ea["Ch"])
            size = _float(ea.get("HorizontalPixelDimension"))
            if size is not None:
                into.pixel_size[ch] = size
            into.camera[ch] = ea.get("CameraNumber", "")
            x, y = _int(ea.get("HorizontalPixels")), _int(ea.get("VerticalPixels"))
            if into.frame is None and x and y:
                into.frame = (x, y)
            into.bit_depth = into.bit_depth or _int(ea.get("InputBitDepth"))


def read_mes(path: str, into: Measurement) -> None:
    for el in vendor_xml(path).iter():
        if local(el.tag) != "Channel":
            continue
        a = _attrs(el)
        ch = _int(a.get("Ch"))
        if ch is None:
            continue
        exposure = _float(a.get("ExposureTime"))
        if exposure is not None:
            into.exposure[ch] = exposure
        m = _FILTER.match(a.get("Acquisition", ""))
        if m is not None:
            into.excitation[ch] = float(m.group(1))
        if into.magnification is None:
            into.magnification = _float(a.get("Magnification"))
            into.objective = a.get("Objective")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# -- the read ----------------------------------------------------------------------------------------------
class Frame(NamedTuple):
    """X, Y sizes, pixel type and significant bits, from the first TIFF (or the .mrf without it)."""

    x: int
    y: int
    pixel_type: str
    bits: int


@dataclass
class _Image:
    row: int
    column: int
    field: int
    channels: list[tuple[int, int, int]]  # (timeline, action, ch)
    zs: list[int]
    ts: list[int]
    planes: dict[tuple[int, int, int], Record]  # (c, z, t) -> record


def read(spec: FilesetSpec) -> FilesetRead:
    """The whole measurement as one OME-XML document and each TIFF's place in it.

    Raises :class:`~._hcs.VendorFileError` (naming the file) when a vendor file is unsafe, not XML or
    lacks what the layout needs.
    """
    records, info, images, notes = _measured(spec)
    frame, frame_note = _frame(records, info)
    xml = ox.document(*_document(images, info, frame))
    places = _places(images, records, set(spec.images), info.plate_name, info.begin)
    return FilesetRead(spec=spec, omexml=xml, places=places, notes=notes + frame_note)


def layout(spec: FilesetSpec) -> FilesetLayout:
    """Each TIFF's place, as :func:`read` gives it, from the ``.mlf``/``.mrf``/``.wpi``/``.mes`` alone: the
    vendor files say everything a place holds (stage position and time included); no TIFF is opened."""
    records, info, images, notes = _measured(spec)
    places = _places(images, records, set(spec.images), info.plate_name, info.begin)
    return FilesetLayout(spec=spec, places=places, notes=notes)


def _measured(spec: FilesetSpec) -> tuple[list[Record], Measurement, list[_Image], list[str]]:
    """The ``.mlf``'s records, the other vendor files' measurement, the images and the notes so far."""
    files = (spec.master, *spec.metadata)
    mlf = _one(files, ".mlf") or spec.master
    records = read_records(mlf)
    if not records:
        raise VendorFileError(f"{mlf}: no IMG record, so no plate layout")
    info, notes = _measurement(files)
    return records, info, _images(records), notes


def _one(files: Sequence[str], suffix: str) -> str | None:
    found = [f for f in files if f.lower().endswith(suffix)]
    return found[0] if found else None


def _measurement(files: Sequence[str]) -> tuple[Measurement, list[str]]:
    info = Measurement()
    notes = []
    wpi, mrf, mes = _one(files, ".wpi"), _one(files, ".mrf"), _one(files, ".mes")
    if wpi is not None:
        read_wpi(wpi, info)
    else:
        notes.append("no .wpi: the .mlf is the master and the plate size comes from the .mrf; "
                      "Bio-Formats 7.3.1 reads a CellVoyager measurement only from its .wpi")
    if mrf is not None:
        read_mrf(mrf, info)
    else:
        notes.append("no .mrf: no physical pixel size, camera or acquisition times")
    if mes is not None:
        read_mes(mes, info)
    return info, notes


def _frame(records: list[Record], info: Measurement) -> tuple[Frame, list[str]]:
    """The first named TIFF's header, as Bio-Formats' reader takes it; the .mrf's frame when it is absent.
    The header is read by the plate readers' own TIFF header reader (a few KB, no tifffile import)."""
    from metaextract.filesets.metaxpress_head import read_head

    first = records[0].file
    head = read_head(first)
    if head is not None:
        return Frame(head.size_x, head.size_y, head.pixel_type, head.bits), []
    x, y = info.frame or (0, 0)
    bits = info.bit_depth or 16
    pixel_type = "uint8" if bits <= 8 else "uint16" if bits <= 16 else "uint32"
    why = "not found" if not os.path.exists(first) else "not a readable one-sample TIFF"
    note = (f"the images are absent or unreadable ({os.path.basename(first)}: {why}): "
            f"layout from the .mlf, X/Y sizes and pixel type from the .mrf")
    return Frame(x, y, pixel_type, bits), [note]


def _images(records: list[Record]) -> list[_Image]:
    """One image per acquired well (row-major) and field, with its channels, Z and T as its records give."""
    fields = max(r.field for r in records) + 1
    by_image: dict[tuple[int, int, int], list[Record]] = {}
    for r in records:
        by_image.setdefault((r.row, r.column, r.field), []).append(r)
    wells = sorted({(r.row, r.column) for r in records})
    images = []
    for row, column in wells:
        for f in range(fields):
            images.append(_image(row, column, f, by_image.get((row, column, f), [])))
    return images


def _image(row: int, column: int, field_index: int, records: list[Record]) -> _Image:
    channels = sorted({(r.timeline, r.action, r.channel) for r in records})
    zs = sorted({r.z for r in records})
    ts = sorted({r.timepoint for r in records})
    c_of = {key: i for i, key in enumerate(channels)}
    z_of = {z: i for i, z in enumerate(zs)}
    t_of = {t: i for i, t in enumerate(ts)}
    planes: dict[tuple[int, int, int], Record] = {}
    for r in records:
        planes.setdefault((c_of[(r.timeline, r.action, r.channel)], z_of[r.z], t_of[r.timepoint]), r)
    return _Image(row, column, field_index, channels, zs, ts, planes)


def _document(images: list[_Image], info: Measurement, frame: Frame) -> list[ox.El]:
    elements = [_plate(images, info)]
    if info.magnification is not None:
        instrument = ox.El("Instrument", {"ID": "Instrument:0"})
        objective = {"ID": "Objective:0:0", "NominalMagnification": ox.jnumber(info.magnification)}
        if info.objective:
            objective["Model"] = info.objective
        instrument.add(ox.El("Objective", objective))
        elements.append(instrument)
    elements.extend(_image_el(i, image, info, frame) for i, image in enumerate(images))
    return elements


def _plate(images: list[_Image], info: Measurement) -> ox.El:
    rows = info.rows or max(i.row for i in images) + 1
    columns = info.columns or max(i.column for i in images) + 1
    attrs = {"ID": "Plate:0", "Rows": str(rows), "Columns": str(columns)}
    if info.plate_name is not None:
        attrs["Name"] = info.plate_name
    if info.product_id is not None:
        attrs["ExternalIdentifier"] = info.product_id
    plate = ox.El("Plate", attrs)
    by_well: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        by_well.setdefault((image.row, image.column), []).append(index)
    acquisition = _acquisition(info, max(i.field for i in images) + 1)
    for w, (row, column) in enumerate((r, c) for r in range(rows) for c in range(columns)):
        well = plate.add(ox.El("Well", {"ID": f"Well:0:{w}", "Row": str(row), "Column": str(column)}))
        for f, index in enumerate(by_well.get((row, column), [])):
            sample_id = f"WellSample:0:{w}:{f}"
            sample = well.add(ox.El("WellSample", {"ID": sample_id, "Index": str(index),
                                                   **_sample_position(images[index])}))
            sample.add(ox.El("ImageRef", {"ID": f"Image:{index}"}))
            acquisition.add(ox.El("WellSampleRef", {"ID": sample_id}))
    plate.add(acquisition)
    return plate


def _acquisition(info: Measurement, fields: int) -> ox.El:
    attrs = {"ID": "PlateAcquisition:0:0", "MaximumFieldCount": str(fields)}
    for name, text in (("StartTime", info.begin), ("EndTime", info.end)):
        stamp = java_timestamp(text)
        if stamp is not None:
            attrs[name] = stamp
    return ox.El("PlateAcquisition", attrs)


def _sample_position(image: _Image) -> dict[str, str]:
    first = image.planes.get((0, 0, 0))
    attrs: dict[str, str] = {}
    if first is not None:
        ox.positions(attrs, (first.x, first.y), "XY")
    return attrs


def _image_el(index: int, image: _Image, info: Measurement, frame: Frame) -> ox.El:
    name = f"Well {chr(ord('A') + image.row)}{image.column + 1}, Field {image.field + 1}"
    el = ox.El("Image", {"ID": f"Image:{index}", "Name": name})
    if info.magnification is not None:
        el.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    size_c, size_z, size_t = max(len(image.channels), 1), max(len(image.zs), 1), max(len(image.ts), 1)
    first_ch = image.channels[0][2] if image.channels else None
    micron = info.pixel_size.get(first_ch) if first_ch is not None else None
    pixels = el.add(ox.pixels(index=index, dimension_order="XYCZT", pixel_type=frame.pixel_type,
                              size=(frame.x, frame.y, size_z, size_c, size_t), big_endian=False,
                              significant_bits=frame.bits, physical=(micron, micron, None)))
    for c, (_, action, ch) in enumerate(image.channels):
        attrs = {"Name": f"Action #{action}, Channel #{ch}, Camera #{info.camera.get(ch, '')}"}
        if ch in info.excitation:
            attrs["ExcitationWavelength"] = ox.jdouble(info.excitation[ch])
            attrs["ExcitationWavelengthUnit"] = "nm"
        pixels.add(ox.channel(index, c, 1, **attrs))
    pixels.add(ox.El("MetadataOnly"))
    for t in range(size_t):
        for z in range(size_z):
            for c in range(size_c):
                pixels.add(_plane(image, info, c, z, t))
    return el


def _plane(image: _Image, info: Measurement, c: int, z: int, t: int) -> ox.El:
    attrs = {"TheC": str(c), "TheZ": str(z), "TheT": str(t)}
    record = image.planes.get((c, z, t))
    if record is not None:
        ox.positions(attrs, (record.x, record.y, record.zpos))
        exposure = info.exposure.get(record.channel)
        if exposure is not None:
            attrs["ExposureTime"] = ox.jdouble(exposure)
            attrs["ExposureTimeUnit"] = "ms"
    return ox.El("Plane", attrs)


def _places(images: list[_Image], records: list[Record], members: set[str], plate: str | None,
            begin: str | None) -> dict[str, list[Place]]:
    """Each member TIFF's plane: its image, well, field, C/Z/T, stage position (µm) and seconds since the
    measurement began (the .mrf's BeginTime, else the earliest record)."""
    start = instant(begin) or min((s for s in (instant(r.time) for r in records) if s is not None), default=None)
    places: dict[str, list[Place]] = {}
    for index, image in enumerate(images):
        for (c, z, t), r in image.planes.items():
            if r.file not in members:
                continue
            stamp = instant(r.time)
            seconds = (stamp - start).total_seconds() if stamp is not None and start is not None else None
            places.setdefault(r.file, []).append(Place(
                image=index, z=z, c=c, t=t, plate=plate, well=well_name(image.row, image.column),
                field=image.field, position=(r.x, r.y, r.zpos), time=seconds))
    return places
