"""Differential testing of ``auto`` against the live Bio-Formats engine on generated OIB and ZVI files (issue 20).

OIB variants are written here (the compound document writer of tests/test_engines_ole.py, the OIB layout of
tests/test_engines_oib.py: the corpus file's ``.oif`` and ``.pty`` texts over C x Z x T plane files) and then
have their INI texts edited the ways FluoView files differ: image and pixel sizes, pixel depth and significant
bits, Z and T steps, channel names, wavelengths, PMT gain and voltage, barrier filters and dichroics, dyes,
light types, lasers switched on or off, channels activated, an acquisition date, the objective and stage
positions of the plane files; and some kinds the engine leaves to Bio-Formats (a laser medium for a dye, a date
in another spelling, a light type it cannot map, a size or wavelength of at most 1e-6, a number spelled with
a ``+``, a barrier filter with digits on one side of its ``-``). ZVI variants are written with the ZVI writer of
tests/test_engines_zvi.py over Z x C x T plane layouts in every nesting order, 8/16-bit grey and
RGB, zlib-flagged planes, with extra item tags (objective name, magnification, NA, working distance, gain and
offset, comments, wavelengths, exposures, stage positions, a smaller image size, one-based channel indices,
colours, the document's scale factors) and kinds the engine declines (JPEG planes, tiles, an experimenter's
name, an acquisition-date tag, a scale factor of at most 1e-6); a few are in-place edits of the corpus ZVI's
values. Every variant is drawn with a seed, so a failure is reproducible. (No ``GST`` value is drawn: Bio-Formats
7.3.1 loops forever on one such as ``UserName="GSTuser"``; the engine declines it.)

Each is read in ``auto`` and by live Bio-Formats
(:func:`tests._differential.compare_with_bioformats`): wherever the native
engine answers, its document is Bio-Formats' whole; what it declines is counted and listed with the reason.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from metaextract.engines.ole.storage import OleFile

from ._differential import compare_with_bioformats, engine_reason
from .test_engines_oib import write_oib
from .test_engines_ole import copy_of, patch_stream, write_ole
from .test_engines_zvi import DOC, ITEM, TIME, v_double, v_int, v_text, write_zvi
from .test_engines_zvi import REL as ZVI_REL

SEED = 20
OIB_VARIANTS = 40
ZVI_VARIANTS = 40

# -- OIB ------------------------------------------------------------------------------------------------------
Edit = Callable[[random.Random, str], str]


def put(text: str, table: str, key: str, value: str) -> str:
    """``text`` with ``key=value`` in ``[table]``: replaced where the key is, else added after the header."""
    start = text.index(f"[{table}]")
    end = text.find("\r\n[", start + 1)
    end = len(text) if end < 0 else end
    block, count = re.subn(rf"(?m)^{re.escape(key)}=[^\r\n]*", lambda m: f"{key}={value}", text[start:end])
    if not count:
        block = block.replace(f"[{table}]\r\n", f"[{table}]\r\n{key}={value}\r\n", 1)
    return text[:start] + block + text[end:]


def _channels(rng: random.Random) -> list[int]:
    """Some of the corpus file's five ``GUI Channel n`` tables."""
    return rng.sample(range(1, 6), rng.randint(1, 3))


def depth(rng: random.Random, oif: str) -> str:
    size = rng.choice((1, 2, 4))
    bits = rng.choice([b for b in (8, 10, 12, 14, 16, 32) if b <= 8 * size])
    oif = put(oif, "Reference Image Parameter", "ImageDepth", str(size))
    return put(oif, "Reference Image Parameter", "ValidBitCounts", str(bits))


def pixel_size(rng: random.Random, oif: str) -> str:
    for key in ("WidthConvertValue", "HeightConvertValue"):
        oif = put(oif, "Reference Image Parameter", key,
                  rng.choice(("0.177", "0.5", "1.2345", "0", "-0.1", "2", "1e-7", "0.0000015", "3.3333333333333335")))
    return oif


def image_size(rng: random.Random, oif: str) -> str:
    for axis in (0, 1):
        oif = put(oif, f"Axis {axis} Parameters Common", "MaxSize", str(rng.choice((1, 32, 100, 256, 512, 1024))))
    return oif


def steps(rng: random.Random, oif: str) -> str:
    axis = rng.choice((3, 4))
    oif = put(oif, f"Axis {axis} Parameters Common", "StartPosition", rng.choice(("0.0", "-250.5", "100")))
    return put(oif, f"Axis {axis} Parameters Common", "EndPosition", rng.choice(("1500.0", "0.0", "-900", "33.3")))


def names(rng: random.Random, oif: str) -> str:
    for n in _channels(rng):
        oif = put(oif, f"GUI Channel {n} Parameters", "CH Name",
                  rng.choice(('"DAPI"', '"Ch 2"', '""', "TD1", '"a-b"', '"A&B <1>"', '"x\\y/z"', '" pad "')))
    return oif


def wavelengths(rng: random.Random, oif: str) -> str:
    for n in _channels(rng):
        oif = put(oif, f"GUI Channel {n} Parameters", "EmissionWavelength",
                  rng.choice(("0", "520", "610.5", "-1", "5.2e2", "1E-7", " 600 ")))
        oif = put(oif, f"GUI Channel {n} Parameters", "ExcitationWavelength",
                  rng.choice(("405", "488", "0", "561.5", "488.0d", "+633")))
    return oif


def pmt(rng: random.Random, oif: str) -> str:
    for n in _channels(rng):
        oif = put(oif, f"GUI Channel {n} Parameters", "AnalogPMTGain", rng.choice(("1000", "1.5", "0", "-2", "1e3")))
        oif = put(oif, f"GUI Channel {n} Parameters", "AnalogPMTVoltage", rng.choice(("1050", "600", "0.5")))
    return oif


def filters(rng: random.Random, oif: str) -> str:
    for n in _channels(rng):
        table = f"GUI Channel {n} Parameters"
        oif = put(oif, table, "BF Name", rng.choice(('"BA505-525"', '"BA560IF"', '"BA 575-675"', '"BA650"', '"x"',
                                                     '"BA-505-525"', '"505-"', '"BA490-540/BA575"')))
        oif = put(oif, table, rng.choice(("EmissionDM Name", "ExcitationDM Name")),
                  rng.choice(('"SDM560"', '"DM405/488"', '""', '"Mirror"')))
    return oif


def dyes(rng: random.Random, oif: str) -> str:
    for n in _channels(rng):
        oif = put(oif, f"GUI Channel {n} Parameters", "DyeName", rng.choice(('""', '"Alexa Fluor 488"', '"DAPI"')))
    return oif


def light(rng: random.Random, oif: str) -> str:
    for n in rng.sample(range(1, 4), rng.randint(1, 2)):
        oif = put(oif, f"Channel {n} Parameters", "LightType",
                  rng.choice(('"Fluorescence"', '"Transmitted"', '"transmitted light"', '"Fluorescence DIC"')))
    return oif


def lasers(rng: random.Random, oif: str) -> str:
    for n in rng.sample(range(5), rng.randint(1, 3)):
        oif = put(oif, f"Laser {n} Parameters", "Laser Enable", rng.choice(("0", "1")))
        oif = put(oif, f"Laser {n} Parameters", "LaserWavelength", rng.choice(("405", "488", "559", "0", "640.5")))
    return oif


def activate(rng: random.Random, oif: str) -> str:
    for n in _channels(rng):
        oif = put(oif, f"GUI Channel {n} Parameters", "CH Activate", rng.choice(("0", "1")))
    return oif


def date(rng: random.Random, oif: str) -> str:
    """A date in a laser table (the last table's counts: in an earlier one it is overwritten, by none too)."""
    when = rng.choice(("'2012-07-26 15:13:35'", "'1999-12-31 23:59:59'", "2020-02-29 00:00:01"))
    table = f"Laser {rng.choice((1, 4, 4, 4))} Parameters"
    return put(oif, table, rng.choice(("ImageCaputreDate", "ImageCaptureDate")), when)


def comment(rng: random.Random, oif: str) -> str:
    return put(oif, "File Info", "UserComment", rng.choice(('"40x water"', '""', '"line 1 & <2>"')))


#: kinds the engine leaves to Bio-Formats (not a ``GST`` value: Bio-Formats 7.3.1 loops on ``UserName="GSTuser"``)
def laser_dye(rng: random.Random, oif: str) -> str:
    return put(oif, "GUI Channel 1 Parameters", "DyeName", rng.choice(('"HeNe"', '"Ar"', '"TiSapphire"')))


def other_date(rng: random.Random, oif: str) -> str:
    when = rng.choice(("'26/07/2012 15:13'", "'2012-13-01 00:00:00'"))
    return put(oif, "Laser 4 Parameters", "ImageCaputreDate", when)


def other_light(rng: random.Random, oif: str) -> str:
    return put(oif, "Channel 1 Parameters", "LightType", '"Laser"')


OIF_EDITS: tuple[Edit, ...] = (depth, depth, pixel_size, image_size, steps, names, wavelengths, wavelengths, pmt,
                               filters, dyes, light, lasers, lasers, activate, date, date, comment,
                               laser_dye, other_date, other_light)


def objective(rng: random.Random, pty: str) -> str:
    table = "Acquisition Parameters Common"
    pty = put(pty, table, "Magnification", rng.choice(("10.0", "60.0", "100")))
    pty = put(pty, table, "ObjectiveLens NAValue", rng.choice(("0.3", "1.42", "0.75")))
    pty = put(pty, table, "ObjectiveLens Name", rng.choice(('"UPLSAPO 60X  O  NA:1.42"', '"x"', '""')))
    return put(pty, table, "ObjectiveLens WDValue", rng.choice(("150.0", "9999.0", "0.13")))


def stage(rng: random.Random, pty: str) -> str:
    pty = put(pty, "Axis 7 Parameters", "AbsPositionValueX", rng.choice(("12.5", "-300.25", "0")))
    return put(pty, "Axis 7 Parameters", "AbsPositionValueY", rng.choice(("7", "-0.5", "x")))


def bits(rng: random.Random, pty: str) -> str:
    return put(pty, "Acquisition Parameters Common", "ValidBitCounts", rng.choice(("8", "12", "16")))


def times(rng: random.Random, pty: str) -> str:
    """A plane's own time and Z position (its DeltaT and PositionZ)."""
    pty = put(pty, "Axis 4 Parameters", "AbsPositionValue", rng.choice(("0.0", "1e3", "-5", "123456.789")))
    return put(pty, "Axis 3 Parameters", "AbsPositionValue", rng.choice(("0", "-994150.0", "12.5")))


PTY_EDITS: tuple[Edit, ...] = (objective, stage, bits, times)


def _text(raw: bytes) -> str:
    return raw[2:].decode("utf-16-le").rstrip("\x00")


def edit_oib(path: Path, oif_edits: list[Edit], pty_edits: list[Edit], rng: random.Random) -> None:
    """Rewrite the OIB at ``path`` (as :func:`write_oib` lays it out) with its ``.oif`` text and every plane
    file's ``.pty`` text edited (the same edits, each plane file its own draw)."""
    with OleFile(path) as ole:
        streams = {p: ole.read(p) for p in ole.streams()}
    for p, raw in streams.items():
        if p == ("Stream00001",):
            edits = oif_edits
        elif p[0] == "Storage00001" and int(p[1][6:]) < 1000:  # the plane files' .pty texts
            edits = pty_edits
        else:
            continue
        text = _text(raw)
        for edit in edits:
            text = edit(rng, text)
        streams[p] = b"\xff\xfe" + text.encode("utf-16-le")
    write_ole(path, streams)


def oib_variant(rng: random.Random, corpus: Path, path: Path) -> str:
    c, z, t = rng.choice((1, 2, 3)), rng.choice((1, 1, 2, 4)), rng.choice((1, 1, 3))
    listed = rng.random() < 0.3
    write_oib(corpus, path, c=c, z=z, t=t, listed=listed)
    oif_edits = rng.sample(OIF_EDITS, rng.choice((1, 2, 3)))
    pty_edits = rng.sample(PTY_EDITS, rng.choice((0, 1, 2)))
    edit_oib(path, oif_edits, pty_edits, rng)
    done = [e.__name__ for e in (*oif_edits, *pty_edits)]
    return f"{path.name} c{c}z{z}t{t}{' listed' if listed else ''} {done}"


# -- ZVI ------------------------------------------------------------------------------------------------------
def _layout(rng: random.Random) -> tuple[list[tuple[int, int, int]], str]:
    """Plane indices (Z, C, T) item by item, the axes nested in a random order (the last varies fastest)."""
    sizes = {"Z": rng.choice((1, 2, 3)), "C": rng.choice((1, 2, 3)), "T": rng.choice((1, 1, 2))}
    nesting = "".join(rng.sample("ZCT", 3))
    planes: list[tuple[int, int, int]] = [(0, 0, 0)]
    for axis in nesting:
        planes = [tuple(v if a != axis else i for a, v in zip("ZCT", p, strict=True))  # type: ignore[misc]
                  for p in planes for i in range(sizes[axis])]
    return planes, f"Z{sizes['Z']}C{sizes['C']}T{sizes['T']} {nesting}"


TagMaker = Callable[[int, int, int, int], list[tuple[bytes, int]]]


def _extra(rng: random.Random) -> tuple[TagMaker, list[str]]:
    """Item tags added after the writer's own (a later tag wins where Bio-Formats keeps the last)."""
    chosen = rng.sample(("objective", "gain", "comment", "waves", "exposure", "stage", "size", "one-based",
                         "user", "typed"), rng.choice((0, 1, 2, 3)))
    if rng.random() < 0.15:  # a kind the engine declines
        chosen.append(rng.choice(("experimenter", "date tag")))
    name = rng.choice(("Plan-Apochromat 40x/0.95 Korr", "EC Plan-Neofluar 10x/0.30 M27", "Fluar 5x", "20x/0.8"))
    magnification, na, wd = rng.choice((10.0, 63.0)), rng.choice((0.3, 1.4)), rng.choice((170.0, 0.0))
    comment, width, height = rng.choice(("", "a note", "x & <y>", " pad ")), rng.choice((20, 63)), rng.choice((10, 47))
    waves = (rng.choice((405, 0, 561)), rng.choice((450, 0, 615)))
    gain, offset = rng.choice((1.0, 2.5, 0.0)), rng.choice((0.0, 100.0))
    exposure = rng.choice((1.25, 0.0, 1e-4, 33.333))

    def tags(n: int, z: int, c: int, t: int) -> list[tuple[bytes, int]]:
        out: list[tuple[bytes, int]] = []
        if "objective" in chosen:
            out += [(v_text(name), 2049), (v_double(magnification), 2076), (v_double(na), 2077),
                    (v_double(wd), 2151)]
        if "gain" in chosen:
            out += [(v_double(gain + c), 65633), (v_double(offset), 65634)]
        if "comment" in chosen:
            out += [(v_text(comment), 1540)]
        if "waves" in chosen:
            out += [(v_int(waves[0] + c), 16777488), (v_int(waves[1] + c), 16777489)]
        if "exposure" in chosen:
            out += [(v_double(exposure * (n + 1)), 2564)]
        if "typed" in chosen:  # numbers in other VARIANT types: text, float, int
            out += [(v_text(f"{exposure * (c + 1)}"), 2564), (struct.pack("<hf", 4, gain + 0.5), 65633),
                    (v_text(str(waves[1] + c)), 16777489), (v_int(n * 10), 2073)]
        if "stage" in chosen:
            out += [(v_double(-1000.5 + n), 2073), (v_double(0.25 * n), 2074)]
        if "size" in chosen:
            out += [(v_int(width), 515), (v_int(height), 516)]
        if "one-based" in chosen:
            out += [(v_int(c + 1), 2820), (v_text(f"ch{c + 1}"), 1284)]
        if "user" in chosen:
            out += [(v_text("lab"), 1801)]
        if "experimenter" in chosen:
            out += [(v_text("Ada Lovelace"), 1801)]
        if "date tag" in chosen:
            out += [(v_double(TIME, 7), 1793)]
        return out

    return tags, chosen


def zvi_written(rng: random.Random, path: Path) -> str:
    planes, layout = _layout(rng)
    bpp = rng.choice((1, 2, 2, 3, 6))
    plane_args: dict[str, object] = {}
    kind = rng.choice(("plain",) * 8 + ("zlib", "zlib", "jpeg", "tiles"))
    if kind == "zlib":
        plane_args.update(valid=1, mark=b"WZL\x00")
    elif kind == "jpeg":
        plane_args.update(valid=1)
    elif kind == "tiles":  # a second plane at the last one's indices
        planes = planes + [planes[-1]]
    names = tuple(rng.choice(("DAPI", "GFP", "Cy5", "", "Brightfield", "a b")) for _ in range(3))
    colors = tuple(rng.choice((0, 255, 65280, 16711680, 0xFFFFFF, 12345)) for _ in range(3))
    extra, chosen = _extra(rng)
    size = rng.choice(((64, 48), (64, 48), (1, 1), (17, 5), (300, 200)))
    write_zvi(path, planes, bpp=bpp, names=names, colors=colors, extra=extra, size=size, **plane_args)
    scales = [_scale(rng, path, key, old) for key, old in ((769, 0.5), (772, 0.5), (775, 2.0)) if rng.random() < 0.4]
    return f"{path.name} {size} {layout} bpp {bpp} {kind} {list(chosen)} {scales}"


def _scale(rng: random.Random, path: Path, key: int, old: float) -> float:
    """The document's scale factor ``key`` (written as ``old``) overwritten: Bio-Formats' physical size."""
    new = rng.choice((0.1, 1.0, 0.0, -0.5, 1e-7, 0.16125, 6.45))
    patch_stream(path, DOC, v_double(old) + b"\x03\x00" + struct.pack("<i", key),
                 v_double(new) + b"\x03\x00" + struct.pack("<i", key))
    return new


def zvi_edited(rng: random.Random, corpus: Path, path: Path) -> str:
    """The corpus ZVI with some of its values overwritten in place (same byte lengths)."""
    copy_of(corpus, ZVI_REL, path.parent, path.name)
    edits = {  # name: (stream, VARIANT type, old value, new values)
        "time": (ITEM, 7, TIME, (40000.5, 43831.25)), "exposure": (ITEM, 5, 332.8, (1.5, 1000.0)),
        "stage": (ITEM, 5, -21346.20236833209, (0.0, 99.5)), "scale": (DOC, 5, 0.22639345896102386, (1.0, 0.1))}
    done = [name for name in edits if rng.random() < 0.5]
    for name in done:
        stream, kind, old, new = edits[name]
        patch_stream(path, stream, struct.pack("<hd", kind, old), struct.pack("<hd", kind, rng.choice(new)))
    if rng.random() < 0.5:
        patch_stream(path, ITEM, struct.pack("<hi", 3, 255), struct.pack("<hi", 3, rng.choice((65280, 0, 1))))
        done.append("colour")
    return f"{path.name} corpus {done}"


# -- the variants and the comparison --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oib_variants(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("oib-variants")
    rng = random.Random(SEED)
    return [(path, oib_variant(rng, corpus, path)) for path in (folder / f"v{i:03d}.oib" for i in range(OIB_VARIANTS))]


@pytest.fixture(scope="module")
def zvi_variants(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("zvi-variants")
    rng = random.Random(SEED)
    made = []
    for index in range(ZVI_VARIANTS):
        path = folder / f"v{index:03d}.zvi"
        made.append((path, zvi_edited(rng, corpus, path) if index % 5 == 4 else zvi_written(rng, path)))
    return made


#: what the oib engine is known to leave to Bio-Formats among these variants
OIB_DECLINED = ("laser dye name", "acquisition date .* (in a form not reproduced|is not a valid date)",
                "light type Bio-Formats cannot map", r"significant bits for", r"at most 1e-6", r"spelled with a \+",
                "digits on one side")
ZVI_DECLINED = ("JPEG", "tiles", "counted planes", "experimenter name", "acquisition date tag", r"at most 1e-6")


@pytest.mark.slow
def test_every_native_answer_on_generated_oibs_equals_live_bioformats(oib_variants: list[tuple[Path, str]]) -> None:
    tally = compare_with_bioformats(oib_variants, "oib", engine_reason("oib"))
    tally.assert_proven(len(oib_variants), "oib", 25, declinable=OIB_DECLINED)


@pytest.mark.slow
def test_every_native_answer_on_generated_zvis_equals_live_bioformats(zvi_variants: list[tuple[Path, str]]) -> None:
    tally = compare_with_bioformats(zvi_variants, "zvi", engine_reason("zvi"))
    tally.assert_proven(len(zvi_variants), "zvi", 25, declinable=ZVI_DECLINED)
