"""Olympus FluoView ``.oib`` from its own OLE2 streams, as Bio-Formats 7.3.1's FV1000Reader reports it.

An OIB is an OLE2 compound document (read by :mod:`._ole`) holding the files of an OIF set: an
``OibInfo.txt`` stream maps each stream (``Storage00001/Stream00010`` …) to the file name it stands for,
one stream is the ``.oif`` (an INI text in UTF-16), the others are the per-plane ``.pty`` INI files, the
TIFF planes, LUTs, ROIs and a thumbnail. This engine reads the INI texts and the first bytes of each plane
TIFF (Bio-Formats parses their headers, so a missing one fails), never pixels.

The rules of FV1000Reader reproduced here (checked against the corpus reference):

* text: a stream is read as bytes decoded as UTF-8, cut before its first ``[``, NULs removed, and parsed
  by loci's IniParser (``key=value``, values trimmed, a trailing backslash joins the next line); every
  value loses its double quotes and has ``\\`` turned into ``/``;
* ``OibInfo.txt``: its lines sorted, ``StorageN=dir`` names a folder, ``StreamN=dir/name`` a file (the
  storage key replaced by its folder); the ``.oif`` among them is the main file;
* planes: ``[ProfileSaveInfo]`` ``IniFileNameN`` keys list the ``.pty`` files (in N order); without them
  ``PtyFileNameS``/``PtyFileNameE``/``PtyFileNameT2`` give them (the pattern's ``%03d`` counted from 1 to
  the end's number); one plane each, and each plane's TIFF must be there (Bio-Formats reads its header);
* sizes: ``[Axis i Parameters Common]`` (i = 0..8) ``AxisCode``/``MaxSize``: X, Y (when above 1), Z and T
  (0 counts as 1), every other code with a size above 0 multiplies C; the pixel type from
  ``[Reference Image Parameter] ImageDepth`` (1, 2, 4 bytes unsigned), significant bits from its
  ``ValidBitCounts`` (a ``.pty``'s ``[Acquisition Parameters Common] ValidBitCounts`` overrides);
* dimension order: ``XY`` plus C, Z, T in the order a ``.pty``'s ``[Axis 2/3/4 Parameters] Number``
  first exceeds 1, the rest appended in ZCT order;
* physical sizes: X/Y from ``WidthConvertValue``/``HeightConvertValue``, Z from the Z axis' end minus
  start over (Z - 1) in nm (1 µm for a single section); ``TimeIncrement`` likewise from T in ms (1 s);
* planes: DeltaT from the ``.pty``'s ``[Axis 4 Parameters] AbsPositionValue`` (ms), PositionZ from axis
  3, PositionX/Y from axis 7 ``AbsPositionValueX/Y`` (reference frame);
* channels: the active ``[GUI Channel n Parameters]`` (``CH Activate``) in order give name, emission and
  excitation wavelengths (excitation only read when an emission is given), detector gain/voltage (PMT),
  a barrier filter (``BF Name``, cut-in/cut-out from its ``NNN-NNN``), two dichroics (emission and
  excitation DM names) and a laser (``LaserWavelength`` of the k-th enabled ``[Laser n Parameters]``);
  ``[Channel n Parameters] LightType`` gives the illumination type;
* the objective from the last ``.pty``'s ``[Acquisition Parameters Common]`` (magnification, NA, name,
  working distance in µm); the image is named ``Series 1``; the acquisition date is the last laser
  table's ``ImageCaputreDate`` (or ``ImageCaptureDate``), ``'yyyy-MM-dd HH:mm:ss'`` without its quotes.

Declined (left to Bio-Formats): ``.oif`` sets, anything but exactly one storage folder, preview (``-R``)
or multi-plane ``.pty`` files, a missing or non-TIFF plane stream, planes that are not
Z x C x T, ROI files with shapes, non-ASCII text, any value containing ``GST`` (Bio-Formats rewrites
those), laser dye names that are laser media, dates in other spellings, numbers spelled with a leading ``+``,
physical sizes or wavelengths in (0, 1e-6], and every spelling Bio-Formats would fail on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import struct
from dataclasses import dataclass, field

from metaextract.engines.base import CLAIM, Declined, UnsupportedFormatError
from metaextract.engines.ole.common import CONTROL, OleEngine, not_tiny, positive, read_storage
from metaextract.engines.ole.storage import JavaNumberError, OleFile, parse_double, parse_int, strip_string
from metaextract.ome import writer as ox

NAME = "oib"
MAX_TEXT = 16 * 1024 * 1024  # an INI stream larger than this is not a header
NUM_DIMENSIONS = 9
PIXEL_TYPES = {1: "uint8", 2: "uint16", 4: "uint32"}
#: LaserMedium values (lower case): a dye name equal to one is a laser medium, not "Other" (declined)
LASER_MEDIA = frozenset(x.lower() for x in (
    "Cu", "Ag", "ArFl", "ArCl", "KrFl", "KrCl", "XeFl", "XeCl", "XeBr", "N", "Ar", "Kr", "Xe", "HeNe", "HeCd",
    "CO", "CO2", "H2O", "HFl", "NdGlass", "NdYAG", "ErGlass", "ErYAG", "HoYLF", "HoYAG", "Ruby", "TiSapphire",
    "Alexandrite", "Rhodamine6G", "CoumarinC30", "GaAs", "GaAlAs", "EMinus", "Other"))
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# -- INI text ------------------------------------------------------------------------------------------
class IniTable(dict[str, str]):
    """One ``[header]`` table: keys to values (a later duplicate key wins, as in a Java HashMap)."""

    def __init__(self, header: str) -> None:
        super().__init__()
        self.header = header


def parse_ini(text: str) -> list[IniTable]:
    """loci.common ``IniParser.parseINI`` with no comment delimiter and backslash continuation on."""
    lines = _LINE_BREAK.split(text)
    tables: list[IniTable] = []
    current: IniTable | None = None
    chapter: str | None = None
    i = 0
    while i < len(lines):
        parts: list[str] = []
        while i < len(lines):
            line = ox.jtrim(lines[i])
            i += 1
            if line.endswith("\\n"):
                raise Declined("an INI line ending in \\n (IniParser's block text)")
            slash = line.endswith("\\")
            if slash:
                line = ox.jtrim(line[:-1]) + " "
            parts.append(line)
            if not slash:
                break
        line = "".join(parts)
        if line == "":
            continue
        if len(line) > 1 and line[0] == "{":
            chapter = line[1:-1] if line[-1] == "}" else line[1:]
            continue
        if len(line) > 1 and line[0] == "[":
            header = line[1:-1] if line[-1] == "]" else line[1:]
            current = IniTable(f"{chapter}: {header}" if chapter is not None else header)
            tables.append(current)
            continue
        if current is None:
            current = IniTable("")
            tables.append(current)
        equals = line.find("=")
        if equals >= 0:
            current[ox.jtrim(line[:equals])] = ox.jtrim(line[equals + 1:])
    return tables


def get_table(tables: list[IniTable], header: str) -> IniTable | None:
    """``IniList.getTable``: the first table with that header."""
    for found in tables:
        if found.header == header:
            return found
    return None


def sanitize(value: str) -> str:
    """FV1000Reader.sanitizeValue: quotes removed, both slashes made ``/`` (GST values are declined)."""
    if "GST" in value:
        raise Declined("a value containing GST (Bio-Formats rewrites it)")
    return value.replace('"', "").replace("\\", "/")


def ini_text(raw: bytes, what: str) -> str:
    """The text IniParser gets: UTF-8 of the bytes from the first ``[``, NULs dropped, trimmed."""
    start = raw.find(b"[")
    if start < 0:
        raise Declined(f"{what} has no [table] (Bio-Formats fails on it)")
    body = raw[start:]
    if any(b >= 0x80 for b in body):
        raise Declined(f"{what} has non-ASCII text")
    text = strip_string(body.decode("ascii"))
    if CONTROL.search(text):
        raise Declined(f"{what} has control characters (not XML text)")
    return text


def read_ini(raw: bytes, what: str) -> list[IniTable]:
    tables = parse_ini(ini_text(raw, what))
    for tab in tables:
        if "GST" in tab.header:
            raise Declined("a table header containing GST (Bio-Formats rewrites it)")
        for key in list(tab):
            tab[key] = sanitize(tab[key])
    return tables


# -- the document -------------------------------------------------------------------------------------
@dataclass
class GuiChannel:
    active: bool
    name: str | None
    gain: float | None
    voltage: float | None
    barrier: str | None
    dye: str | None
    emission_dm: str | None
    excitation_dm: str | None
    em_wave: float | None
    ex_wave: float | None


@dataclass
class Plane:
    delta_t: float | None = None
    x: float | None = None
    y: float | None = None
    z: float | None = None


@dataclass
class OibImage:
    size: tuple[int, int, int, int, int]  # X, Y, Z, C, T
    order: str
    pixel_type: str
    bits: int
    physical_xy: tuple[float | None, float | None]
    physical_z: float | None
    time_increment: float
    date: str | None
    lasers: list[float]
    channels: list[GuiChannel]
    illuminations: list[str | None]
    planes: list[Plane]
    objective: dict[str, str | None] = field(default_factory=dict)


def _number(text: str | None, what: str) -> float:
    if text is not None and ox.jtrim(text).startswith("+"):  # checked live: dropped, kept or read as a
        raise Declined(f"{what} is spelled with a + ({text!r}; Bio-Formats drops some such)")  # laser's
    try:
        return parse_double(text)
    except JavaNumberError:
        raise Declined(f"{what} is not a number Bio-Formats reads ({text!r})") from None


def _integer(text: str | None, what: str) -> int:
    try:
        return parse_int(text)
    except JavaNumberError:
        raise Declined(f"{what} is not an integer Bio-Formats reads ({text!r})") from None


class _Oib:
    """The streams of one OIB, looked up by the file names ``OibInfo.txt`` gives them."""

    def __init__(self, ole: OleFile) -> None:
        self.ole = ole
        self.mapping: dict[str, tuple[str, ...]] = {}
        infos = [p for p in ole.streams() if "/".join(("Root Entry", *p)).endswith("OibInfo.txt")]
        if not infos:
            raise UnsupportedFormatError("not an OIB: no OibInfo.txt stream")
        if len(infos) > 1:
            raise Declined("several OibInfo.txt streams")
        entry = ole.entry(infos[0])
        if entry is None or entry.size > MAX_TEXT:
            raise Declined("OibInfo.txt is too large")
        raw = ole.read(infos[0])
        body = raw[2:] if raw[:2] == b"\xff\xfe" else raw
        if any(b >= 0x80 for b in body):
            raise Declined("OibInfo.txt has non-ASCII text")
        text = strip_string(("\ufffd\ufffd" if body is not raw else "") + body.decode("ascii"))
        directory: tuple[str, str] | None = None
        self.oif: str | None = None
        for line in sorted(text.split("\n")):
            line = ox.jtrim(line)
            if "=" not in line:
                continue
            key, value = line[:line.index("=")], line[line.index("=") + 1:]
            if directory is not None:
                value = value.replace(directory[0], directory[1])
            if "GST" in value:
                raise Declined("an OibInfo.txt value containing GST (Bio-Formats rewrites it)")
            if key.startswith("Stream"):
                value = sanitize(value)
                if value.lower().endswith(".oif"):
                    self.oif = value
                if directory is not None and value.startswith(directory[1]):
                    self.mapping[value] = (directory[0], key)
                else:
                    self.mapping[value] = (key,)
            elif key.startswith("Storage"):
                if directory is not None:
                    raise Declined("more than one storage folder in OibInfo.txt")
                if re.search(r"[^A-Za-z0-9_ ]", key) or "$" in value or "\\" in value:
                    raise Declined("a storage name Bio-Formats would read as a regular expression")
                directory = (key, value)
        if self.oif is None:
            raise Declined("OibInfo.txt names no .oif stream (Bio-Formats fails on it)")

    def read(self, name: str, what: str) -> list[IniTable]:
        path = self.mapping.get(name.replace("\\", "/"))
        if path is None:
            raise Declined(f"{what} {name!r} is not in OibInfo.txt (Bio-Formats fails on it)")
        entry = self.ole.entry(path)
        if entry is None or not entry.is_stream:
            raise Declined(f"{what} {name!r} maps to a missing stream (Bio-Formats fails on it)")
        if entry.size > MAX_TEXT:
            raise Declined(f"{what} {name!r} is too large for an INI file")
        return read_ini(self.ole.read(path), what)

    def check_tiff(self, name: str) -> None:
        """Bio-Formats parses every plane's TIFF header at the end of initFile: it must be there and look whole."""
        path = self.mapping.get(name.replace("\\", "/"))
        entry = self.ole.entry(path) if path is not None else None
        if path is None or entry is None or not entry.is_stream:
            raise Declined(f"plane TIFF {name!r} is not in the file (Bio-Formats fails on it)")
        head = self.ole.read(path, 8)
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            raise Declined(f"plane {name!r} is not a classic TIFF")
        order = "<" if head[:2] == b"II" else ">"
        first = struct.unpack(order + "I", head[4:8])[0]
        if not 8 <= first <= entry.size - 2:
            raise Declined(f"plane TIFF {name!r} has its first IFD outside the stream")
        count = struct.unpack(order + "H", self.ole.read(path, first + 2)[first:])[0]
        if first + 2 + 12 * count + 4 > entry.size:
            raise Declined(f"plane TIFF {name!r} has a first IFD cut short")

    def exists(self, name: str) -> bool:
        path = self.mapping.get(name.replace("\\", "/"))
        return path is not None and self.ole.entry(path) is not None


def _pty_names(start: str, end: str, pattern: str | None) -> list[str]:
    """FV1000Reader.addPtyFiles: every name the ``%03d`` pattern gives, numbered from 1 (not from start)."""
    if pattern is None:
        raise Declined("no PtyFileNameT2 pattern")
    if pattern.endswith("%03d") or "%" in pattern.replace("%03d", ""):
        raise Declined(f"a .pty pattern this engine does not expand ({pattern!r})")
    prefixes = pattern.split("%03d")
    regex = "".join(re.escape(p) + ("([0-9]+)" if i < len(prefixes) - 1 else "") for i, p in enumerate(prefixes))
    if any(p[:1].isdigit() for p in prefixes[1:]):
        raise Declined(f"a .pty pattern with a digit after %03d ({pattern!r})")
    first, last = re.fullmatch(regex, start), re.fullmatch(regex, end)
    if first is None or last is None:
        raise Declined("PtyFileNameS/E do not match the pattern (Bio-Formats fails on it)")
    lengths = [int(b) - int(a) + 1 for a, b in zip(first.groups(), last.groups(), strict=True)]
    total = 1
    for n in lengths:
        if n <= 0:
            raise Declined("an empty .pty range")
        total *= n
        if total > 100_000:
            raise Declined("more than 100000 .pty files")
    names = []
    for index in range(total):
        pos, rest = [], index
        for n in lengths:
            pos.append(rest % n)
            rest //= n
        names.append("".join(p + (f"{pos[i] + 1:03d}" if i < len(pos) else "") for i, p in enumerate(prefixes)))
    return names


def read_oib(path: str) -> OibImage:
    """Read and classify ``path``; raises :class:`Declined` for kinds not checked, errors on damage."""
    return read_storage(path, ".oib", "OIB", lambda ole: _read(_Oib(ole)))


def _read(oib: _Oib) -> OibImage:
    assert oib.oif is not None
    oif = oib.read(oib.oif, "the .oif")
    save = get_table(oif, "ProfileSaveInfo")
    if save is None:
        raise Declined("no [ProfileSaveInfo] (Bio-Formats fails on it)")
    pty: dict[str, str] = {}
    rois: dict[int, str] = {}
    ini_files: dict[int, str] = {}
    for key, raw_value in save.items():
        value = ox.jtrim(raw_value)
        preview = value.find("-R") == len(value) - 9
        if key.startswith("IniFileName") and "Thumb" not in key and not preview:
            number = _integer(key[11:], f"the number of {key}")
            if number < 0:
                raise Declined(f"{key}: a negative plane number (Bio-Formats loops on it)")
            ini_files[number] = value
            continue
        if key.startswith("RoiFileName") and "Thumb" not in key and not preview:
            with contextlib.suppress(JavaNumberError):  # Bio-Formats skips a key it cannot number
                rois[parse_int(key[11:])] = value
        elif key in ("PtyFileNameS", "PtyFileNameE", "PtyFileNameT2"):
            pty[key] = value
        elif "Thumb" in key or key.startswith("LutFileName"):
            pass
        elif preview and oib.exists(value):
            raise Declined("a preview (-R) image series")
    if ini_files:  # the plane files listed one by one, taken in their numbers' order
        files = [ini_files[n] for n in sorted(ini_files)]
    elif "PtyFileNameS" not in pty or "PtyFileNameE" not in pty:
        raise Declined("no IniFileName or PtyFileNameS/E plane list")
    else:
        files = _pty_names(pty["PtyFileNameS"], pty["PtyFileNameE"], pty.get("PtyFileNameT2"))

    codes, sizes, spans = [], [], []
    for i in range(NUM_DIMENSIONS):
        axis = get_table(oif, f"Axis {i} Parameters Common")
        if axis is None or axis.get("AxisCode") is None:
            raise Declined(f"no [Axis {i} Parameters Common] AxisCode (Bio-Formats fails on it)")
        codes.append(axis["AxisCode"])
        sizes.append(_integer(axis.get("MaxSize"), f"Axis {i} MaxSize"))
        spans.append(_number(axis.get("EndPosition"), f"Axis {i} EndPosition")
                     - _number(axis.get("StartPosition"), f"Axis {i} StartPosition"))
    reference = get_table(oif, "Reference Image Parameter")
    if reference is None:
        raise Declined("no [Reference Image Parameter] (Bio-Formats fails on it)")
    depth = _integer(reference.get("ImageDepth"), "ImageDepth")
    if depth not in PIXEL_TYPES:
        raise Declined(f"ImageDepth {depth} (not 1, 2 or 4 bytes)")
    width, height = reference.get("WidthConvertValue"), reference.get("HeightConvertValue")
    valid_bits = _integer(reference["ValidBitCounts"], "ValidBitCounts") if "ValidBitCounts" in reference else 0

    lasers: list[float] = []
    date: str | None = None
    index = 0
    while (laser := get_table(oif, f"Laser {index} Parameters")) is not None:
        enable = laser.get("Laser Enable")
        if enable is None:
            raise Declined("a laser without Laser Enable (Bio-Formats fails on it)")
        if enable == "1":
            lasers.append(not_tiny(_number(laser.get("LaserWavelength"), "LaserWavelength"), "LaserWavelength"))
        date = laser.get("ImageCaputreDate")
        if date is None:
            date = laser.get("ImageCaptureDate")
        index += 1
    channels: list[GuiChannel] = []
    index = 1
    while (gui := get_table(oif, f"GUI Channel {index} Parameters")) is not None:
        em = gui.get("EmissionWavelength")
        if em is not None and gui.get("ExcitationWavelength") is None:
            raise Declined("an emission but no excitation wavelength (Bio-Formats fails on it)")
        channels.append(GuiChannel(
            active=_integer(gui.get("CH Activate"), "CH Activate") != 0, name=gui.get("CH Name"),
            gain=_number(gui["AnalogPMTGain"], "AnalogPMTGain") if "AnalogPMTGain" in gui else None,
            voltage=_number(gui["AnalogPMTVoltage"], "AnalogPMTVoltage") if "AnalogPMTVoltage" in gui else None,
            barrier=gui.get("BF Name"), dye=gui.get("DyeName"), emission_dm=gui.get("EmissionDM Name"),
            excitation_dm=gui.get("ExcitationDM Name"),
            em_wave=not_tiny(_number(em, "EmissionWavelength"), "EmissionWavelength") if em is not None else None,
            ex_wave=not_tiny(_number(gui.get("ExcitationWavelength"), "ExcitationWavelength"), "ExcitationWavelength")
            if em is not None else None))
        index += 1
    illuminations: list[str | None] = []
    index = 1
    while (chan := get_table(oif, f"Channel {index} Parameters")) is not None:
        light = chan.get("LightType")
        kind = None
        if light is not None:
            light = light.lower()
            kind = "Epifluorescence" if "fluorescence" in light else "Transmitted" if "transmitted" in light else None
        illuminations.append(kind)
        index += 1

    order = "XY"
    planes: list[Plane] = []
    bits = valid_bits
    objective: dict[str, str | None] = {}
    first_keys: set[str] | None = None
    for name in files:
        tables = oib.read(name, "a .pty file")
        keys = {key for tab in tables for key in tab}
        if first_keys is None:
            first_keys = keys
        elif not keys <= first_keys:
            raise Declined("a .pty file with keys the first lacks (Bio-Formats fails on it)")
        info = get_table(tables, "File Info")
        if info is None or info.get("DataName") is None:
            raise Declined("a .pty file without [File Info] DataName (Bio-Formats fails on it)")
        data_name = info["DataName"]
        if data_name.find("-R") == len(data_name) - 9:
            raise Declined("a preview (-R) plane")
        folder = name[:name.rfind("/")] if "/" in name else name
        tiff = f"{folder}/{data_name}"
        oib.check_tiff(tiff[:-3] + "tif" if tiff.endswith(".pty") else tiff)
        plane = Plane()
        for dim in range(NUM_DIMENSIONS):
            axis = get_table(tables, f"Axis {dim} Parameters")
            if axis is None:
                break
            add = _integer(axis.get("Number"), f"Axis {dim} Number") > 1
            if dim in (2, 3, 4) and add and "CZT"[dim - 2] not in order:
                order += "CZT"[dim - 2]
            if dim == 3:
                plane.z = _number(axis.get("AbsPositionValue"), "Axis 3 AbsPositionValue")
            elif dim == 4:
                plane.delta_t = _number(axis.get("AbsPositionValue"), "Axis 4 AbsPositionValue") / 1000
            elif dim == 7:
                for attr, key in (("x", "AbsPositionValueX"), ("y", "AbsPositionValueY")):
                    if key in axis:
                        if ox.jtrim(axis[key]).startswith("+"):
                            raise Declined(f"Axis 7 {key} is spelled with a + (not checked)")
                        with contextlib.suppress(JavaNumberError):  # Bio-Formats ignores an unreadable one
                            setattr(plane, attr, parse_double(axis[key]))
        bits = valid_bits
        planes.append(plane)
        acquisition = get_table(tables, "Acquisition Parameters Common")
        if acquisition is not None:
            objective = {"magnification": acquisition.get("Magnification"),
                         "na": acquisition.get("ObjectiveLens NAValue"),
                         "name": acquisition.get("ObjectiveLens Name"),
                         "wd": acquisition.get("ObjectiveLens WDValue")}
            if "ValidBitCounts" in acquisition:
                bits = _integer(acquisition["ValidBitCounts"], "ValidBitCounts")

    size_x = size_y = size_z = size_c = size_t = 0
    pixel_z = pixel_t = 1.0
    for code, ss, span in zip(codes, sizes, spans, strict=True):
        if code == "X":
            size_x = ss
        elif code == "Y" and ss > 1:
            size_y = ss
        elif code in ("Z", "T"):
            if size_y == 0:
                size_y = ss
            elif code == "Z":
                size_z = ss
                pixel_z = abs(span / (size_z - 1) / 1000) if size_z != 1 else float("inf")
            else:
                size_t = ss
                pixel_t = abs(span / (size_t - 1) / 1000) if size_t != 1 else float("inf")
        elif ss > 0:
            size_c = ss if size_c == 0 else size_c * ss
    size_z, size_c, size_t = size_z or 1, size_c or 1, size_t or 1
    count = len(files)
    if count == size_c and size_y == 1:
        raise Declined("a line scan (one row per plane file)")
    if count == size_c:
        size_z = size_t = 1
    if size_z * size_c * size_t != count:
        raise Declined(f"{count} plane files are not Z {size_z} x C {size_c} x T {size_t}")
    if size_x <= 0 or size_y <= 0:
        raise Declined("no X or Y size")
    if size_c > 1 and size_z == 1 and size_t == 1 and "C" not in order:
        order += "C"
    for axis_name in "ZCT":
        if axis_name not in order:
            order += axis_name
    if not 0 < bits <= 8 * depth:
        raise Declined(f"{bits} significant bits for {depth}-byte pixels")

    for i in range(min(len(rois), count)):
        if i not in rois:
            raise Declined("a gap in the ROI file list (Bio-Formats fails on it)")
        try:
            roi_tables = oib.read(rois[i], "a ROI file")
        except Declined as exc:
            if "is not in OibInfo" in str(exc) or "missing stream" in str(exc):
                continue  # Bio-Formats skips a ROI file it cannot open
            raise
        if any(t.header == "ROIBase Body" for t in roi_tables):
            raise Declined("ROI shapes (not reproduced)")

    for channel in channels:
        if channel.active and (channel.dye is None or ox.jtrim(channel.dye).lower() in LASER_MEDIA):
            raise Declined(f"laser dye name {channel.dye!r} (Bio-Formats maps laser media its own way)")
    active = [c for c in channels if c.active][:size_c]
    for channel in active:
        if channel.barrier is None:
            raise Declined("an active channel without a barrier filter name")
        parts = channel.barrier.split("-")
        while parts and parts[-1] == "":
            parts.pop()
        if "-" in channel.barrier and len(parts) < 2:
            raise Declined(f"barrier filter {channel.barrier!r} (Bio-Formats fails on it)")
        digits = [re.sub(r"[^0-9]", "", part) for part in parts[:2]]
        if "-" in channel.barrier and bool(digits[0]) != bool(digits[1]):  # live: only the other one is kept
            raise Declined(f"barrier filter {channel.barrier!r} has digits on one side of its - only")
        cuts = _cuts(channel.barrier)
        if cuts is not None and min(cuts) <= 0:
            raise Declined(f"barrier filter {channel.barrier!r} has a zero cut-in or cut-out")
    for c in range(min(size_c, len(illuminations))):
        if illuminations[c] is None:
            raise Declined("a channel light type Bio-Formats cannot map")
    for key in ("na", "magnification", "wd"):
        if objective.get(key) is not None:
            _number(objective[key], f"objective {key}")
    if date is not None:
        date = _date(date)
    if pixel_z == float("inf") or size_z == 1:
        pixel_z = 1.0
    if pixel_t == float("inf") or size_t == 1:
        pixel_t = 1.0
    if pixel_t != pixel_t or pixel_z != pixel_z:
        raise Declined("a Z or T step that is not a number")
    physical_xy = (positive(not_tiny(_number(width, "WidthConvertValue"), "WidthConvertValue"))
                   if width is not None else None,
                   positive(not_tiny(_number(height, "HeightConvertValue"), "HeightConvertValue"))
                   if height is not None else None)
    not_tiny(pixel_z, "the Z step")
    return OibImage(size=(size_x, size_y, size_z, size_c, size_t), order=order, pixel_type=PIXEL_TYPES[depth],
                    bits=bits, physical_xy=physical_xy, physical_z=positive(pixel_z), time_increment=pixel_t,
                    date=date, lasers=lasers, channels=active, illuminations=illuminations, planes=planes,
                    objective=objective)


def _date(text: str) -> str:
    """``'2012-07-26 15:13:35'`` as Bio-Formats stores it (quotes dropped, ISO with a T; checked live)."""
    text = text.replace("'", "")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", text):
        raise Declined(f"acquisition date {text!r} in a form not reproduced")
    try:
        dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Declined(f"acquisition date {text!r} is not a valid date") from None
    return text.replace(" ", "T")


def _cuts(barrier: str) -> tuple[float, float] | None:
    """The transmittance range of a barrier filter named ``BA505-525``: the digits either side of ``-``."""
    if "-" not in barrier:
        return None
    parts = barrier.split("-")
    digits = [re.sub(r"[^0-9]", "", part) for part in parts[:2]]
    if not digits[0] or not digits[1]:
        return None  # Bio-Formats' Double("") throws and is caught: no range
    return float(digits[0]), float(digits[1])


def document(image: OibImage) -> str:
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    lasers, detectors, filters, dichroics = [], [], [], []
    img = ox.El("Image", {"ID": "Image:0", "Name": "Series 1"})
    if image.date is not None:
        img.add(ox.El("AcquisitionDate", text=image.date))
    img.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    img.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    physical = (image.physical_xy[0], image.physical_xy[1], image.physical_z)
    pixels = img.add(ox.pixels(dimension_order=image.order, pixel_type=image.pixel_type, size=image.size,
                               big_endian=False, significant_bits=image.bits, physical=physical))
    pixels.attrs.update(TimeIncrement=ox.jdouble(image.time_increment), TimeIncrementUnit="s")
    for c in range(image.size[3]):
        attrs: dict[str, str] = {}
        if c < len(image.illuminations) and image.illuminations[c] is not None:
            attrs["IlluminationType"] = str(image.illuminations[c])
        if c >= len(image.channels):
            pixels.add(ox.channel(0, c, 1, **attrs))
            continue
        ch = image.channels[c]
        if ch.name is not None:
            attrs["Name"] = ch.name
        em, ex = positive(ch.em_wave), positive(ch.ex_wave)
        if em is not None:
            attrs.update(EmissionWavelength=ox.jdouble(em), EmissionWavelengthUnit="nm")
        if ex is not None:
            attrs.update(ExcitationWavelength=ox.jdouble(ex), ExcitationWavelengthUnit="nm")
        channel = ox.El("Channel", {"ID": f"Channel:0:{c}", "SamplesPerPixel": "1", **attrs})
        source = channel.add(ox.El("LightSourceSettings", {"ID": f"LightSource:0:{c}"}))
        if ex is not None:
            source.attrs.update(Wavelength=ox.jdouble(ex), WavelengthUnit="nm")
        channel.add(ox.El("DetectorSettings", {"ID": f"Detector:0:{c}"}))
        path = channel.add(ox.El("LightPath"))
        path.add(ox.El("DichroicRef", {"ID": f"Dichroic:0:{2 * c + 1}"}))
        path.add(ox.El("EmissionFilterRef", {"ID": f"Filter:0:{c}"}))
        pixels.add(channel)
        detector = {"ID": f"Detector:0:{c}", "Type": "PMT"}
        if ch.gain is not None:
            detector["Gain"] = ox.jdouble(ch.gain)
        if ch.voltage is not None:
            detector.update(Voltage=ox.jdouble(ch.voltage), VoltageUnit="V")
        detectors.append(ox.El("Detector", detector))
        laser = {"ID": f"LightSource:0:{c}", "LaserMedium": "Other", "Type": "Other"}
        wave = positive(image.lasers[c]) if c < len(image.lasers) else None
        if wave is not None:
            laser.update(Wavelength=ox.jdouble(wave), WavelengthUnit="nm")
        lasers.append(ox.El("Laser", laser))
        barrier = str(ch.barrier)
        flt = ox.El("Filter", {"ID": f"Filter:0:{c}", "Model": barrier})
        cuts = _cuts(barrier)
        if cuts is not None:
            rng = flt.add(ox.El("TransmittanceRange"))
            rng.attrs.update(CutIn=ox.jdouble(cuts[0]), CutInUnit="nm", CutOut=ox.jdouble(cuts[1]), CutOutUnit="nm")
        filters.append(flt)
        for index, model in ((2 * c, ch.emission_dm), (2 * c + 1, ch.excitation_dm)):
            dichroic = {"ID": f"Dichroic:0:{index}"}
            if model is not None:
                dichroic["Model"] = model
            dichroics.append(ox.El("Dichroic", dichroic))
    pixels.add(ox.El("MetadataOnly"))
    count = image.size[2] * image.size[3] * image.size[4]
    for p in range(count):
        z, c, t = ox.zct(p, image.order, image.size)
        plane = image.planes[p] if p < len(image.planes) else None
        delta = plane.delta_t if plane is not None and plane.delta_t is not None else image.time_increment * p
        attrs = {"TheZ": str(z), "TheC": str(c), "TheT": str(t), "DeltaT": ox.jdouble(delta), "DeltaTUnit": "s"}
        if plane is not None:
            ox.positions(attrs, (plane.x, plane.y, plane.z))
        pixels.add(ox.El("Plane", attrs))
    objective = {"ID": "Objective:0:0", "Correction": "Other", "Immersion": "Other"}
    obj = image.objective
    if obj.get("na") is not None:
        objective["LensNA"] = ox.jdouble(parse_double(obj["na"]))
    if obj.get("name") is not None:
        objective["Model"] = str(obj["name"])
    if obj.get("magnification") is not None:
        objective["NominalMagnification"] = ox.jdouble(parse_double(obj["magnification"]))
    if obj.get("wd") is not None:
        objective.update(WorkingDistance=ox.jdouble(parse_double(obj["wd"])), WorkingDistanceUnit="µm")
    for el in (*lasers, *detectors, ox.El("Objective", objective), *filters, *dichroics):
        instrument.add(el)
    return ox.document(instrument, img)


class OibEngine(OleEngine[OibImage]):
    """Single-folder OIB files, from their INI streams and plane TIFF headers; the rest to Bio-Formats."""

    name = NAME
    score = CLAIM
    suffixes = (".oib",)
    kind, label = "an OIB", "OIB"
    unreadable = (*OleEngine.unreadable, ZeroDivisionError)

    def read(self, path: str) -> OibImage:
        return read_oib(path)

    def render(self, found: OibImage) -> str:
        return document(found)

