"""Differential testing of ``auto`` against live Bio-Formats on edited copies of the corpus Zeiss LSM (issue 20).

The corpus ``zeiss-lsm/test.lsm`` is copied (into ``tmp_path``, one folder each) and its scan information
edited in place, value by value, where Bio-Formats' ``ZeissLSMReader`` takes the instrument from: the
objective text (correction, magnification/NA, immersion, iris), the laser's name and acquire flag, the
track's acquire flag and time between stacks, the detection channel's gains, pinhole, name and acquire
flag, the beam splitters' filters, the illumination channel's name, wavelength and acquire flag, the data
channel's acquire flag, the user, the zoom and the channel colour. Text is rewritten within its stored
size (padded with NULs, which end it); a value is removed by renaming its key. Each variant draws a few
edits (seeded, so a failure is reproducible); ``auto`` must give Bio-Formats' whole document wherever
the LSM engine answers (:func:`tests._differential.compare_with_bioformats`).
"""

from __future__ import annotations

import random
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import tifffile

from metaextract.engines.tiff.lsm_scan import CORRECTION, IMMERSION, enumeration, hashtable_order
from metaextract.engines.tiff.zeiss_mm import LsmEngine
from metaextract.extraction.pipeline import read_head

from ._differential import compare_with_bioformats

SEED = 20
VARIANTS = 80
AGREE_FLOOR = 50
LSM_FILE = "zeiss-lsm/test.lsm"
UNKNOWN_KEY = 0x7FFFFFFF  #: a scan-information key no block reads

#: Objective texts Zeiss writes (correction tokens, magnification/NA, immersion, extras).
OBJECTIVES = ("EC Plan-Neofluar 40x/1.30 Oil DIC M27", "Plan-Apochromat 63x/1.40 Oil DIC M27",
              "C-Apochromat 40x/1.20 W Korr UV-VIS", "LD Achroplan 20x/0.40 Korr Ph2 M27", "Fluar 10x/0.50 M27",
              "alpha Plan-Fluar 100x/1.45 Oil M27", "EC Epiplan-Neofluar 50x/0.75 HD DIC",
              "Plan-Neofluar 40x/1.3 Oil Iris",
              "LCI Plan-Neofluar 25x/0.8 Imm Korr", "Plan-Apochromat 20x/0.8 M27", "C-Apochromat 10x/0.45 W M27",
              "W Plan-Apochromat 20x/1.0 DIC", "EC Plan-Neofluar 10x/0.30 M27", "Objective 5x", "")
LASERS = ("DPSS 561-10", "HeNe633", "HeNe543", "Argon/2", "Mai Tai", "Diode 405", "YAG", "Ar/Kr", "InTune", "")
SPLITTERS = ("MBS 488/561/633", "MBS 690+", "None", "NFT 545", "", "MBS 405/488")


class Scan:
    """The corpus LSM's scan-information entries: (block kind, key) -> (type, size, value offset)."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        with tifffile.TiffFile(path) as tf:
            cz = tf.pages.first.tags[34412].valueoffset
        self.colors = struct.unpack_from("<i", data, cz + 108)[0]
        pos = struct.unpack_from("<i", data, cz + 124)[0]
        self.entries: dict[tuple[int, int, int], tuple[int, int, int]] = {}
        kinds: dict[int, int] = {}
        kind = nth = 0
        while pos < len(data) - 12:
            entry, kind_of_value, size = struct.unpack_from("<Iii", data, pos)
            pos += 12
            if kind_of_value == 0 and entry != 0xFFFFFFFF and entry & 0x0FFFFFFF == 0:
                kind = entry
                nth = kinds[kind] = kinds.get(kind, -1) + 1
                continue
            if kind_of_value == 0:
                continue  # the end of a block
            self.entries.setdefault((kind, nth, entry), (kind_of_value, size, pos))
            pos += size


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _set(path: Path, scan: Scan, kind: int, key: int, value: object, nth: int = 0) -> bool:
    """Set one scan-information value in place; False when the entry is not there or the text too long."""
    found = scan.entries.get((kind, nth, key))
    if found is None:
        return False
    kind_of_value, size, at = found
    if kind_of_value == 2:
        text = str(value).encode("latin-1")
        if len(text) > size:
            return False
        _patch(path, at, text + b"\x00" * (size - len(text)))
    elif kind_of_value == 4:
        _patch(path, at, struct.pack("<i", int(value)))  # type: ignore[call-overload]
    else:
        _patch(path, at, struct.pack("<d", float(value)))  # type: ignore[arg-type]
    return True


Edit = Callable[[random.Random, Path, Scan], str]
R, LASER, TRACK, DET, SPLIT, ILLUM, DATA = (0x10000000, 0x50000000, 0x40000000, 0x70000000, 0xB0000000,
                                            0x90000000, 0xD0000000)


def _edit(kind: int, key: int, what: str, values: tuple[object, ...], nth: int = 0) -> Edit:
    def apply(rng: random.Random, path: Path, scan: Scan) -> str:
        value = rng.choice(values)
        return f"{what}={value!r}" if _set(path, scan, kind, key, value, nth) else f"{what} (too long)"
    return apply


def _drop(kind: int, key: int, what: str) -> Edit:
    """An edit that renames the entry's key (one no reader knows): the value is then missing."""
    def apply(rng: random.Random, path: Path, scan: Scan) -> str:
        _patch(path, scan.entries[(kind, 0, key)][2] - 12, struct.pack("<I", UNKNOWN_KEY))
        return f"no {what}"
    return apply


def _color(rng: random.Random, path: Path, scan: Scan) -> str:
    data = path.read_bytes()
    offset = struct.unpack_from("<i", data, scan.colors + 12)[0]
    value = rng.choice((0, 0xFF, 0xFF00, 0xFF0000, 0x00FFFF, 0x808080))
    _patch(path, scan.colors + offset, struct.pack("<i", value))
    return f"colour={value:#08x}"


EDITS: tuple[Edit, ...] = (
    _edit(R, 0x10000004, "objective", OBJECTIVES), _edit(R, 0x10000004, "objective", OBJECTIVES),
    _edit(R, 0x10000047, "user", ("Jefferis", "Smith", "", "lab user")),
    _edit(R, 0x10000016, "zoom", (0.6, 1.0, 2.5, 0.0)),
    _edit(LASER, 0x50000001, "laser", LASERS), _edit(LASER, 0x50000002, "laser acquire", (0, 1)),
    _edit(TRACK, 0x40000006, "track acquire", (0, 1, 1)), _edit(TRACK, 0x4000000B, "interval", (0.5, 1.0, 3.25, 0.0)),
    _edit(DET, 0x70000003, "gain", (764.4112392398895, 500.0, 0.0)),
    _edit(DET, 0x70000005, "amplifier gain", (1.0, 2.5)), _edit(DET, 0x70000009, "pinhole", (38.4666, 0.0, 90.5)),
    _edit(DET, 0x7000000B, "detection acquire", (0, 1, 1)), _edit(DET, 0x70000014, "detection name", ("ChS1", "Ch2")),
    _edit(SPLIT, 0xB0000002, "splitter 0", SPLITTERS, 0), _edit(SPLIT, 0xB0000002, "splitter 1", SPLITTERS, 1),
    _edit(SPLIT, 0xB0000002, "splitter 2", SPLITTERS, 2),
    _edit(ILLUM, 0x90000001, "illumination", ("561", "488", "405", "laser", "5x1")),
    _edit(ILLUM, 0x90000003, "wavelength", (561.0, 633.0, 0.0)),
    _edit(ILLUM, 0x90000004, "illumination acquire", (0, 1, 1)),
    _edit(DATA, 0xD0000017, "data acquire", (0, 1, 1)),
    _color,
    _drop(R, 0x10000047, "user"), _drop(R, 0x10000016, "zoom"), _drop(R, 0x10000004, "objective"),
    _drop(LASER, 0x50000001, "laser name"), _drop(LASER, 0x50000002, "laser acquire"),
    _drop(TRACK, 0x4000000B, "interval"), _drop(TRACK, 0x40000006, "track acquire"),
    _drop(DET, 0x70000003, "gain"), _drop(DET, 0x70000009, "pinhole"), _drop(ILLUM, 0x90000003, "wavelength"),
)


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("lsm-variants")
    rng = random.Random(SEED)
    made = []
    for index in range(VARIANTS):
        path = folder / f"v{index:03d}" / f"scan{index:03d}.lsm"  # one folder each: no .mdb, no siblings
        path.parent.mkdir()
        shutil.copyfile(corpus / LSM_FILE, path)
        path.chmod(0o644)
        scan = Scan(path)
        labels = [edit(rng, path, scan) for edit in rng.sample(EDITS, rng.choice((1, 2, 3, 5)))]
        made.append((path, "; ".join(labels)))
    return made


def test_the_editor_finds_the_scan_information(corpus: Path) -> None:
    scan = Scan(corpus / LSM_FILE)
    assert scan.entries[(R, 0, 0x10000047)][:2] == (2, 9)  # "Jefferis" and its NUL
    assert (SPLIT, 2, 0xB0000002) in scan.entries and (DATA, 0, 0xD0000017) in scan.entries


def test_java_hashtable_order_picks_the_correction_bioformats_picks() -> None:
    # "ECPlan-Neofluar" matches PlanFluor's, Neofluar's and Fluar's patterns; Bio-Formats says Fluar (corpus)
    assert enumeration(CORRECTION, "ECPlan-Neofluar") == "Fluar"
    assert enumeration(CORRECTION, "Plan-Apochromat") == "PlanApo"
    assert enumeration(CORRECTION, "C-Apochromat") == "Other"
    assert enumeration(IMMERSION, "W") == "Water" and enumeration(IMMERSION, "Unknown") == "Other"
    assert hashtable_order(("a", "b")) == ["b", "a"]  # ("a" and "b" hash to buckets 9 and 10 of 11)


@pytest.mark.parametrize("case", ["illumination name", "no detection name", "no data name"])
def test_scan_information_the_replay_does_not_model_is_declined(case: str, corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.lsm"
    shutil.copyfile(corpus / LSM_FILE, path)
    path.chmod(0o644)
    scan = Scan(path)
    assert LsmEngine().claim(str(path), read_head(str(path))) > 0
    if case == "illumination name":
        assert _set(path, scan, ILLUM, 0x90000001, "5x1")  # Java might read it as a number: not modelled
    else:  # the entry's key renamed: the channel has no name
        kind, key = (DET, 0x70000014) if case == "no detection name" else (DATA, 0xD0000001)
        _patch(path, scan.entries[(kind, 0, key)][2] - 12, struct.pack("<I", UNKNOWN_KEY))
    assert LsmEngine().claim(str(path), read_head(str(path))) == 0


@pytest.mark.slow
def test_every_lsm_answer_on_edited_files_equals_live_bioformats(variants: list[tuple[Path, str]]) -> None:
    compare_with_bioformats(variants, "tifffile-lsm").assert_proven(len(variants), "tifffile-lsm", AGREE_FLOOR)
