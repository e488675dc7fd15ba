"""Nikon ND2: Bio-Formats' (``NativeND2Reader``) whole document for one proven kind, ``nd2``'s OME otherwise.

The claimed kind is the one of the corpus's ``nd2/cluster.nd2`` (its document equals the Bio-Formats 7.3.1
reference whole, ``tests/test_engines_nd2.py``; 112 edited copies equal live Bio-Formats',
``tests/test_differential_nd2.py``, among them copies cut to 1-3 time points, 1-10 Z planes and one
channel, deflated at zlib levels 0-9, with a time loop or a Z stack alone, and with the Z stack around the
time loop), widened from it:

- a modern (chunk-map) ND2 with 8/16-bit unsigned samples, one or more channels interleaved in each frame;
- uncompressed, in frames spaced so that Bio-Formats' guess of the channel count from that spacing keeps
  it, or deflated (lossless) with a first frame that inflates to one plane exactly;
- an experiment of a time loop and a Z stack in either order, or either loop alone, or an XY loop of 2-4
  stage positions around a Z stack or alone, or under a time loop around both (deflated frames only;
  ``tests/test_differential_nd2.py``'s multi-position copies), no other loop, whose counts (one or more
  each) multiply to the frame count (the LV ``dPosX`` values, which Bio-Formats counts as positions, only
  the XY loop's); without a Z stack no Z step anywhere (so no PhysicalSizeZ). Bio-Formats indexes the
  per-frame custom data as if time were outermost whatever the order (so does this engine: the frame of
  plane (z, t) is ``z + t * SizeZ``);
- one ``ImageMetadataSeqLV`` / ``ImageCalibrationLV`` / ``ImageMetadataLV`` block each, the frame chunks
  followed by the ``CustomData`` blocks (``AcqTimesCache``, ``X``, ``Y``, ``Z``), a text-info block naming
  every channel and giving the NA, XML channel colours, and no XML key that would move Bio-Formats off the
  path below (pinhole, gain, binning, modality, temperature, lamp voltage, objective keys, ROIs …).

Every other ND2 is declined (claim 0: ``auto`` asks Bio-Formats) and, when forced or rescued, gets ``nd2``'s
own OME mapping. Raw multi-position frames (Bio-Formats weighs their spacing against a one-channel plane and
reads two channels as three), more positions, other orders of an XY loop, other loops and lossy compression
are not proven.

Bio-Formats' rules this engine reproduces for that kind (learnt from ``NativeND2Reader``/``ND2Handler``):

- Image name "<file name> (series 1)", no AcquisitionDate, no NominalMagnification (it would write only a
  CalibratedMagnification, from no source here), LensNA from the text info's "Numerical Aperture", no
  excitation wavelength (only an XML/text "Excitation wavelength" key gives one); emission wavelengths
  from the LV ``EmWavelength`` values, channel names from the text info's "Name:" lines (equal to the
  XML ``Name`` elements, or the file is declined), physical X = Y = ``dCalibration``, Z = ``dZStep``
  (none where the value is not positive or is 1e-6; below 1e-6 declined, Bio-Formats writes nm).
- Plane DeltaT: the ``CustomData|AcqTimesCache`` doubles (one per frame, ms) divided by 1000 and indexed,
  for plane (Z=z, T=t), by ``z * SizeC + t * SizeZ`` (Bio-Formats applies ``getIndex(z, 0, 0)`` of the
  channel-split plane order to a per-frame list); an index past the frame count leaves DeltaT unset.
  This is wrong (plane z=1 gets frame 2's time, the last planes get none) but it is what users compare
  against, so it is reproduced; ``nd2`` reads the right per-frame times. With one channel (a time per
  plane) it is the frame's; with one time point (as many frame times as Z planes) it is ``z``.
- Plane positions: ``N`` doubles (``N`` = frame count) at ``8 * ((nameLength + dataLength) // 8 - N)``
  bytes past the name of the first ``CustomData|Z`` block and the last ``CustomData|X`` / ``|Y`` blocks,
  indexed by frame ``z + t * SizeZ``. Z there is the ``Ti ZDrive`` stage reading (3916.725 µm in the
  corpus file) where ``nd2`` reports the frame metadata's stage Z (3912.3375 µm): the 4.39 µm is that
  difference of source, not a unit or offset error.
- Several stage positions: one Image per position, "<file name> (series i)" (the LV ``pPosName`` is not
  read), each with the same channels, settings and sizes; series i's plane (z, t) is frame
  ``z + (t * positions + i) * SizeZ``: its position that frame's, its DeltaT that frame's time, except where
  there are as many frame times as planes in one series (as many positions as channels): then plane n gets
  frame n's time, whatever the series (no "one series per time point" re-reading with several positions);
  ExposureTime index ``i * SizeC + c``, ``c`` where there are from SizeC to fewer than SizeC x positions
  values, ``0`` where there is one.
- Plane ExposureTime: the LV ``dExposureTime`` values (> 0, ms / 1000), the first for every plane when
  there is one, else the channel's.
- Instrument: one Detector (Type Other, Model the XML's last ``CameraUniqueName``, not the text's "Camera
  Name"), the Objective's Model the LV blocks' last ``sObjective`` and CalibratedMagnification their last
  positive ``dObjectiveMag``; the image's ObjectiveSettings RefractiveIndex from the text's "Refractive
  Index" (none where that has no digit); each channel a DetectorSettings pointing at that detector.
- Channel Color: the XML ``<X>ChannelColor`` of the channel whose ``<X>ChannelDyeName`` is the channel's name
  (0xBBGGRR as signed RGBA; black left out), white for a channel past the emission wavelengths. The XML
  is taken as ND2Handler sees it: from the first byte after the block name's ``!`` or its last NUL, with
  control and undefined ``(char)`` bytes blanked, and the last list element entered (``LoopSize`` …) never
  forgotten (ND2Handler's ``endElement`` is an overload SAX does not call).
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from metaextract import ome
from metaextract.engines.base import CLAIM, Claim, ContextEngine, ExtractionError, FileContext, UnsupportedFormatError
from metaextract.engines.ole.storage import JavaNumberError, parse_double, parse_int
from metaextract.ome import writer as ox

NAME = "nd2"
RESCUE = 50
#: ND2 files start with the chunk magic 0x0ABECEDA (little-endian), legacy ones with a JPEG 2000 box.
CHUNK_MAGIC = b"\xda\xce\xbe\x0a"
MAGIC = (CHUNK_MAGIC, b"\x00\x00\x00\x0cjP  ")
MAP_SIGNATURE = b"ND2 CHUNK MAP SIGNATURE 0000001"
WHITE = -1  #: opaque white as OME's signed RGBA integer
#: XML element names on which ND2Handler acts in ways this engine does not reproduce (sizes, positions,
#: exposure times, pinhole, modality, binning, temperature, objective, ROIs …)
XML_UNSAFE = {
    "dPosX", "dPosY", "dPosZ", "pPosName", "CalibrationSeq", "MetadataSeq", "uiSequenceCount", "uiCompCount",
    "iXFields", "iYFields", "ExposureTime", "Exposure", "uiWidthBytes", "uiMaxDst", "VirtualComponents",
    "dPinholeRadius", "HorizontalLine", "VerticalLine", "Text", "Modality", "Binning", "Temperature", "Line",
    "Power", "sObjective", "wsObjectiveName", "sOptics",
}
XML_UNSAFE_SUFFIX = ("dObjectiveNA", "dCalibration", "dZStep", "uiCount", "uiBpcSignificant", "dCompressionParam",
                     "Gain", "dLampVoltage", "dObjectiveMag", "dRefractIndex1")
#: the experiments proven: a time loop and a Z stack in either order, or either alone
PROVEN_LOOPS = {("TimeLoop", "ZStackLoop"), ("ZStackLoop", "TimeLoop"), ("ZStackLoop",), ("TimeLoop",),
                ("XYPosLoop", "ZStackLoop"), ("XYPosLoop",), ("TimeLoop", "XYPosLoop", "ZStackLoop")}
#: the most stage positions (series) proven (the differential test's copies have 2-4)
MAX_POSITIONS = 4
#: list elements after which ND2Handler reads every valued element as that list's item (it never forgets the
#: last list it entered: its ``endElement`` is an overload SAX does not call)
XML_LISTS = ("LoopState", "LoopSize", "pPosName")


def is_nd2(head: bytes) -> bool:
    return head.startswith(MAGIC)


@dataclass
class Chunk:
    name: str
    position: int  # of the chunk header (magic)
    name_length: int
    data_length: int

    @property
    def name_start(self) -> int:
        return self.position + 16

    @property
    def data_end(self) -> int:
        return self.name_start + self.name_length + self.data_length


@dataclass
class Proven:
    """Everything the Bio-Formats-like document needs, for a file of the claimed kind."""

    file_name: str
    size: tuple[int, int, int, int, int]  # X, Y, Z, C, T
    pixel_type: str
    significant_bits: int
    calibration: float | None  #: µm, None: no physical size X/Y
    z_step: float | None  #: µm, None: no physical size Z
    channel_names: list[str]
    emission: list[float]
    exposure: list[float]  # seconds
    lens_na: float
    times: list[float]  # seconds, one per frame
    stage: dict[str, list[float]] = field(default_factory=dict)  # X/Y/Z, µm, one per frame
    camera_model: str | None = None  #: the detector's model (the XML's last ``CameraUniqueName``)
    colors: list[int | None] = field(default_factory=list)  #: per channel, OME's signed RGBA (None: no colour)
    objective_model: str | None = None  #: the LV blocks' last ``sObjective``
    magnification: float | None = None  #: the LV blocks' last positive ``dObjectiveMag``
    refractive_index: float | None = None  #: the text info's "Refractive Index"
    series: int = 1  #: stage positions (an XY loop around the rest): one Image each


@dataclass
class HandlerXml:
    """What ND2Handler takes from the ``CustomDataVar`` XML blocks that reaches the document."""

    names: list[str] = field(default_factory=list)  #: ``Name`` values, in order
    camera_model: str | None = None
    colors: dict[str, int] = field(default_factory=dict)  #: channel (dye) name -> Nikon's 0xBBGGRR colour


class Declined(Exception):
    """The file is an ND2 this engine leaves to Bio-Formats (the message says why)."""


def _read_chunks(fh: Any, size: int) -> list[Chunk]:
    if size < 40 + 16:
        raise Declined("too short for a chunk map")
    fh.seek(size - 40)
    tail = fh.read(40)
    if not tail.startswith(MAP_SIGNATURE):
        raise Declined("no chunk map")
    (map_pos,) = struct.unpack_from("<q", tail, 32)
    if not 0 <= map_pos < size - 16:
        raise Declined("chunk map position out of the file")
    fh.seek(map_pos)
    header = fh.read(16)
    magic, name_length, data_length = struct.unpack("<4sIQ", header)
    if magic != CHUNK_MAGIC:
        raise Declined("chunk map header without the chunk magic")
    body = fh.read(name_length + data_length)[name_length:]
    entries: list[tuple[str, int, int]] = []
    i = 0
    while i < len(body):
        end = body.find(b"!", i)
        if end < 0:
            break
        name = body[i:end + 1]
        if name.startswith(MAP_SIGNATURE):
            break
        if end + 17 > len(body):
            raise Declined("chunk map truncated")
        pos, length = struct.unpack_from("<QQ", body, end + 1)
        entries.append((name.decode("latin-1"), pos, length))
        i = end + 17
    chunks = []
    for name, pos, _length in sorted(entries, key=lambda e: e[1]):
        if pos + 16 > size:
            raise Declined(f"chunk {name} past the end of the file")
        fh.seek(pos)
        magic, nl, dl = struct.unpack("<4sIQ", fh.read(16))
        if magic != CHUNK_MAGIC:
            raise Declined(f"chunk {name} without the chunk magic")
        if pos + 16 + nl + dl > size:
            raise Declined(f"chunk {name} runs past the end of the file")
        chunks.append(Chunk(name, pos, nl, dl))
    return chunks


def _doubles(fh: Any, offset: int, count: int, end: int) -> list[float]:
    if offset < 0 or offset + 8 * count > end:
        raise Declined("custom data block too short for the frame count")
    fh.seek(offset)
    return list(struct.unpack(f"<{count}d", fh.read(8 * count)))


def _walk(node: Any) -> Any:
    """(name, value) of every leaf of ``nd2``'s decoded LV metadata, in stored order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from _walk(value)
            else:
                yield str(key), value
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _text_value(text: str, wanted: str) -> str | None:
    """The value Bio-Formats' space-split text parse (``NativeND2Reader.parseText``) gives ``wanted``."""
    clean = "".join(" " if (ord(ch) < 32 or 127 <= ord(ch) < 160) else ch for ch in text)
    tokens = clean.split(" ")
    while tokens and tokens[-1] == "":
        tokens.pop()  # Java's String.split drops trailing empty strings
    n, i, found = len(tokens), 0, None
    while i < n:
        key = tokens[i]
        i += 1
        while (not key or not key.endswith(":")) and "_" not in key and i < n:
            key += " " + tokens[i]
            i += 1
            if i >= n:
                break
        if i >= n:
            break
        value = tokens[i]
        i += 1
        while i < n and tokens[i].strip():
            value += " " + tokens[i]
            i += 1
        i += 1
        key = key.strip()
        if not key:
            raise Declined("text info that Bio-Formats' parser would fail on")
        if key[:-1] == wanted:
            found = value.strip()
    return found


def _spacing_kept(available: int, plane: int, frames: int) -> bool:
    """Whether NativeND2Reader keeps SizeC, SizeY and the type for ``available`` bytes from the first frame to
    the next (the file's end for one frame): not fewer than a plane, after it drops a 4 KiB block it takes
    for appended zeros, and (for several frames) not more than three planes."""
    if available < plane:
        return False
    if available % plane and (available - 4096) % plane == 0:
        available -= 4096
    return plane <= available and (frames == 1 or available <= 3 * plane)


def _inflated_size(fh: Any, frame: Chunk, plane: int) -> int | None:
    """The size of the zlib stream after a frame's 8-byte time stamp once inflated (at most ``plane + 1``
    bytes are made), or None where it is not one whole zlib stream."""
    fh.seek(frame.name_start + frame.name_length + 8)
    inflater = zlib.decompressobj()
    try:
        size = len(inflater.decompress(fh.read(max(frame.data_length - 8, 0)), plane + 1))
    except zlib.error:
        return None
    return size if inflater.eof or size > plane else None


def _text_number(value: str | None) -> float | None:
    """``DataTools.parseDouble`` of a text info value: None for no value and for one without a digit (checked
    live: "x" gives no refractive index); a plain decimal as Java parses it; anything else declined."""
    if value is None or (not any(ch.isdigit() for ch in value) and "NaN" not in value and "Infinity" not in value):
        return None
    try:
        return parse_double(value)
    except JavaNumberError:
        raise Declined(f"a text info number that is not plain: {value[:20]!r}") from None


def _unique(values: list[float], tolerance: float | None) -> int:
    seen: list[float] = []
    count = 0
    for v in values:
        if v not in seen and (tolerance is None or all(abs(v - s) > tolerance for s in seen)):
            count += 1
        seen.append(v)
    return count


def _physical(value: float) -> float | None:
    """A physical size as Bio-Formats 7.3.1 writes it (live, on edited copies of the corpus file): none for
    a value that is not positive, and for 1e-6 µm; one below that it writes in nm (not reproduced: declined)."""
    if value <= 0 or value == 1e-6:
        return None
    if value < 1e-6:
        raise Declined("a physical size below 1e-6 µm (Bio-Formats writes it in nm)")
    return value

#: NativeND2Reader blanks each byte of a block whose ``(char)`` cast is an ISO control or undefined character
#: (a negative byte becomes U+FF80..U+FFFF, some of them unassigned) before it takes the XML
_AS_JAVA_CHARS = bytes(
    0x20 if b < 0x20 or b == 0x7F or (b >= 0x80 and unicodedata.category(chr(0xFF00 | b)) == "Cn") else b
    for b in range(256))


def _xml_start(data: bytes) -> int | None:
    """Where NativeND2Reader takes a block's XML from (``data``: the block from the 13th byte of its name):
    right after the name's ``!`` or the last NUL byte, and only if ``<?xml`` starts there."""
    zero = data.rfind(b"\x00")
    off = zero + 1 if zero >= 0 else data.find(b"!") + 1
    return off if data.startswith(b"<?xml", off) else None


def _handler_xml(fh: Any, chunks: list[Chunk]) -> HandlerXml:
    """ND2Handler's reading of the XML blocks (``Image*`` and ``CustomDataVar``), in file order, for what
    reaches the document; :class:`Declined` where it would act in a way not reproduced."""
    found = HandlerXml()
    last_list: str | None = None
    colors: dict[str, int] = {}
    dyes: dict[str, str] = {}
    for chunk in chunks:
        if not chunk.name.startswith(("CustomDataVa", "Image")) or chunk.name.startswith(
                ("ImageDataSeq", "ImageTextInfo", "ImageAttributes")):
            continue
        fh.seek(chunk.name_start + 12)
        data = fh.read(chunk.name_length - 12 + chunk.data_length)
        if b"<?xml" not in data:
            continue
        start = _xml_start(data)
        if start is None or not chunk.name.startswith("CustomDataVa"):
            raise Declined(f"XML in {chunk.name} that is not where the proven kind has it")
        text = data[start:].translate(_AS_JAVA_CHARS)
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            raise Declined(f"XML of {chunk.name} not UTF-8 once Bio-Formats has blanked bytes") from None
        try:  # no DTD, no entity is ever expanded
            root = ome.parse(text)
        except ome.UnsafeXMLError:
            raise Declined(f"XML of {chunk.name} declares a DTD or entities") from None
        except etree.XMLSyntaxError:
            raise Declined(f"XML of {chunk.name} not well-formed") from None
        for el in root.iter():
            tag, value = str(el.tag), el.get("value")
            if el.get("runtype") in ("CLxListVariant", "RLxIRect"):
                last_list = tag
            if tag in XML_UNSAFE or tag.endswith(XML_UNSAFE_SUFFIX) or tag.startswith(("TextInfo", "item_")):
                raise Declined(f"XML key {tag}")
            if last_list in XML_LISTS and value is not None:
                continue  # read as an item of that list
            if tag.endswith("ChannelColor"):
                with contextlib.suppress(JavaNumberError):  # Bio-Formats logs NumberFormatException, goes on
                    colors[tag[:tag.index("Channel")]] = parse_int(value)
            elif tag.endswith("DyeName"):
                if value is None:
                    raise Declined(f"XML key {tag} without a value")
                dyes[tag[:max(tag.find("Channel"), 0)]] = value
            elif value is not None and tag == "Name":
                found.names.append(value)
            elif value is not None and tag == "CameraUniqueName":
                found.camera_model = value
    for name, color in colors.items():
        channel = dyes.get(name, name)
        if found.colors.get(channel, color) != color:
            raise Declined("two channel colours for one dye name (Bio-Formats' choice is a hash order)")
        found.colors[channel] = color
    return found


def _color(nikon: int) -> int | None:
    """A Nikon colour (0xBBGGRR) as OME's signed RGBA integer, None for black (which Bio-Formats leaves out)."""
    red, green, blue = nikon & 0xFF, (nikon >> 8) & 0xFF, (nikon >> 16) & 0xFF
    if not red and not green and not blue:
        return None
    rgba = (red << 24) | (green << 16) | (blue << 8) | 0xFF
    return rgba - (1 << 32) if rgba >= 1 << 31 else rgba


def inspect_nd2(path: str) -> Proven:
    """Read ``path`` and check it is of the claimed kind (:class:`Declined` says why not)."""
    import nd2

    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if fh.read(4) != CHUNK_MAGIC:
            raise Declined("not a modern (chunked) ND2")
        chunks = _read_chunks(fh, size)
        frames = [c for c in chunks if c.name.startswith("ImageDataSeq|")]
        if not frames:
            raise Declined("no frames")
        lv = [c for c in chunks if any(k in c.name for k in ("MetadataLV", "CalibrationLV", "MetadataSeqLV"))]
        if sorted(c.name.split("|")[0].rstrip("!") for c in lv) != [
                "ImageCalibrationLV", "ImageMetadataLV", "ImageMetadataSeqLV"]:
            raise Declined("not one metadata, one metadata-sequence and one calibration block")
        last_frame = frames[-1].position
        custom = [c for c in chunks if c.name.startswith(("CustomData|", "ImageTextInfo"))]
        if any(c.position < last_frame for c in custom) or any(c.position > frames[0].position for c in lv):
            raise Declined("blocks not in the order of the proven kind")
        with nd2.ND2File(path) as f:
            attrs = f.attributes
            loops = [(loop.type, loop.count) for loop in f.experiment]
            sizes = dict(f.sizes)
            meta = f.unstructured_metadata(strip_prefix=False)
            if attrs.compressionType not in (None, "lossless"):
                raise Declined(f"{attrs.compressionType} compressed frames")
        n = len(frames)
        if (attrs.bitsPerComponentInMemory not in (8, 16) or attrs.pixelDataType != "unsigned"
                or attrs.sequenceCount != n or attrs.componentCount < 1
                or attrs.channelCount != attrs.componentCount):
            raise Declined("samples of a kind not proven (bits, type, channel count)")
        types = tuple(t for t, _ in loops)
        if types not in PROVEN_LOOPS:
            raise Declined(f"experiment {list(types)} is not a time loop and a Z stack, nor one of them")
        counts = dict(loops)
        size_t, size_z, size_c = counts.get("TimeLoop", 1), counts.get("ZStackLoop", 1), attrs.componentCount
        size_s = counts.get("XYPosLoop", 1)
        counted = (sizes.get("T", 1), sizes.get("Z", 1), sizes.get("P", 1))  # nd2 leaves out an axis of one
        if min(size_t, size_z, size_s) < 1 or size_t * size_z * size_s != n or counted != (size_t, size_z, size_s):
            raise Declined("loop counts do not cover the frames")
        if size_s > MAX_POSITIONS:
            raise Declined("more stage positions than proven")
        if size_s > 1 and attrs.compressionType != "lossless":
            # Bio-Formats weighs raw frames' spacing against a one-channel plane there (two channels read as 3)
            raise Declined("raw frames of several stage positions")
        width = attrs.widthPx
        if width is None:
            raise Declined("no frame width")
        # the bytes from the first frame to the next against the plane size: Bio-Formats re-guesses SizeC, the
        # type and SizeY from them (from the first frame's inflated size where it inflates: then that must be
        # one plane exactly)
        plane = width * attrs.heightPx * size_c * attrs.bitsPerComponentInMemory // 8
        if attrs.compressionType == "lossless":
            if _inflated_size(fh, frames[0], plane) != plane:
                raise Declined("a first frame that does not inflate to one plane")
        elif not _spacing_kept(frames[1].position - frames[0].position if n > 1 else size - frames[0].position - 16,
                               plane, n):
            raise Declined("frame chunks spaced so that Bio-Formats would guess other sizes")

        exposure: list[float] = []
        emission: list[float] = []
        objective_model: str | None = None
        magnification: float | None = None
        z_step: float | None = None
        lv_positions = 0
        for chunk in lv:
            for key, value in _walk(meta.get(chunk.name.rstrip("!"), {})):
                if key == "dExposureTime" and isinstance(value, float) and value > 0:
                    exposure.append(value / 1000)
                elif key == "EmWavelength":
                    emission.append(float(value))
                elif key == "dZStep":
                    z_step = float(value)
                elif key == "dPosX":
                    lv_positions += 1
                elif key == "sObjective":
                    objective_model = str(value)
                elif key == "dObjectiveMag" and isinstance(value, float) and value > 0:
                    magnification = value
        if lv_positions != (size_s if size_s > 1 else 0):
            raise Declined("LV stage positions other than the XY loop's (Bio-Formats would count them)")
        calibration_block = meta.get(next(c.name for c in lv if "CalibrationLV" in c.name).rstrip("!"), {})
        first = next(_walk(calibration_block), None)
        if first is None or first[0] != "dCalibration" or not math.isfinite(float(first[1])):
            raise Declined("calibration block without a leading dCalibration")
        if (z_step is None and "ZStackLoop" in types) or (z_step is not None and not math.isfinite(z_step)):
            raise Declined("no Z step")
        calibration = _physical(float(first[1]))
        z_size = None if z_step is None else _physical(z_step)
        if not exposure:
            raise Declined("no exposure time")

        # the text info: channel names ("Name:" lines) and the NA
        info = meta.get("ImageTextInfoLV", {})
        text = "".join(str(v) + "\n" for k, v in _walk(info) if k.startswith("TextInfoItem"))
        line_keys = {line.partition(":")[0].strip().lower() for line in text.split("\n") if ":" in line}
        if z_step is None and "Step" in text:
            raise Declined("a Z step in the text info only (Bio-Formats would take it)")
        if text.lstrip().startswith("<") or "Line:" in text or line_keys & {
                "line", "emission wavelength", "excitation wavelength", "exposure"}:
            raise Declined("text info with keys of a kind not proven (wavelengths, exposure, lines)")
        names = []
        for line in text.split("\n"):
            key, sep, value = line.partition(":")
            if sep and key.strip() == "Name":
                names.append(value.strip())
        for key, expected in (("Time Loop", size_t), ("Z Stack Loop", size_z), ("Number of Picture Planes", size_c)):
            for line in text.split("\n"):
                k, sep, v = line.partition(":")
                if sep and k.strip() == key and v.strip() != str(expected):
                    raise Declined(f"text info {key} {v.strip()} disagrees with the experiment")
        na_text = _text_value(text, "Numerical Aperture")
        try:
            lens_na = float(na_text) if na_text is not None else math.nan
        except ValueError:
            lens_na = math.nan
        if not math.isfinite(lens_na):
            raise Declined("no numerical aperture in the text info")
        refractive_index = _text_number(_text_value(text, "Refractive Index"))

        xml = _handler_xml(fh, chunks)
        if xml.camera_model == "" or objective_model == "":
            raise Declined("an empty camera or objective model (Bio-Formats' handling of it is not proven)")
        if len(names) < size_c or (len(xml.names) >= size_c and xml.names[:size_c] != names[:size_c]):
            raise Declined("channel names missing or not the same in the XML and the text info")

        # the custom data: times and stage positions, placed as Bio-Formats reads them
        times_block = next((c for c in chunks if c.name.startswith("CustomData|AcqTimesCache")), None)
        if times_block is None:
            raise Declined("no acquisition times")
        times = [v / 1000 for v in _doubles(fh, times_block.data_end - 8 * n, n, times_block.data_end)]
        stage: dict[str, list[float]] = {}
        for axis in "XYZ":
            blocks = [c for c in chunks if c.name[:12] == f"CustomData|{axis}"]
            if not blocks:
                raise Declined(f"no stage {axis} data")
            block = blocks[0] if axis == "Z" else blocks[-1]
            offset = block.name_start + 8 * ((block.name_length + block.data_length) // 8 - n)
            stage[axis] = _doubles(fh, offset, n, block.data_end)
    if size_t > 1 and size_s == 1 and ((_unique(stage["X"], None) == size_t and _unique(stage["Y"], None) == size_t)
                       or _unique(stage["Z"], 0.05) == size_t):
        raise Declined("stage positions that Bio-Formats would read as one series per time point")
    return Proven(
        file_name=os.path.basename(path),
        size=(width, attrs.heightPx, size_z, size_c, size_t),
        pixel_type=f"uint{attrs.bitsPerComponentInMemory}",
        significant_bits=attrs.bitsPerComponentSignificant,
        calibration=calibration, z_step=z_size, channel_names=names[:size_c], emission=emission,
        exposure=exposure, lens_na=lens_na, times=times, stage=stage, camera_model=xml.camera_model,
        colors=_channel_colors(xml.colors, names[:size_c], emission), objective_model=objective_model,
        magnification=magnification, refractive_index=refractive_index, series=size_s,
    )


def _channel_colors(colors: dict[str, int], names: list[str], emission: list[float]) -> list[int | None]:
    """Each channel's colour: the XML's colour of its name; white for a channel past the emission
    wavelengths when there are some (Bio-Formats sets that after the colour, so it wins)."""
    if not colors:
        raise Declined("no XML channel colours (the LV colours are not reproduced)")
    out = [_color(colors[name]) if name in colors else None for name in names]
    if emission:
        out = [WHITE if c >= len(emission) else color for c, color in enumerate(out)]
    return out


def _stamp_index(z: int, t: int, size: tuple[int, int, int, int, int], times: int) -> int:
    """Which of ``times`` frame times Bio-Formats gives plane (z, t) (see the module docstring): with a time
    per plane (one channel) the plane's, with one per Z plane (one time point) ``z``, else its own index."""
    _, _, size_z, size_c, size_t = size
    if times == size_z * size_c * size_t:
        return z + t * size_z
    if times == size_z:
        return z
    return z * size_c + t * size_z


def _series_stamp(z: int, c: int, t: int, series: int, found: Proven) -> int:
    """Which frame time Bio-Formats gives plane (z, c) of ``series`` of several (one time point): the
    plane's own index where there are as many frame times as planes in one series (as many positions as
    channels), else its frame ``z + series * SizeZ``."""
    _, _, size_z, size_c, size_t = found.size
    if len(found.times) == size_z * size_c * size_t:
        return c + size_c * (z + size_z * t)
    return z + (t * found.series + series) * size_z


def _series_exposure(c: int, series: int, found: Proven) -> int:
    """Which exposure time Bio-Formats gives channel ``c`` of ``series``: the channel's where there are at
    least as many as channels but fewer than channels x series, the first where there is one, else
    ``series * SizeC + c``."""
    size_c, count = found.size[3], len(found.exposure)
    if size_c <= count < size_c * found.series:
        return c
    return 0 if count == 1 else series * size_c + c


def document(found: Proven) -> str:
    """The OME-XML Bio-Formats 7.3.1 writes for a file of the claimed kind (the whole document)."""
    instrument = ox.El("Instrument", {"ID": "Instrument:0"})
    detector = instrument.add(ox.El("Detector", {"ID": "Detector:0:0", "Type": "Other"}))
    if found.camera_model is not None:
        detector.attrs["Model"] = ox.clean(found.camera_model)
    objective = instrument.add(ox.El("Objective", {
        "Correction": "Other", "ID": "Objective:0:0", "Immersion": "Other", "LensNA": ox.jdouble(found.lens_na)}))
    if found.magnification is not None:
        objective.attrs["CalibratedMagnification"] = ox.jdouble(found.magnification)
    if found.objective_model is not None:
        objective.attrs["Model"] = ox.clean(found.objective_model)
    images = [_image(found, i) for i in range(found.series)]
    return ox.document(instrument, *images)


def _image(found: Proven, series: int) -> ox.El:
    """Image ``series`` (one per stage position; the only one without an XY loop)."""
    _, _, size_z, size_c, size_t = found.size
    width = len(str(found.series))
    image = ox.El("Image", {"ID": f"Image:{series}", "Name": f"{found.file_name} (series {series + 1:0{width}d})"})
    image.add(ox.El("InstrumentRef", {"ID": "Instrument:0"}))
    settings = image.add(ox.El("ObjectiveSettings", {"ID": "Objective:0:0"}))
    if found.refractive_index is not None:
        settings.attrs["RefractiveIndex"] = ox.jdouble(found.refractive_index)
    pixels = image.add(ox.pixels(
        index=series, pixel_type=found.pixel_type, size=found.size, big_endian=False,
        significant_bits=found.significant_bits, physical=(found.calibration, found.calibration, found.z_step)))
    for c in range(size_c):
        attrs = {"Name": found.channel_names[c]}
        if c < len(found.emission) and found.emission[c] > 0:
            attrs.update(EmissionWavelength=ox.jdouble(found.emission[c]), EmissionWavelengthUnit="nm")
        if found.colors[c] is not None:
            attrs["Color"] = str(found.colors[c])
        channel = pixels.add(ox.channel(series, c, 1, **attrs))
        channel.children.insert(0, ox.El("DetectorSettings", {"ID": "Detector:0:0"}))
    pixels.add(ox.El("MetadataOnly"))
    n = len(found.times)
    for t in range(size_t):
        for z in range(size_z):
            for c in range(size_c):
                plane = {"TheC": str(c), "TheT": str(t), "TheZ": str(z)}
                several = found.series > 1
                stamp = _series_stamp(z, c, t, series, found) if several else _stamp_index(z, t, found.size, n)
                if stamp < n:
                    plane.update(DeltaT=ox.jdouble(found.times[stamp]), DeltaTUnit="s")
                index = _series_exposure(c, series, found) if several else 0 if len(found.exposure) == 1 else c
                if index < len(found.exposure):
                    plane.update(ExposureTime=ox.jdouble(found.exposure[index]), ExposureTimeUnit="s")
                frame = z + (t * found.series + series) * size_z
                ox.positions(plane, (found.stage[axis][frame] for axis in "XYZ"), unit=ox.MICRON)
                pixels.add(ox.El("Plane", plane))
    return image


class Nd2Engine(ContextEngine[Proven]):
    """ND2 of the proven kind as Bio-Formats reads it; others through ``nd2``'s OME (rescue/forced only)."""

    name = NAME
    suffixes = None
    magic = CHUNK_MAGIC  #: ``claim`` is 0 for any other file
    #: what it claims, it answers with Bio-Formats' whole document (the corpus file and the differential
    #: test's edited variants, tests/test_differential_nd2.py); every other ND2 it declines
    whole_document_in_auto = True

    def version(self) -> str:
        import nd2

        return str(nd2.__version__)

    def claim_in(self, ctx: FileContext) -> Claim[Proven]:
        if not ctx.head.startswith(CHUNK_MAGIC):
            return Claim(0)
        try:
            found = inspect_nd2(ctx.path)
        except Exception:  # noqa: BLE001 - Declined, or a file this engine cannot parse: not claimed
            return Claim(0)
        return Claim(CLAIM, found)

    def rescues(self, path: str, head: bytes) -> int:
        return RESCUE if is_nd2(head) else 0

    def rescue(self, path: str) -> tuple[str, list[str]]:
        xml, proven = self._read(path)
        if proven:
            return xml, ["ND2 of the kind proven against Bio-Formats, read by its rules"]
        return xml, ["ND2 metadata read by the nd2 package (its OME mapping, not Bio-Formats')"]

    def extract_in(self, ctx: FileContext, found: Proven | None = None) -> str:
        return self._read(ctx.path, found)[0]

    def _read(self, path: str, found: Proven | None = None) -> tuple[str, bool]:
        """The document and whether it is Bio-Formats' (the proven kind) rather than ``nd2``'s mapping;
        ``found``: what ``claim_in`` read."""
        if found is not None:
            return document(found), True
        with open(path, "rb") as fh:
            head = fh.read(12)
        if not is_nd2(head):
            raise UnsupportedFormatError(f"not recognised as ND2 (first 4 bytes: {head[:4]!r})")
        try:
            return document(inspect_nd2(path)), True
        except Exception:  # noqa: BLE001, S110 - Declined or unparsable: nd2's own mapping below says more
            pass
        try:
            import nd2
        except ImportError:  # pragma: no cover - a declared dependency
            raise ExtractionError("the nd2 engine needs the 'nd2' package (pip install nd2)") from None
        try:
            with nd2.ND2File(path) as f:
                return str(f.ome_metadata().to_xml()), False
        except Exception as exc:  # noqa: BLE001 - nd2 raises many kinds; one line says which
            message = " ".join(str(exc).split())[:200]
            raise ExtractionError(f"nd2 cannot read the file: {type(exc).__name__}: {message}") from None
