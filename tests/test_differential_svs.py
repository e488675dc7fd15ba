"""Differential testing of ``auto`` against the live Bio-Formats engine on generated Aperio SVS files (issue 20).

Variants are written with tifffile (the page writer of tests/test_engines_svs.py): one to four tiled pyramid
levels of random sizes (the reduced ones in or out of IFD order), with or without a stripped thumbnail as IFD 1,
a label and a macro image found by their description or by their NewSubfileType alone (or with a
NewSubfileType of 0), RGB 8/16-bit or grey 8/16/32-bit float, either byte order, classic or Big
TIFF; each description's ``key = value`` fields drawn the ways ScanScope files differ (``AppMag``, ``MPP`` per
level, ``Date``/``Time``, ``Left``/``Top``, ``Dye``, the fields that change nothing, the comment token), the
last or first of each met in Bio-Formats' order; and some kinds the engine leaves to Bio-Formats (a Z stack,
wavelengths, an ``MPP`` so small Bio-Formats changes units, a two-digit year at Java's century pivot, a
``DisplayColor`` that is not a number). Every variant is drawn with a seed, so a failure is reproducible.

Each is read in ``auto`` and by live Bio-Formats
(:func:`tests._differential.compare_with_bioformats`): wherever the svs engine
answers, its document is Bio-Formats' whole; what it declines is counted and listed with the reason.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ._differential import compare_with_bioformats, engine_reason
from .test_engines_svs import BASE, HDR, _write

SEED = 20
VARIANTS = 48
PIVOT = (date.today().year - 80) % 100  # Java's SimpleDateFormat: two-digit years within 80 years back


def _fields(rng: random.Random, mpp: float | None) -> str:
    """One description's ``|key = value`` fields (an MPP for the level when given)."""
    out = []
    if mpp is not None:
        out.append(f"MPP = {rng.choice((f'{mpp:.4f}', repr(mpp), f'{mpp:.6f}', f' {mpp:.3f} '))}")
    if rng.random() < 0.6:
        out.append(f"AppMag = {rng.choice(('20', '40', '10.5', '63', '40.000', '2.5'))}")
    if rng.random() < 0.5:
        out += [f"Date = {rng.choice(('05/17/21', '12/29/09', '01/02/99', '02/29/24'))}",
                f"Time = {rng.choice(('13:45:01', '00:00:00', '23:59:59'))}"]
    if rng.random() < 0.3:
        out.append(f"Left = {rng.choice(('10.5', '0', '-3.25', '25.691574'))}")
    if rng.random() < 0.3:
        out.append(f"Top = {rng.choice(('3.25', '23.449873', '-1'))}")
    if rng.random() < 0.2:
        out.append(f"Dye = {rng.choice(('DAPI', 'FITC', 'Cy5'))}")
    for key, values in (("StripeWidth", ("2040", "1000")), ("ScanScope ID", ("SS1234",)), ("Filename", ("slide 7",)),
                        ("Title", ("", "a & b")), ("DisplayColor", ("0", "65280")), ("Exposure Time", ("109",))):
        if rng.random() < 0.15:
            out.append(f"{key} = {rng.choice(values)}")
    rng.shuffle(out)
    return "".join(f"|{field}" for field in out)


#: a field that makes the engine decline, added to one level now and then
DECLINED = ("TotalDepth = 3", "OffsetZ = 1", "Emission Wavelength = 520", "Excitation Wavelength = 488",
            "MPP = 0.0001", f"Date = 01/01/{PIVOT:02d}|Time = 00:00:00", "DisplayColor = red")


def svs_variant(rng: random.Random, path: Path) -> str:
    kind = rng.choice(("rgb", "rgb", "rgb", "rgb16", "grey8", "grey16", "float"))
    dtype = {"rgb16": "uint16", "grey16": "uint16", "float": "float32"}.get(kind, "uint8")

    def shape(y: int, x: int) -> tuple[int, ...]:
        return (y, x, 3) if kind.startswith("rgb") else (y, x)

    height, width = rng.choice((96, 128, 200, 256)), rng.choice((128, 160, 256, 300))
    mpp = rng.choice((0.252, 0.499, 1.0, 0.5, 2.0))
    tile = rng.choice(((16, 16), (32, 32), (64, 64)))
    head = rng.choice((HDR, "Aperio Image Library v9  \n", "Aperio Image Library v12.0.15 \r\n"))
    comment = rng.choice((BASE, "46000x32914 [0,100 46000x32914] (240x240) JPEG/RGB Q=70", "Whole slide",
                          "a & <b>", "line 1\nline 2"))
    levels = rng.choice((1, 2, 2, 3, 4))
    scales = [2 ** level for level in range(levels)]
    if rng.random() < 0.3:  # the reduced levels out of IFD order (Bio-Formats sorts them by size)
        scales[1:] = rng.sample(scales[1:], len(scales) - 1)
    pages: list[dict[str, Any]] = []
    for level, scale in enumerate(scales):
        desc = head + comment + (f" -> {width // scale}x{height // scale}" if level else "")
        with_mpp = rng.random() < 0.85 or level == 0
        pages.append({"shape": shape(height // scale, width // scale), "tile": tile, "dtype": dtype,
                      "desc": desc + _fields(rng, mpp * scale if with_mpp else None)})
    thumbnail = rng.random() < 0.6 or levels == 1
    if thumbnail:
        pages.insert(1, {"shape": shape(height // 8, width // 8), "dtype": dtype,
                         "desc": head + f"{width}x{height} -> {width // 8}x{height // 8} - " + _fields(rng, None)})
    extras = []
    if rng.random() < 0.5:
        extras.append("label")
        described = rng.random() < 0.7
        pages.append({"shape": shape(30, 40), "dtype": dtype, "subfile": rng.choice((1, 1, 0)) if described else 1,
                      "desc": "Aperio Image Library v11.2.1\nlabel 40x30" if described else None})
    if rng.random() < 0.4:
        extras.append("macro")
        pages.append({"shape": shape(30, 80), "dtype": dtype, "subfile": rng.choice((9, 9, 1, 0)),
                      "desc": "Aperio Image Library v11.2.1\n" + rng.choice(("macro 80x30", "overview"))})
    declined = None
    if rng.random() < 0.15:
        declined = rng.choice(DECLINED)
        pages[0]["desc"] += "|" + declined
    writer: dict[str, Any] = {"byteorder": rng.choice(("<", ">"))}
    if rng.random() < 0.2:
        writer["bigtiff"] = True
    _write(path, pages, **writer)
    return (f"{path.parent.name} {kind} {width}x{height} levels {levels}{' +thumbnail' if thumbnail else ''} "
            f"{extras} {writer}{f' {declined!r}' if declined else ''}")


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("svs-variants")
    rng = random.Random(SEED)
    return [(path, svs_variant(rng, path)) for path in (folder / f"v{i:03d}" / "slide.svs" for i in range(VARIANTS))]


#: what the svs engine is known to leave to Bio-Formats among these variants
SVS_DECLINED = ("a Z stack", "Wavelength .not checked", "changes units", "century pivot", "DisplayColor",
                # a macro or label told by its NewSubfileType 0 from the pyramid the engine's way is not checked
                "not the last ones", "outside the pyramid", "a second (label|macro)")


@pytest.mark.slow
def test_every_native_answer_on_generated_svs_files_equals_live_bioformats(variants: list[tuple[Path, str]]) -> None:
    tally = compare_with_bioformats(variants, "svs", engine_reason("svs"))
    tally.assert_proven(len(variants), "svs", 36, declinable=SVS_DECLINED)
