"""The tifffile engine against the live Bio-Formats engine on TIFFs written here.

Plain TIFFs of every pixel type and layout the engine claims, synthetic MetaXpress and CellVoyager
plates, and one MetaSeries file per property whose mapping the engine relies on. Every file it claims
must give Bio-Formats' normalised OME-XML; the files it declines are the cases where Bio-Formats
disagrees with the file (the evidence is asserted next to each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from metaextract import synth
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.tiff.plain import CLAIM, TiffEngine
from metaextract.ome import key_fields, normalise

PLAIN: dict[str, dict[str, Any]] = {
    "uint8": {"data": np.zeros((5, 7), "uint8")},
    "int8": {"data": np.zeros((5, 7), "int8")},
    "int16": {"data": np.zeros((5, 7), "int16")},
    "uint32": {"data": np.zeros((5, 7), "uint32")},
    "int32": {"data": np.zeros((5, 7), "int32")},
    "float": {"data": np.zeros((5, 7), "float32")},
    "double": {"data": np.zeros((5, 7), "float64")},
    "rgb": {"data": np.zeros((5, 7, 3), "uint8"), "photometric": "rgb"},
    "rgb-planar": {"data": np.zeros((3, 5, 7), "uint16"), "photometric": "rgb", "planarconfig": "separate"},
    "big-endian": {"data": np.zeros((5, 7), "uint16"), "byteorder": ">"},
    "centimetre": {"data": np.zeros((5, 7), "uint16"), "resolution": (15384.615, 15384.615),
                   "resolutionunit": "CENTIMETER"},
    "inch": {"data": np.zeros((5, 7), "uint16"), "resolution": (300, 600), "resolutionunit": "INCH"},
    "no-resolution": {"data": np.zeros((5, 7), "uint16"), "resolution": None},
    "tiny-pixels": {"data": np.zeros((5, 7), "uint16"), "resolution": (1e8, 1e8), "resolutionunit": "CENTIMETER"},
    "datetime": {"data": np.zeros((5, 7), "uint16"), "datetime": "2020:01:02 03:04:05"},
    "description": {"data": np.zeros((5, 7), "uint16"), "description": "hello world"},
    "deflate": {"data": np.zeros((5, 7), "uint16"), "compression": "zlib"},
    "tiled": {"data": np.zeros((32, 32), "uint16"), "tile": (16, 16)},
    "bigtiff": {"data": np.zeros((5, 7), "uint16"), "bigtiff": True},
    "pages": {"data": np.zeros((6, 5, 7), "uint16"), "photometric": "minisblack"},
}

BASE = [("image-name", "string", "DAPI-img"), ("spatial-calibration-x", "float", 0.65),
        ("spatial-calibration-y", "float", 0.7), ("spatial-calibration-units", "string", "um"),
        ("stage-position-x", "float", 12.5), ("stage-position-y", "float", 500.25), ("z-position", "float", 3250.5),
        ("acquisition-time-local", "time", "20160501 09:30:01.123"),
        ("modification-time-local", "time", "20160501 09:30:02.456"), ("wavelength", "float", 452),
        ("_IllumSetting_", "string", "DAPI-ill")]
CR = "&#13;&#10;"
REAL_DESCRIPTION = CR.join([
    "Exposure: 150 ms", "Binning: 2 x 2", "Region: 2160 x 2160, offset at (0, 0)", "Subtract: Off", "Shading: Off",
    "Sensor Mode: Normal", "Digitizer: Standard(Hz)", "Gain: Gain 1 (4x)", "Camera Shutter: Always Open",
    "Clear Count: 2", "Clear Mode: CLEAR PRE SEQUENCE", "Frames to Average: 1", "Trigger Mode: Normal (TIMED)",
    "Temperature: -6.47"])
MORE = [("plane-type", "string", "plane"), ("pixel-size-x", "int", 10), ("bits-per-pixel", "int", 12),
        ("autoscale-state", "bool", "off"), ("scale-min", "int", 79), ("threshold-state", "string", "ThresholdOff"),
        ("stage-label", "string", "A01 : Site 1"), ("camera-binning-x", "int", 2), ("gain", "int", 1),
        ("_MagNA_", "float", 0.45), ("_MagRI_", "float", 1), ("_MagSetting_", "string", "10X Plan Apo"),
        ("ImageXpress Micro Objective", "string", "10X Plan Apo")]


def _change(**values: Any) -> list[tuple[str, str, Any]]:
    values = {k.replace("_", "-"): v for k, v in values.items()}
    return [(k, t, values.get(k, v)) for k, t, v in BASE if values.get(k, v) is not None]


# name -> (PlaneInfo props, Description, claimed?)
METASERIES: dict[str, tuple[list[tuple[str, str, Any]], str, bool]] = {
    "base": (BASE, f"Exposure: 20 ms{CR}Binning: 1 x 1", True),
    "real-description": (BASE, REAL_DESCRIPTION, True),
    "more-props": (BASE + MORE, REAL_DESCRIPTION, True),
    "no-description": (BASE, "", True),
    "exposure-33": (BASE, "Exposure: 33 ms", True),
    "exposure-20.7": (BASE, "Exposure: 20.7 ms", True),
    "no-name": (_change(image_name=None), "", True),
    "no-illumination": ([p for p in BASE if p[0] != "_IllumSetting_"], "", True),
    "no-wavelength": (_change(wavelength=None), "", True),
    "wavelength-0": (_change(wavelength=0), "", True),
    "no-calibration": (_change(spatial_calibration_x=None, spatial_calibration_y=None,
                               spatial_calibration_units=None), "", True),
    "no-time": (_change(acquisition_time_local=None, modification_time_local=None), "", True),
    "only-x": (_change(stage_position_y=None), "", True),
    "negative-position": (_change(stage_position_x=-1234.5678, stage_position_y=0), "", True),
    # declined: Bio-Formats reads "1.5 s" as 1.5 ms (0.0015 s) — it is wrong, we do not copy it
    "exposure-seconds": (BASE, "Exposure: 1.5 s", False),
    # declined: Bio-Formats takes nm as µm (PhysicalSizeX 0.65 µm for 0.65 nm)
    "calibration-nm": (_change(spatial_calibration_units="nm"), "", False),
    # declined: Bio-Formats fails (NumberFormatException) on a fractional wavelength
    "wavelength-fraction": (_change(wavelength=525.5), "", False),
}


def _metaseries(props: list[tuple[str, str, Any]], description: str) -> str:
    lines = ["<MetaData>", f'<prop id="Description" type="string" value="{description}"/>',
             '<prop id="MetaDataVersion" type="float" value="1"/>',
             '<prop id="ApplicationName" type="string" value="MetaXpress"/>', "<PlaneInfo>"]
    lines += [f'<prop id="{k}" type="{t}" value="{v}"/>' for k, t, v in props]
    lines += ["</PlaneInfo>", "<SetInfo>", '<prop id="number-of-planes" type="int" value="1"/>', "</SetInfo>",
              "</MetaData>"]
    return "\r\n".join(lines)


@pytest.fixture(scope="module")
def bioformats() -> BioFormatsEngine:
    return BioFormatsEngine()


@pytest.fixture(scope="module")
def tiff() -> TiffEngine:
    return TiffEngine()


def _claim(engine: TiffEngine, path: Path) -> int:
    return engine.claim(str(path), path.read_bytes()[:4096])


def _agree(tiff: TiffEngine, bioformats: BioFormatsEngine, path: Path) -> None:
    assert _claim(tiff, path) == CLAIM, f"{path.name} not claimed"
    ours, theirs = tiff.extract(str(path)), bioformats.extract(str(path))
    assert key_fields(ours) == key_fields(theirs)
    assert normalise(ours) == normalise(theirs)


@pytest.mark.parametrize("case", sorted(PLAIN))
def test_plain_tiff_agrees(case: str, tmp_path: Path, tiff: TiffEngine, bioformats: BioFormatsEngine) -> None:
    kwargs = dict(PLAIN[case])
    data = kwargs.pop("data")
    kwargs.setdefault("metadata", None)
    path = tmp_path / f"{case}.tif"
    tifffile.imwrite(path, data, **kwargs)
    _agree(tiff, bioformats, path)


@pytest.mark.parametrize("case", sorted(METASERIES))
def test_metaseries_tiff(case: str, tmp_path: Path, tiff: TiffEngine, bioformats: BioFormatsEngine) -> None:
    props, description, claimed = METASERIES[case]
    path = tmp_path / f"{case}.tif"
    tifffile.imwrite(path, np.zeros((8, 10), "uint16"), description=_metaseries(props, description),
                     software="MetaSeries", metadata=None, datetime="2016:05:01 09:30:01")
    if claimed:
        _agree(tiff, bioformats, path)
        return
    assert _claim(tiff, path) == 0
    if case == "wavelength-fraction":
        with pytest.raises(Exception, match="NumberFormatException"):
            bioformats.extract(str(path))
        return
    fields = key_fields(bioformats.extract(str(path)))
    if case == "exposure-seconds":
        assert fields["images"][0]["planes"][0]["exposure_time"] == [0.0015, "s"]
    if case == "calibration-nm":
        assert fields["images"][0]["pixels"]["physical_size_x"] == [0.65, "µm"]


@pytest.mark.parametrize(("stamp", "claimed"), [
    ("2016:05:01 09:30:45", True), ("20160501 09:30:45", True),  # EXIF's spelling and MetaMorph's
    ("20160501 09:30:45.746", True), ("2016:05:01 09:30:45.746", True), ("20161231 23:59:59.000", True),
    ("20160501 09:30:45.010", True),
    ("20160501 09:30:45.7", False),  # Bio-Formats reads 7 ms
    ("2016-05-01 09:30:45", False),  # Bio-Formats leaves it out
    ("20160231 09:30:45", False), ("20160501 9:30:45", False), ("05/01/2016 09:30:45", False),
])
@pytest.mark.parametrize("kind", ["plain", "metaseries"])
def test_datetime_spellings_bioformats_reads_are_claimed(stamp: str, claimed: bool, kind: str, tmp_path: Path,
                                                        tiff: TiffEngine, bioformats: BioFormatsEngine) -> None:
    path = tmp_path / "dated.tif"
    extra: dict[str, Any] = {"description": _metaseries(BASE, CR.join(["Exposure: 20 ms"])),
                             "software": "MetaSeries"} if kind == "metaseries" else {}
    tifffile.imwrite(path, np.zeros((8, 10), "uint16"), metadata=None, extratags=[(306, "s", 0, stamp, True)],
                     **extra)
    if claimed:
        _agree(tiff, bioformats, path)
        assert "<AcquisitionDate>" in tiff.extract(str(path))
    else:
        assert _claim(tiff, path) == 0


def test_metaxpress_and_cellvoyager_plates_agree(tmp_path: Path, tiff: TiffEngine,
                                                 bioformats: BioFormatsEngine) -> None:
    files = synth.write_metaxpress_plate(tmp_path / "mx", wells=3, sites=2, channels=2)
    files += synth.write_cellvoyager_plate(tmp_path / "cv", wells=2, sites=2, channels=2, zplanes=2)
    assert len(files) == 12 + 16
    for path in files:
        _agree(tiff, bioformats, path)


@pytest.mark.parametrize("sibling", ["plate.nd", "../PLATE.HTD", "metadata.txt"])
def test_siblings_that_make_bioformats_group_files_are_declined(sibling: str, tmp_path: Path,
                                                                 tiff: TiffEngine) -> None:
    folder = tmp_path / "TimePoint_1"
    path = synth.write_cellvoyager_plate(folder, wells=1, sites=1, channels=1)[0]
    assert _claim(TiffEngine(), path) == CLAIM
    (folder / sibling).write_text("x")
    assert _claim(TiffEngine(), path) == 0  # a fresh engine: listings are cached for a minute


def test_other_tiff_kinds_are_declined(tmp_path: Path, tiff: TiffEngine) -> None:
    cases = {
        "imagej.tif": {"imagej": True, "metadata": {"axes": "ZYX"}},
        "ome.ome.tif": {"metadata": {"axes": "ZYX"}},
        "multiline.tif": {"description": "line one\nline two", "metadata": None},
        "artist.tif": {"extratags": [(315, "s", 0, "Someone", True)], "metadata": None},
        # Bio-Formats' NikonTiffReader takes it (and fails on a description not EZ-C1's)
        "ez-c1.tif": {"software": "EZ-C1 3.91", "metadata": None},
    }
    for name, kwargs in cases.items():
        path = tmp_path / name
        tifffile.imwrite(path, np.zeros((2, 5, 7), "uint16"), **kwargs)
        assert _claim(tiff, path) == 0, name
    (tmp_path / "notiff.tif").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert _claim(tiff, tmp_path / "notiff.tif") == 0


def _write_every_variant(root: Path) -> list[Path]:
    root.mkdir()
    out = []
    for case, spec in sorted(PLAIN.items()):
        kwargs = dict(spec)
        data = kwargs.pop("data")
        kwargs.setdefault("metadata", None)
        tifffile.imwrite(root / f"{case}.tif", data, **kwargs)
        out.append(root / f"{case}.tif")
    for case, (props, description, _) in sorted(METASERIES.items()):
        tifffile.imwrite(root / f"ms-{case}.tif", np.zeros((8, 10), "uint16"),
                         description=_metaseries(props, description), software="MetaSeries", metadata=None,
                         datetime="2016:05:01 09:30:01")
        out.append(root / f"ms-{case}.tif")
    extra = {
        "imagej.tif": {"imagej": True, "metadata": {"axes": "ZYX"}},
        "ome.ome.tif": {"metadata": {"axes": "ZYX"}},
        "multiline.tif": {"description": "line one\nline two", "metadata": None},
        "artist.tif": {"extratags": [(315, "s", 0, "Someone", True)], "metadata": None},
        "latin1.tif": {"description": "caf\xe9", "metadata": None},
        "exif.tif": {"extratags": [(34665, "I", 1, 0, True)], "metadata": None},
        "jpeg.tif": {"compression": "jpeg", "metadata": None, "photometric": "rgb"},
        "subfile.tif": {"subfiletype": 1, "metadata": None},
    }
    for name, kwargs in extra.items():
        shape = (5, 8, 3) if name == "jpeg.tif" else (2, 5, 7)
        try:
            tifffile.imwrite(root / name, np.zeros(shape, "uint8" if name == "jpeg.tif" else "uint16"), **kwargs)
        except Exception:  # noqa: BLE001, S112 - a codec this tifffile lacks: that variant is simply not written
            continue
        out.append(root / name)
    return out


def test_fast_header_reader_and_tifffile_classify_alike(tmp_path: Path, corpus: Path) -> None:
    """The tifffile engine reads clean TIFFs with its own small header reader; it must give exactly what
    tifffile gives (or stand aside), on every variant the engine was proven on and on the corpus TIFFs."""
    from metaextract.engines.tiff import scan as _tiffscan
    from metaextract.engines.tiff.plain import inspect_tiff

    files = _write_every_variant(tmp_path / "variants")
    files += synth.write_metaxpress_plate(tmp_path / "mx", wells=2, sites=2, channels=2)
    files += synth.write_cellvoyager_plate(tmp_path / "cv", wells=2, sites=2, channels=2, zplanes=2)
    files += sorted(p for p in corpus.rglob("*") if p.suffix.lower() in (".tif", ".tiff", ".lsm", ".svs"))
    scanned = claimed = 0
    for path in files:
        fast, slow = inspect_tiff(str(path)), inspect_tiff(str(path), fast=False)
        assert fast == slow, path.name
        scanned += _tiffscan.scan(str(path)) is not None
        claimed += fast is not None
    assert scanned >= 90 and claimed >= 60  # the fast reader does read most of them (103, 101, 68 here)


def test_fast_metaseries_reader_agrees_with_the_xml_parser() -> None:
    """The plate path reads MetaSeries properties without an XML parser; wherever it answers, it must
    answer exactly as lxml does, and it must stand aside for whatever it does not know."""
    from metaextract.engines.tiff.metaseries import _read_fast, _read_xml

    base = _metaseries([("image-name", "string", "DAPI"), ("stage-position-x", "float", "-12.5")],
                       "Exposure: 20 ms&#13;&#10;Binning: 1 x 1")
    answered = {
        "plate": base,
        "tabs-and-newlines": base.replace('value="DAPI"', 'value="a\tb\r\nc\nd"'),
        "references": base.replace('value="DAPI"', 'value="&lt;x&gt; &amp; &quot;y&quot; &apos;z&apos; &#32;&#9;"'),
        "unicode": base.replace('value="DAPI"', 'value="Alexa Fluor® 488 µm"'),
        "line-end-references": base.replace('value="DAPI"', 'value="a&#13;&#10;b&#10;&#13;c&#10;"'),
        "line-ends-and-more": base.replace('value="DAPI"', 'value="a&#13;&#10;&amp;b&#10;\tc"'),
        "empty-blocks": "<MetaData><PlaneInfo></PlaneInfo><SetInfo></SetInfo></MetaData>",
        "duplicate-ids": base.replace('value="MetaXpress"/>', 'value="MetaXpress"/><prop id="ApplicationName" '
                                                              'type="string" value="other"/>'),
    }
    declined = {
        "single-quotes": base.replace('value="DAPI"', "value='DAPI'"),
        "attribute-order": base.replace('<prop id="image-name" type="string"', '<prop type="string" id="image-name"'),
        "extra-element": base.replace("<SetInfo>", "<Other/><SetInfo>"),
        "blocks-swapped": "<MetaData><SetInfo></SetInfo><PlaneInfo></PlaneInfo></MetaData>",
        "no-planeinfo": "<MetaData><SetInfo></SetInfo></MetaData>",
        "unknown-entity": base.replace('value="DAPI"', 'value="&nbsp;"'),
        "control-reference": base.replace('value="DAPI"', 'value="&#1;"'),
        "hex-reference": base.replace('value="DAPI"', 'value="&#x41;"'),
        "doctype": '<!DOCTYPE MetaData [<!ENTITY e "x">]>' + base,
        "gt-in-value": base.replace('value="DAPI"', 'value="a>b"'),
        "xml-declaration": '<?xml version="1.0"?>' + base,
        "comment": base.replace("<PlaneInfo>", "<!-- c --><PlaneInfo>"),
        "text-in-a-block": base.replace("<PlaneInfo>", "<PlaneInfo>x "),
        "text-between-props": base.replace('value="DAPI"/>', 'value="DAPI"/> y '),
        "text-between-blocks": base.replace("<SetInfo>", "z<SetInfo>"),
        "text-after-the-blocks": base.replace("</SetInfo>", "</SetInfo>z"),
        "a-second-planeinfo": base.replace("</PlaneInfo>", "</PlaneInfo><PlaneInfo></PlaneInfo>"),
    }
    for name, text in answered.items():
        fast = _read_fast(text)
        assert fast is not None, name
        assert fast == _read_xml(text), name
    for name, text in declined.items():
        assert _read_fast(text) is None, name
    assert _read_xml(answered["tabs-and-newlines"])[1]["image-name"] == "a b c d"  # type: ignore[index]
