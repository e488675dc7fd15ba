"""Differential testing of ``auto`` against the live Bio-Formats engine on generated MetaMorph variants (issue 20).

tifffile cannot write MetaMorph's UIC tags, so each variant is a copy of the corpus MetaMorph TIFF (in
``tmp_path``, never in the shared corpus) edited in place, bytes of the same length, the ways MetaMorph files
differ: the UIC1 spatial calibration (X and Y apart, tiny, zero), its unit, the stage position, the camera
binning, the illumination setting that names the channel, the description's exposure, binning, temperature
and ``Bit Depth`` lines, the TIFF date and software, the file's name and an ``.nd`` beside it. Edits are drawn
with a seed, so a failure is reproducible.

For each, ``auto`` (through :func:`~metaextract.extraction.pipeline.extract_file`) is compared with
Bio-Formats for the same bytes: wherever a native engine answers, its document must equal Bio-Formats' whole
(after normalisation); what the ``tifffile-stk`` engine leaves to Bio-Formats is what it declines.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from ._differential import compare_with_bioformats
from .test_engines_lsm_stk import STK_FILE, _copy, _patch, _uic1_value

SEED = 20
VARIANTS = 40
#: native answers (each Bio-Formats' whole document) expected at least, of the variants this seed draws
AGREE_FLOOR = 20
#: Edits whose variants the engine leaves to Bio-Formats (a part of the edit's description -> the kind): a
#: declined variant must carry one of them.
DECLINED_EDITS = {
    "Other App": "not MetaMorph's software (not a MetaMorph file)",
    ".nd beside": "an .nd beside it (a MetaMorph set)",
    "(1, 10000000)": "a calibration below 1e-6 µm (Bio-Formats may change its unit)",
    "(0, 1)": "a zero calibration",
    "Bit Depth": "a Bit Depth description line",
    "2010:13:45": "a DateTime that is no date",
    "2010-03-05": "a DateTime not in the TIFF form",
    "illumination b''": "an empty illumination setting",
    "3e2 ms": "an exposure that is not a plain number",
}
UNITS_AT, ILLUM_AT = 6, 49  # UIC1 entries: the calibration unit, the first plane property (_IllumSetting_)


def _replace(path: Path, old: bytes, new: bytes) -> None:
    """Overwrite ``old`` (which must be in the file) with ``new`` of the same length."""
    assert len(old) == len(new), (old, new)
    _patch(path, path.read_bytes().index(old), new)


def calibration(rng: random.Random, path: Path) -> str:
    x = rng.choice(((645, 1000), (1301, 1000), (1, 3), (2, 1), (1, 10_000_000), (0, 1), (325, 1)))
    y = x if rng.random() < 0.6 else rng.choice(((645, 1000), (17, 100), (1, 1)))
    _patch(path, _uic1_value(path, 4), struct.pack("<ii", *x))
    _patch(path, _uic1_value(path, 5), struct.pack("<ii", *y))
    return f"calibration {x} {y}"


def unit(rng: random.Random, path: Path) -> str:
    name = rng.choice((b"um\x00e\x00", b"mm\x00e\x00", b"nm\x00e\x00", b"\xc2\xb5m\x00e", b"pixel", b"in\x00e\x00"))
    _patch(path, _uic1_value(path, UNITS_AT) + 4, name)
    return f"unit {name!r}"


def stage(rng: random.Random, path: Path) -> str:
    value = (rng.randint(-10**7, 10**7), rng.choice((1, 100, 1000)), rng.randint(-10**7, 10**7), rng.choice((1, 4)))
    _patch(path, _uic1_value(path, 28), struct.pack("<iiii", *value))
    return f"stage {value}"


def binning(rng: random.Random, path: Path) -> str:
    value = rng.choice(((1, 1), (2, 2), (4, 4), (8, 8), (3, 3), (1, 2)))
    _patch(path, _uic1_value(path, 46), struct.pack("<ii", *value))
    return f"binning {value}"


def illumination(rng: random.Random, path: Path) -> str:
    name = rng.choice((b"GFP", b"A1", b"DAP", b"x y", b""))
    at = _uic1_value(path, ILLUM_AT) + 5 + len(b"_IllumSetting_") + 4 + 1
    _patch(path, at, bytes([len(name)]) + name.ljust(3, b"\x00"))
    return f"illumination {name!r}"


def exposure(rng: random.Random, path: Path) -> str:
    new = rng.choice((b"Exposure: 125 ms", b"Exposure: 1,5 ms", b"Exposure: 7   ms", b"Exposure:  20 ms",
                      b"Exposure: 3e2 ms", b"Exposure= 300 ms"))
    _replace(path, b"Exposure: 300 ms", new)
    return f"description {new!r}"


def description_lines(rng: random.Random, path: Path) -> str:
    old, new = rng.choice(((b"Binning: 2 x 2", b"Binning: 4 x 4"), (b"Temperature: -6.25", b"Temperature: 37.00"),
                           (b"Subtract: Off", b"Bit Depth: 12"), (b"Gain: Gain 2 (4x)", b"Gain: Gain 1 (1x)")))
    _replace(path, old, new)
    return f"description {new!r}"


def date(rng: random.Random, path: Path) -> str:
    new = rng.choice((b"2021:11:30 23:59:59", b"1999:01:01 00:00:00", b"2010:13:45 12:08:52", b"2010-03-05 12:08:52"))
    _replace(path, b"2010:03:05 12:08:52", new)
    return f"date {new!r}"


def software(rng: random.Random, path: Path) -> str:
    new = rng.choice((b"MetaMorph 7.8.0.0 ", b"METAMORPH 3.1.0.77", b"Other App 3.1.0.77"))
    _replace(path, b"MetaMorph 3.1.0.77", new)
    return f"software {new!r}"


EDITS: tuple[Callable[[random.Random, Path], str], ...] = (
    calibration, calibration, unit, stage, stage, binning, illumination, exposure, description_lines, date, software)


def make_variant(rng: random.Random, corpus: Path, folder: Path) -> tuple[Path, list[str]]:
    name = rng.choice(("MetamorphImage.tif", "site.tif", "site.TIF", "stack.stk"))
    path = _copy(corpus, STK_FILE, folder, name)
    done = [name] + [edit(rng, path) for edit in rng.sample(EDITS, rng.choice((1, 2, 3)))]
    if rng.random() < 0.1:
        (folder / (path.stem + ".nd")).write_text('"NDInfoFile", Version 1.0\r\n"DoTimelapse", FALSE\r\n')
        done.append("an .nd beside it")
    return path, done


@pytest.fixture(scope="module")
def variants(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, list[str]]]:
    folder = tmp_path_factory.mktemp("stk-variants")
    rng = random.Random(SEED)
    return [make_variant(rng, corpus, folder / f"v{index:03d}") for index in range(VARIANTS)]


@pytest.mark.slow
def test_every_native_answer_on_generated_metamorph_files_equals_live_bioformats(
        variants: list[tuple[Path, list[str]]]) -> None:
    def why(_: Path, done: list[str]) -> str:  # a decline is the kind of edit drawn, or it is unknown
        kinds = [kind for part, kind in DECLINED_EDITS.items() if any(part in edit for edit in done)]
        return kinds[0] if kinds else f"declined without a known reason: {done}"

    # the comparison has teeth: most variants are answered natively (each was Bio-Formats' whole document)
    compare_with_bioformats(variants, "tifffile-stk", why).assert_proven(
        len(variants), "tifffile-stk", AGREE_FLOOR, known=DECLINED_EDITS.values())
