"""Differential testing of ``auto`` against the live Bio-Formats engine on generated TIFF variants (issue 20.2).

Variants are drawn (seeded, so a failure is reproducible) from the axes real writers vary: pixel type,
byte order, pages, samples and planar configuration, compression, tiles, resolution and its unit, a
description, a date, software, and ImageJ's hyperstack form. For each, ``auto`` (through
:func:`~metaextract.extraction.pipeline.extract_file`, as a run reads it) is compared with Bio-Formats:
wherever a native engine answers, its document must equal Bio-Formats' whole (after normalisation); the
variants it leaves to Bio-Formats are what it declines. Nothing here is copied from the code under test:
the expected document is what the JVM says for the same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from ._differential import compare_with_bioformats

SEED = 20
VARIANTS = 96
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def _variant(rng: random.Random) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
    """One TIFF's pixels and ``tifffile.imwrite`` arguments."""
    height, width = rng.choice((5, 17, 32)), rng.choice((7, 16, 33))
    kwargs: dict[str, Any] = {"metadata": None, "byteorder": rng.choice(("<", ">"))}
    form = rng.choice(("grey", "grey", "pages", "rgb", "rgb-planar", "imagej"))
    dtype = rng.choice(DTYPES)
    if form == "grey":
        shape: tuple[int, ...] = (height, width)
    elif form == "pages":
        shape = (rng.choice((2, 3, 5)), height, width)
        kwargs["photometric"] = "minisblack"
    elif form == "rgb":
        dtype, shape = rng.choice(("uint8", "uint16")), (height, width, 3)
        kwargs["photometric"] = "rgb"
    elif form == "rgb-planar":
        dtype, shape = rng.choice(("uint8", "uint16")), (3, height, width)
        kwargs.update(photometric="rgb", planarconfig="separate")
    else:  # an ImageJ hyperstack: T, Z, C before Y, X
        dtype = rng.choice(("uint8", "uint16", "float32"))
        shape = (rng.choice((1, 2)), rng.choice((1, 3)), rng.choice((1, 2)), height, width)
        kwargs.update(imagej=True, metadata={"axes": "TZCYX"}, byteorder=">")
    if rng.random() < 0.3 and form != "imagej":
        kwargs["compression"] = "zlib"  # (packbits and lzw need imagecodecs, not installed)
    if rng.random() < 0.2 and form in ("grey", "pages") and height % 16 == 0 and width % 16 == 0:
        kwargs["tile"] = (16, 16)
    unit = rng.choice((None, "INCH", "CENTIMETER", "NONE"))
    if unit is not None and form != "imagej":
        kwargs.update(resolution=(rng.choice((72, 300, 15384.615)), rng.choice((72, 600, 15384.615))),
                      resolutionunit=unit)
    if rng.random() < 0.3 and form != "imagej":
        kwargs["description"] = rng.choice(("hello world", "acquired on scope 3", "x"))
    if rng.random() < 0.3:
        kwargs["datetime"] = rng.choice(("2020:01:02 03:04:05", "2019:12:31 23:59:59"))
    if rng.random() < 0.3:
        kwargs["software"] = rng.choice(("MyScope 1.0", "tifffile"))
    rng_np = np.random.default_rng(rng.randrange(1 << 30))
    data = (rng_np.random(shape) * 100).astype(dtype)
    return data, kwargs


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("variants")
    rng = random.Random(SEED)
    made = []
    for index in range(VARIANTS):
        data, kwargs = _variant(rng)
        path = folder / f"v{index:03d}" / f"variant{index:03d}.tif"  # one folder each: no sibling groups them
        path.parent.mkdir()
        tifffile.imwrite(path, data, **kwargs)
        made.append((path, kwargs))
    return made


@pytest.mark.slow
def test_every_native_answer_on_generated_tiffs_equals_live_bioformats(
        variants: list[tuple[Path, dict[str, Any]]]) -> None:
    tally = compare_with_bioformats(((path, str(kwargs)) for path, kwargs in variants), "tifffile")
    print("\n" + tally.report(len(variants)))
    assert tally.mismatches == [], "\n".join(tally.mismatches)
    assert tally.bioformats_fails == [], tally.bioformats_fails  # each variant is a TIFF Bio-Formats reads
    # the comparison has teeth: both native engines answered for some variants (and every one of those was
    # Bio-Formats' whole document); what was declined is printed with -s for the report
    assert tally.answered["tifffile"] > 0 and tally.answered["tifffile-imagej"] > 0, tally.answered
    assert tally.agree == tally.answered["tifffile"] + tally.answered["tifffile-imagej"], tally.answered
