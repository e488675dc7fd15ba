"""The instrument and settings Bio-Formats' ``ZeissLSMReader`` stores from an LSM's scan information.

``ZeissLSMReader.populateMetadataStore`` walks the scan-information sub-blocks (recording, lasers, tracks,
detection and illumination channels, beam splitters, data channels) twice — the acquired blocks in file
order, then the others — and each block writes into the store at a running index (``nextLaser``,
``nextDetector``, ``nextIllumChannel`` …). What lands where depends on that order (an illumination
channel's wavelength goes to the laser of its running index, which a later, not-acquired laser block may
fill), so :func:`replay` replays the same walk over the blocks :func:`..zeiss_mm.scan_blocks` read and
returns what the store then holds: experimenter, objective, lasers, detectors, dichroics, the image
description, the time increment and the first channel's pinhole and detector settings.

Enumeration values (objective correction and immersion, laser medium and type) are chosen as ome-xml's
enumeration handlers choose them: the first pattern, in their ``Hashtable``'s iteration order, that the
lower-cased value fully matches; otherwise ``Other``. That order is Java's, so it is computed here from
``String.hashCode`` (:func:`hashtable_order`): "ECPlan-Neofluar" is ``Fluar``, as Bio-Formats says, not
``PlanNeofluar``.

What the replay does not model raises :class:`Unproven` (the file is then left to Bio-Formats): emission
filters (the filter type and transmittance parsing), a detection channel without a name (a detector with
no ID), a data channel without a name (Bio-Formats throws), illumination names that are neither a plain
number nor free of digits, and non-ASCII or control characters in enumerated text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from metaextract.ome import writer as ox

RECORDING, LASER, TRACK, DETECTION, ILLUMINATION, BEAM_SPLITTER, DATA = (
    0x10000000, 0x50000000, 0x40000000, 0x70000000, 0x90000000, 0xB0000000, 0xD0000000)
#: Each kind's "Acquire" entry (a block without one, or with a non-number, is acquired).
_ACQUIRE = {LASER: 0x50000002, TRACK: 0x40000006, DETECTION: 0x7000000B, ILLUMINATION: 0x90000004,
            DATA: 0xD0000017}
_DESCRIPTION, _OBJECTIVE, _ZOOM, _USER = 0x10000002, 0x10000004, 0x10000016, 0x10000047
_LASER_NAME, _TIME_BETWEEN_STACKS = 0x50000001, 0x4000000B
_GAIN, _AMPLIFIER_GAIN, _PINHOLE, _FILTER, _CHANNEL_NAME = 0x70000003, 0x70000005, 0x70000009, 0x70000010, 0x70000014
_ILLUM_NAME, _WAVELENGTH, _DATA_NAME = 0x90000001, 0x90000003, 0xD0000001
_SPLITTER_FILTER, _SPLITTER_FILTER_SET = 0xB0000002, 0xB0000003
_PLAIN_NUMBER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")
_PRINTABLE = re.compile(r"[ -~]*")

#: ome-xml's enumeration handlers (``ome.xml.model.enums.handlers``): pattern -> value, in insertion order.
CORRECTION = (
    (r"^\s*UV\s*", "UV"), (r"^\s*PlanApo\s*", "PlanApo"), (r"^\s*PlanFluor\s*", "PlanFluor"),
    (r"^\s*SuperFluor\s*", "SuperFluor"), (r"^\s*VioletCorrected\s*", "VioletCorrected"), (r"^\s*Achro\s*", "Achro"),
    (r"^\s*Achromat\s*", "Achromat"), (r"^\s*Fluor\s*", "Fluor"), (r"^\s*Fl\s*", "Fl"), (r"^\s*Fluar\s*", "Fluar"),
    (r"^\s*Neofluar\s*", "Neofluar"), (r"^\s*Fluotar\s*", "Fluotar"), (r"^\s*Apo\s*", "Apo"),
    (r"^\s*PlanNeofluar\s*", "PlanNeofluar"), (r"^\s*Other\s*", "Other"), (r".*Pl.*Apo.*", "PlanApo"),
    (r".*Pl.*Flu.*", "PlanFluor"), (r"^\s*Vio.*Corr.*", "VioletCorrected"), (r".*S.*Flu.*", "SuperFluor"),
    (r".*Neo.*flu.*", "Neofluar"), (r".*Flu.*tar.*", "Fluotar"), (r".*Fluo.*", "Fluor"), (r".*Flua.*", "Fluar"),
    (r"^\s*Apo.*", "Apo"),
)
IMMERSION = (
    (r"^\s*Oil\s*", "Oil"), (r"^\s*Water\s*", "Water"), (r"^\s*WaterDipping\s*", "WaterDipping"),
    (r"^\s*Air\s*", "Air"), (r"^\s*Multi\s*", "Multi"), (r"^\s*Glycerol\s*", "Glycerol"), (r"^\s*Other\s*", "Other"),
    (r"^\s*Dry\s*", "Air"), (r"^\s*OI\s*", "Oil"), (r".*Oil.*", "Oil"), (r".*Oel.*", "Oil"), (r".*Wasser.*", "Water"),
    (r".*Gly.*", "Glycerol"), (r"^\s*Wl\s*", "Water"), (r"^\s*W\s*", "Water"),
)
LASER_TYPE = tuple((rf"^\s*{v}\s*", v) for v in (
    "Excimer", "Gas", "MetalVapor", "SolidState", "Dye", "Semiconductor", "FreeElectron", "Other"))
LASER_MEDIUM = tuple((rf"^\s*{v}\s*", v) for v in (
    "Cu", "Ag", "ArFl", "ArCl", "KrFl", "KrCl", "XeFl", "XeCl", "XeBr", "N", "Ar", "Kr", "Xe", "HeNe", "HeCd", "CO",
    "CO2", "H2O", "HFl", "NdGlass", "NdYAG", "ErGlass", "ErYAG", "HoYLF", "HoYAG", "Ruby", "TiSapphire",
    "Alexandrite", "Rhodamine6G", "CoumarinC30", "GaAs", "GaAlAs", "EMinus", "Other"))


class Unproven(Exception):
    """Scan information this replay does not model (the file is left to Bio-Formats)."""


def _java_hash(text: str) -> int:
    h = 0
    for ch in text:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h & 0x7FFFFFFF  # (Hashtable masks the sign bit before taking the bucket)


def hashtable_order(keys: tuple[str, ...]) -> list[str]:
    """The order ``java.util.Hashtable()``'s ``keySet()`` iterates ``keys`` put in this order.

    A Hashtable starts with 11 buckets, rehashes to ``2n + 1`` when it holds ``0.75 n`` entries (moving the
    entries bucket by bucket from the last), puts each new entry at the head of its bucket, and iterates
    buckets from the last to the first.
    """
    size, threshold = 11, 8
    table: list[list[str]] = [[] for _ in range(size)]
    for count, key in enumerate(keys):
        if count >= threshold:
            old, size = table, size * 2 + 1
            threshold, table = int(size * 0.75), [[] for _ in range(size)]
            for bucket in reversed(old):
                for moved in bucket:
                    table[_java_hash(moved) % size].insert(0, moved)
        table[_java_hash(key) % size].insert(0, key)
    return [key for bucket in reversed(table) for key in bucket]


@cache
def _ordered(patterns: tuple[tuple[str, str], ...]) -> list[tuple[re.Pattern[str], str]]:
    values = dict(patterns)
    return [(re.compile(key.lower()), values[key]) for key in hashtable_order(tuple(values))]


def enumeration(patterns: tuple[tuple[str, str], ...], value: str) -> str:
    """The enumeration value an ome-xml handler gives ``value`` (``Other`` when no pattern matches)."""
    if not _PRINTABLE.fullmatch(value):
        raise Unproven("enumerated text outside printable ASCII")
    lowered = value.lower()
    return next((v for pattern, v in _ordered(patterns) if pattern.fullmatch(lowered)), "Other")


# -- SubBlock's getters: a missing or non-numeric value is -1 for numbers, None for text ---------------------
def _double(values: dict[int, object], key: int) -> float:
    found = values.get(key)
    return float(found) if isinstance(found, int | float) else -1.0


def _int(values: dict[int, object], key: int) -> int:
    found = values.get(key)
    if isinstance(found, float):
        if found != found:
            return 0
        return int(max(min(found, 2**31 - 1), -(2**31)))
    return found if isinstance(found, int) else -1


def _string(values: dict[int, object], key: int) -> str | None:
    found = values.get(key)
    if found is None:
        return None
    return ox.jdouble(found) if isinstance(found, float) else str(found)


@dataclass
class LsmScan:
    """What Bio-Formats' store holds after the replay (attributes as written, indexes as IDs)."""

    user: str | None = None
    description: str | None = None
    time_increment: float | None = None
    objective: dict[str, str] = field(default_factory=dict)
    objective_settings: bool = False
    lasers: dict[int, dict[str, str]] = field(default_factory=dict)
    detectors: dict[int, dict[str, str]] = field(default_factory=dict)
    dichroics: dict[int, str] = field(default_factory=dict)
    pinhole: float | None = None  #: the first channel's
    detector_settings: int | None = None  #: the first channel's detector
    zoom: float = 0.0
    next_laser: int = 0
    next_detector: int = 0
    next_dichroic: int = 0
    next_illumination: int = 0


@dataclass
class _Block:
    kind: int
    values: dict[int, object]
    acquire: bool = True
    wavelength: float | None = None


def _objective(scan: LsmScan, text: str) -> None:
    """The recording's objective text as ``Recording.read`` splits it: correction, NA/magnification, immersion."""
    tokens = text.split(" ")
    while len(tokens) > 1 and tokens[-1] == "":
        tokens.pop()  # Java's split drops trailing empty strings ("" itself stays one token)
    at = next((i for i, token in enumerate(tokens) if "/" in token), len(tokens))
    after = at + 1 if at < len(tokens) else at
    immersion = tokens[after] if after < len(tokens) else "Unknown"
    iris = after + 1 < len(tokens) and ox.jtrim(tokens[after + 1]).lower() == "iris"
    scan.objective.update(Correction=enumeration(CORRECTION, "".join(tokens[:at])),
                          Immersion=enumeration(IMMERSION, immersion), Iris="true" if iris else "false")


def _laser(scan: LsmScan, values: dict[int, object]) -> None:
    name = _string(values, _LASER_NAME)
    kind, medium = name or "", ""
    if kind.startswith("HeNe"):
        medium, kind = "HeNe", "Gas"
    elif kind.startswith("Argon"):
        medium, kind = "Ar", "Gas"
    elif kind in ("Titanium:Sapphire", "Mai Tai"):
        medium, kind = "TiSapphire", "SolidState"
    elif kind == "YAG":
        kind = "SolidState"
    elif kind == "Ar/Kr":
        kind = "Gas"
    laser = scan.lasers.setdefault(scan.next_laser, {})
    laser.update(LaserMedium=enumeration(LASER_MEDIUM, medium), Type=enumeration(LASER_TYPE, kind),
                 ID=f"LightSource:0:{scan.next_laser}")
    if name is not None:
        laser["Model"] = name
    scan.next_laser += 1


def _detection(scan: LsmScan, block: _Block, size_c: int) -> None:
    values, index = block.values, scan.next_detector
    pinhole = _double(values, _PINHOLE)
    if pinhole != 0 and index < size_c and block.acquire:
        scan.pinhole = pinhole
    found = _string(values, _FILTER)
    if found is not None and ox.jtrim(found) not in ("", "None"):
        raise Unproven("an emission filter")
    if _string(values, _CHANNEL_NAME) is None:
        raise Unproven("a detection channel without a name")
    if block.acquire and index < size_c:
        scan.detector_settings = index
    scan.detectors[index] = {
        "ID": f"Detector:0:{index}", "AmplificationGain": ox.jdouble(_double(values, _AMPLIFIER_GAIN)),
        "Gain": ox.jdouble(_double(values, _GAIN)), "Type": "PMT", "Zoom": ox.jdouble(scan.zoom)}
    scan.next_detector += 1


def _illumination(scan: LsmScan, block: _Block) -> None:
    if not block.acquire or block.wavelength is None or not block.wavelength > 0:
        return
    laser = scan.lasers.setdefault(scan.next_illumination, {})
    laser.update(Wavelength=ox.jdouble(block.wavelength), WavelengthUnit="nm")
    if scan.next_illumination >= scan.next_laser:
        laser["ID"] = f"LightSource:0:{scan.next_illumination}"
    scan.next_illumination += 1


def _populate(scan: LsmScan, block: _Block, size_c: int) -> None:
    """``populateMetadataStore`` for one block."""
    values = block.values
    if block.kind == RECORDING:
        if block.acquire:
            scan.description = _string(values, _DESCRIPTION)
            scan.objective_settings = True
        _objective(scan, _string(values, _OBJECTIVE) or "")
    elif block.kind == LASER:
        _laser(scan, values)
    elif block.kind == TRACK and block.acquire:
        scan.time_increment = _double(values, _TIME_BETWEEN_STACKS)
    elif block.kind == DETECTION:
        _detection(scan, block, size_c)
    elif block.kind == BEAM_SPLITTER and _string(values, _SPLITTER_FILTER_SET) is not None:
        found = _string(values, _SPLITTER_FILTER)
        model = ox.jtrim(found) if found is not None else ""
        if model not in ("", "None"):
            scan.dichroics[scan.next_dichroic] = model
            scan.next_dichroic += 1
    elif block.kind == ILLUMINATION:
        _illumination(scan, block)


def _read(kind: int, values: dict[int, object]) -> _Block:
    """One sub-block as its ``read`` leaves it (acquire flag, an illumination channel's wavelength)."""
    block = _Block(kind, values, acquire=kind not in _ACQUIRE or _int(values, _ACQUIRE[kind]) != 0)
    if kind == ILLUMINATION:
        block.wavelength = _double(values, _WAVELENGTH)
        name = _string(values, _ILLUM_NAME)
        if name is None or not (_PLAIN_NUMBER.fullmatch(name) or not re.search(r"[0-9]|nan|inf", name.lower())):
            raise Unproven("an illumination name that may or may not be read as a number")
        if _PLAIN_NUMBER.fullmatch(name):
            block.wavelength = float(name)
    elif kind == DATA and _string(values, _DATA_NAME) is None:
        raise Unproven("a data channel without a name")
    return block


def replay(blocks: list[tuple[int, dict[int, object]]], size_c: int = 1) -> LsmScan:
    """What ``ZeissLSMReader`` stores from the scan-information ``blocks`` (kind, values) of one series.

    Raises
    ------
    Unproven
        When a block holds something this replay does not model.
    """
    scan = LsmScan()
    read = [_read(kind, values) for kind, values in blocks]
    for block in read:  # SubBlock.addToHashtable: the last "User" of any block names the experimenter
        if block.kind == RECORDING:
            scan.zoom = _double(block.values, _ZOOM)
        user = _string(block.values, _USER)
        if user is not None:
            scan.user = user
    acquired = [block for block in read if block.acquire]
    later = [block for block in read if not block.acquire]
    for i, block in enumerate(acquired):
        if block.kind == ILLUMINATION and i < len(acquired) - 1:
            if acquired[i + 1].kind not in (DATA, ILLUMINATION):
                block.wavelength = None
        elif block.kind == DETECTION and i > 0 and acquired[i - 1].kind not in (TRACK, DETECTION):
            block.acquire = False
            later.append(block)
        if block.acquire:
            _populate(scan, block, size_c)
    for block in later:
        _populate(scan, block, size_c)
    return scan


def instrument(scan: LsmScan, magnification: float | None, lens_na: float | None) -> ox.El:
    """The ``Instrument`` Bio-Formats writes: lasers, detectors, the objective, dichroics."""
    el = ox.El("Instrument", {"ID": "Instrument:0"})
    for index in sorted(scan.lasers):
        el.add(ox.El("Laser", dict(scan.lasers[index])))
    for index in sorted(scan.detectors):
        el.add(ox.El("Detector", dict(scan.detectors[index])))
    objective = {"ID": "Objective:0:0", **scan.objective}
    if magnification is not None:
        objective["NominalMagnification"] = ox.jdouble(magnification)
    if lens_na is not None:
        objective["LensNA"] = ox.jdouble(lens_na)
    el.add(ox.El("Objective", objective))
    for index in sorted(scan.dichroics):
        el.add(ox.El("Dichroic", {"ID": f"Dichroic:0:{index}", "Model": scan.dichroics[index]}))
    return el
