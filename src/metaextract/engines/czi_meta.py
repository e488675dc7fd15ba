"""The parts of a CZI's ``ImageDocument`` that Bio-Formats 7.3.1 writes beyond the key fields.

Experimenter, Instrument (microscope, detectors, objectives, filter sets, filters, dichroics), and per image
its references, objective settings, and per channel the colour, fluor, illumination, acquisition mode,
pinhole and detector settings. Learnt from what ZeissCZIReader's ``translateExperiment`` /
``translateInformation`` / ``translateDisplaySettings`` put into the metadata store and from the reference
documents: the store is indexed (a later writer of index ``i`` replaces an earlier one's values, a ``null``
clears them), and the document writes each list in the schema's order.

Whatever is read here that this module does not reproduce with certainty (a number or enumeration value
that is not plain, a light source of a known type, ROIs, a hardware setting's objective changer, a
reference to nothing …) is listed in :attr:`Extras.partial`: the engine then answers only by name, never
in ``auto`` (whole-document parity, issue 20).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from metaextract.ome import writer as ox

# OME 2016-06 enumerations (the values Bio-Formats keeps as they are)
MICROSCOPE_TYPES = frozenset({"Upright", "Inverted", "Dissection", "Electrophysiology", "Other"})
DETECTOR_TYPES = frozenset({"CCD", "IntensifiedCCD", "AnalogVideo", "PMT", "Photodiode", "Spectroscopy",
                            "LifetimeImaging", "CorrelationSpectroscopy", "FTIR", "EMCCD", "APD", "CMOS",
                            "EBCCD", "Other"})
IMMERSIONS = frozenset({"Oil", "Water", "WaterDipping", "Air", "Multi", "Glycerol", "Other"})
CORRECTIONS = frozenset({"UV", "PlanApo", "PlanFluor", "SuperFluor", "VioletCorrected", "Achro", "Achromat",
                         "Fluor", "Fl", "Fluar", "Neofluar", "Fluotar", "Apo", "PlanNeofluar", "Other"})
MEDIA = frozenset({"Air", "Oil", "Water", "Glycerol", "Other"})
ILLUMINATIONS = frozenset({"Transmitted", "Epifluorescence", "Oblique", "NonLinear", "Other"})
ACQUISITION_MODES = frozenset({
    "WideField", "LaserScanningConfocalMicroscopy", "SpinningDiskConfocal", "SlitScanConfocal",
    "MultiPhotonMicroscopy", "StructuredIllumination", "SingleMoleculeImaging", "TotalInternalReflection",
    "FluorescenceLifetime", "SpectralImaging", "FluorescenceCorrelationSpectroscopy",
    "NearFieldScanningOpticalMicroscopy", "SecondHarmonicGenerationImaging", "PALM", "STORM", "STED", "TIRF",
    "FSM", "LCM", "Other", "BrightField", "SweptFieldConfocal", "SPIM"})
BINNINGS = frozenset({"1x1", "2x2", "4x4", "8x8", "Other"})
FILTER_TYPES = frozenset({"BandPass", "LongPass", "ShortPass", "MultiPass", "Dichroic", "NeutralDensity",
                          "Tuneable", "Other"})
#: What Bio-Formats' enumeration handlers make of values that are not an OME value (its regular expressions
#: are not reproduced): only the values seen, in the reference documents and in the differential test's
#: probes, are mapped; any other value makes the document partial. (A value equal to an OME value but for
#: case is that value, as the probes show for every kind.)
KNOWN: dict[str, dict[str, str]] = {
    "MicroscopeType": {"Stereo": "Other", "Upright Microscope": "Other", "": "Other"},
    "DetectorType": {"Airyscan": "Other", "Camera": "Other", "GaAsP": "Other", "HyD": "Other"},
    "Correction": {"Plan-Apochromat": "PlanApo", "PlanApochromat": "PlanApo", "C-Apochromat": "Other",
                   "EC Plan-Neofluar": "Fluar", "": "Other"},
    "AcquisitionMode": {"Confocal": "Other", "SpinningDisk": "Other", "LSM": "Other", "": "Other"},
    "Medium": {"Oel": "Other", "Glycerin": "Other", "W": "Other", "": "Other"},
    "FilterType": {"Band pass": "Other", "": "Other"},
    "IlluminationType": {"Fluorescence": "Other", "Brightfield": "Other", "Phase": "Other", "DIC": "Other",
                         "": "Other"},
}
#: light source types Bio-Formats writes (with no ID: not reproduced)
LIGHT_SOURCE_TYPES = frozenset({"Laser", "Arc", "LightEmittingDiode", "Filament"})
#: ROI shapes translateLayers makes whatever their geometry, and those that need Left/Top/Width/Height
ROI_SHAPES = frozenset({"Line", "OpenArrow", "Cross", "Ellipse", "Circle", "InOutCircle", "OutInCircle",
                        "PointsCircle", "Polygon", "Polyline", "OpenPolyline", "ClosedPolyline", "Bezier",
                        "Events"})
ROI_BOXES = frozenset({"Rectangle", "RectRoi", "TextBox", "Text"})

_PLAIN = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BLANK = "".join(chr(i) for i in range(33))
_JAVA_SPACE = re.compile("[ \t\n\x0b\f\r]")


class Partial(Exception):
    """Something Bio-Formats reads that is not reproduced here."""


def first(root: etree._Element | None, name: str) -> etree._Element | None:
    """DOM ``getElementsByTagName(name).item(0)``: the first descendant called ``name``."""
    if root is None:
        return None
    return next((el for el in root.iter(name) if el is not root), None)


def all_below(root: etree._Element | None, name: str) -> list[etree._Element]:
    if root is None:
        return []
    return [el for el in root.iter(name) if el is not root]


def text_of(root: etree._Element | None, name: str) -> str | None:
    """Bio-Formats' ``getFirstNodeValue``: the text content of the first descendant called ``name``."""
    el = first(root, name)
    return None if el is None else "".join(el.itertext())


class _DyeChannel(Protocol):
    name: str | None
    emission: str | None
    excitation: str | None


def display_channel(node: etree._Element, channel: _DyeChannel) -> None:
    """What a ``DisplaySetting`` channel says of a channel: its name always, its dye's peak emission and
    excitation where given (both engines' documents, the whole and the key fields, read it so)."""
    channel.name = node.get("Name", "")
    emission = text_of(node, "DyeMaxEmission")
    if emission is not None:
        channel.emission = emission
    excitation = text_of(node, "DyeMaxExcitation")
    if excitation is not None:
        channel.excitation = excitation


def grandchildren(root: etree._Element | None, child: str, name: str) -> list[etree._Element] | None:
    holder = first(root, child)
    return None if holder is None else all_below(holder, name)


def number(text: str | None, what: str) -> float | None:
    """``new Double(text)`` for a plain decimal (None for None); anything else is :class:`Partial`."""
    if text is None:
        return None
    value = text.strip(_BLANK)
    if _PLAIN.fullmatch(value) is None:
        raise Partial(f"{what} is not a plain number: {text[:40]!r}")
    return float(value)


def enum(text: str | None, allowed: frozenset[str], what: str) -> str | None:
    if text is None:
        return None
    if text in allowed:
        return text
    same = next((value for value in allowed if value.lower() == text.lower()), None)
    if same is not None:
        return same
    known = KNOWN.get(what, {}).get(text)
    if known is not None:
        return known
    raise Partial(f"{what} {text[:40]!r} is not an OME value")


def _set(attrs: dict[str, str], key: str, value: str | None) -> None:
    """A store setter: a value replaces, None clears."""
    if value is None:
        attrs.pop(key, None)
    else:
        attrs[key] = ox.clean(value)


def _grow(items: list[dict[str, str]], index: int) -> dict[str, str]:
    while len(items) <= index:
        items.append({})
    return items[index]


def _manufacturer(attrs: dict[str, str], node: etree._Element) -> None:
    maker = first(node, "Manufacturer")
    for key in ("Manufacturer", "Model", "SerialNumber", "LotNumber"):
        _set(attrs, key, text_of(maker, key))


@dataclass
class ChannelExtra:
    attrs: dict[str, str] = field(default_factory=dict)
    filter_set: str | None = None
    detector: dict[str, str] | None = None


@dataclass
class Extras:
    """What the engine adds to its key-field document to make Bio-Formats' whole one."""

    experimenter: ox.El
    instrument: ox.El
    objective_settings: dict[str, str] | None
    channels: list[ChannelExtra]
    description: str | None = None
    time_increment: str | None = None
    imaging_environment: dict[str, str] | None = None
    #: why the document is not Bio-Formats' whole (empty: it is)
    partial: list[str] = field(default_factory=list)


@dataclass
class _Chan:
    name: str | None = None
    fluor: str | None = None
    color: str | None = None
    illumination: str | None = None
    mode: str | None = None
    pinhole: str | None = None
    filter_set: str | None = None
    gain: float | None = None
    emission: str | None = None
    excitation: str | None = None


def read_extras(xml_root: etree._Element, channel_count: int, rgb: bool) -> Extras:
    """The extras of a parsed ``ImageDocument`` (its first element child is ``root``)."""
    partial: list[str] = []
    try:
        return _read(xml_root, channel_count, rgb, partial)
    except Partial as exc:
        partial.append(str(exc))
    except (ValueError, OverflowError) as exc:
        partial.append(f"not reproduced: {exc}")
    extras = Extras(ox.El("Experimenter", {"ID": "Experimenter:0"}), ox.El("Instrument", {"ID": "Instrument:0"}),
                    None, [])
    extras.partial = partial
    return extras


def _read(root: etree._Element, channel_count: int, rgb: bool, partial: list[str]) -> Extras:
    chans: list[_Chan] = []

    def chan(i: int) -> _Chan:
        while len(chans) <= i:
            chans.append(_Chan())
        return chans[i]

    detectors: list[dict[str, str]] = []
    objectives: list[dict[str, str]] = []
    filter_sets: list[tuple[dict[str, str], list[str], str | None, list[str]]] = []
    filters: list[tuple[dict[str, str], dict[str, str] | None]] = []
    dichroics: list[dict[str, str]] = []
    microscope: dict[str, str] | None = None

    # -- translateExperiment
    selected: tuple[str, str] | None = None
    experiment = first(root, "Experiment")
    acquisition = first(first(experiment, "ExperimentBlocks"), "AcquisitionBlock")
    if experiment is not None:
        camera = text_of(first(acquisition, "AcquisitionModeSetup"), "SelectedCamera")
        for i, det in enumerate(grandchildren(acquisition, "Detectors", "Detector") or []):
            attrs = _grow(detectors, i)
            _set(attrs, "ID", f"Detector:0:{i}")
            _set(attrs, "Model", det.get("Id", ""))
            binning = text_of(det, "Binning")
            if binning is not None and camera is not None and det.get("Id", "") == camera:
                # the selected camera's settings go to every channel of every image (the last one wins)
                selected = (f"Detector:0:{i}", enum(binning.replace(",", "x"), BINNINGS, "Binning") or "")
        multitrack = first(acquisition, "MultiTrackSetup")
        gains: list[str | None] = []
        if multitrack is not None:
            for group in all_below(multitrack, "Detectors"):
                gains.extend(text_of(d, "Voltage") for d in all_below(group, "Detector"))
            for i, track in enumerate(all_below(multitrack, "Track")):
                channel = first(track, "Channel")
                try:
                    chan(i).gain = number(text_of(channel, "EMGain"), "EMGain")
                except Partial:
                    chan(i).gain = None  # Bio-Formats logs it and goes on
    else:
        gains = []

    # -- translateInformation
    information = first(root, "Information")
    image = first(information, "Image")
    user = first(information, "User")
    environment = first(information, "Environment")
    instrument = first(information, "Instrument")
    document = first(information, "Document")
    detector_refs: list[str] = []
    binnings: list[str] = []
    settings: dict[str, str | None] | None = None
    if image is not None:
        objective_node = first(image, "ObjectiveSettings")
        settings = {k: text_of(objective_node, k) for k in ("CorrectionCollar", "Medium", "RefractiveIndex")}
        if text_of(image, "SizeV") not in (None, "1"):
            raise Partial("SizeV other than 1 (views)")
        dimensions = first(image, "Dimensions")
        increment = text_of(first(first(first(dimensions, "T"), "Positions"), "Interval"), "Increment")
        time_increment = None
        if first(first(first(dimensions, "T"), "Positions"), "Interval") is not None and \
                first(first(first(first(dimensions, "T"), "Positions"), "Interval"), "Increment") is not None:
            value = number(increment, "time increment")
            time_increment = ox.jdouble(value) if value is not None else None
        nodes = grandchildren(dimensions, "Channels", "Channel")
        if nodes is None:
            nodes = all_below(image, "Channel")
        for i, node in enumerate(nodes):
            c = chan(i)
            c.emission = text_of(node, "EmissionWavelength")
            c.excitation = text_of(node, "ExcitationWavelength")
            c.pinhole = text_of(node, "PinholeSize")
            c.name = node.get("Name", "")
            illumination = text_of(node, "IlluminationType")
            if illumination is not None:
                c.illumination = enum(illumination, ILLUMINATIONS, "IlluminationType")
            mode = text_of(node, "AcquisitionMode")
            if mode is not None:
                c.mode = enum(mode, ACQUISITION_MODES, "AcquisitionMode")
            det_settings = first(node, "DetectorSettings")
            binning = text_of(det_settings, "Binning")
            if binning is not None:
                binnings.append(binning.replace(",", "x"))
            det = first(det_settings, "Detector")
            if det is not None:
                detector_refs.append(_detector_id(det.get("Id", "")))
            fs = first(node, "FilterSetRef")
            if fs is not None:
                c.filter_set = fs.get("Id", "")
    else:
        time_increment = None

    names: dict[str, str | None] = {k: None for k in
                                     ("Email", "FirstName", "Institution", "LastName", "MiddleName", "UserName")}
    if user is not None:
        for key in names:
            names[key] = text_of(user, key)
    imaging: dict[str, str] = {}
    if environment is not None:
        if any(text_of(environment, k) is not None for k in ("Humidity", "CO2Percent")):
            raise Partial("imaging environment humidity or CO2 (percent fractions)")
        for key, unit in (("Temperature", "°C"), ("AirPressure", "mbar")):
            value = number(text_of(environment, key), key)
            if value is not None:
                imaging.update({key: ox.jdouble(value), f"{key}Unit": unit})

    if instrument is not None:
        microscopes = grandchildren(instrument, "Microscopes", "Microscope")
        if microscopes is not None and microscopes:
            scope = microscopes[0]
            microscope = {}
            _manufacturer(microscope, scope)
            kind = text_of(scope, "Type")
            if kind is not None:
                _set(microscope, "Type", enum(kind, MICROSCOPE_TYPES, "MicroscopeType"))
        elif microscopes is not None:
            raise Partial("an empty Microscopes")
        for source in grandchildren(instrument, "LightSources", "LightSource") or []:
            if text_of(source, "LightSourceType") in LIGHT_SOURCE_TYPES:
                raise Partial("a light source of a known type")
        seen: set[str] = set()
        for det in grandchildren(instrument, "Detectors", "Detector") or []:
            ident = _detector_id(det.get("Id", ""))
            if ident in seen:
                continue
            seen.add(ident)
            index = len(seen) - 1
            attrs = _grow(detectors, index)
            _set(attrs, "ID", ident)
            _manufacturer(attrs, det)
            own_gain = text_of(det, "Gain")
            if own_gain:
                value = number(own_gain if index == 0 or index >= len(gains) else gains[index], "detector gain")
                _set(attrs, "Gain", None if value is None else ox.jdouble(value))
            offset = text_of(det, "Offset")
            if offset:
                _set(attrs, "Offset", ox.jdouble(number(offset, "detector offset") or 0.0))
            zoom = text_of(det, "Zoom")
            if zoom:
                value = number(zoom.split(",", 1)[0], "detector zoom")
                _set(attrs, "Zoom", None if value is None else ox.jdouble(value))
            amplification = text_of(det, "AmplificationGain")
            if amplification:
                _set(attrs, "AmplificationGain", ox.jdouble(number(amplification, "amplification gain") or 0.0))
            kind = text_of(det, "Type")
            if kind:
                _set(attrs, "Type", enum(kind, DETECTOR_TYPES, "DetectorType"))
        for i, obj in enumerate(grandchildren(instrument, "Objectives", "Objective") or []):
            attrs = _grow(objectives, i)
            if settings is not None and "ID" not in settings:
                settings["ID"] = obj.get("Id", "")
            _set(attrs, "ID", obj.get("Id", ""))
            _manufacturer(attrs, obj)
            correction = text_of(obj, "Correction")
            if correction is not None:
                _set(attrs, "Correction", enum(correction, CORRECTIONS, "Correction"))
            immersion = text_of(obj, "Immersion")
            # none given is Other (the differential test shows it)
            _set(attrs, "Immersion", "Other" if immersion is None else enum(immersion, IMMERSIONS, "Immersion"))
            na = number(text_of(obj, "LensNA"), "LensNA")
            if na is not None:
                _set(attrs, "LensNA", ox.jdouble(na))
            nominal = text_of(obj, "NominalMagnification")
            if nominal is None:
                nominal = text_of(obj, "Magnification")
            mag = number(nominal, "magnification")
            if mag is not None:
                _set(attrs, "NominalMagnification", ox.jdouble(mag))
            calibrated = number(text_of(obj, "CalibratedMagnification"), "calibrated magnification")
            if calibrated is not None:
                _set(attrs, "CalibratedMagnification", ox.jdouble(calibrated))
            wd = number(text_of(obj, "WorkingDistance"), "working distance")
            if wd is not None:
                _set(attrs, "WorkingDistance", ox.jdouble(wd))
                _set(attrs, "WorkingDistanceUnit", ox.MICRON)
            if text_of(obj, "Iris") is not None:
                raise Partial("an objective Iris")
        for fs in grandchildren(instrument, "FilterSets", "FilterSet") or []:
            attrs = {}
            _set(attrs, "ID", fs.get("Id", ""))
            _manufacturer(attrs, fs)
            dichroic = text_of(fs, "DichroicRef")
            if not dichroic:
                ref = first(fs, "DichroicRef")
                if ref is not None:
                    dichroic = ref.get("Id", "")
            excitations = grandchildren(fs, "ExcitationFilters", "ExcitationFilterRef")
            if excitations is None:
                excitations = all_below(fs, "ExcitationFilterRef")
            emissions = grandchildren(fs, "EmissionFilters", "EmissionFilterRef")
            if emissions is None:
                emissions = all_below(fs, "EmissionFilterRef")
            filter_sets.append((attrs, [_ref(e) for e in excitations if _ref(e)], dichroic or None,
                                [_ref(e) for e in emissions if _ref(e)]))
        for flt in grandchildren(instrument, "Filters", "Filter") or []:
            attrs = {}
            _set(attrs, "ID", flt.get("Id", ""))
            _manufacturer(attrs, flt)
            kind = text_of(flt, "Type")
            if kind is not None:
                _set(attrs, "Type", enum(kind, FILTER_TYPES, "FilterType"))
            _set(attrs, "FilterWheel", text_of(flt, "FilterWheel"))
            span = first(flt, "TransmittanceRange")
            cut_in = number(text_of(span, "CutIn"), "CutIn") or 0.0
            cut_out = number(text_of(span, "CutOut"), "CutOut") or 0.0
            if any(text_of(span, k) is not None for k in ("CutInTolerance", "CutOutTolerance", "Transmittance")):
                raise Partial("filter tolerances or transmittance")
            transmittance: dict[str, str] | None = None
            if cut_in > 0 or cut_out > 0:
                transmittance = {}
                if cut_in > 0:
                    transmittance.update(CutIn=ox.jdouble(cut_in), CutInUnit="nm")
                if cut_out > 0:
                    transmittance.update(CutOut=ox.jdouble(cut_out), CutOutUnit="nm")
            filters.append((attrs, transmittance))
        for dic in grandchildren(instrument, "Dichroics", "Dichroic") or []:
            attrs = {}
            _set(attrs, "ID", dic.get("Id", ""))
            _manufacturer(attrs, dic)
            dichroics.append(attrs)

    description = None
    if document is not None:
        description = text_of(document, "Description")
        if names["UserName"] is None:
            names["UserName"] = text_of(document, "UserName")

    # -- translateDisplaySettings
    for display in root.iter("DisplaySetting"):
        for i, node in enumerate(grandchildren(display, "Channels", "Channel") or []):
            c = chan(i)
            color = text_of(node, "Color")
            if color is None:
                color = text_of(node, "OriginalColor")
            c.color = color
            fluor = text_of(node, "DyeName")
            if fluor is not None:
                c.fluor = fluor
            display_channel(node, c)
            # an illumination here counts only for a channel whose Information gave none or Other (the
            # differential test: any other Information value stays whatever this one says)
            illumination = text_of(node, "IlluminationType")
            if illumination is not None and c.illumination in (None, "Other"):
                c.illumination = enum(illumination, ILLUMINATIONS, "IlluminationType")

    _check_layers(root)
    _check_hardware(root)
    _check_modulo(root)

    # -- the elements
    experimenter = ox.El("Experimenter", {"ID": "Experimenter:0"})
    for key, person in names.items():
        _set(experimenter.attrs, key, person)
    inst = ox.El("Instrument", {"ID": "Instrument:0"})
    if microscope is not None:
        inst.add(ox.El("Microscope", microscope))
    ids: dict[str, set[str]] = {"Detector": set(), "FilterSet": set(), "Filter": set(), "Dichroic": set()}
    for attrs in detectors:
        if "ID" not in attrs:
            raise Partial("a detector without an ID")
        ids["Detector"].add(attrs["ID"])
        inst.add(ox.El("Detector", attrs))
    for attrs in objectives:
        inst.add(ox.El("Objective", attrs))
    for attrs, _, _, _ in filter_sets:
        ids["FilterSet"].add(attrs["ID"])
    for attrs, _ in filters:
        ids["Filter"].add(attrs["ID"])
    for attrs in dichroics:
        ids["Dichroic"].add(attrs["ID"])
    # a filter set's reference to no filter or dichroic is dropped (the differential test shows it)
    for attrs, excitation_refs, dichroic_ref, emission_refs in filter_sets:
        el = inst.add(ox.El("FilterSet", attrs))
        for ref in excitation_refs:
            if ref in ids["Filter"]:
                el.add(ox.El("ExcitationFilterRef", {"ID": ref}))
        if dichroic_ref is not None and dichroic_ref in ids["Dichroic"]:
            el.add(ox.El("DichroicRef", {"ID": dichroic_ref}))
        for ref in emission_refs:
            if ref in ids["Filter"]:
                el.add(ox.El("EmissionFilterRef", {"ID": ref}))
    for attrs, transmittance in filters:
        el = inst.add(ox.El("Filter", attrs))
        if transmittance is not None:
            el.add(ox.El("TransmittanceRange", transmittance))
    for attrs in dichroics:
        inst.add(ox.El("Dichroic", attrs))
    all_ids = [a.get("ID") for el in inst.children for a in (el.attrs,)]
    if len(all_ids) != len(set(all_ids)):
        raise Partial("two instrument parts with one ID")

    objective_settings: dict[str, str] | None = None
    if settings is not None and settings.get("ID") is not None:
        objective_settings = {"ID": settings["ID"] or ""}
        if settings["CorrectionCollar"] is not None:
            objective_settings["CorrectionCollar"] = ox.jdouble(number(settings["CorrectionCollar"], "collar") or 0.0)
        if settings["Medium"] is not None:
            objective_settings["Medium"] = enum(settings["Medium"], MEDIA, "Medium") or ""
        if settings["RefractiveIndex"] is not None:
            objective_settings["RefractiveIndex"] = ox.jdouble(number(settings["RefractiveIndex"], "index") or 0.0)

    channels = []
    for index in range(channel_count):
        extra = ChannelExtra()
        if index < len(chans):
            ch = chans[index]
            if ch.fluor is not None:
                extra.attrs["Fluor"] = ox.clean(ch.fluor)
            if ch.filter_set is not None and ch.filter_set in ids["FilterSet"]:
                extra.filter_set = ch.filter_set  # (a reference to no filter set is dropped, the test shows)
            if ch.color is not None and not rgb:
                colour = _color(ch.color)
                if colour is not None:
                    extra.attrs["Color"] = colour
            if ch.illumination is not None:
                extra.attrs["IlluminationType"] = ch.illumination
            if ch.pinhole is not None:
                extra.attrs["PinholeSize"] = ox.jdouble(number(ch.pinhole, "pinhole") or 0.0)
                extra.attrs["PinholeSizeUnit"] = ox.MICRON
            if ch.mode is not None:
                extra.attrs["AcquisitionMode"] = ch.mode
        settings_of: dict[str, str] | None = None
        if selected is not None:
            settings_of = {"ID": selected[0], "Binning": selected[1]}
        gain = chans[index].gain if index < len(chans) else None
        if index < len(detector_refs):
            settings_of = settings_of or {}
            settings_of["ID"] = detector_refs[index]
            if index < len(binnings):
                settings_of["Binning"] = enum(binnings[index], BINNINGS, "Binning") or ""
            _set(settings_of, "Gain", None if gain is None else ox.jdouble(gain))
        if settings_of is not None and selected is not None and index < len(chans):
            _set(settings_of, "Gain", None if gain is None else ox.jdouble(gain))
        if settings_of is not None:
            _check_ref(ids, "Detector", settings_of["ID"])
        extra.detector = settings_of
        channels.append(extra)
    return Extras(experimenter, inst, objective_settings, channels,
                  description if description else None, time_increment, imaging or None, partial)


def _ref(node: etree._Element) -> str:
    text = "".join(node.itertext())
    return text if text else node.get("Id", "")


def _check_ref(ids: dict[str, set[str]], kind: str, ref: str) -> None:
    if ref not in ids[kind]:
        raise Partial(f"a reference to no {kind}: {ref[:40]!r}")


def _detector_id(raw: str) -> str:
    ident = _JAVA_SPACE.sub("", raw) if " " in raw else raw
    return ident if ident.startswith("Detector:") else "Detector:" + ident


def _color(text: str) -> str | None:
    """DisplaySetting's ``#AARRGGBB`` as OME's signed RGBA integer (None where Bio-Formats gives up)."""
    value = text.replace("#", "")
    if len(value) > 6:
        value = value[2:]
    if re.fullmatch(r"[+-]?[0-9A-Fa-f]+", value) is None:
        return None
    parsed = int(value, 16)
    if not -(1 << 31) <= parsed < (1 << 31):
        return None
    rgba = ((parsed << 8) | 0xFF) & 0xFFFFFFFF
    return str(rgba - (1 << 32) if rgba >= 1 << 31 else rgba)


def _check_layers(root: etree._Element) -> None:
    for layers in root.iter("Layers"):
        for layer in all_below(layers, "Layer"):
            elements = first(layer, "Elements")
            if elements is None:
                continue
            for el in elements.iter():
                if el is elements or not isinstance(el.tag, str):
                    continue
                if el.tag in ROI_SHAPES:
                    raise Partial(f"an ROI ({el.tag})")
                if el.tag in ROI_BOXES:
                    geometry = first(el, "Geometry")
                    if all(text_of(geometry, k) is not None for k in ("Left", "Top", "Width", "Height")):
                        raise Partial(f"an ROI ({el.tag})")


def _check_hardware(root: etree._Element) -> None:
    hardware = next(iter(root.iter("HardwareSetting")), None)
    if hardware is not None and (first(hardware, "Microscope") is not None
                                 or first(hardware, "ObjectiveChanger") is not None):
        raise Partial("a HardwareSetting microscope or objective changer")


def _check_modulo(root: etree._Element) -> None:
    for name in ("Rotations", "Phases", "Illuminations"):
        for el in root.iter(name):
            if len(el) == 0 and (el.text or "") != "":
                raise Partial(f"{name} labels")
