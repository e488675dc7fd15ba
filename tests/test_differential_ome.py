"""Differential testing of ``auto`` against the live Bio-Formats engine on generated OME variants (issue 20).

Variants are drawn (seeded, so a failure is reproducible) from the axes OME writers vary: the schema
(2016-06, the older ones Bio-Formats upgrades: 2008-02, 2010-06 … 2015-01), several images, pixel types
and dimension orders, channel and plane attributes with units, plates with wells, ROIs with shapes,
modulo and map annotations, and the containers: one OME-TIFF (its planes sometimes named by its own
UUID, with or without ``FileName``), a multi-file set of up to four images (``TiffData`` with ``UUID``,
mostly with ``FileName``; every file holding the whole XML, ``BinaryOnly`` files beside a
``.companion.ome``, or ``BinaryOnly`` files pointing to a master OME-TIFF; plates with one or two fields
per well, ROIs shared across images), and a standalone ``.ome.xml`` with ``BinData`` or ``MetadataOnly``.
Without ``FileName`` Bio-Formats fails on most sets: ``auto`` must then leave the file to it. For every file
of a variant, ``auto`` (through :func:`~metaextract.extraction.pipeline.extract_file`, as a run reads
it) is compared with Bio-Formats: wherever the native engine answers, its document must equal
Bio-Formats' whole (after normalisation); the files it leaves to Bio-Formats are what it declines.
The expected document is what the JVM says for the same bytes; nothing is copied from the engine.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from metaextract.extraction.pipeline import extract_file
from metaextract.ome import normalise, validate
from metaextract.ome.diff import first_difference

from ._differential import compare_with_bioformats

SEED = 20
VARIANTS = 72
ROOT = "http://www.openmicroscopy.org/Schemas/"
NS = ROOT + "OME/2016-06"
MODERN_OLD = ("2010-06", "2011-06", "2012-06", "2013-06", "2015-01")
TYPES = {"uint8": "uint8", "int8": "int8", "uint16": "uint16", "int16": "int16", "uint32": "uint32",
         "int32": "int32", "float": "float32", "double": "float64"}
ORDERS = ("XYZCT", "XYZTC", "XYCZT", "XYCTZ", "XYTZC", "XYTCZ")
DATES = ("2020-01-02T03:04:05", "2019-12-31T23:59:59Z", "2021-06-30T22:15:00+02:00", "2018-03-04T05:06:07.250",
         "2018-03-04T05:06:07.123456-05:30", "2018-03-04T05:06:07.0001", "2017-01-01T00:00:00.5Z")
DESCRIPTIONS = ("acquired on scope 3", "x", "", "  two\nlines  ")
MODULO_NS = "openmicroscopy.org/omero/dimension/modulo"
ADDITIONS = "http://www.openmicroscopy.org/Schemas/Additions/2011-09"


def _uuid(rng: random.Random) -> str:
    return f"urn:uuid:{rng.randrange(1 << 32):08x}-{rng.randrange(1 << 16):04x}-4{rng.randrange(1 << 12):03x}-8000-" \
           f"{rng.randrange(1 << 48):012x}"


@dataclass
class _Image:
    index: int
    dtype: str
    order: str
    sizes: dict[str, int]
    samples: int = 1
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def planes(self) -> int:
        return self.sizes["Z"] * self.sizes["T"] * (self.sizes["C"] // self.samples)

    def zct(self, plane: int) -> tuple[int, int, int]:
        """(Z, C, T) of plane ``plane`` in the image's dimension order (C counted in channels)."""
        dims = {"Z": self.sizes["Z"], "C": self.sizes["C"] // self.samples, "T": self.sizes["T"]}
        at = {}
        for d in self.order[2:]:
            at[d] = plane % dims[d]
            plane //= dims[d]
        return at["Z"], at["C"], at["T"]


def _images(rng: random.Random, version: str, counts: tuple[int, ...] = (1, 1, 1, 2, 3)) -> list[_Image]:
    images = []
    for index in range(rng.choice(counts)):
        dtype = rng.choice(tuple(TYPES)) if version != "2008-02" else rng.choice(("uint8", "uint16", "float"))
        sizes = {"X": rng.choice((4, 7, 16)), "Y": rng.choice((3, 6, 9)), "Z": rng.choice((1, 1, 2, 3)),
                 "C": rng.choice((1, 1, 2, 3)), "T": rng.choice((1, 1, 2))}
        samples = 1
        if dtype == "uint8" and sizes["C"] == 3 and rng.random() < 0.4 and version == "2016-06":
            samples = 3  # RGB: one channel of three samples
        images.append(_Image(index, dtype, rng.choice(ORDERS), sizes, samples))
    return images


def _attrs(values: dict[str, Any]) -> str:
    return "".join(f' {k}="{v}"' for k, v in values.items() if v is not None)


def _channel(rng: random.Random, image: _Image, c: int, version: str) -> str:
    a: dict[str, Any] = {"ID": f"Channel:{image.index}:{c}", "SamplesPerPixel": image.samples}
    if rng.random() < 0.7:
        a["Name"] = rng.choice(("DAPI", "GFP", "ch 1", "Cy5", ""))
    if rng.random() < 0.4:
        a["Color"] = rng.choice((-1, 16711935, 65535, -16776961))
    if rng.random() < 0.5:
        a["EmissionWavelength"] = rng.choice((520, 460.5, 670.25))
        if version == "2016-06" and rng.random() < 0.5:
            a["EmissionWavelengthUnit"] = rng.choice(("nm", "µm"))
    if rng.random() < 0.3:
        a["ExcitationWavelength"] = rng.choice((488, 561.0))
    if rng.random() < 0.3:
        a["PinholeSize"] = rng.choice((1, 1.5, 0.333))
    if rng.random() < 0.3:
        a["Fluor"] = rng.choice(("GFP", "mCherry"))
    if rng.random() < 0.2:
        a["IlluminationType"] = rng.choice(("Epifluorescence", "Transmitted"))
    if rng.random() < 0.2:
        a["AcquisitionMode"] = rng.choice(("WideField", "LaserScanningConfocalMicroscopy"))
    if rng.random() < 0.2:
        a["ContrastMethod"] = rng.choice(("Fluorescence", "Brightfield"))
    return f"<Channel{_attrs(a)}/>"


def _plane(rng: random.Random, image: _Image, plane: int, version: str) -> str:
    z, c, t = image.zct(plane)
    a: dict[str, Any] = {"TheZ": z, "TheC": c, "TheT": t}
    if rng.random() < 0.6:
        a["DeltaT"] = rng.choice((0, 0.5, 12.25, 1e-3))
        if version == "2016-06" and rng.random() < 0.4:
            a["DeltaTUnit"] = rng.choice(("s", "ms"))
    if rng.random() < 0.5:
        a["ExposureTime"] = rng.choice((10, 0.02, 150.0))
    if rng.random() < 0.5:
        a["PositionX"], a["PositionY"] = rng.choice((1, -2.5, 1234.5678)), rng.choice((0, 3.75))
        if version == "2016-06" and rng.random() < 0.5:
            a["PositionXUnit"] = a["PositionYUnit"] = rng.choice(("µm", "mm", "reference frame"))
    if rng.random() < 0.3:
        a["PositionZ"] = rng.choice((0.0, 5, -1.5))
    return f"<Plane{_attrs(a)}/>"


def _pixels_attrs(rng: random.Random, image: _Image, version: str) -> dict[str, Any]:
    a: dict[str, Any] = {"ID": f"Pixels:{image.index}", "DimensionOrder": image.order, "Type": image.dtype}
    a.update({f"Size{d}": image.sizes[d] for d in "XYZCT"})
    if rng.random() < 0.7:
        a["PhysicalSizeX"] = a["PhysicalSizeY"] = rng.choice((0.25, 0.1625, 1, 0.3333333333333333, 1e-07, 1e-06))
        if version == "2016-06" and rng.random() < 0.4:
            a["PhysicalSizeXUnit"] = a["PhysicalSizeYUnit"] = rng.choice(("nm", "µm", "mm"))
    if rng.random() < 0.4 and image.sizes["Z"] > 1:
        a["PhysicalSizeZ"] = rng.choice((0.5, 2, 1.25))
    if rng.random() < 0.2:
        a["TimeIncrement"] = rng.choice((1, 0.5))
    if rng.random() < 0.25:
        a["SignificantBits"] = rng.choice((1, 6, 12, 14, 20, 33, 64))  # some more than the type holds
    return a


@dataclass
class _Variant:
    kind: str
    version: str
    files: dict[str, bytes | tuple[str, list[int]]]  # name -> XML text, or (description, [image index per IFD])
    images: list[_Image]
    features: list[str]

    def describe(self) -> str:
        return f"{self.kind}/{self.version}/{len(self.images)} images/{','.join(self.features)}"


def _tiff_data(image: _Image, form: str, ifd0: int, file_of: dict[int, tuple[str, str, int]] | None,
               named: bool = True) -> str:
    """``TiffData`` of ``image``: ``bare`` (one element, no attributes), ``block`` (one with IFD and PlaneCount),
    ``planes`` (one per plane); ``file_of`` maps a plane to (file name, its UUID, its IFD) in a set, whose
    ``UUID`` has a ``FileName`` when ``named`` (else Bio-Formats must find the file by its UUID)."""
    if file_of is not None:
        out = []
        for plane in range(image.planes):
            name, uuid, ifd = file_of[plane]
            z, c, t = image.zct(plane)
            ref = f'<UUID FileName="{name}">{uuid}</UUID>' if named else f"<UUID>{uuid}</UUID>"
            out.append(f'<TiffData FirstZ="{z}" FirstC="{c}" FirstT="{t}" IFD="{ifd}" PlaneCount="1">{ref}</TiffData>')
        return "".join(out)
    if form == "bare":
        return "<TiffData/>"
    if form == "block":
        return f'<TiffData IFD="{ifd0}" PlaneCount="{image.planes}"/>'
    out = []
    for plane in range(image.planes):
        z, c, t = image.zct(plane)
        out.append(f'<TiffData FirstZ="{z}" FirstC="{c}" FirstT="{t}" IFD="{ifd0 + plane}" PlaneCount="1"/>')
    return "".join(out)


def _document(rng: random.Random, version: str, images: list[_Image], features: list[str], *, uuid: str | None,
              storage: list[str]) -> str:
    """A 2016-06-shaped document in ``version``'s namespaces; ``storage[i]``: the Pixels' data element(s)."""
    sa = "" if version == "2016-06" else "SA:"
    spw = "" if version == "2016-06" else "SPW:"
    date = "AcquiredDate" if version in ("2010-06", "2011-06") else "AcquisitionDate"
    annotations: list[str] = []
    body: list[str] = []
    rois: list[str] = []
    plate = ""
    if "plate" in features:
        fields = rng.choice((1, 1, 2))  # images per well: one, or two fields of one well
        samples: dict[int, list[str]] = {}
        for i, image in enumerate(images):
            wa: dict[str, Any] = {"ID": f"WellSample:0:{i}", "Index": i}
            if rng.random() < 0.5:
                wa["PositionX"], wa["PositionY"] = rng.choice((10.5, 0)), rng.choice((-3, 7.125))
            samples.setdefault(i // fields, []).append(
                f'<{spw}WellSample{_attrs(wa)}><ImageRef ID="Image:{image.index}"/></{spw}WellSample>')
        wells = [f'<{spw}Well ID="Well:0:{w}" Column="{w % 2}" Row="{w // 2}">{"".join(ws)}</{spw}Well>'
                 for w, ws in samples.items()]
        pa: dict[str, Any] = {"ID": "Plate:0", "Name": rng.choice(("plate 1", None)), "Rows": 2, "Columns": 2}
        if rng.random() < 0.5:
            pa.update(RowNamingConvention="letter", ColumnNamingConvention="number")
        plate = f"<{spw}Plate{_attrs(pa)}>{''.join(wells)}</{spw}Plate>"
    shared_roi = len(images) > 1 and rng.random() < 0.5  # every image also refers to image 0's ROI
    for image in images:
        refs = []
        if "roi" in features and shared_roi and image.index > 0:
            refs.append('<ROIRef ID="ROI:0"/>')
        if "roi" in features:
            shapes = []
            for s in range(rng.choice((1, 2, 3))):
                kind = rng.choice(("Rectangle", "Ellipse", "Point", "Line", "Polygon", "Label"))
                sid = f"Shape:{image.index}:{s}"
                geo = {"Rectangle": 'X="1" Y="2.5" Width="3" Height="4"',
                       "Ellipse": 'X="3" Y="3" RadiusX="1.5" RadiusY="2"',
                       "Point": 'X="0.5" Y="1"', "Line": 'X1="0" Y1="0" X2="3" Y2="4.5"',
                       "Polygon": 'Points="1,1 2,3 4,1"', "Label": 'X="1" Y="1" Text="a label"'}[kind]
                extra = ' TheZ="0" TheC="0" TheT="0"' if rng.random() < 0.5 else ""
                if rng.random() < 0.3:
                    extra += ' StrokeColor="-16776961" StrokeWidth="1.5"'
                shapes.append(f'<{kind} ID="{sid}" {geo}{extra}/>')
            rois.append(f'<ROI ID="ROI:{image.index}" Name="roi {image.index}"><Union>{"".join(shapes)}</Union></ROI>')
            refs.append(f'<ROIRef ID="ROI:{image.index}"/>')
        if "modulo" in features and image.sizes["T"] == 2:
            aid = f"Annotation:modulo{image.index}"
            annotations.append(
                f'<{sa}XMLAnnotation ID="{aid}" Namespace="{MODULO_NS}"><{sa}Value>'
                f'<Modulo {rng.choice(("namespace", "xmlns"))}="{ADDITIONS}"><ModuloAlongT Type="lifetime" Unit="ps" '
                f'Start="0" End="500" Step="500"/></Modulo></{sa}Value></{sa}XMLAnnotation>')
            refs.append(f'<{sa}AnnotationRef ID="{aid}"/>')
        if "map" in features and version == "2016-06":
            aid = f"Annotation:map{image.index}"
            annotations.append(f'<MapAnnotation ID="{aid}" Namespace="test"><Value><M K="well">A{image.index}</M>'
                               f'<M K="empty"></M></Value></MapAnnotation>')
            refs.append(f'<AnnotationRef ID="{aid}"/>')
        if "comment" in features:
            aid = f"Annotation:c{image.index}"
            annotations.append(f'<{sa}CommentAnnotation ID="{aid}"><{sa}Value>note {image.index}</{sa}Value>'
                               f'</{sa}CommentAnnotation>')
            refs.append(f'<{sa}AnnotationRef ID="{aid}"/>')
        names = (f"image {image.index}", "", None, "s\u00e9rie &amp; \u00b5m", " padded ")
        ia: dict[str, Any] = {"ID": f"Image:{image.index}", "Name": rng.choice(names)}
        head = ""
        if rng.random() < 0.5:
            head += f"<{date}>{rng.choice(DATES)}</{date}>"
        if rng.random() < 0.4:
            head += f"<Description>{rng.choice(DESCRIPTIONS)}</Description>"
        if "instrument" in features:
            head += '<InstrumentRef ID="Instrument:0"/><ObjectiveSettings ID="Objective:0" RefractiveIndex="1.515"/>'
        pa = _pixels_attrs(rng, image, version)
        channels = "".join(_channel(rng, image, c, version) for c in range(image.sizes["C"] // image.samples))
        planes = "".join(_plane(rng, image, p, version) for p in range(image.planes)) if rng.random() < 0.6 else ""
        body.append(f"<Image{_attrs(ia)}>{head}<Pixels{_attrs(pa)}>{channels}{storage[image.index]}{planes}"
                    f"</Pixels>{''.join(refs)}</Image>")
    instrument = ""
    if "instrument" in features:
        instrument = ('<Instrument ID="Instrument:0"><Microscope Manufacturer="Nikon" Type="Inverted"/>'
                      '<Detector ID="Detector:0" Type="CCD" Gain="2"/><Objective ID="Objective:0" '
                      'NominalMagnification="60" LensNA="1.4" Immersion="Oil" Correction="PlanApo"/></Instrument>')
    structured = f"<{sa}StructuredAnnotations>{''.join(annotations)}</{sa}StructuredAnnotations>" if annotations else ""
    root_attrs = f' UUID="{uuid}"' if uuid else ""
    if rng.random() < 0.5:
        root_attrs += ' Creator="differential test"'
    ns = f'xmlns="{ROOT}OME/{version}"'
    if version != "2016-06":
        ns += f' xmlns:SA="{ROOT}SA/{version}" xmlns:Bin="{ROOT}BinaryFile/{version}"'
        if "plate" in features:
            ns += f' xmlns:SPW="{ROOT}SPW/{version}"'
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME {ns} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            f' xsi:schemaLocation="{ROOT}OME/{version} {ROOT}OME/{version}/ome.xsd"{root_attrs}>'
            f"{plate}{instrument}{''.join(body)}{structured}{''.join(rois)}</OME>")


_PT_2008 = {"uint8": "Uint8", "uint16": "Uint16", "float": "float"}


def _document_2008(rng: random.Random, images: list[_Image]) -> str:
    """The plainest 2008-02 OME-TIFF: Image (ID, Name, DefaultPixels, CreationDate), Pixels with TiffData."""
    body, ifd = [], 0
    for image in images:
        s = image.sizes
        date = f"<CreationDate>{rng.choice(('2007-06-19T16:54:34Z', '2008-01-01T00:00:00'))}</CreationDate>"
        body.append(
            f'<Image ID="Image:{image.index}" Name="old {image.index}" DefaultPixels="Pixels:{image.index}">{date}'
            f'<Pixels ID="Pixels:{image.index}" DimensionOrder="{image.order}" PixelType="{_PT_2008[image.dtype]}" '
            f'BigEndian="{rng.choice(("false", "true"))}" SizeX="{s["X"]}" SizeY="{s["Y"]}" SizeZ="{s["Z"]}" '
            f'SizeC="{s["C"]}" SizeT="{s["T"]}"><TiffData IFD="{ifd}" NumPlanes="{image.planes}"/></Pixels></Image>')
        ifd += image.planes
    return (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{ROOT}OME/2008-02" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{ROOT}OME/2008-02 {ROOT}OME/2008-02/ome.xsd">{"".join(body)}</OME>')


def _variant(rng: random.Random, index: int) -> _Variant:
    kind = rng.choice(("tiff", "tiff", "tiff", "set", "set", "companion", "master", "xml"))
    version = rng.choice(("2016-06",) * 5 + MODERN_OLD + ("2008-02",)) if kind == "tiff" else "2016-06"
    if kind == "xml" and rng.random() < 0.5:
        version = rng.choice(MODERN_OLD)
    several = kind in ("set", "companion", "master")
    images = _images(rng, version, (1, 2, 2, 3, 4) if several else (1, 1, 1, 2, 3))
    features = [f for f in ("plate", "roi", "modulo", "map", "comment", "instrument")
                if rng.random() < (0.4 if several and f in ("plate", "roi") else 0.25)]
    if version == "2008-02":
        features = []
    elif version != "2016-06":  # ROIs lived in their own namespace then (not written here), plates in SPW
        plates = version in ("2012-06", "2013-06", "2015-01")
        features = [f for f in features if f != "roi" and (f != "plate" or plates)]
    files: dict[str, bytes | tuple[str, list[int]]] = {}
    stem = f"v{index:03d}"
    if kind == "tiff":
        if version == "2008-02":
            xml = _document_2008(rng, images)
        else:
            storage, ifd = [], 0
            uuid = _uuid(rng) if rng.random() < 0.7 else None
            for image in images:
                form = rng.choice(("bare", "block", "planes")) if len(images) == 1 else rng.choice(("block", "planes"))
                own: dict[int, tuple[str, str, int]] | None = None
                if uuid is not None and rng.random() < 0.3:  # planes named by the file's own UUID
                    own = {p: (f"{stem}.ome.tif", uuid, ifd + p) for p in range(image.planes)}
                    features.append("own-uuid")
                storage.append(_tiff_data(image, form, ifd, own, named=rng.random() < 0.5))
                ifd += image.planes
            xml = _document(rng, version, images, features, uuid=uuid, storage=storage)
        files[f"{stem}.ome.tif"] = (xml, [image.index for image in images for _ in range(image.planes)])
    elif kind == "xml":
        storage = []
        for image in images:
            if rng.random() < 0.3:
                storage.append("<MetadataOnly/>")
                continue
            big = rng.choice(("true", "false"))
            size = image.sizes["X"] * image.sizes["Y"] * image.samples * np.dtype(TYPES[image.dtype]).itemsize
            data = base64.b64encode(bytes(size)).decode()
            tag = "BinData" if version == "2016-06" else "Bin:BinData"  # (the BinaryFile namespace before)
            storage.append("".join(f'<{tag} BigEndian="{big}" Length="{len(data)}">{data}</{tag}>'
                                   for _ in range(image.planes)))
        files[f"{stem}.ome.xml"] = _document(rng, version, images, features, uuid=_uuid(rng), storage=storage).encode()
    else:  # a set: each image's planes split over files by the image's outermost dimension
        names: list[str] = []
        uuids: dict[str, str] = {}
        ifds: dict[str, list[int]] = {}
        maps = []
        for image in images:
            outer = image.order[-1]
            per = image.planes // (image.sizes[outer] // (image.samples if outer == "C" else 1))
            file_of: dict[int, tuple[str, str, int]] = {}
            for plane in range(image.planes):
                name = f"{stem}_i{image.index}_{outer.lower()}{plane // per}.ome.tif"
                if name not in uuids:
                    names.append(name)
                    uuids[name] = _uuid(rng)
                    ifds[name] = []
                file_of[plane] = (name, uuids[name], len(ifds[name]))
                ifds[name].append(image.index)
            maps.append(file_of)
        named = rng.random() < 0.8
        if not named:
            features.append("unnamed")  # UUIDs without FileName: Bio-Formats cannot find the other files
        storage = [_tiff_data(image, "", 0, maps[image.index], named) for image in images]
        if kind == "set":  # every file holds the whole XML
            for name in names:
                xml = _document(random.Random(index), "2016-06", images, features, uuid=uuids[name], storage=storage)
                files[name] = (xml, ifds[name])
        elif kind == "master":  # the first file holds the XML, the others are BinaryOnly and point to it
            master = names[0]
            files[master] = (_document(rng, "2016-06", images, features, uuid=uuids[master], storage=storage),
                             ifds[master])
            for name in names[1:]:
                xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{uuids[name]}">'
                       f'<BinaryOnly MetadataFile="{master}" UUID="{uuids[master]}"/></OME>')
                files[name] = (xml, ifds[name])
        else:
            companion = f"{stem}.companion.ome"
            for name in names:
                xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}" UUID="{uuids[name]}">'
                       f'<BinaryOnly MetadataFile="{companion}" UUID="{_uuid(rng)}"/></OME>')
                files[name] = (xml, ifds[name])
            files[companion] = _document(rng, "2016-06", images, features, uuid=_uuid(rng), storage=storage).encode()
    return _Variant(kind, version, files, images, features)


def _write(folder: Path, variant: _Variant, rng: random.Random) -> list[Path]:
    folder.mkdir()
    byteorder = rng.choice(("<", ">"))
    paths = []
    for name, content in variant.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            xml, owners = content
            image = variant.images[owners[0]]
            if len(set(owners)) == 1:  # one image: one series of pages of its shape
                shape: tuple[int, ...] = (len(owners), image.sizes["Y"], image.sizes["X"])
                extra: dict[str, Any] = {"photometric": "minisblack"}
                if image.samples == 3:
                    shape, extra = (len(owners), image.sizes["Y"], image.sizes["X"], 3), {"photometric": "rgb"}
                data = np.zeros(shape, TYPES[image.dtype])
                tifffile.imwrite(path, data, description=xml.encode(), metadata=None, byteorder=byteorder, **extra)
            else:  # several images: one page per plane, each of its image's shape, the XML on the first
                with tifffile.TiffWriter(path, byteorder=byteorder) as tw:
                    for i, owner in enumerate(owners):
                        im = variant.images[owner]
                        rgb = im.samples == 3
                        page = np.zeros((im.sizes["Y"], im.sizes["X"], 3) if rgb else (im.sizes["Y"], im.sizes["X"]),
                                        TYPES[im.dtype])
                        tw.write(page, description=xml.encode() if i == 0 else None, metadata=None,
                                 photometric="rgb" if rgb else "minisblack")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[_Variant, list[Path]]]:
    folder = tmp_path_factory.mktemp("ome-variants")
    rng = random.Random(SEED)
    made = []
    for index in range(VARIANTS):
        variant = _variant(rng, index)
        made.append((variant, _write(folder / f"v{index:03d}", variant, rng)))
    return made


def test_the_generated_2016_documents_are_valid(variants: list[tuple[_Variant, list[Path]]]) -> None:
    """The generator writes what the schema allows (else a decline would prove nothing about the engine)."""
    checked = 0
    for variant, _ in variants:
        for content in variant.files.values():
            xml = content if isinstance(content, bytes) else content[0].encode()
            if variant.version == "2016-06" and b"BinaryOnly" not in xml:
                assert validate(xml, remember=False) == (True, None), variant.describe()
                checked += 1
    assert checked > VARIANTS // 2


@pytest.mark.slow
def test_every_native_answer_on_generated_ome_files_equals_live_bioformats(
        variants: list[tuple[_Variant, list[Path]]]) -> None:
    by_engine: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    declined: list[str] = []
    files = odd_bits = milliseconds = old_standalone = other_members = old_plates = old_modulo = 0
    for variant, paths in variants:
        for path in paths:
            theirs = extract_file(str(path), "bioformats")
            if theirs.status != "ok":  # Bio-Formats refuses it: auto must not answer either
                ours = extract_file(str(path), "auto")
                assert ours.engine.split(" ", 1)[0] == "bioformats" or ours.status != "ok", \
                    (variant.describe(), path.name, theirs.error)
                continue
            files += 1
            ours = extract_file(str(path), "auto")
            name = ours.engine.split(" ", 1)[0]
            by_engine[name] += 1
            if name == "bioformats":
                declined.append(f"{path.name}: {variant.describe()}")
                continue
            assert ours.status == "ok", (variant.describe(), path.name, ours.error)
            difference = first_difference(ours.omexml or "", theirs.omexml or "")
            assert difference is None, f"{name} on {path.name} ({variant.describe()}): {difference}"
            assert normalise(ours.omexml or "") == normalise(theirs.omexml or "")
            agreed[variant.kind] += 1
            odd_bits += any(f'SignificantBits="{b}"' in (theirs.omexml or "") for b in (1, 6, 12, 14, 20, 33))
            milliseconds += any(f":07.{ms}<" in (theirs.omexml or "") for ms in ("250", "123"))
            old_standalone += variant.kind == "xml" and variant.version != "2016-06"
            # a file of a set holding none of image 0's planes: image 0's type and byte order are its own IFD's
            other_members += variant.kind != "tiff" and path.name.endswith(".tif") and "_i0_" not in path.name
            old_plates += variant.version != "2016-06" and "plate" in variant.features  # SPW of 2012-06 on
            old_modulo += variant.version != "2016-06" and f'<Modulo xmlns="{ADDITIONS}"' in path.read_text("latin-1")
    # the comparison has teeth: the native engine answered for every container kind
    assert by_engine["ome-xml"] > files // 2, by_engine
    assert set(agreed) == {"tiff", "set", "companion", "master", "xml"}, agreed
    assert odd_bits > 0  # the SignificantBits rule (other bits than the type's) was compared
    assert milliseconds > 0  # and the rule for fractions of a second
    assert old_standalone > 0  # and older standalone documents (BinaryFile BinData, MetadataOnly)
    assert other_members > 0  # and files of a set that hold only other images' planes
    assert old_plates > 0 and old_modulo > 0  # and older plates, and older Modulo in the Additions namespace
    print(f"\n{VARIANTS} variants, {files} files read by Bio-Formats: {dict(by_engine)}; agreed by kind "
          f"{dict(agreed)}; declined ({len(declined)}):\n" + "\n".join(declined))


@pytest.mark.parametrize(("written", "expected"), [
    # what live Bio-Formats 7.3.1 wrote back for these AcquisitionDates of an OME-TIFF
    ("2018-03-04T05:06:07.250", "2018-03-04T05:06:07.250"),
    ("2018-03-04T05:06:07.5", "2018-03-04T05:06:07.500"),
    ("2018-03-04T05:06:07.123456", "2018-03-04T05:06:07.123"),
    ("2018-03-04T05:06:07.9999", "2018-03-04T05:06:07.999"),
    ("2018-03-04T05:06:07.0001", "2018-03-04T05:06:07"),
    ("2018-03-04T05:06:07.250+02:00", "2018-03-04T03:06:07.250"),
    ("2018-03-04T05:06:07.12Z", "2018-03-04T05:06:07.120"),
])
def test_fractions_of_a_second_are_cut_to_milliseconds(written: str, expected: str, tmp_path: Path) -> None:
    from metaextract.engines.ometiff.files import OmeEngine

    xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}"><Image ID="Image:0"><AcquisitionDate>{written}'
           '</AcquisitionDate><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="4" SizeY="3" SizeZ="1" '
           'SizeC="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/><TiffData/></Pixels></Image></OME>')
    path = tmp_path / "stamp.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 4), np.uint8), description=xml, metadata=None)
    result = extract_file(str(path), "auto")
    assert result.engine.split(" ", 1)[0] == OmeEngine.name
    assert f"<AcquisitionDate>{expected}</AcquisitionDate>" in (result.omexml or "")


# -- text and attribute values as Bio-Formats prints them ----------------------------------------------------
TEXT_VARIANTS = 48
#: native answers (each Bio-Formats' whole document) expected at least, of the 48 variants this seed draws (38)
TEXT_FLOOR = 32
#: white space and near-white space drawn around and inside text: Bio-Formats' printer trims what is up to
#: U+0020 (a carriage return, ``&#13;``, printed as a line end, included) and keeps a no-break or em space
EDGES = ("", "", " ", "  ", "\t", "\n   ", "&#13;", " &#13;&#10;", "\u00a0", "\u2003", "&#9;")
#: words of text ("&amp;" only in the variants drawn with markup: Bio-Formats fails on it in an .ome.xml)
WORDS = ("a", "space", "x y", "B&#233;", "q")
#: words of attribute values, where markup characters are no trouble
ATTR_WORDS = ("a", "space", "x y", "&amp;", "B&#233;", "&lt;tag&gt;")
#: an element of another namespace, declared on itself
SVG = 'svg:rect xmlns:svg="http://www.w3.org/2000/svg"'
TAGS = ("b", "i", "body", "p", SVG)


def _text(rng: random.Random, words: tuple[str, ...]) -> str:
    return rng.choice(EDGES) + (rng.choice(words) if rng.random() < 0.8 else "") + rng.choice(EDGES)


def _attr_value(rng: random.Random) -> str:
    return (rng.choice(ATTR_WORDS) + rng.choice(("", " ", "&#9;", "&#10;", "&#13;", "&#13;&#10;"))
            + rng.choice(ATTR_WORDS))


def _inline(rng: random.Random, depth: int, words: tuple[str, ...]) -> str:
    """An element inside an XMLAnnotation's Value: mixed text and children, or text only, or empty."""
    opening = rng.choice(TAGS)
    tag = opening.split(" ", 1)[0]
    attrs = f' title="{_attr_value(rng)}"' if rng.random() < 0.3 else ""
    kind = rng.choice(("mixed", "mixed", "text", "empty")) if depth < 3 else rng.choice(("text", "empty"))
    if kind == "empty":
        return f"<{opening}{attrs}/>"
    if kind == "text":
        return f"<{opening}{attrs}>{_text(rng, words)}</{tag}>"
    parts = [_text(rng, words)]
    for _ in range(rng.randint(1, 2)):
        parts += [_inline(rng, depth + 1, words), _text(rng, words)]
    return f"<{opening}{attrs}>{''.join(parts)}</{tag}>"


def text_variant(rng: random.Random) -> tuple[str, str, list[str]]:
    """A 2016-06 document with a drawn XMLAnnotation (and image name and description); its container
    (``.ome.xml`` with BinData, or an OME-TIFF) and what was drawn. A few variants draw what Bio-Formats
    fails on: "&amp;" in the Value's text, or an ``svg:rect`` whose prefix only the root declares (printed
    undeclared, its document does not parse): the engine must leave those to it."""
    trouble = rng.choice(("",) * 8 + ("markup", "outer prefix"))
    words = WORDS + ("&amp;",) if trouble == "markup" else WORDS
    value = "".join(_inline(rng, 1, words) + rng.choice(("", " ", "\n  ")) for _ in range(rng.randint(1, 2)))
    if trouble == "outer prefix":
        value += f"<svg:rect>{_text(rng, words)}</svg:rect>"
    name = _attr_value(rng) if rng.random() < 0.5 else "img"
    description = f"<Description>{_text(rng, WORDS)}</Description>" if rng.random() < 0.5 else ""
    container = rng.choice(("ome.xml", "ome.xml", "ome.tif"))
    data = ('<BinData BigEndian="false" Length="8">AAECAwQFBgc=</BinData>' if container == "ome.xml"
            else '<TiffData/>')
    outer = ' xmlns:svg="http://www.w3.org/2000/svg"' if trouble == "outer prefix" else ""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{NS}"{outer} '
           f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="{NS} {NS}/ome.xsd">'
           f'<Image ID="Image:0" Name="{name}">{description}<Pixels ID="Pixels:0" DimensionOrder="XYZCT" '
           'Type="uint8" SizeX="4" SizeY="2" SizeZ="1" SizeC="1" SizeT="1"><Channel ID="Channel:0:0" '
           f'SamplesPerPixel="1"/>{data}</Pixels><AnnotationRef ID="Annotation:0"/></Image>'
           '<StructuredAnnotations><XMLAnnotation ID="Annotation:0" Namespace="test/text">'
           f"<Value>{value}</Value></XMLAnnotation></StructuredAnnotations></OME>")
    return xml, container, [trouble or "plain", f"name {name!r}", f"description {description!r}", f"value {value!r}"]


@pytest.fixture(scope="module")
def text_variants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, list[str]]]:
    folder = tmp_path_factory.mktemp("ome-text")
    rng = random.Random(SEED)
    made = []
    for index in range(TEXT_VARIANTS):
        xml, container, drawn = text_variant(rng)
        path = folder / f"t{index:03d}.{container}"
        if container == "ome.xml":
            path.write_text(xml, encoding="utf-8")
        else:
            tifffile.imwrite(path, np.zeros((2, 4), np.uint8), description=xml.encode("utf-8"), metadata=None)
        made.append((path, drawn))
    return made


def test_the_generated_text_documents_are_valid(text_variants: list[tuple[Path, list[str]]]) -> None:
    """Every drawn document is valid OME (so a decline proves something about the engine, not the generator)."""
    for path, drawn in text_variants:
        if path.suffix == ".xml":
            xml = path.read_bytes()
        else:
            with tifffile.TiffFile(path) as tf:
                xml = tf.pages.first.description.encode("utf-8")
        assert validate(xml, remember=False) == (True, None), drawn


@pytest.mark.slow
def test_text_and_attribute_values_are_printed_as_bioformats_prints_them(
        text_variants: list[tuple[Path, list[str]]]) -> None:
    # mixed text in an XMLAnnotation ("a <b>space</b>" printed "a<b>space</b>"), white space at the edges of
    # text, carriage returns and tabs in text and attribute values: each native answer is Bio-Formats' whole
    tally = compare_with_bioformats(text_variants, "ome-xml", stored_alike=True)
    # what Bio-Formats fails on (a prefix declared outside the Value, markup in its text) is left to it;
    # markup in text is also left where Bio-Formats reads it (an OME-TIFF): the engine does not reproduce it
    tally.assert_proven(len(text_variants), "ome-xml", TEXT_FLOOR, declinable=["text with markup characters"],
                        reasons=["declared outside an XMLAnnotation", "text with markup characters"])
