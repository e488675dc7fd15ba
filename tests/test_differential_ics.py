"""Differential testing of ``auto`` against the live Bio-Formats engine on generated ICS headers (issue 20).

Each variant is an ICS header (with its ``.ids``, or version 2 with the data after the header) written by
the ICS engine tests' own writer, :func:`tests.test_engines_ics.write_ics`, with random lines: the axes of
``layout order`` (x, y, z, t, channel axes of any name, repeated t and channel axes) and their sizes, the
sample size, format and sign, the byte order, significant bits, ``parameter scale`` and ``units`` (µm in
its spellings, nm, time units, one short), the image name, keys in upper case, repeated keys, and the
separators, version and extension of the file; some variants are read through their ``.ids``. Kinds the
engine leaves to Bio-Formats are drawn too (history and sensor lines, ``parameter ch``, an interleaved
channel axis, a phase axis, 12- and 24-bit samples, tiny pixel sizes, numbers Java and Python may read
differently, a missing ``end`` line). Variants are drawn with a seed, so a failure is reproducible; ``auto``
is compared with Bio-Formats for the same bytes by :func:`tests._differential.compare_with_bioformats`.
A version-2 header without ``end`` is never drawn: Bio-Formats 7.3.1 does not return on it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ._differential import compare_with_bioformats
from .test_engines_ics import XY, Line, ics_lines, write_ics

SEED = 20
VARIANTS = 60
AGREE_FLOOR = 30  #: native answers that must equal Bio-Formats' whole (the rest are declined kinds)
#: (bits, format, sign) of the samples; the last three are declined (12, 24 bits; 64-bit integers)
SAMPLES = ((8, "integer", "unsigned"), (8, "integer", "signed"), (16, "integer", "unsigned"),
           (16, "integer", "signed"), (16, "integer", "Signed"), (32, "integer", "unsigned"),
           (32, "integer", "signed"), (32, "real", "signed"), (64, "real", "signed"), (16, "real", "signed"))
ODD_SAMPLES = ((12, "integer", "unsigned"), (24, "integer", "unsigned"), (64, "integer", "signed"))
BYTE_ORDERS: tuple[list[str], ...] = ([], ["1"], ["1", "2"], ["2", "1"], ["1", "2", "3", "4"], ["4", "3", "2", "1"],
               [str(i) for i in range(1, 9)], [str(i) for i in range(8, 0, -1)])
AXES = ("z", "z", "t", "t", "ch", "c", "u", "Z", "time", "lambda")
SCALES = ("1", "0.5", "0.25", "0.1", "2", "1.0", "0.0645", "3e-1", "0", "-1", "250")
XY_UNITS = ("um", "microns", "micrometers", "nm", "relative", "UM", "micron")
T_UNITS = ("s", "seconds", "ms", "min", "relative")
NAMES = ("img", "cell 1", "Experiment_2023-01-02", "a.b.c", "x")
#: kinds the engine leaves to Bio-Formats, drawn in turn for one variant in four
UNUSUAL = ("history", "sensor", "parameter ch", "interleaved", "phase axis", "odd samples", "tiny pixel size",
           "odd number")


def _order(rng: random.Random) -> tuple[list[str], list[int]]:
    """``layout order`` words after ``bits x y`` and all sizes (bits first)."""
    extra = rng.sample(AXES, rng.choice((0, 1, 1, 2, 2, 3)))
    if extra.count("z") > 1 or "Z" in extra and "z" in extra:
        extra = [a for i, a in enumerate(extra) if a.lower() != "z" or i == extra.index(a)]
    if extra.count("z") > 1:
        extra.remove("z")
    sizes = [rng.choice((8, 16, 33)), rng.choice((6, 10))] + [rng.choice((1, 2, 3, 4)) for _ in extra]
    return extra, sizes


def _units(rng: random.Random, axes: list[str]) -> list[str] | None:
    """``parameter units``, one word per axis (``bits`` first), or None."""
    if rng.random() < 0.3:
        return None
    words = ["relative"]
    for axis in axes[1:]:
        words.append(rng.choice(T_UNITS) if axis == "t" else rng.choice(XY_UNITS))
    if "ch" in axes and rng.random() < 0.3:  # one short: Bio-Formats puts "nm" in at the ch axis
        del words[axes.index("ch")]
    return words


def _variant(rng: random.Random, unusual: str) -> tuple[list[Line], dict[str, Any], str]:
    """The header lines, the :func:`write_ics` layout arguments and how the file is written, for a header
    of the ``unusual`` kind (one of :data:`UNUSUAL`, or "" for none)."""
    extra, sizes = _order(rng)
    bits, fmt, sign = rng.choice(SAMPLES)
    spec: dict[str, Any] = {"fmt": fmt, "sign": sign, "byte_order": rng.choice(BYTE_ORDERS),
                            "name": rng.choice(NAMES)}
    if rng.random() < 0.3:
        spec["significant"] = rng.choice((bits, max(1, bits - 4), 10 if bits >= 16 else 7))
    order = [*XY, *extra]
    if rng.random() < 0.6:
        spec["scale"] = [rng.choice(SCALES) for _ in order]
        spec["units"] = _units(rng, order)
    lines_extra: list[Line] = []
    if rng.random() < 0.15:
        lines_extra.append(["parameter", "t", "0.5", "1.5"])
    if unusual == "history":
        lines_extra.append(["history", "author", "Jane", "Doe"])
    elif unusual == "sensor":
        lines_extra.append(["sensor", "s_params", "LambdaEm", "520"])
    elif unusual == "parameter ch":
        order, sizes = [*XY, "ch"], [*sizes[:2], 2]
        lines_extra.append(["parameter", "ch", "GFP", "RFP"])
    elif unusual == "interleaved":
        order, sizes = ["bits", "ch", "x", "y"], [3, *sizes[:2]]
    elif unusual == "phase axis":
        order, sizes = [*order, "p"], [*sizes, 2]
    elif unusual == "odd samples":
        bits, spec["fmt"], spec["sign"] = rng.choice(ODD_SAMPLES)
    elif unusual == "tiny pixel size":
        spec["scale"], spec["units"] = ["1", "1e-7", "0.5", *["1"] * (len(order) - 3)], None
    elif unusual == "odd number":
        spec["scale"], spec["units"] = ["1", "0x10", "0.5", *["1"] * (len(order) - 3)], None
    if rng.random() < 0.1:
        lines_extra.append(["LAYOUT", "SIZES", *map(str, [bits, *sizes])])  # a repeated key, upper case
    if "units" in spec and spec["units"] is None:
        del spec["units"]
    lines = ics_lines(order, [bits, *sizes], **spec, extra=tuple(lines_extra))
    layout: dict[str, Any] = {}
    form = rng.choice(("v1", "v1", "v2", "v2", "crlf", "space", "no-end", "upper"))
    if form == "v2":
        layout["version"] = "2.0"
    elif form == "crlf":
        layout["seps"] = ("\t", "\r")
    elif form == "space":  # (version 1: Bio-Formats takes a space-separated version 2 header for version 1)
        layout["seps"] = (" ", "\n")
    elif form == "no-end":  # version 1 only: the last line is never read
        layout["end"] = False
    elif form == "upper":
        layout["ext"] = ".ICS"
    return lines, layout, form


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("ics-variants")
    rng = random.Random(SEED)
    made = []
    for index in range(VARIANTS):
        unusual = UNUSUAL[index // 4 % len(UNUSUAL)] if index % 4 == 3 else ""  # one in four, each kind drawn
        lines, layout, form = _variant(rng, unusual)
        path = write_ics(folder, f"v{index:03d}", lines, **layout)
        order = next(line[2:] for line in lines if line[:2] == ["layout", "order"])
        label = f"{' '.join(order)} {form} {unusual}"
        if layout.get("version") != "2.0" and rng.random() < 0.2:  # read through the data file
            path = path.with_suffix(".ids" if path.suffix == ".ics" else ".IDS")
            label += " via .ids"
        made.append((path, label))
    return made


@pytest.mark.slow
def test_every_ics_answer_on_generated_headers_equals_live_bioformats(variants: list[tuple[Path, str]]) -> None:
    tally = compare_with_bioformats(variants, "ics")
    # the comparison has teeth: most variants are answered by the ics engine (each one Bio-Formats' whole
    # document), and the kinds drawn to be declined are declined for their own reasons
    tally.assert_proven(len(variants), "ics", AGREE_FLOOR, reasons=(
        "does not reproduce", "layout order", "phase", "-bit", "physical size", "read differently"))
    assert tally.bioformats_fails == [], tally.bioformats_fails  # every variant has its data
