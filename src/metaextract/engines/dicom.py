"""DICOM through pydicom, as Bio-Formats 7.3.1's DicomReader reports a file read on its own.

The engine reads the header only (pydicom, stopping before the pixel data; never the pixels) and claims
the DICOM files on which its document has been checked to equal Bio-Formats' (``tests/test_engines_dicom.py``:
the corpus DICOMs and synthetic ones, against live Bio-Formats). It also claims a DICOM object without
pixel data whose SOP class is no image class (e.g. a microscopy bulk annotation) and reports it
unsupported, "not an image", as ``auto`` did after Bio-Formats failed, with no JVM.

DicomReader's rules reproduced (learnt from its source and the 7.3.1 bytecode):

- one Image per file; its Name is the third value of ImageType (the last when there are fewer; Java's
  ``split`` drops trailing empty values), its Description all of ImageType; without ImageType the Image
  is named after the file;
- X, Y are Columns, Rows unless TotalPixelMatrixColumns/Rows are present (whatever the dimension
  organisation), which replace them; Z is TotalPixelMatrixFocalPlanes when present, else NumberOfFrames
  (when above 1) unless the total pixel matrix replaced X (then 1): the frames of a tiled image are
  tiles of one plane, the frames of a classic multi-frame image are Z planes;
- C is SamplesPerPixel, in one channel when above 1 (RGB); T is 1; the order is XYCZT;
- Interleaved is PlanarConfiguration == 0 (false without PlanarConfiguration);
- the type is BitsAllocated rounded up to whole bytes, signed by PixelRepresentation; SignificantBits is
  BitsAllocated (1 for a bit-packed segmentation, whose type is uint8);
- PhysicalSizeX/Y is PixelSpacing (row spacing, column spacing) in mm, the one in the shared functional
  groups winning over the top-level one; PhysicalSizeZ is SpacingBetweenSlices in mm; values <= 0 are
  left out;
- the first Plane gets ImagePositionPatient as its position in mm;
- the channel is named by the first OpticalPathDescription of its optical paths (one channel whatever their
  number, checked on images that are not tiled);
- no AcquisitionDate: Bio-Formats builds it from ContentDate/ContentTime with the pattern
  ``yyyy.MM.dd HH:mm:ss``, which a standard DA value (``YYYYMMDD``) never matches, nor a time without
  colons (an old ``2020.01.02`` date with ``10:11:12.5`` gives ``2020-01-02T10:11:12.005``: declined);
- PALETTE COLOR is reported as grey (the lookup tables change nothing in the document);
- ImageType values are Java's ``split``: inner and leading empty values count, trailing ones do not.

Bio-Formats groups a DICOM with its siblings (same series, acquisition date and time) when the file has
an InstanceNumber, SOPInstanceUID, acquisition date and time; ``auto`` reads such a file alone only when
that grouped read fails. The engine claims a file only when the grouped read is sure to give the alone
read or to fail: the file cannot be grouped, or no sibling DICOM can join it (another series, specimen or
acquisition date, or no acquisition date/time/instance), or a sibling makes DicomReader's directory scan
throw (an element of a value representation 7.3.1 cannot read -- OD, OF, OL, SV, UV, UR -- before the
scan has what it looks for, as in a bulk annotation without Rows).

Declined (left to Bio-Formats; ``extract`` says why): transfer syntaxes other than explicit and implicit VR
little endian, JPEG (baseline, extended, lossless) and JPEG 2000 (big endian, RLE, deflate ...);
elements of a VR 7.3.1 throws on (Bio-Formats fails: the rescue path answers); photometric
interpretations other than MONOCHROME1/2, RGB, YBR_FULL(_422), PALETTE COLOR; SamplesPerPixel other than 1 or
3; BitsAllocated other than 1, 8, 16 or 32; more than one optical path in a tiled image; PixelSpacing without
two values;
ImageType with only empty values; a non-standard ContentDate with a time of colons; float pixel data;
elements after uncompressed
pixel data; a folder with siblings that might be grouped with the file, more than 64 sibling DICOMs, or
a DICOMDIR.

As a rescuer (``rescues``/``rescue``, asked only after Bio-Formats failed even alone) it writes the same
mapping for any DICOM image whose header pydicom reads, whatever made Bio-Formats fail.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from metaextract.engines.base import CLAIM, Claim, ContextEngine, ExtractionError, FileContext, UnsupportedFormatError
from metaextract.engines.notimage import why_not_an_image
from metaextract.extraction import fence
from metaextract.ome import writer as ox

NAME = "pydicom"
RESCUE = 50
PREAMBLE = 128
MAX_SIBLINGS = 64
MAX_ELEMENTS = 1_000_000
#: value representations Bio-Formats 7.3.1's DicomTag.getLength throws IllegalArgumentException on
THROWING_VRS = frozenset({"OD", "OF", "OL", "SV", "UV", "UR"})
#: Bio-Formats' own DICOM suffixes (isThisType(name) is true on the name alone)
DICOM_SUFFIXES = (".dic", ".dcm", ".dicom", ".j2ki", ".j2kr")
EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: implicit VR little endian: random headers (sequences, dates, calibrations, photometrics) read as in explicit VR
#: (tests/test_differential_dicom.py); its pixel data element has no VR field
IMPLICIT_LE = "1.2.840.10008.1.2"
#: JPEG baseline, extended, lossless (.57, .70) and JPEG 2000 (.90, .91): Bio-Formats stops reading tags at
#: their encapsulated pixel data and reports the same document as uncompressed (RLE is not interleaved: declined)
JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                           "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})
CHECKED_SYNTAXES = frozenset({EXPLICIT_LE, IMPLICIT_LE}) | JPEG_SYNTAXES
#: PALETTE COLOR with or without its lookup tables (8 or 16-bit entries) gives the grey document (differential test)
PHOTOMETRICS = frozenset({"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR"})
_DATE = re.compile(r"\d{8}")


def is_dicom(head: bytes) -> bool:
    return head[PREAMBLE:PREAMBLE + 4] == b"DICM"


@dataclass
class DicomImage:
    name: str | None
    description: str | None
    size: tuple[int, int, int, int]  # X, Y, Z, C (samples)
    pixel_type: str
    bits: int
    interleaved: bool
    physical: tuple[float | None, float | None, float | None]
    position: tuple[float | None, float | None, float | None] | None
    channel_name: str | None
    declined: list[str] = field(default_factory=list)  # why Bio-Formats may not give this document


@dataclass
class NotImage:
    reason: str


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def _int(ds: Any, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        if default is not None:
            return default
        raise ExtractionError(f"DICOM header has no {keyword}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExtractionError(f"DICOM {keyword} is not a number: {value!r}") from None


def _length(value: str) -> float | None:
    """A size in mm as FormatTools.getPhysicalSize* keeps it (None when not positive)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _raw_spacing(ds: Any) -> Any:
    spacing = ds.get("PixelSpacing")
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    if shared:
        measures = shared[0].get("PixelMeasuresSequence") or []
        if measures and "PixelSpacing" in measures[0]:
            spacing = measures[0].get("PixelSpacing")  # read after the top-level one: it wins
    return spacing


def _vr_of(ds: Any, tag: Any) -> str:
    """An element's VR as written in the file (pydicom would turn a UN of a known tag into its own VR)."""
    return str(ds.get_item(tag).VR)


def _walk_vrs(ds: Any, budget: list[int]) -> set[str]:
    """Every VR in ``ds`` and its sequences, as written (bounded: at most MAX_ELEMENTS elements)."""
    found: set[str] = set()
    stack = [ds]
    while stack:
        current = stack.pop()
        for tag in list(current.keys()):
            budget[0] -= 1
            if budget[0] < 0:
                raise ExtractionError("DICOM header has too many elements")
            vr = _vr_of(current, tag)
            found.add(vr)
            if vr == "SQ":
                stack.extend(current[tag].value or [])
    return found


def image_of(ds: Any, file_name: str) -> DicomImage:
    """The image Bio-Formats reports for the header ``ds``, with the reasons to decline it, if any."""
    declined: list[str] = []
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    frames = _int(ds, "NumberOfFrames", 1)
    samples = _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated")
    signed = _int(ds, "PixelRepresentation", 0) == 1
    if min(rows, cols) <= 0:
        raise ExtractionError(f"DICOM image of {cols} x {rows} pixels")
    if samples not in (1, 3):
        declined.append(f"SamplesPerPixel {samples}")
    photometric = str(ds.get("PhotometricInterpretation", "") or "")
    if photometric not in PHOTOMETRICS:
        declined.append(f"PhotometricInterpretation {photometric or 'missing'}")
    if bits not in (1, 8, 16, 32):
        declined.append(f"BitsAllocated {bits}")
    nbytes = max(1, (bits + 7) // 8)
    pixel_type = {1: "int8", 2: "int16", 4: "int32"}.get(nbytes, "int8")
    if not signed:
        pixel_type = "u" + pixel_type
    if 0x00281041 in ds:
        declined.append("PixelSign")
    size_x, size_y, size_z = cols, rows, frames if frames > 1 else 0
    if "TotalPixelMatrixColumns" in ds:
        size_x = _int(ds, "TotalPixelMatrixColumns")
        if size_z == (frames if frames > 1 else 0):
            size_z = 1
    if "TotalPixelMatrixRows" in ds:
        size_y = _int(ds, "TotalPixelMatrixRows")
    if "TotalPixelMatrixFocalPlanes" in ds:
        size_z = _int(ds, "TotalPixelMatrixFocalPlanes")
    size_z = size_z or 1
    if min(size_x, size_y, size_z) <= 0:
        raise ExtractionError(f"DICOM image of {size_x} x {size_y} x {size_z} pixels")
    interleaved = "PlanarConfiguration" in ds and _int(ds, "PlanarConfiguration", 0) == 0

    raw_type = ds.get("ImageType")
    types = [str(v) for v in _values(raw_type)]
    name = description = None
    if types:
        description = "\\".join(types)
        kept = list(types)
        while kept and kept[-1] == "":
            kept.pop()
        if not kept:  # Java's split gives no value at all: not checked (inner empty values are kept, as here)
            declined.append("ImageType with only empty values")
        name = kept[min(2, len(kept) - 1)] if kept else ""
    else:
        name = file_name
        if "ImageType" in ds:
            declined.append("empty ImageType")

    px = py = None
    spacing = _values(_raw_spacing(ds))
    if spacing:
        if len(spacing) != 2:
            declined.append(f"PixelSpacing of {len(spacing)} values")
        else:
            py, px = _length(spacing[0]), _length(spacing[-1])
    pz = _length(ds.get("SpacingBetweenSlices")) if ds.get("SpacingBetweenSlices") not in (None, "") else None

    position = None
    if "ImagePositionPatient" in ds:
        values = _values(ds.get("ImagePositionPatient"))
        coords: list[float | None] = []
        for v in values[:3]:
            try:
                number = float(v)
            except (TypeError, ValueError):
                number = None
            coords.append(number if number is not None and math.isfinite(number) else None)
        if len(values) != 3 or None in coords:
            declined.append("ImagePositionPatient without three numbers")
        coords += [None] * (3 - len(coords))
        position = (coords[0], coords[1], coords[2])

    paths = ds.get("OpticalPathSequence") or []
    names = [str(item.get("OpticalPathDescription")) for item in paths if "OpticalPathDescription" in item]
    tiled = any(keyword in ds for keyword in ("TotalPixelMatrixColumns", "TotalPixelMatrixRows",
                                               "TotalPixelMatrixFocalPlanes", "DimensionOrganizationType"))
    if len(paths) > 1 and tiled:  # a classic image: one channel, named by the first description (live)
        declined.append(f"{len(paths)} optical paths in a tiled image")
    if "" in names:
        declined.append("an empty OpticalPathDescription")
    channel_name = names[0] if names else None

    if "ContentDate" in ds and "ContentTime" in ds and not _DATE.fullmatch(str(ds.get("ContentDate") or "")) \
            and ":" in str(ds.get("ContentTime") or ""):  # without colons the pattern never matches: no date
        declined.append(f"ContentDate {str(ds.get('ContentDate'))!r} not in the DA form YYYYMMDD, with a time "
                        "of colons")
    return DicomImage(name=name, description=description, size=(size_x, size_y, size_z, samples),
                      pixel_type=pixel_type, bits=bits, interleaved=interleaved, physical=(px, py, pz),
                      position=position, channel_name=channel_name, declined=declined)


def render(image: DicomImage) -> str:
    size_x, size_y, size_z, samples = image.size
    attrs = {"ID": "Image:0"}
    if image.name is not None:
        attrs["Name"] = image.name
    el = ox.El("Image", attrs)
    if image.description is not None:
        el.add(ox.El("Description", text=image.description))
    pixels = el.add(ox.pixels(pixel_type=image.pixel_type, size=(size_x, size_y, size_z, samples, 1),
                              big_endian=False, significant_bits=image.bits, interleaved=image.interleaved))
    for axis, value in zip("XYZ", image.physical, strict=True):
        if value is not None:
            pixels.attrs[f"PhysicalSize{axis}"] = ox.jdouble(value)
            pixels.attrs[f"PhysicalSize{axis}Unit"] = "mm"
    pixels.add(ox.channel(0, 0, samples, **({"Name": image.channel_name} if image.channel_name is not None else {})))
    pixels.add(ox.El("MetadataOnly"))
    for z in range(size_z):
        plane = ox.El("Plane", {"TheC": "0", "TheT": "0", "TheZ": str(z)})
        if z == 0 and image.position is not None:
            ox.positions(plane.attrs, image.position, unit="mm")
        pixels.add(plane)
    return ox.document(el)


# -- what Bio-Formats' grouped read does with the file's folder ----------------------------------------

def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _acquired(ds: Any) -> tuple[str | None, bool]:
    """(acquisition date, whether an acquisition time may be set) as DicomReader finds them."""
    date = _text(ds, "AcquisitionDate")
    stamp = _text(ds, "AcquisitionDateTime")
    if stamp is not None and len(stamp) >= 8:
        date = stamp[:8]
    has_time = "AcquisitionTime" in ds or (stamp is not None and len(stamp) >= 8)
    return date, has_time


def _specimen(ds: Any) -> str | None:
    items = ds.get("SpecimenDescriptionSequence") or []
    return _text(items[0], "SpecimenIdentifier") if items else None


def groupable(ds: Any) -> bool:
    """Whether DicomReader would scan the folder for files of this one's series (it may, conservatively)."""
    date, has_time = _acquired(ds)
    return (_text(ds, "InstanceNumber") is not None and "SOPInstanceUID" in ds and has_time
            and (date is not None or "AcquisitionDate" in ds))


#: keyword -> the scan condition it may satisfy (DicomReader.addFileToList stops once all are met)
_SCAN_NEEDS = {"AcquisitionDate": ("date",), "AcquisitionDateTime": ("date", "time"), "AcquisitionTime": ("time",),
               "InstanceNumber": ("instance",), "SeriesNumber": ("series",), "Columns": ("x",), "Rows": ("y",),
               "SpecimenDescriptionSequence": ("specimen",)}


def _sibling_throws(sib: Any, need_specimen: bool) -> bool:
    """Whether DicomReader's scan of ``sib`` certainly reaches an element whose VR it throws on."""
    pending = {"date", "time", "instance", "series", "x", "y"} | ({"specimen"} if need_specimen else set())
    from pydicom.datadict import keyword_for_tag

    budget = [MAX_ELEMENTS]
    for ds in (sib.file_meta, sib):
        for tag in list(ds.keys()):
            budget[0] -= 1
            vr = _vr_of(ds, tag)
            vrs = {vr} | (set().union(*(_walk_vrs(item, budget) for item in ds[tag].value or []))
                          if vr == "SQ" else set())
            if vrs & THROWING_VRS:
                return True  # reached while a condition was surely unmet (else we stopped below)
            for need in _SCAN_NEEDS.get(keyword_for_tag(tag), ()):
                pending.discard(need)
            if not pending:
                return False  # the scan may stop here: not certain to throw
    return False


@dataclass(frozen=True)
class _Sibling:
    """What the grouping rules need of a sibling DICOM, read once per version of the file."""

    throws: tuple[bool, bool]  #: whether DicomReader's scan surely throws: (without, with) a specimen to find
    date: str | None
    date_element: bool  #: AcquisitionDate present (even empty)
    has_time: bool
    instance: str | None
    series: str | None
    specimen: str | None


_SIBLINGS: dict[tuple[str, int, int, int], _Sibling | None] = {}
_SIBLINGS_LOCK = threading.Lock()


def _sibling(path: str) -> _Sibling | None:
    """The facts of sibling ``path`` (None when pydicom cannot read it), kept while the file is unchanged:
    claiming every file of a folder reads each sibling once, not once per file."""
    import pydicom

    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    with _SIBLINGS_LOCK:
        if key in _SIBLINGS:
            return _SIBLINGS[key]
    facts: _Sibling | None
    try:
        sib = pydicom.dcmread(path, stop_before_pixels=True)
        date, has_time = _acquired(sib)
        facts = _Sibling((_sibling_throws(sib, False), _sibling_throws(sib, True)), date,
                         "AcquisitionDate" in sib, has_time, _text(sib, "InstanceNumber"),
                         _text(sib, "SeriesNumber"), _specimen(sib))
    except Exception:  # noqa: BLE001 - a sibling pydicom cannot read: its effect on the scan is unknown
        facts = None
    with _SIBLINGS_LOCK:
        if len(_SIBLINGS) >= 4096:
            _SIBLINGS.clear()
        _SIBLINGS[key] = facts
    return facts


def _sibling_joins(ds: Any, sib: _Sibling) -> bool:
    """Whether ``sib`` might be grouped with ``ds`` (False only when DicomReader surely leaves it out)."""
    if (sib.date is None and not sib.date_element) or not sib.has_time or sib.instance is None:
        return False
    mine, theirs = _text(ds, "SeriesNumber"), sib.series
    if theirs is not None and (mine or "0").lstrip("+-").isdigit() and theirs.lstrip("+-").isdigit() \
            and int(mine or "0") != int(theirs):
        return False
    own_specimen, their_specimen = _specimen(ds), sib.specimen
    if (own_specimen is None) != (their_specimen is None) or own_specimen != their_specimen:
        return False
    own_date, date = _acquired(ds)[0], sib.date
    return not (own_date and date and _DATE.fullmatch(own_date) and _DATE.fullmatch(date) and own_date != date)


def _maybe_dicom(path: str, name: str) -> bool:
    """Whether Bio-Formats' DicomReader.isThisType may take this sibling (conservatively)."""
    if name.lower().endswith(DICOM_SUFFIXES) or name == "DICOMDIR":
        return True
    try:
        if os.path.getsize(path) < 1024:  # FormatTools.validStream needs 1024 bytes
            return False
        with open(path, "rb") as fh:
            head = fh.read(PREAMBLE + 4)
    except OSError:
        return True
    if is_dicom(head):
        return True
    group = int.from_bytes(head[:2], "little") if len(head) >= 4 else 1
    return group % 2 == 0 and 0x0002 <= group <= 0x7FE0  # a plausible first tag: DicomReader may take it


_FOLDERS: dict[str, tuple[float, list[str], list[str]]] = {}
_FOLDERS_LOCK = threading.Lock()


def _dicoms_in(folder: str) -> tuple[list[str], list[str]]:
    """The files of ``folder`` DicomReader may take (at most MAX_SIBLINGS + 2, unordered), and the links
    there that resolve outside the folder (never opened), remembered per folder until its modification
    time changes: claiming every file of a big folder stays linear."""
    stamp = os.stat(folder).st_mtime
    with _FOLDERS_LOCK:
        known = _FOLDERS.get(folder)
    if known is not None and known[0] == stamp:
        return known[1], known[2]
    found: list[str] = []
    outside: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if entry.is_symlink() and not fence.in_folder(entry.path, folder):
                outside.append(entry.name)
                continue
            if _maybe_dicom(entry.path, entry.name):
                found.append(entry.name)
                if len(found) > MAX_SIBLINGS + 1:
                    break
    with _FOLDERS_LOCK:
        if len(_FOLDERS) >= 256:
            _FOLDERS.clear()
        _FOLDERS[folder] = (stamp, found, outside)
    return found, outside


def grouping_problem(path: str, ds: Any) -> str | None:
    """Why Bio-Formats' grouped read of ``path`` may differ from its alone read (None when it cannot)."""
    if not groupable(ds):
        return None
    folder = os.path.dirname(os.path.abspath(path))
    me = os.path.basename(path)
    try:
        candidates, outside = _dicoms_in(folder)
    except OSError as exc:
        return f"its folder cannot be listed ({exc.strerror or exc})"
    if outside:
        return f"a file beside it links outside the folder ({outside[0]}); not read"
    siblings = [n for n in candidates if n != me]
    if not siblings:
        return None
    if len(siblings) > MAX_SIBLINGS:
        return f"more than {MAX_SIBLINGS} sibling DICOM files that Bio-Formats may group with it"
    need_specimen = _specimen(ds) is not None
    joiners = []
    for name in siblings:
        if name == "DICOMDIR":
            return "a DICOMDIR beside it"
        try:
            sib = _sibling(os.path.join(folder, name))
        except OSError:
            sib = None
        if sib is None:
            joiners.append(name)
            continue
        if sib.throws[need_specimen]:
            return None  # the grouped read fails (auto then reads the file alone)
        if _sibling_joins(ds, sib):
            joiners.append(name)
    if joiners:
        return f"sibling DICOM files Bio-Formats may group with it ({', '.join(joiners[:3])})"
    return None


# -- the file itself -------------------------------------------------------------------------------------

def _pixel_data_problem(path: str, offset: int, syntax: str) -> str | None:
    """For uncompressed pixel data: whether elements follow it (Bio-Formats would read them too)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(offset)
        head = fh.read(12)
    if len(head) < 12 or head[:4] != b"\xe0\x7f\x10\x00":
        return "pixel data not where the header ends"
    if syntax in JPEG_SYNTAXES:
        return None  # Bio-Formats stops reading tags at compressed pixel data
    if syntax == IMPLICIT_LE:
        length = int.from_bytes(head[4:8], "little")
        end = offset + 8 + length
    elif head[4:6] not in (b"OB", b"OW"):
        return f"pixel data of VR {head[4:6]!r}"
    else:
        length = int.from_bytes(head[8:12], "little")
        end = offset + 12 + length
    if length == 0xFFFFFFFF or end > size:
        return "uncompressed pixel data longer than the file"
    if size - end > 4:
        return f"{size - end} bytes of elements after the pixel data"
    return None


def not_image_class(ds: Any) -> bool:
    """Whether the object's SOP class (in its dataset, as in its file meta) is one that holds no image: a
    header truncated before Rows is no proof of that."""
    from pydicom.uid import UID

    sop = str(ds.get("SOPClassUID") or "")
    meta = str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "") or "")
    if not sop or sop != meta:
        return False
    name = UID(sop).name
    return name != sop and not any(word in name for word in ("Image", "Segmentation", "Volume"))


def read_dicom(path: str, *, for_claim: bool) -> DicomImage | NotImage:
    """Read the header of ``path``: the image (with any reasons to decline it) or why it is no image."""
    import pydicom

    with open(path, "rb") as fh:
        head = fh.read(PREAMBLE + 4)
        if not is_dicom(head):
            raise UnsupportedFormatError(f"not a DICOM file (bytes 128-131: {head[PREAMBLE:]!r})")
        fh.seek(0)
        try:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds; one line says which
            raise ExtractionError(f"pydicom cannot read the header: {type(exc).__name__}: {exc}") from None
        pixel_offset = fh.tell()
    if "Rows" not in ds:
        reason = why_not_an_image(path, head)
        if reason is not None and not_image_class(ds):
            return NotImage(reason)
        raise UnsupportedFormatError("DICOM object without an image (no Rows)")
    image = image_of(ds, os.path.basename(path))
    if not for_claim:
        return image
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if syntax not in CHECKED_SYNTAXES:
        image.declined.append(f"transfer syntax {syntax or 'missing'}")
    vrs = _walk_vrs(ds.file_meta, [MAX_ELEMENTS]) | _walk_vrs(ds, [MAX_ELEMENTS])
    if vrs & THROWING_VRS:
        image.declined.append(f"elements of VR {', '.join(sorted(vrs & THROWING_VRS))}, which Bio-Formats 7.3.1 "
                              "cannot read")
    if any(tag in ds for tag in (0x7FE00008, 0x7FE00009)):
        image.declined.append("float pixel data")
    if not image.declined:
        problem = _pixel_data_problem(path, pixel_offset, syntax)
        if problem is not None:
            image.declined.append(problem)
    if not image.declined:
        problem = grouping_problem(path, ds)
        if problem is not None:
            image.declined.append(problem)
    return image


def _read(path: str, *, for_claim: bool) -> DicomImage | NotImage:
    """:func:`read_dicom` with every failure as one :class:`ExtractionError` line: pydicom parses elements
    lazily, so a damaged element raises whatever its decoder raises (NotImplementedError for an unknown VR,
    KeyError, ...) only when it is first read."""
    try:
        return read_dicom(path, for_claim=for_claim)
    except ExtractionError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds; one line says which
        raise ExtractionError(f"the DICOM file cannot be read: {type(exc).__name__}: {exc}") from None


class DicomEngine(ContextEngine["DicomImage | NotImage"]):
    """DICOM from its header through pydicom: claims the kinds shown to agree with Bio-Formats read alone,
    and DICOM objects without pixel data (unsupported); rescues the images Bio-Formats cannot read."""

    name = NAME

    def version(self) -> str:
        import pydicom

        return str(pydicom.__version__)

    def claim_in(self, ctx: FileContext) -> Claim[DicomImage | NotImage]:
        if not is_dicom(ctx.head):
            return Claim(0)
        try:
            found = read_dicom(ctx.path, for_claim=True)
        except Exception:  # noqa: BLE001 - a file this engine cannot parse is simply not claimed
            return Claim(0)
        if isinstance(found, DicomImage) and found.declined:
            return Claim(0)
        return Claim(CLAIM, found)

    def extract_in(self, ctx: FileContext, found: DicomImage | NotImage | None = None) -> str:
        """The OME-XML of the file; raises for a kind this engine declines, unsupported for no image."""
        if found is None:
            found = _read(ctx.path, for_claim=True)
        if isinstance(found, NotImage):
            raise UnsupportedFormatError(found.reason)
        if found.declined:
            raise ExtractionError("a DICOM of a kind this engine does not read (use Bio-Formats): "
                                  + "; ".join(found.declined))
        return render(found)

    def rescues(self, path: str, head: bytes) -> int:
        return RESCUE if is_dicom(head) else 0

    def rescue(self, path: str) -> tuple[str, list[str]]:
        found = _read(path, for_claim=False)
        if isinstance(found, NotImage):
            raise UnsupportedFormatError(found.reason)
        return render(found), ["DICOM header read by pydicom (no pixel data decoded)"]
