"""The ImageJ engine (``tifffile-imagej``) against the corpus reference and the live Bio-Formats engine.

Every corpus ImageJ TIFF and every hyperstack written here that the engine claims must give Bio-Formats'
normalised OME-XML. The files it declines are the ones where Bio-Formats is wrong about the file (the
evidence is asserted next to each case) or where the mapping is unproven; MetaMorph STK and Zeiss LSM
files are declined (left to Bio-Formats, whose readers add instrument, detector and stage metadata this
engine does not write).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from metaextract import engines
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.tiff.kinds import CLAIM, IMAGEJ, ImageJEngine, java_resolution, parse_description
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise

CORPUS_IMAGEJ = ("5channel.tif", "ADSAWorm2x384wp_A03_w22D06038D-D9FD-4DE3-95F6-3D9430FBA9A5.tif", "HeLa00.tif",
                 "IXMtest_A02_s9.tif", "Well96_CH2.ome00.tif", "_blobs_3d_fiji_skeleton.tif",
                 "calcium.ome0000.tif")
DECLINED_CORPUS = ("metamorph-stk/MetamorphImage.tif", "zeiss-lsm/test.lsm")


def _ij(shape: tuple[int, ...], dtype: str = "uint16", **kwargs: Any) -> dict[str, Any]:
    """tifffile ``imwrite(..., imagej=True)`` arguments."""
    return {"data": np.zeros(shape, dtype), "imagej": True, **kwargs}


def _raw(description: str, pages: int = 2, **kwargs: Any) -> dict[str, Any]:
    """A TIFF with a hand-written ImageJ description (keys tifffile's ImageJ writer does not produce)."""
    kwargs.setdefault("resolution", (4.0, 4.0))
    kwargs.setdefault("resolutionunit", "NONE")
    return {"data": np.zeros((pages, 5, 7), "uint16"), "description": description, "metadata": None,
            "photometric": "minisblack", **kwargs}


#: Hyperstacks the engine claims; each must equal Bio-Formats' document.
CLAIMED: dict[str, dict[str, Any]] = {
    "tzcyx": _ij((3, 2, 4, 5, 7), metadata={"axes": "TZCYX", "spacing": 0.5, "unit": "um", "finterval": 2.5},
                 resolution=(2.0, 2.0)),
    "zyx-micron": _ij((4, 5, 7), "uint8", metadata={"axes": "ZYX", "spacing": 1.25, "unit": "micron"},
                      resolution=(4.8837, 4.8837)),
    "negative-spacing": _ij((2, 5, 7), metadata={"axes": "ZYX", "spacing": -3.0, "unit": "micron"}),
    "cyx-float": _ij((3, 5, 7), "float32", metadata={"axes": "CYX"}),
    "tyx-big-endian": _ij((2, 5, 7), metadata={"axes": "TYX", "finterval": 0.1}, byteorder=">"),
    "long-series": _ij((40, 5, 7), "uint8", metadata={"axes": "TYX", "finterval": 0.033}),
    "ctyx": _ij((4, 3, 5, 7), metadata={"axes": "TCYX"}),
    "rgb-stack": _ij((2, 5, 7, 3), "uint8", metadata={"axes": "ZYXS"}, photometric="rgb"),
    "rgb-single": _ij((5, 7, 3), "uint8", metadata={"axes": "YXS"}, photometric="rgb"),
    "datetime": _ij((5, 7), metadata={}, datetime="2020:01:02 03:04:05"),
    "unit-mm-xy": _ij((2, 5, 7), metadata={"axes": "ZYX", "unit": "mm"}, resolution=(4.0, 4.0)),
    "unit-nm-xy": _ij((5, 7), metadata={"unit": "nm"}, resolution=(0.1, 0.1)),
    "unit-cm-resunit-cm": _ij((5, 7), "uint8", metadata={"unit": "cm"}, resolution=(49999.999, 49999.999),
                              resolutionunit="CENTIMETER"),
    "unit-pixel": _ij((5, 7), metadata={"unit": "pixel"}, resolution=(0.5, 0.5)),
    "ij-metadata": _ij((3, 5, 7), metadata={"axes": "CYX", "Labels": ["a", "b", "c"], "Ranges": (0, 1) * 3,
                                             "Info": "Exposure: 10 ms\nObjective: 20x", "mode": "composite"}),
    "unit-blank": _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit= \nloop=false", resolution=(1.0, 1.0)),
    "escaped-micron-spacing": _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit=\\u00B5m\nspacing=0.3"),
    "min-max-origin": _raw("ImageJ=1.53c\nimages=2\nframes=2\nxorigin=3\nyorigin=4\nmin=1.0\nmax=9.0\nfps=5"),
    "int16": _raw("ImageJ=1.53c\nimages=2\nchannels=2\nmode=composite", dtype="int16"),
    "resunit-inch": _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit=micron", resolutionunit="INCH"),
    "unit-inch": _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit=inch"),  # a word Bio-Formats does not know: µm
    "vunit-after-unit": _raw("ImageJ=1.54f\nimages=2\nslices=2\nunit=micron\nspacing=0.5\ncf=0\nc0=-32768.0\n"
                             "c1=1.0\nvunit=Gray Value\nloop=false"),  # the last unit= is "Gray": µm
    "resunit-cm-unit-mm": _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit=mm", resolutionunit="CENTIMETER"),
}


@pytest.fixture(scope="module")
def bioformats() -> BioFormatsEngine:
    return BioFormatsEngine()


@pytest.fixture(scope="module")
def imagej() -> ImageJEngine:
    return ImageJEngine()


def _write(folder: Path, name: str, spec: dict[str, Any]) -> Path:
    kwargs = dict(spec)
    data = kwargs.pop("data")
    dtype = kwargs.pop("dtype", None)
    if dtype is not None:
        data = data.astype(dtype)
    path = folder / name
    tifffile.imwrite(path, data, **kwargs)
    return path


def _claim(engine: ImageJEngine, path: Path) -> int:
    return engine.claim(str(path), read_head(str(path)))


@pytest.mark.parametrize("name", CORPUS_IMAGEJ)
def test_corpus_imagej_tiff_equals_the_reference(name: str, corpus: Path, reference: Path,
                                                 imagej: ImageJEngine) -> None:
    rel = f"imagej-tiff/{name}"
    path = corpus / rel
    assert _claim(imagej, path) == CLAIM
    ours = imagej.extract(str(path))
    expected = (reference / f"{rel}.xml").read_text(encoding="utf-8")
    assert key_fields(ours) == key_fields(expected)
    assert normalise(ours) == normalise(expected)


@pytest.mark.parametrize("rel", CORPUS_IMAGEJ)
def test_auto_routes_corpus_imagej_natively_and_sanity_passes(rel: str, corpus: Path) -> None:
    path = str(corpus / "imagej-tiff" / rel)
    assert engines.choose(path, read_head(path), "auto").name == IMAGEJ
    result = extract_file(path, "auto")
    assert result.status == "ok", result.error
    assert result.engine == IMAGEJ and result.valid, result.validation_error


@pytest.mark.parametrize("rel", DECLINED_CORPUS)
def test_stk_and_lsm_are_not_imagej_hyperstacks(rel: str, corpus: Path, imagej: ImageJEngine) -> None:
    path = str(corpus / rel)
    assert _claim(imagej, corpus / rel) == 0
    # each goes to its own engine, which gives Bio-Formats' whole document (issue 20)
    assert engines.choose(path, read_head(path), "auto").name in ("tifffile-lsm", "tifffile-stk")


@pytest.mark.parametrize("case", sorted(CLAIMED))
def test_synthetic_hyperstack_agrees_with_live_bioformats(case: str, tmp_path: Path, imagej: ImageJEngine,
                                                          bioformats: BioFormatsEngine) -> None:
    path = _write(tmp_path, f"{case}.tif", CLAIMED[case])
    assert _claim(imagej, path) == CLAIM, f"{case} not claimed"
    ours, theirs = imagej.extract(str(path)), bioformats.extract(str(path))
    assert key_fields(ours) == key_fields(theirs)
    assert normalise(ours) == normalise(theirs)


def _pixels(xml: str) -> dict[str, Any]:
    return dict(key_fields(xml)["images"][0]["pixels"])


def test_declined_where_bioformats_is_wrong(tmp_path: Path, imagej: ImageJEngine,
                                            bioformats: BioFormatsEngine) -> None:
    # the spacing is in mm (ImageJ's unit), Bio-Formats labels it µm: 1000x too small
    mm = _write(tmp_path, "spacing-mm.tif", _ij((2, 5, 7), metadata={"axes": "ZYX", "spacing": 0.25, "unit": "mm"},
                                                 resolution=(4.0, 4.0)))
    assert _claim(imagej, mm) == 0
    px = _pixels(bioformats.extract(str(mm)))
    assert px["physical_size_x"] == [0.25, "mm"] and px["physical_size_z"] == [0.25, "µm"]
    # an inch resolution converted to µm, then labelled with the description's unit: 6350 "mm" for 6.35 mm
    inch = _write(tmp_path, "inch-mm.tif", _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit=mm", resolutionunit="INCH"))
    assert _claim(imagej, inch) == 0
    assert _pixels(bioformats.extract(str(inch)))["physical_size_x"] == [6350.0, "mm"]
    # the frame interval is in minutes (tunit), Bio-Formats reports seconds
    minutes = _write(tmp_path, "tunit.tif", _raw("ImageJ=1.53c\nimages=2\nframes=2\nfinterval=5\ntunit=min"))
    assert _claim(imagej, minutes) == 0
    assert 'TimeIncrement="5.0"' in (xml := bioformats.extract(str(minutes))) and 'TimeIncrementUnit="s"' in xml
    # Bio-Formats appends the ImageJ metadata tag (Info) to the description and parses its lines as sizes
    info = _write(tmp_path, "info.tif", _ij((2, 5, 7), metadata={"axes": "TYX", "Info": "slices=2\nframes=1"}))
    assert _claim(imagej, info) == 0
    px = _pixels(bioformats.extract(str(info)))
    assert (px["size_z"], px["size_t"]) == (2, 1)


DECLINED: dict[str, dict[str, Any]] = {
    "unknown-key": _raw("ImageJ=1.53c\nimages=2\nslices=2\nzslicing=odd"),
    "not-an-integer": _raw("ImageJ=1.53c\nimages=2\nslices=two"),
    "crlf": _raw("ImageJ=1.53c\r\nimages=2\r\nslices=2"),
    "sizes-do-not-match-ifds": _raw("ImageJ=1.53c\nimages=6\nslices=3\nchannels=2", pages=4),
    "unknown-unit": _raw("ImageJ=1.53c\nimages=2\nslices=2\nunit=furlong"),
    "spacing-without-unit": _raw("ImageJ=1.53c\nimages=2\nslices=2\nspacing=2"),
    "zero-interval": _raw("ImageJ=1.53c\nimages=2\nframes=2\nfinterval=0"),
    "rgb-channels": {"data": np.zeros((2, 5, 7, 3), "uint8"), "photometric": "rgb", "metadata": None,
                     "description": "ImageJ=1.53c\nimages=2\nchannels=2"},
    "metamorph-software": _raw("ImageJ=1.53c\nimages=2\nslices=2", software="MetaMorph 7.8"),
    "artist": _raw("ImageJ=1.53c\nimages=2\nslices=2", extratags=[(315, "s", 0, "Someone", True)]),
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_unproven_files_are_declined(case: str, tmp_path: Path, imagej: ImageJEngine) -> None:
    path = _write(tmp_path, f"{case}.tif", DECLINED[case])
    assert _claim(imagej, path) == 0


def test_names_siblings_and_other_files_are_declined(tmp_path: Path) -> None:
    spec = _ij((2, 5, 7), metadata={"axes": "ZYX"})
    ome = _write(tmp_path, "x.ome.tif", spec)
    assert _claim(ImageJEngine(), ome) == 0
    folder = tmp_path / "plate"
    folder.mkdir()
    path = _write(folder, "a.tif", spec)
    assert _claim(ImageJEngine(), path) == CLAIM
    (folder / "plate.nd").write_text("x")
    assert _claim(ImageJEngine(), path) == 0  # a fresh engine: listings are cached for a minute
    bigtiff = _write(tmp_path, "big.tif", {**spec, "bigtiff": True, "imagej": False, "metadata": None,
                                            "description": "ImageJ=1.53c\nimages=2\nslices=2"})
    assert _claim(ImageJEngine(), bigtiff) == 0
    plain = _write(tmp_path, "plain.tif", {"data": np.zeros((5, 7), "uint16"), "metadata": None})
    assert _claim(ImageJEngine(), plain) == 0
    (tmp_path / "notiff.tif").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert _claim(ImageJEngine(), tmp_path / "notiff.tif") == 0


def test_extract_without_claim_and_of_a_declined_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.tif", _ij((2, 5, 7), metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"}))
    xml = ImageJEngine().extract(str(path))
    assert _pixels(xml)["physical_size_z"] == [2.0, "µm"]
    declined = _write(tmp_path, "b.tif", _raw("ImageJ=1.53c\nimages=2\nslices=two"))
    with pytest.raises(engines.ExtractionError):
        ImageJEngine().extract(str(declined))
    (tmp_path / "c.tif").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(engines.UnsupportedFormatError):
        ImageJEngine().extract(str(tmp_path / "c.tif"))


def test_description_parser_and_java_resolution() -> None:
    desc = parse_description("ImageJ=1.53c\nchannels=2\nslices=3\nframes=4\nspacing=0.5\nunit=micron\nslices=5")
    assert desc is not None and (desc.channels, desc.slices, desc.frames, desc.spacing) == (2, 5, 4, 0.5)
    assert parse_description("ImageJ=1.53c\nspacing=1d") is None  # Java reads 1d, Python does not
    assert parse_description("imagej=1.53c") is None

    class _Tag:
        def __init__(self, value: Any) -> None:
            self.value = value

    class _Page:
        tags = {282: _Tag((4883720, 1000000)), 296: _Tag(1)}

    # Java's 1 / (num / den), not den / num (0.20476194376417978): the reference's last digit
    assert java_resolution(_Page(), 282) == 0.20476194376417975
    assert java_resolution(_Page(), 283) is None
