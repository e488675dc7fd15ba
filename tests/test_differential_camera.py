"""Differential testing of ``auto`` against the live Bio-Formats engine on edited SPE and SIF files (issue 20).

**SPE**: copies of the corpus stack ``spestack_test.spe`` (in ``tmp_path``) with header fields changed
by the camera engine tests' own editor, :func:`tests.test_engines_camera._spe`: the datatype (the five
Bio-Formats knows and others), X and Y (smaller or larger than the frames held), the frame count, and up to
three ROIs of random bounds and binning; kinds the engine leaves to Bio-Formats are drawn in turn (an
unknown datatype, no frames, a zero dimension, more than ten ROIs).

**SIF**: copies of the corpus files ``image.sif`` (through :func:`tests.test_engines_camera._sif`) and
``raman1.sif`` whose ``Pixel number`` line (C, X, Y, Z, T) and the area line after it (which overrides X
and Y) are rewritten, sometimes with extra header lines before them (a ``Pixel number`` line of two tokens,
non-ASCII bytes); kinds the engine leaves to Bio-Formats are drawn in turn (a token that is no integer,
too few tokens, a size below 1, ``Pixel number`` inside an earlier line, a non-ASCII ``Pixel number`` line).

Variants are drawn with a seed, so a failure is reproducible; ``auto`` is compared with Bio-Formats for the
same bytes by :func:`tests._differential.compare_with_bioformats`.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from ._differential import compare_with_bioformats
from .test_engines_camera import SIF_PIXEL, _sif, _spe

SEED = 20
SPE_VARIANTS = 40
SIF_VARIANTS = 40
SPE_AGREE_FLOOR = SIF_AGREE_FLOOR = 25  #: native answers that must equal Bio-Formats' whole
SPE_UNUSUAL = ("datatype", "no frames", "zero dimension", "many ROIs")
SIF_UNUSUAL = ("not an integer", "few tokens", "size below 1", "inside a line", "non-ASCII")
#: the first section's lines of image.sif from the two-token ``Pixel number`` line to the area line
IMAGE_LINES = b"Pixel number6\nCounts12\n" + SIF_PIXEL
#: raman1.sif's: the area line overrides X and Y (1224 x 201)
RAMAN_LINES = b"Pixel number65541 1 1024 1024 1 1 1 1024 1024\n65538 1 600 1024 400 201 1 0\n"


# -- SPE --------------------------------------------------------------------------------------------------
def _spe_fields(rng: random.Random, unusual: str) -> dict[str, tuple[str, int, int]]:
    """Header fields to set (``_spe``'s ``(format, offset, value)``), of the ``unusual`` kind or none."""
    fields = {"datatype": ("<H", 108, rng.choice((0, 1, 2, 3, 3, 4))),
              "xdim": ("<H", 42, rng.choice((1, 64, 128, 128, 512, 1340))),
              "ydim": ("<H", 656, rng.choice((1, 100, 128, 128, 400))),
              "frames": ("<i", 1446, rng.choice((1, 2, 5, 5, 17, 1000)))}
    count = rng.choice((0, 0, 1, 2, 3))
    fields["rois"] = ("<H", 1510, count)
    for roi in range(count):
        start_x, start_y = rng.randrange(0, 100), rng.randrange(0, 100)
        bounds = (start_x, start_x + rng.randrange(0, 400), rng.choice((1, 2, 4)),
                  start_y, start_y + rng.randrange(0, 300), rng.choice((1, 2, 8)))
        for k, value in enumerate(bounds):
            fields[f"roi{roi}.{k}"] = ("<H", 1512 + 12 * roi + 2 * k, value)
    if unusual == "datatype":
        fields["datatype"] = ("<H", 108, rng.choice((5, 6, 8, 65535)))
    elif unusual == "no frames":
        fields["frames"] = ("<i", 1446, rng.choice((0, -1)))
    elif unusual == "zero dimension":
        fields[rng.choice(("xdim", "ydim"))] = ("<H", rng.choice((42, 656)), 0)
    elif unusual == "many ROIs":
        fields["rois"] = ("<H", 1510, rng.choice((11, 300)))
    return fields


@pytest.fixture(scope="module")
def spe_variants(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("spe-variants")
    rng = random.Random(SEED)
    made = []
    for index in range(SPE_VARIANTS):
        unusual = SPE_UNUSUAL[index // 4 % len(SPE_UNUSUAL)] if index % 4 == 3 else ""
        fields = _spe_fields(rng, unusual)
        place = folder / f"v{index:03d}"
        place.mkdir()
        path = _spe(corpus, place, f"stack{index:03d}.spe", **fields)
        main = " ".join(f"{key} {fields[key][2]}" for key in ("datatype", "xdim", "ydim", "frames", "rois"))
        made.append((path, f"{main} {unusual}"))
    return made


@pytest.mark.slow
def test_every_spe_answer_on_edited_files_equals_live_bioformats(spe_variants: list[tuple[Path, str]]) -> None:
    compare_with_bioformats(spe_variants, "spe").assert_proven(
        len(spe_variants), "spe", SPE_AGREE_FLOOR,
        reasons=("spe: datatype", "spe: NumFrames", "spe: a zero dimension", "ROIs (more than"))


# -- SIF --------------------------------------------------------------------------------------------------
def _sif_lines(rng: random.Random, base: str, unusual: str) -> bytes:
    """The lines that replace the base file's ``Pixel number`` and area lines (and what comes before)."""
    c, z, t = rng.choice((1, 1, 2, 3)), rng.choice((1, 1, 2, 4)), rng.choice((1, 1, 3, 10))
    x, y = rng.choice((1, 512, 1024, 1340)), rng.choice((1, 64, 512))
    pixel = f"Pixel number65538 {c} {x} {y} {z} {t} 1 {x * y} {x * y}"
    x1, x2 = rng.randrange(1, 600), rng.randrange(1, 1400)
    y1, y2 = rng.randrange(1, 200), rng.randrange(1, 600)
    area = f"65538 {x1} {y2} {x2} {y1} {rng.choice((1, 2))} {rng.choice((1, 2, 4))} 0"
    before = rng.choice((b"", b"", b"Pixel number6\n", b"Wavelength6\n", b"caf\xe9 \xff\x00\x01\n"))
    if unusual == "not an integer":
        area = area.replace(f" {x1} ", f" {rng.choice(('1.5', '+-3', 'x', '0x10'))} ", 1)
    elif unusual == "few tokens":
        area = " ".join(area.split(" ")[:rng.choice((3, 5, 6))])
    elif unusual == "size below 1":
        pixel = pixel.replace(f" {c} {x} {y} {z} {t} ", f" {c} {x} {y} 0 {t} ", 1)
    elif unusual == "inside a line":
        before = b"Counts12 Pixel number\n"
    elif unusual == "non-ASCII":
        pixel += " \xe9"
    head = IMAGE_LINES[:IMAGE_LINES.index(SIF_PIXEL)] if base == "image.sif" else b""
    return head + before + pixel.encode("latin-1") + b"\n" + area.encode() + b"\n"


@pytest.fixture(scope="module")
def sif_variants(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("sif-variants")
    rng = random.Random(SEED)
    raman = (corpus / "andor-sif" / "raman1.sif").read_bytes()
    made = []
    for index in range(SIF_VARIANTS):
        unusual = SIF_UNUSUAL[index // 4 % len(SIF_UNUSUAL)] if index % 4 == 3 else ""
        base = rng.choice(("image.sif", "raman1.sif", "raman1.sif"))
        lines = _sif_lines(rng, base, unusual)
        place = folder / f"v{index:03d}"
        place.mkdir()
        if base == "image.sif":  # (a second, background section keeps its own lines)
            path = _sif(corpus, place, f"image{index:03d}.sif", IMAGE_LINES, lines)
        else:
            assert raman.count(RAMAN_LINES) == 1
            path = place / f"raman{index:03d}.sif"
            path.write_bytes(raman.replace(RAMAN_LINES, lines))
        shown = lines.split(b"Pixel number65538 ")[-1].decode("latin-1").replace("\n", " | ")
        made.append((path, f"{base}: {shown} {unusual}"))
    return made


@pytest.mark.slow
def test_every_sif_answer_on_edited_files_equals_live_bioformats(sif_variants: list[tuple[Path, str]]) -> None:
    compare_with_bioformats(sif_variants, "sif").assert_proven(
        len(sif_variants), "sif", SIF_AGREE_FLOOR,
        reasons=("not a plain integer", "fewer than", "below 1", "inside an earlier", "not plain ASCII"))


def test_spe_edits_change_only_the_fields_set(corpus: Path, tmp_path: Path) -> None:
    # the editor writes the header fields where the SPE layout has them, and nothing else
    fields = _spe_fields(random.Random(1), "")
    data = _spe(corpus, tmp_path, "x.spe", **fields).read_bytes()
    original = (corpus / "spe" / "spestack_test.spe").read_bytes()
    assert len(data) == len(original)
    for fmt, at, value in fields.values():
        assert struct.unpack_from(fmt, data, at)[0] == value
    changed = {i for i in range(len(data)) if data[i] != original[i]}
    assert changed <= {at + k for fmt, at, _ in fields.values() for k in range(struct.calcsize(fmt))}
