"""Differential testing of ``auto`` against live Bio-Formats on TIFFs as instruments and programs write them
(issue 20.2, "wider claims").

:mod:`tests.test_differential_tiff` draws generic TIFFs; these are drawn (seeded) from what real writers
put in a TIFF besides its pixels, each variant in a folder of its own:

- **ImageJ re-saves**: hyperstacks written by tifffile's ImageJ writer (unit, spacing, frame interval,
  min/max, display ranges, labels, info and mode in the ImageJ metadata tag) and descriptions as ImageJ
  itself writes them (``ImageJ=1.54f`` … ``loop=false``), with resolution in none, inch or centimetre;
- **Photoshop and GIMP re-saves**: RGB with a ``Software`` tag, XMP, an ICC profile, Photoshop's image
  resources, a copyright, resolution in dots per inch or centimetre; sometimes Photoshop's layer data
  (ImageSourceData, which makes Bio-Formats use its Photoshop TIFF reader);
- **Nikon NIS-Elements**: its ``Software`` and, in most variants, its private tags (65330 and others);
- **Leica LAS and Olympus FluoView-like** descriptions and software;
- **SEM**: FEI's ``FEI_SFEG``/``FEI_HELIOS`` (34680/34682) and Zeiss' ``CZ_SEM`` (34118) tags.

For each, the native answer ``auto`` gives must equal Bio-Formats' whole document (compared by
:func:`tests._differential.compare_with_bioformats`); what the native TIFF engines leave to Bio-Formats is
counted by their reason. Nothing here is copied from the engines: the expected document is the JVM's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from ._differential import Tally, compare_with_bioformats

SEED = 20
PER_KIND = 16
AGREE_FLOOR = {"tifffile": 25, "tifffile-imagej": 20}  #: native answers that must equal Bio-Formats' whole

Writer = Callable[[random.Random], tuple[np.ndarray[Any, Any], dict[str, Any], str]]
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
       b' xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="%s"/></rdf:RDF></x:xmpmeta>'
       b'<?xpacket end="w"?>')


def _pixels(rng: random.Random, shape: tuple[int, ...], dtype: str) -> np.ndarray[Any, Any]:
    return (np.random.default_rng(rng.randrange(1 << 30)).random(shape) * 100).astype(dtype)


def _icc(rng: random.Random) -> bytes:
    """Bytes shaped like an ICC profile's header (nobody parses the profile, only its length is kept)."""
    body = bytes(rng.randrange(256) for _ in range(rng.choice((128, 560))))
    return len(body).to_bytes(4, "big") + b"lcms" + body[8:]


def _irb(rng: random.Random) -> bytes:
    """Photoshop image resource blocks: a resolution-info block (1005) and a version block (1057)."""
    block = b"8BIM" + (1005).to_bytes(2, "big") + b"\x00\x00" + (16).to_bytes(4, "big") + bytes(16)
    return block + b"8BIM" + (1057).to_bytes(2, "big") + b"\x00\x00" + (4).to_bytes(4, "big") + bytes(
        [0, 0, 0, rng.randrange(1, 9)])


def imagej_written(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any], str]:
    """A hyperstack through tifffile's ImageJ writer, with the metadata ImageJ keeps."""
    axes = rng.choice(("YX", "ZYX", "CYX", "TYX", "TZCYX", "ZCYX", "YXS", "TYXS"))
    sizes = {"T": rng.choice((1, 2, 3)), "Z": rng.choice((1, 2, 4)), "C": rng.choice((1, 2, 3)), "S": 3}
    height, width = rng.choice((5, 16, 31)), rng.choice((7, 16, 40))
    shape = tuple(sizes.get(axis, height if axis == "Y" else width) for axis in axes)
    rgb = axes.endswith("S")
    dtype = "uint8" if rgb else rng.choice(("uint8", "uint16", "float32"))
    metadata: dict[str, Any] = {"axes": axes}
    label = [axes, dtype]
    if rng.random() < 0.6:
        metadata["unit"] = rng.choice(("um", "micron", "\\u00B5m", "mm", "nm", "pixel", "inch"))
    if "Z" in axes and rng.random() < 0.7:
        metadata["spacing"] = rng.choice((0.5, 1.0, 0.2, 2.5, 0.001))
    if "T" in axes and rng.random() < 0.7:
        metadata["finterval"] = rng.choice((0.1, 1.0, 60.0, 0.033))
    if rng.random() < 0.5:
        metadata.update(min=0.0, max=float(rng.choice((255, 4095, 65535))))
    channels = sizes["C"] if "C" in axes else 1
    if rng.random() < 0.4:
        metadata["Ranges"] = (0.0, 255.0) * channels
    if rng.random() < 0.4:
        metadata["Labels"] = [f"plane {k}" for k in range(int(np.prod(shape[:-3 if rgb else -2], dtype=int)))]
    if rng.random() < 0.3:
        metadata["Info"] = rng.choice(("Exposure: 20 ms", "Objective: 40x/0.95\nCamera: sCMOS",
                                       "slices=7\nspacing=3"))  # (the last one Bio-Formats parses as sizes)
    if channels > 1 and rng.random() < 0.5:
        metadata["mode"] = rng.choice(("composite", "color", "grayscale"))
    kwargs: dict[str, Any] = {"imagej": True, "metadata": metadata, "byteorder": rng.choice(("<", ">"))}
    if rgb:
        kwargs["photometric"] = "rgb"
    if rng.random() < 0.7:
        pixel = rng.choice((0.1625, 0.65, 2.0, 1 / 3))
        kwargs["resolution"] = (1 / pixel, 1 / pixel)
        kwargs["resolutionunit"] = rng.choice(("NONE", "NONE", "CENTIMETER", "INCH"))
        label.append(f"res {pixel:.4g}/{kwargs['resolutionunit']}")
    label.append(" ".join(f"{key}={value}" for key, value in metadata.items() if key not in ("Labels", "Ranges"))
                 + (" +labels" if "Labels" in metadata else "") + (" +ranges" if "Ranges" in metadata else ""))
    return _pixels(rng, shape, dtype), kwargs, "imagej: " + " ".join(label)


def imagej_itself(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any], str]:
    """A description as ImageJ's own ``FileSaver`` writes it, over plain pages (no ``Software`` tag)."""
    channels, slices, frames = rng.choice((1, 2)), rng.choice((1, 3)), rng.choice((1, 2))
    lines = [f"ImageJ={rng.choice(('1.54f', '1.53t', '1.52p'))}", f"images={channels * slices * frames}"]
    lines += [f"{key}={n}" for key, n in (("channels", channels), ("slices", slices), ("frames", frames)) if n > 1]
    if channels * slices * frames > 1 and rng.random() < 0.7:
        lines.append("hyperstack=true")
    if channels > 1:
        lines.append(f"mode={rng.choice(('composite', 'grayscale'))}")
    unit = rng.choice(("micron", "\\u00B5m", "um", "nm", None))
    if unit is not None:
        lines.append(f"unit={unit}")
    if slices > 1 and rng.random() < 0.7:
        lines.append(f"spacing={rng.choice(('0.5', '1.0000000000000002', '0.29'))}")
    if frames > 1 and rng.random() < 0.6:
        lines.append(f"finterval={rng.choice(('2', '0.5', '30.0'))}")
    if rng.random() < 0.5:
        vunit = rng.choice(("Gray Value", "Gray Value", "Intensity", "mm"))  # (the last unit=WORD counts)
        lines.append(f"cf=0\nc0={rng.choice(('-32768.0', '0.0'))}\nc1=1.0\nvunit={vunit}")
    lines.append("loop=false")
    if rng.random() < 0.7:
        lines += ["min=0.0", f"max={rng.choice(('255.0', '1023.0'))}"]
    if rng.random() < 0.3:
        lines.append(f"xorigin={rng.choice(('0', '12.5'))}")
    dtype = rng.choice(("uint8", "uint16", "float32"))
    kwargs: dict[str, Any] = {"description": "\n".join(lines) + "\n", "metadata": None, "software": None,
                              "byteorder": ">", "photometric": "minisblack"}
    if rng.random() < 0.8:
        kwargs.update(resolution=(rng.choice((6.1538, 1.0, 3.3333)),) * 2,
                      resolutionunit=rng.choice(("NONE", "NONE", "INCH", "CENTIMETER")))
    shape = (channels * slices * frames, rng.choice((8, 21)), rng.choice((8, 33)))
    return _pixels(rng, shape, dtype), kwargs, "imagej itself: " + " | ".join(lines[2:]) + f" {dtype}"


def photoshop(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any], str]:
    """An RGB re-save by Photoshop or GIMP: software, XMP, ICC, image resources, dots per inch."""
    program = rng.choice(("Adobe Photoshop 21.2 (Windows)", "Adobe Photoshop CC 2019 (Macintosh)",
                          "GIMP 2.10.30", "GIMP 2.10.8"))
    dtype = rng.choice(("uint8", "uint8", "uint16"))
    shape = (rng.choice((9, 32)), rng.choice((12, 48)), 3)
    extratags: list[tuple[Any, ...]] = []
    label = [program, dtype]
    for code, what, make in ((700, "xmp", lambda: XMP % program.encode()), (34675, "icc", lambda: _icc(rng)),
                             (34377, "irb", lambda: _irb(rng)), (33432, "copyright", lambda: None)):
        if rng.random() < 0.5:
            if code == 33432:
                extratags.append((code, "s", 0, "(c) 2020 Lab", True))
            else:
                extratags.append((code, "B", 0, make(), True))
            label.append(what)
    if program.startswith("Adobe") and rng.random() < 0.2:
        extratags.append((37724, "B", 0, b"Adobe Photoshop Document Data Block\x00" + bytes(16), True))
        label.append("layers")
    kwargs: dict[str, Any] = {"photometric": "rgb", "metadata": None, "software": program,
                              "byteorder": rng.choice(("<", ">")), "extratags": extratags}
    if rng.random() < 0.8:
        dpi = rng.choice((72, 96, 300, 118.11))
        kwargs.update(resolution=(dpi, dpi), resolutionunit="CENTIMETER" if dpi == 118.11 else "INCH")
        label.append(f"{dpi} dpi")
    if rng.random() < 0.5:
        kwargs["datetime"] = rng.choice(("2020:06:01 12:00:00", "2021:11:30 08:15:42"))
    if program.startswith("GIMP") and rng.random() < 0.5:
        kwargs["description"] = "Created with GIMP"
    return _pixels(rng, shape, dtype), kwargs, "re-save: " + " ".join(label)


def nikon_nis(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any], str]:
    """NIS-Elements' TIFF export (its software and, mostly, its private tags), or the EZ-C1 confocal's."""
    software = rng.choice(("NIS-Elements AR 5.21.00", "NIS-Elements BR 4.60.00", "EZ-C1 3.91"))
    extratags: list[tuple[Any, ...]] = []
    label = [software]
    if software.startswith("EZ-C1"):  # the confocal's software, which Bio-Formats' NikonTiffReader takes
        description = rng.choice((None, "Nikon EZ-C1", "plain"))
        if description is not None:
            extratags.append((270, "s", 0, description, True))
        label.append(repr(description))
    elif rng.random() < 0.7:
        tags = rng.choice(((65330,), (65326, 65327), (65330, 65331, 65332)))
        for code in tags:
            value = (b"<?xml version=\"1.0\"?><variant version=\"1.0\"><no_name runtype=\"CLxListVariant\">"
                     b"<dPixelSize runtype=\"double\" value=\"0.1625\"/></no_name></variant>"
                     if code == 65330 else bytes(rng.randrange(256) for _ in range(24)))
            extratags.append((code, "B", 0, value, True))
        label.append("tags " + ",".join(map(str, tags)))
    dtype = rng.choice(("uint16", "uint8"))
    pages = rng.choice((1, 1, 3))
    shape = (pages, 16, 20) if pages > 1 else (16, 20)
    kwargs: dict[str, Any] = {"metadata": None, "software": software, "extratags": extratags,
                              "photometric": "minisblack", "resolution": (6.1538, 6.1538),
                              "resolutionunit": rng.choice(("CENTIMETER", "INCH", "NONE"))}
    return _pixels(rng, shape, dtype), kwargs, "nis: " + " ".join(label) + f" {dtype} x{pages}"


def leica_olympus(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any], str]:
    """Leica LAS and Olympus FluoView / cellSens exports as their ``Software`` and description say."""
    software, description = rng.choice((
        ("LAS AF 2.7.3", None), ("LAS X 3.7.4", "Leica Microsystems LAS X export"), ("LAS V4.12", "Image 1"),
        ("FV10-ASW 4.2", "[Acquisition Parameters Common]\nMagnification=60.0\nFLUOVIEW"),
        ("Olympus cellSens Dimension 2.3", None), ("cellSens Dimension", "Olympus microscope image"),
        ("MetaMorph 7.8", None), ("analySIS 5.0", None), ("Aperture 3.1", "Mikroscan SL5")))
    dtype = rng.choice(("uint16", "uint8"))
    kwargs: dict[str, Any] = {"metadata": None, "software": software, "photometric": "minisblack"}
    if description is not None:
        kwargs["description"] = description
    if rng.random() < 0.6:
        kwargs.update(resolution=(15384.615, 15384.615), resolutionunit="CENTIMETER")
    return _pixels(rng, (24, 30), dtype), kwargs, f"vendor: {software} / {description!r} {dtype}"


def sem(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any], str]:
    """FEI (Helios, SFEG) and Zeiss SEM images: their INI-like or CZ_SEM tag."""
    kind = rng.choice(("helios", "sfeg", "cz_sem"))
    if kind == "cz_sem":  # (key, value, "label = shown value") triples after a blank line and a count
        size = rng.choice(("1.25e-08", "3.1e-09", "2e-07"))
        text = (f"\r\n0\r\nAP_PIXEL_SIZE\r\n{size}\r\nImage Pixel Size = {float(size) * 1e9:g} nm\r\n"
                "AP_WD\r\n0.0051\r\nWD = 5.1 mm\r\n")
        tag: tuple[Any, ...] = (34118, "s", 0, text, True)
        software = None
    elif kind == "helios":
        text = ("[User]\r\nDate=06/01/2020\r\nTime=10:22:15 AM\r\nUser=supervisor\r\n[System]\r\n"
                "SystemType=Helios G4\r\n[Beam]\r\nHV=5000\r\n[Scan]\r\nPixelWidth=1.2e-08\r\n"
                "PixelHeight=1.2e-08\r\nFrameTime=2.5\r\n[Stage]\r\nStageX=0.001\r\nStageY=0.002\r\nStageZ=0\r\n")
        tag = (34682, "s", 0, text, True)
        software = rng.choice((None, "xT Microscope Control"))
    else:
        text = ("[DatabarData]\r\nImageName=grid\r\nszUserText=tin on carbon\r\n[Vector]\r\nMagnification=5000\r\n"
                "[Vector.Sysscan]\r\nPositionX=0.25\r\nPositionY=-0.5\r\n[Vector.Video.Detectors]\r\n"
                "NrDetectorsConnected=2\r\nDetector_0_Name=SE\r\nDetector_1_Name=BSE\r\n")
        tag = (34680, "s", 0, text, True)
        software = None
    dtype = rng.choice(("uint8", "uint16"))
    kwargs: dict[str, Any] = {"metadata": None, "software": software, "extratags": [tag],
                              "photometric": "minisblack"}
    return _pixels(rng, (20, 24), dtype), kwargs, f"sem: {kind} {software} {dtype}"


#: kind -> (writer, the native engine asked why when ``auto`` leaves a variant to Bio-Formats)
KINDS: dict[str, tuple[Writer, str]] = {
    "imagej-tifffile": (imagej_written, "tifffile-imagej"), "imagej-itself": (imagej_itself, "tifffile-imagej"),
    "photoshop-gimp": (photoshop, "tifffile"), "nikon-nis": (nikon_nis, "tifffile"),
    "leica-olympus": (leica_olympus, "tifffile"), "sem": (sem, "tifffile"),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Path, str]]]:
    folder = tmp_path_factory.mktemp("instrument-variants")
    rng = random.Random(SEED)
    made: dict[str, list[tuple[Path, str]]] = {}
    for kind, (writer, _) in KINDS.items():
        for index in range(PER_KIND):
            data, kwargs, label = writer(rng)
            path = folder / f"{kind}{index:02d}" / f"{kind}{index:02d}.tif"  # one folder each: no siblings
            path.parent.mkdir()
            tifffile.imwrite(path, data, **kwargs)
            made.setdefault(kind, []).append((path, label))
    return made


@pytest.mark.slow
def test_every_native_answer_on_instrument_tiffs_equals_live_bioformats(
        variants: dict[str, list[tuple[Path, str]]]) -> None:
    tallies: dict[str, Tally] = {}
    for kind, made in variants.items():
        tallies[kind] = compare_with_bioformats(made, KINDS[kind][1])
        print(f"\n{kind}: " + tallies[kind].report(len(made)))
    mismatches = [m for tally in tallies.values() for m in tally.mismatches]
    assert mismatches == [], "\n".join(mismatches)
    for kind, tally in tallies.items():  # where Bio-Formats fails, no native engine answers
        assert all("(auto: bioformats failed" in failure for failure in tally.bioformats_fails), (kind, tally)
    agree = {name: sum(t.answered[name] for t in tallies.values()) for name in AGREE_FLOOR}
    for name, floor in AGREE_FLOOR.items():  # the comparison has teeth: both engines answered, and agreed
        assert agree[name] >= floor, (name, agree)
    # what only Bio-Formats' own readers give is left to it: FEI and Photoshop layer data, Nikon's tags
    assert tallies["sem"].answered["bioformats"] == PER_KIND
