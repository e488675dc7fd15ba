"""Differential testing of ``auto`` against the live Bio-Formats engine on generated Micro-Manager variants (issue 20).

Two kinds, drawn with a seed (a failure is reproducible), each in a folder of its own under ``tmp_path``:

* **metadata.txt** (``MicromanagerReader``): the corpus ``_metadata.txt`` with its summary rewritten —
  channels (names, colours, fewer names than channels), slices, frames, ``SlicesFirst``, pixel size, z step,
  time (zones Joda-Time knows and does not, a wrong weekday), a comment, a position count — and its one
  FrameKey block turned into a random set of frames with their own elapsed times (the intervals), exposure,
  binning and position name; the TIFF beside it is the corpus one (linked) or one written here (8/16-bit,
  either byte order, stage positions in its Micro-Manager tag or not); some frames name a second TIFF
  (a multi-file dataset) and some folders are ``Pos_`` folders (a multi-position dataset).
* **MMStack OME-TIFF** (``OMETiffReader``): synthetic 2015-01 stacks of random Z, C, T, pixel sizes,
  intervals and dates, with Micro-Manager's own instrument IDs (``Microscope``, a camera's name, which the
  schema refuses and Bio-Formats prints as they are, the channels' DetectorSettings referring to them or
  not) or schema IDs, some naming planes in another file of a set. Bio-Formats' document is then not valid
  OME, and the engine's must be stored alike: ``valid=False`` for the same reason.

For each, ``auto`` (through :func:`~metaextract.extraction.pipeline.extract_file`, as a run reads it) is
compared with Bio-Formats for the same files: wherever the micromanager engine answers, its document must
equal Bio-Formats' whole (after normalisation); what it leaves to Bio-Formats is what it declines.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ._differential import compare_with_bioformats, named_kind
from .test_engines_micromanager import (
    _MM_TIF,
    AFTER,
    METADATA_TXT,
    TIME,
    _edit,
    _frame0,
    _mm_folder,
    _ome_2015,
    _write_mmstack,
)

SEED = 20
METADATA_VARIANTS = 36
MMSTACK_VARIANTS = 24
#: native answers (each Bio-Formats' whole document) expected at least, of the 60 variants this seed draws
AGREE_FLOOR = 20
#: summary times: zones Joda-Time parses (UTC, GMT, US zones in and out of daylight saving time, in a change)
#: and does not (CEST, JST), weekdays not the date's
TIMES = (TIME, "Wed Jul 06 10:50:32 UTC 2016", "Thu Jan 07 08:00:01 GMT 2016", "Wed Jul 06 10:50:32 JST 2016",
         "Wed Jul 06 10:50:32 PST 2016", "Mon Jul 06 10:50:32 UTC 2016", "Tue Jan 05 23:30:00 EST 2016",
         "Fri Jul 08 10:50:32 CDT 2016", "Sun Jul 06 22:05:00 MST 2016", "Sat Dec 31 23:59:59 PDT 2016",
         "Sun Mar 13 02:30:00 PST 2016", "Sun Nov 06 01:30:00 EST 2016")
NAMES = ("DAPI", "GFP", "Cy5", "Default", "mCherry 561")
FRAME_KEY = '"FrameKey-0-0-0": {'
ELAPSED = '"ElapsedTime-ms": 4422406,'
BINNING = '"Andor Zyla 4.2-Binning": "1x1",'
FILE_NAME = f'"FileName": "{_MM_TIF}",'


def _random_time(rng: random.Random) -> str:
    """A summary Time of any weekday (the date's or not), in a zone Joda knows or not, across DST rules."""
    day, month = rng.choice(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")), rng.choice(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
    zone = rng.choice(("EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "UTC", "GMT", "CET"))
    return (f"{day} {month} {rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
            f"{rng.randint(0, 59):02d} {zone} {rng.choice((1999, 2006, 2016, 2024))}")


def _summary(rng: random.Random, text: str, sizes: dict[str, int], done: list[str]) -> str:
    """The corpus summary with sizes, channels, calibration, time and extra fields drawn from ``rng``."""
    c = sizes["C"]
    names = [f'"{rng.choice(NAMES)}{i}"' for i in range(rng.choice((c, c, max(1, c - 1))))]
    colours = [str(rng.choice((-1, -16776961, -16711936, 65280))) for _ in range(rng.choice((c, 1)))]
    pixel = rng.choice(("0.108", "0.065", "1", "0", "2.5"))
    order = rng.choice(("false", "true", None))
    time = rng.choice(TIMES) if rng.random() < 0.5 else _random_time(rng)
    text = _edit(text, ('"Slices": 1,', f'"Slices": {sizes["Z"]},'), ('"Frames": 1,', f'"Frames": {sizes["T"]},'),
                 ('"Channels": 1,', f'"Channels": {c},'),
                 ('"ChNames": ["Default"],', f'"ChNames": [{", ".join(names)}],'),
                 ('"ChColors": [-1],', f'"ChColors": [{", ".join(colours)}],'),
                 ('"PixelSize_um": 0.108,', f'"PixelSize_um": {pixel},'), (TIME, time),
                 ('  "SlicesFirst": false,\n', f'  "SlicesFirst": {order},\n' if order else ""))
    extra = []
    if rng.random() < 0.4:
        extra.append(f'"z-step_um": {rng.choice(("0.5", "0.2", "1", "3.25"))}')
    if rng.random() < 0.3:
        extra.append(f'"Comment": "{rng.choice(("cells, fixed: day 3", "control", "a b c"))}"')
    positions = rng.choice((1, 1, 1, 2))
    text = _edit(text, ('"Positions": 1', ",\n  ".join([f'"Positions": {positions}', *extra])))
    done.append(f"Z{sizes['Z']} C{c} T{sizes['T']} names {len(names)} colours {len(colours)} px {pixel} "
                f"order {order} time {time!r} extra {extra} positions {positions}")
    return text


def _frames(rng: random.Random, block: str, sizes: dict[str, int], done: list[str]) -> tuple[list[str], bool]:
    """FrameKey blocks for a random set of (t, c, z), copied from the corpus block; whether one names a
    second TIFF."""
    coords = [(t, c, z) for t in range(sizes["T"]) for c in range(sizes["C"]) for z in range(sizes["Z"])]
    chosen = sorted(rng.sample(coords, rng.randint(1, len(coords))), key=lambda _: rng.random())
    interval = rng.choice((100, 1000, 2500.5, 60000))
    exposure = rng.choice((None, None, "50", '"12.5"', "100"))
    binning = rng.choice(('"1x1"', '"2x2"', '"2"', '"4x4"', '"3x3"', '"3"', '"1x2"', '"16x16"', '"bin 2"'))
    name = rng.choice((None, None, "Pos-A1", "null"))
    stage = rng.choice(((), (), ("XPositionUm", "YPositionUm"), ("ZPositionUm",)))
    second = len(chosen) > 1 and rng.random() < 0.15
    blocks = []
    for number, (t, c, z) in enumerate(chosen):
        stamp = round(interval * t + rng.random() * 5, 1)
        new = block.replace(FRAME_KEY, f'"FrameKey-{t}-{c}-{z}": {{', 1).replace(
            ELAPSED, f'"ElapsedTime-ms": {stamp},', 1).replace(BINNING, f'"Andor Zyla 4.2-Binning": {binning},', 1)
        lines = ([f'"Exposure-ms": {exposure},'] if exposure else []) + (
            [f'"PositionName": "{name}",'] if name else []) + [
            f'"{key}": {round(rng.uniform(-500, 500), 2)},' for key in stage]
        new = new.replace(AFTER, "\n  ".join([AFTER, *lines]), 1)
        if second and number == len(chosen) - 1:
            new = new.replace(FILE_NAME, '"FileName": "second.ome.tif",', 1)
        blocks.append(new)
    done.append(f"frames {len(chosen)}/{len(coords)} every {interval} ms exposure {exposure} binning {binning} "
                f"name {name} stage {stage}{' two files' if second else ''}")
    return blocks, second


def _tiff(rng: random.Random, path: Path, done: list[str]) -> None:
    """Replace the linked corpus TIFF by one written here (or keep it)."""
    kind = rng.choice(("corpus", "corpus", "uint8", "uint16", "uint16-big", "positions"))
    pages = rng.choice((1, 1, 3))
    done.append(f"tiff {kind} pages {pages}")
    if kind == "corpus":
        return
    path.unlink()
    dtype = np.uint8 if kind == "uint8" else np.uint16
    shape = (rng.choice((8, 33)), rng.choice((8, 20)))
    with tifffile.TiffWriter(path, byteorder=">" if kind == "uint16-big" else "<") as tw:
        for page in range(pages):
            keys = rng.sample(("XPositionUm", "YPositionUm", "ZPositionUm"), rng.randint(1, 3))
            tag = {"ChannelIndex": 0, **({key: 12.5 * page - 3 for key in keys} if kind == "positions" else {})}
            tw.write(np.zeros(shape, dtype), metadata=None, extratags=[(51123, "s", 0, json.dumps(tag), True)])


def metadata_variant(rng: random.Random, text: str, corpus: Path, folder: Path) -> tuple[Path, list[str]]:
    """One edited metadata.txt with its TIFF(s) in a folder of its own under ``folder``."""
    done: list[str] = []
    sizes = {"Z": rng.choice((1, 1, 2, 3)), "C": rng.choice((1, 1, 2, 3)), "T": rng.choice((1, 1, 2, 4))}
    head = _summary(rng, text[:text.index(FRAME_KEY)], sizes, done)
    blocks, second = _frames(rng, _frame0(text), sizes, done)
    edited = head + ",\n".join(blocks) + "\n}\n"
    pos = rng.random() < 0.05
    path = _mm_folder(folder, corpus, "variant", edited, folder="Pos_000" if pos else None)
    if pos:
        done.append("Pos_ folder")
    _tiff(rng, path.parent / _MM_TIF, done)
    if second:
        os.link(path.parent / _MM_TIF, path.parent / "second.ome.tif")
    return path, done


def mmstack_variant(rng: random.Random, folder: Path) -> tuple[Path, list[str]]:
    """A synthetic MMStack OME-TIFF in a folder of its own."""
    name = "synth_MMStack_Pos0.ome.tif"
    z, c, t = rng.choice((1, 2, 3)), rng.choice((1, 2)), rng.choice((1, 2, 3))
    other = rng.random() < 0.15
    xml = _ome_2015(name, z=z, c=c, t=t, filename="synth_MMStack_Pos1.ome.tif" if other else None)
    ids = rng.choice(("micro-manager", "micro-manager", "schema", "no instrument"))
    camera = "My Camera"
    if ids == "schema":
        xml = xml.replace('ID="Microscope"', 'ID="Instrument:0"').replace('ID="My Camera"', 'ID="Detector:0:0"')
        camera = "Detector:0:0"
    elif ids == "no instrument":
        xml = re.sub(r"<Instrument .*?</Instrument>|<InstrumentRef [^>]*/>", "", xml)
    else:
        camera = rng.choice(("My Camera", "Andor Zyla 4.2", "Camera", "HamamatsuHam_DCAM", "Detector:0:0"))
        xml = xml.replace('ID="My Camera"', f'ID="{camera}"')
        ids += f" (camera {camera!r})"
    if ids != "no instrument" and rng.random() < 0.5:  # the channels refer to the camera
        xml = xml.replace("<LightPath/>", f'<DetectorSettings ID="{camera}"/><LightPath/>')
        ids += " settings"
    if ids != "no instrument" and rng.random() < 0.3:  # character references, which Bio-Formats' sanitiser cuts
        xml = xml.replace('Model="Demo"', 'Model="D&#233;mo&#9;2"')
        ids += " model D&#233;mo&#9;2"
    size, step = rng.choice(("0.65", "0.108", "1.0", "6.5")), rng.choice(("0.5", "0.2", "2.0"))
    interval = rng.choice((10.5, 250.0, 3000.25))
    date = rng.choice(("2020-01-02T03:04:05", "2016-07-06T10:50:32"))
    xml = xml.replace('PhysicalSizeX="0.65"', f'PhysicalSizeX="{size}"').replace(
        'PhysicalSizeY="0.65"', f'PhysicalSizeY="{size}"').replace('PhysicalSizeZ="0.5"', f'PhysicalSizeZ="{step}"')
    xml = re.sub(r'DeltaT="([0-9.]+)"', lambda m: f'DeltaT="{float(m.group(1)) / 10.5 * interval}"', xml)
    xml = xml.replace("2020-01-02T03:04:05", date)
    path = _write_mmstack(folder, name, xml, z * c * t)
    return path, [f"mmstack Z{z} C{c} T{t} ids {ids} px {size} dz {step} dt {interval} {date}"
                  f"{' planes in another file' if other else ''}"]


@pytest.fixture(scope="module")
def variants(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, list[str]]]:
    folder = tmp_path_factory.mktemp("mm-variants")
    rng = random.Random(SEED)
    text = (corpus / METADATA_TXT).read_text("utf-8")
    made = []
    for index in range(METADATA_VARIANTS):
        where = folder / f"t{index:03d}"
        where.mkdir()
        made.append(metadata_variant(rng, text, corpus, where))
    for index in range(MMSTACK_VARIANTS):
        where = folder / f"s{index:03d}"
        where.mkdir()
        made.append(mmstack_variant(rng, where))
    return made


#: What the engine may decline here (a part of its message -> the kind), each a rule Bio-Formats applies that
#: the engine does not reproduce; any other reason fails the test.
DECLINED_KINDS = {
    "frames in several TIFF files": "frames in two TIFFs (multi-file)",
    "Pos_ folder": "a Pos_ folder (multi-position)",
    "daylight-saving change": "a US time in a daylight-saving change",
    "no frame among the first planes": "no frame among the first planes (TIFF not read)",
    "camera binning": "a binning that is not NxM",
    "planes in another file": "MMStack planes in another file",
}


def why_declined(path: Path, _: object) -> str:
    """The kind of a variant ``auto`` left to Bio-Formats (the engine's own error, asked by name)."""
    return named_kind("micromanager", path, DECLINED_KINDS)


@pytest.mark.slow
def test_every_native_answer_on_generated_micromanager_files_equals_live_bioformats(
        variants: list[tuple[Path, list[str]]]) -> None:
    # the comparison has teeth: many variants are answered natively, and every decline is a known kind
    tally = compare_with_bioformats(variants, "micromanager", why_declined, stored_alike=True)
    tally.assert_proven(len(variants), "micromanager", AGREE_FLOOR, known=DECLINED_KINDS.values())
    # Micro-Manager's own IDs were answered natively, invalid as Bio-Formats' own document is
    assert tally.invalid > 0, tally.report(len(variants))
