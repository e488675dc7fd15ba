"""The OME-XML document of a MetaXpress plate, as Bio-Formats 7.3.1's MetaxpressTiffReader builds it.

One Image per selected well x site (wells row-major, sites row-major within a well), named
``Well B02 Field #1``; Pixels ``XYCZT`` with SizeC the ``.HTD``'s wavelengths, SizeZ its ZSteps, SizeT its
TimePoints, size and type from the plate's first file; channel names the ``.HTD``'s ``WaveName``s, emission
wavelengths from each wavelength's first file; a Plate of every well of the ``.HTD``'s grid, WellSamples
whose Index is the Image's index, one PlateAcquisition. Planes follow what Bio-Formats does when given
the master ``.HTD`` (``bioformats=True``): plane 0 of every Image carries the plate's first file's DeltaT
(0) and exposure, and every plane of an Image its own first file's stage position (checked live in
``tests/test_filesets_metaxpress.py``; given a TIFF, Bio-Formats reads the plate through the ``.HTD`` copy
in the TIFF's own folder and finds fewer files, so its per-TIFF documents differ in the positions).
Where Bio-Formats cannot read the plate (``bioformats=False``) every present file's plane gets its own
position, DeltaT and exposure, and planes without a file have no Plane element.
Everything written is linear in the number of files.
"""

from __future__ import annotations

from dataclasses import dataclass

from metaextract.filesets.metaxpress_head import Head, Settings
from metaextract.filesets.metaxpress_names import Htd, row_letters
from metaextract.ome import writer as ox


@dataclass(slots=True)
class Plane:
    """A file's plane in the document: its Image and Z, C, T, and its header."""

    image: int
    z: int
    c: int
    t: int
    head: Head
    delta_t: float | None = None


def _first_plane(first: Plane, plate: Settings) -> dict[str, str]:
    attrs = {"TheC": "0", "TheT": "0", "TheZ": "0"}
    if first.head.acquired is not None:
        attrs.update(DeltaT="0.0", DeltaTUnit="s")
    if plate.exposure is not None:
        attrs.update(ExposureTime=ox.jdouble(plate.exposure), ExposureTimeUnit="s")
    ox.positions(attrs, first.head.position)
    return attrs


def _planes_bioformats(pixels: ox.El, sizes: tuple[int, int, int], own: Plane | None, first: Plane,
                       plate: Settings) -> None:
    size_z, size_c, size_t = sizes
    copied = _first_plane(first, plate)
    position = own.head.position if own is not None else None
    for t in range(size_t):
        for z in range(size_z):
            for c in range(size_c):
                attrs = dict(copied) if (z, c, t) == (0, 0, 0) else {"TheC": str(c), "TheT": str(t), "TheZ": str(z)}
                if position is not None:
                    ox.positions(attrs, position)
                pixels.add(ox.El("Plane", attrs))


def _planes_native(pixels: ox.El, planes: dict[tuple[int, int, int], Plane], exposures: list[float | None]) -> None:
    for key in sorted(planes, key=lambda k: (k[2], k[0], k[1])):
        plane = planes[key]
        attrs = {"TheC": str(plane.c), "TheT": str(plane.t), "TheZ": str(plane.z)}
        if plane.delta_t is not None:
            attrs.update(DeltaT=ox.jdouble(plane.delta_t), DeltaTUnit="s")
        exposure = exposures[plane.c] if plane.c < len(exposures) else None
        if exposure is not None:
            attrs.update(ExposureTime=ox.jdouble(exposure), ExposureTimeUnit="s")
        ox.positions(attrs, plane.head.position)
        pixels.add(ox.El("Plane", attrs))


def _plate(name: str, htd: Htd, images: list[tuple[int, int, int]]) -> ox.El:
    """``images``: (row, column, field) of each Image, in Image order."""
    plate = ox.El("Plate", {"Columns": str(htd.columns), "ID": "Plate:0", "Name": name, "Rows": str(htd.rows)})
    by_well: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for index, (row, col, fld) in enumerate(images):
        by_well.setdefault((row, col), []).append((fld, index))
    acquisition = ox.El("PlateAcquisition", {"ID": "PlateAcquisition:0:0",
                                             "MaximumFieldCount": str(htd.site_grid[0] * htd.site_grid[1])})
    for row in range(htd.rows):
        for col in range(htd.columns):
            well_index = row * htd.columns + col
            well = plate.add(ox.El("Well", {"Column": str(col), "ID": f"Well:0:{well_index}", "Row": str(row)}))
            for fld, index in by_well.get((row, col), []):
                sample_id = f"WellSample:0:{well_index}:{fld}"
                sample = well.add(ox.El("WellSample", {"ID": sample_id, "Index": str(index)}))
                sample.add(ox.El("ImageRef", {"ID": f"Image:{index}"}))
                acquisition.add(ox.El("WellSampleRef", {"ID": sample_id}))
    plate.add(acquisition)
    return plate


def _instrument(plate: Settings) -> ox.El:
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    objective = {"ID": "Objective:0:0"}
    if plate.lens_na is not None:
        objective["LensNA"] = ox.jdouble(plate.lens_na)
    instrument.add(ox.El("Objective", objective))
    return instrument


@dataclass(slots=True)
class Layout:
    """Everything :func:`document` writes from: the plate's name and layout, the Images' (row, column,
    field), the present planes per Image keyed by (z, c, t), per-channel settings (from each wavelength's
    first file) and the plate's settings (from its first file)."""

    name: str
    htd: Htd
    images: list[tuple[int, int, int]]
    planes: list[dict[tuple[int, int, int], Plane]]
    channels: list[Settings]
    plate: Settings
    first: Plane
    bioformats: bool


def _image(layout: Layout, index: int) -> ox.El:
    htd, first, plate = layout.htd, layout.first.head, layout.plate
    row, col, fld = layout.images[index]
    attrs = {"ID": f"Image:{index}", "Name": f"Well {row_letters(row)}{col + 1:02d} Field #{fld + 1}"}
    image = ox.El("Image", attrs)
    if first.date is not None:
        image.add(ox.El("AcquisitionDate", text=first.date))
    image.add(ox.El("Description"))
    image.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    settings = {"ID": "Objective:0:0"}
    if plate.refractive_index is not None:
        settings["RefractiveIndex"] = ox.jdouble(plate.refractive_index)
    image.add(ox.El("ObjectiveSettings", settings))
    image.add(ox.El("ImagingEnvironment", {"Temperature": ox.jdouble(plate.temperature), "TemperatureUnit": "°C"}))
    sizes = (htd.size_z, len(htd.waves), htd.timepoints)
    pixels = image.add(ox.pixels(
        index=index, pixel_type=first.pixel_type, size=(first.size_x, first.size_y, *sizes),
        big_endian=first.big_endian, significant_bits=first.bits, physical=(*plate.physical, None)))
    for c, wave in enumerate(htd.waves):
        ch: dict[str, str] = {}
        setting = layout.channels[c] if c < len(layout.channels) else Settings()
        if setting.emission is not None:
            ch.update(EmissionWavelength=ox.jdouble(setting.emission), EmissionWavelengthUnit="nm")
        name = wave if wave is not None else setting.channel
        if name is not None:
            ch["Name"] = name
        pixels.add(ox.channel(index, c, 1, **ch))
    pixels.add(ox.El("MetadataOnly"))
    planes = layout.planes[index]
    if layout.bioformats:
        own = planes[min(planes, key=lambda k: (k[2], k[0], k[1]))] if planes else None
        _planes_bioformats(pixels, sizes, own, layout.first, plate)
    else:
        _planes_native(pixels, planes, [s.exposure for s in layout.channels])
    return image


def document(layout: Layout) -> str:
    """The whole plate's OME-XML."""
    images = [_image(layout, i) for i in range(len(layout.images))]
    return ox.document(_plate(layout.name, layout.htd, layout.images), _instrument(layout.plate), *images)
