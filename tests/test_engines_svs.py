"""The svs engine against Bio-Formats 7.3.1: the corpus file and synthetic Aperio files checked live.

``svs/small.svs`` (a 16x16 level plus a stripped 16x16 thumbnail that Bio-Formats drops) is claimed and
gives the reference's whole document. The synthetic files below (pyramids with thumbnail, label and macro,
grey uint16, big endian, BigTIFF, levels out of IFD order, a thumbnail larger than the smallest level,
label/macro found by NewSubfileType, a missing NewSubfileType, Dye, Left/Top, several AppMag/Date values)
were each read once by live Bio-Formats 7.3.1 (showinf -omexml-only …); the digest of its normalised
document and its readable facts are pinned here, and the engine must give that same document.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from metaextract.engines.base import ExtractionError
from metaextract.engines.tiff.svs import CLAIM, SvsEngine, java_split, read_svs
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, parse, validate

from ._corpus import corpus_files
from ._engines import damaged_copy_is_contained, reads_as_the_reference

REL = "svs/small.svs"
NS = {"o": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}
HDR = "Aperio Image Library v11.2.1 \r\n"
BASE = "46000x32914 [0,100 46000x32914] (256x256) JPEG/RGB Q=30"
META = "|AppMag = 40|StripeWidth = 2040|MPP = 0.2520|Date = 05/17/21|Time = 13:45:01|Left = 10.5|Top = 3.25"


def _write(path: Path, pages: list[dict[str, Any]], **writer: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path, **writer) as tw:
        for p in pages:
            shape = p["shape"]
            kw: dict[str, Any] = {"tile": p["tile"]} if p.get("tile") else {"rowsperstrip": shape[0]}
            if p.get("subfile", 0) is not None:  # None: no NewSubfileType tag at all
                kw["subfiletype"] = p.get("subfile", 0)
            tw.write(np.zeros(shape, dtype=p.get("dtype", "uint8")), description=p.get("desc"),
                     metadata=None, software=False,
                     photometric=p.get("photometric", "rgb" if len(shape) == 3 else "minisblack"),
                     datetime=p.get("datetime"), **kw)
    return path


def _rename_tag(path: Path, ifd_index: int, old: int, new: int) -> None:
    """Give one tag of one IFD another code (a classic little-endian TIFF)."""
    data = bytearray(path.read_bytes())
    offset = struct.unpack_from("<I", data, 4)[0]
    for _ in range(ifd_index):
        n = struct.unpack_from("<H", data, offset)[0]
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * n)[0]
    n = struct.unpack_from("<H", data, offset)[0]
    for k in range(n):
        at = offset + 2 + 12 * k
        if struct.unpack_from("<H", data, at)[0] == old:
            struct.pack_into("<H", data, at, new)
    path.write_bytes(bytes(data))


def _a(tmp: Path) -> Path:  # full, thumbnail, two levels, label, macro
    return _write(tmp / "a" / "a.svs", [
        {"shape": (192, 256, 3), "tile": (64, 64), "desc": HDR + BASE + META},
        {"shape": (48, 64, 3), "desc": HDR + "46000x32914 -> 1024x732 - " + META},
        {"shape": (96, 128, 3), "tile": (64, 64), "desc": HDR + BASE + " -> 11500x8228" + META},
        {"shape": (64, 80, 3), "tile": (64, 64), "desc": HDR + BASE + " -> 2875x2057" + META},
        {"shape": (30, 40, 3), "subfile": 1, "desc": "Aperio Image Library v11.2.1\nlabel 40x30"},
        {"shape": (30, 80, 3), "subfile": 9, "desc": "Aperio Image Library v11.2.1\nmacro 80x30"},
    ])


def _b(tmp: Path) -> Path:  # grey uint16, no AppMag/Left/Top, Time alone, a label without description
    return _write(tmp / "b" / "b.svs", [
        {"shape": (100, 120), "dtype": "uint16", "tile": (32, 32), "desc": HDR + BASE + "|MPP = 0.5|Time = 10:00:00"},
        {"shape": (25, 30), "dtype": "uint16", "desc": HDR + "thumb|MPP = 0.5"},
        {"shape": (50, 60), "dtype": "uint16", "tile": (32, 32), "desc": HDR + BASE + "|MPP = 1.0"},
        {"shape": (20, 20), "dtype": "uint16", "subfile": 1},
    ])


def _d(tmp: Path) -> Path:  # thumbnail larger than the smallest level; macro by subfile type only; Dye
    return _write(tmp / "d" / "d.svs", [
        {"shape": (192, 256, 3), "tile": (64, 64), "desc": HDR + BASE + META + "|Dye = DAPI"},
        {"shape": (48, 64, 3), "desc": HDR + "thumb" + META},
        {"shape": (96, 128, 3), "tile": (64, 64), "desc": HDR + BASE + META},
        {"shape": (24, 32, 3), "tile": (16, 16), "desc": HDR + BASE + META},
        {"shape": (30, 40, 3), "subfile": 1, "desc": "Aperio Image Library v11.2.1\nlabel 40x30"},
        {"shape": (30, 80, 3), "subfile": 9, "desc": "Aperio Image Library v11.2.1\nsomething else"},
    ])


def _e(tmp: Path) -> Path:  # no thumbnail, no label; trailing spaces in the comment
    desc = "Aperio Image Library v9  \n" + BASE
    return _write(tmp / "e" / "e.svs", [
        {"shape": (192, 256, 3), "tile": (64, 64),
         "desc": desc + "|AppMag = 20|MPP = 0.499|Date = 12/29/09|Time = 09:59:15"},
        {"shape": (96, 128, 3), "tile": (64, 64), "desc": desc + "|AppMag = 20|MPP = 0.998"},
    ])


def _f(tmp: Path) -> Path:  # the last IFD has no NewSubfileType (-1: a label) and names neither
    path = _write(tmp / "f" / "f.svs", [
        {"shape": (192, 256, 3), "tile": (64, 64), "desc": HDR + BASE + "|AppMag = 20.5|MPP = 0.2520|Left = 7"},
        {"shape": (48, 64, 3), "desc": HDR + "thumb|MPP = 0.2520"},
        {"shape": (96, 128, 3), "tile": (64, 64), "desc": HDR + BASE + "|MPP = 0.504"},
        {"shape": (30, 40, 3), "desc": "Aperio Image Library v11.2.1\nsomething 40x30"},
    ])
    _rename_tag(path, 3, 254, 253)
    return path


def _g(tmp: Path) -> Path:  # big endian grey, Top only, a Dye per IFD (the first one met wins)
    return _write(tmp / "g" / "g.svs", [
        {"shape": (64, 64), "dtype": "uint16", "tile": (16, 16), "desc": HDR + BASE + "|MPP = 2|Top = -1.5|Dye = FITC"},
        {"shape": (16, 16), "dtype": "uint16", "desc": HDR + "t|MPP = 8|Dye = TRITC"},
        {"shape": (32, 32), "dtype": "uint16", "tile": (16, 16), "desc": HDR + BASE + "|MPP = 4|Dye = CY5"},
        {"shape": (10, 30), "dtype": "uint16", "desc": "x\nlabel"},
    ], byteorder=">")


def _h(tmp: Path) -> Path:  # levels out of IFD order, IFD 1 tiled (nothing dropped), last AppMag/Date win
    return _write(tmp / "h" / "h.svs", [
        {"shape": (200, 300, 3), "tile": (16, 16),
         "desc": HDR + BASE + "|AppMag = 10|MPP = 1|Date = 01/02/99|Time = 23:59:59"},
        {"shape": (50, 75, 3), "tile": (16, 16), "desc": HDR + "L1|AppMag = 30|MPP = 4"},
        {"shape": (100, 150, 3), "tile": (16, 16), "desc": HDR + "L2|MPP = 2|Date = 12/31/30"},
        {"shape": (25, 37, 3), "tile": (16, 16), "desc": HDR + "L3|MPP = 8"},
        {"shape": (30, 80, 3), "subfile": 9, "desc": "Aperio Image Library v11.2.1\nmacro 80x30"},
    ])


def _i(tmp: Path) -> Path:  # BigTIFF
    return _write(tmp / "i" / "i.svs", [
        {"shape": (128, 128, 3), "tile": (32, 32), "desc": HDR + BASE + "|MPP = 0.25|AppMag = 40"},
        {"shape": (32, 32, 3), "desc": HDR + "thumb|MPP = 0.25"},
        {"shape": (64, 64, 3), "tile": (32, 32), "desc": HDR + BASE + "|MPP = 0.25"},
    ], bigtiff=True)


LIB = "Aperio Image Library v11.2.1"
PIVOT = (date.today().year - 80) % 100  # Java's SimpleDateFormat: two-digit years within 80 years back
#: checked live once: the sha256 (first 16 hex digits) of Bio-Formats 7.3.1's normalised document, and per
#: image (SizeX, SizeY, Type, PhysicalSizeX, Description, channel Name)
LIVE = {
    "a": (_a, "e5011a2824da4a58", [("256", "192", "uint8", "0.252", LIB, None),
                                   ("128", "96", "uint8", "0.252", LIB, None),
                                   ("80", "64", "uint8", "0.252", LIB, None),
                                   ("40", "30", "uint8", None, "label 40x30", None),
                                   ("80", "30", "uint8", None, "macro 80x30", None)]),
    "b": (_b, "68889cdc3980fa84", [("120", "100", "uint16", "0.5", LIB, None),
                                   ("60", "50", "uint16", "1.0", LIB, None),
                                   ("20", "20", "uint16", None, None, None)]),
    "d": (_d, "bcdd554dba93251c", [("256", "192", "uint8", "0.252", LIB, "DAPI"),
                                   ("128", "96", "uint8", "0.252", LIB, "DAPI"),
                                   ("64", "48", "uint8", "0.252", "thumb", "DAPI"),
                                   ("40", "30", "uint8", None, "label 40x30", "DAPI"),
                                   ("80", "30", "uint8", None, "something else", "DAPI")]),
    "e": (_e, "334edcddf0bcfbd0", [("256", "192", "uint8", "0.499", "Aperio Image Library v9", None),
                                   ("128", "96", "uint8", "0.998", "Aperio Image Library v9", None)]),
    "f": (_f, "bc17f41977950fbf", [("256", "192", "uint8", "0.252", LIB, None),
                                   ("128", "96", "uint8", "0.504", LIB, None),
                                   ("40", "30", "uint8", None, "something 40x30", None)]),
    "g": (_g, "4e47a27effad8f0c", [("64", "64", "uint16", "2.0", LIB, "FITC"),
                                   ("32", "32", "uint16", "4.0", LIB, "FITC"),
                                   ("30", "10", "uint16", None, "label", "FITC")]),
    "h": (_h, "e0ab9732d5010b63", [("300", "200", "uint8", "1.0", LIB, None),
                                   ("150", "100", "uint8", "2.0", "L2", None),
                                   ("75", "50", "uint8", "4.0", "L1", None),
                                   ("37", "25", "uint8", "8.0", "L3", None),
                                   ("80", "30", "uint8", None, "macro 80x30", None)]),
    "i": (_i, "d2b60331076e6db0", [("128", "128", "uint8", "0.25", LIB, None),
                                   ("64", "64", "uint8", "0.25", LIB, None)]),
}


def _summary(xml: str) -> list[tuple[str | None, ...]]:
    out = []
    for img in parse(xml).findall("o:Image", NS):
        px = img.find("o:Pixels", NS)
        ch = px.find("o:Channel", NS)
        desc = img.find("o:Description", NS)
        out.append((px.get("SizeX"), px.get("SizeY"), px.get("Type"), px.get("PhysicalSizeX"),
                    desc.text if desc is not None else None, ch.get("Name")))
    return out


def _digest(xml: str) -> str:
    return hashlib.sha256(normalise(xml).encode()).hexdigest()[:16]


def test_the_corpus_svs_files_are_all_accounted_for(corpus: Path) -> None:
    assert [p for p in corpus_files(corpus) if p.startswith("svs/")] == [REL]


def test_small_svs_is_claimed_and_equals_the_reference(corpus: Path, reference: Path) -> None:
    xml = reads_as_the_reference(SvsEngine(), corpus, reference, REL, CLAIM)
    fields = key_fields(xml)
    assert fields["image_count"] == 1  # the stripped thumbnail (IFD 1) is dropped
    assert fields["images"][0]["acquisition_date"] == "2009-12-29T09:59:15"
    assert fields["images"][0]["pixels"]["physical_size_x"] == [0.499, "µm"]
    assert fields["objectives"] == [{"nominal_magnification": 20.0, "lens_na": None}]


def test_extract_without_claim_reads_the_file_itself(corpus: Path) -> None:
    assert key_fields(SvsEngine().extract(str(corpus / REL)))["images"][0]["name"] == "Series 1"


@pytest.mark.parametrize("variant", sorted(LIVE))
def test_synthetic_files_give_the_document_live_bioformats_gave(tmp_path: Path, variant: str) -> None:
    make, digest, images = LIVE[variant]
    path = make(tmp_path)
    engine = SvsEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    assert _summary(xml) == images
    assert _digest(xml) == digest
    assert validate(xml, remember=False) == (True, None)


def test_global_values_follow_bioformats_order(tmp_path: Path) -> None:
    """IFD 0, then the pyramid backwards: in h.svs IFD 1's AppMag and IFD 2's Date are the last met."""
    xml = SvsEngine().extract(str(_h(tmp_path)))
    fields = key_fields(xml)
    assert fields["objectives"] == [{"nominal_magnification": 30.0, "lens_na": None}]
    assert {img["acquisition_date"] for img in fields["images"]} == {"2030-12-31T23:59:59"}
    planes = key_fields(SvsEngine().extract(str(_f(tmp_path))))["images"]
    assert planes[0]["planes"][0]["position_x"] == [7.0, "mm"]
    assert planes[1]["planes"][0]["position_x"] is None


def _variant(tmp_path: Path, name: str, first: str, **extra: Any) -> Path:
    pages = [{"shape": (64, 64, 3), "tile": (16, 16), "desc": first, **extra},
             {"shape": (16, 16, 3), "desc": HDR + "thumb|MPP = 1"},
             {"shape": (32, 32, 3), "tile": (16, 16), "desc": HDR + BASE + "|MPP = 2"}]
    return _write(tmp_path / name, pages)


@pytest.mark.parametrize(("name", "first", "extra", "reason"), [
    ("z.svs", HDR + BASE + "|MPP = 1|TotalDepth = 3", {}, "Z stack"),
    ("em.svs", HDR + BASE + "|MPP = 1|Emission Wavelength = 520", {}, "Emission Wavelength"),
    ("color.svs", HDR + BASE + "|MPP = 1|DisplayColor = red", {}, "DisplayColor"),
    ("mpp.svs", HDR + BASE + "|MPP = 1e-3", {}, "not a plain decimal"),
    ("tiny.svs", HDR + BASE + "|MPP = 0.0001", {}, "changes units"),
    ("pivot.svs", HDR + BASE + f"|MPP = 1|Date = 01/01/{PIVOT:02d}|Time = 00:00:00", {}, "century pivot"),
    ("lenient.svs", HDR + BASE + "|MPP = 1|Date = 13/45/21|Time = 00:00:00", {}, "rolls it over"),
    ("empty.svs", HDR + BASE + "||MPP = 1", {}, "empty"),
    ("dated.svs", HDR + BASE + "|MPP = 1", {"datetime": "2020:01:01 00:00:00"}, r"IFD 0 tags \[306\]"),
])
def test_unchecked_kinds_are_declined(tmp_path: Path, name: str, first: str, extra: dict[str, Any],
                                      reason: str) -> None:
    path = _variant(tmp_path, name, first, **extra)
    engine = SvsEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


def test_odd_structures_are_declined(tmp_path: Path) -> None:
    engine = SvsEngine()
    # no NewSubfileType anywhere: IFD 0 itself becomes the "label" (Bio-Formats' output is then odd)
    nosub = _write(tmp_path / "nosub.svs", [
        {"shape": (64, 64, 3), "tile": (16, 16), "desc": HDR + BASE + "|MPP = 1", "subfile": None},
        {"shape": (16, 16, 3), "desc": HDR + "thumb|MPP = 1", "subfile": None},
        {"shape": (32, 32, 3), "tile": (16, 16), "desc": HDR + BASE + "|MPP = 2", "subfile": None}])
    with tifffile.TiffFile(nosub) as tf:
        assert 254 not in tf.pages[0].tags
    assert engine.claim(str(nosub), read_head(nosub)) == 0
    with pytest.raises(ExtractionError, match="outside the pyramid|not the last"):
        engine.extract(str(nosub))
    single = _write(tmp_path / "single.svs", [{"shape": (16, 16, 3), "tile": (16, 16), "desc": HDR + "x|MPP = 1"}])
    with pytest.raises(ExtractionError, match="single IFD"):
        engine.extract(str(single))
    mixed = _write(tmp_path / "mixed.svs", [
        {"shape": (64, 64, 3), "tile": (16, 16), "desc": HDR + BASE + "|MPP = 1"},
        {"shape": (32, 32, 3), "tile": (16, 16), "dtype": "uint16", "desc": HDR + BASE + "|MPP = 2"}])
    with pytest.raises(ExtractionError, match="another pixel type"):
        engine.extract(str(mixed))
    plain = _write(tmp_path / "plain.svs", [{"shape": (16, 16), "tile": (16, 16), "desc": "hello"},
                                            {"shape": (8, 8), "desc": "x"}])
    assert engine.claim(str(plain), read_head(plain)) == 0
    with pytest.raises(ExtractionError, match="not an Aperio SVS"):
        engine.extract(str(plain))


def test_other_names_and_damage_are_refused(corpus: Path, tmp_path: Path) -> None:
    engine = SvsEngine()
    renamed = tmp_path / "small.tif"
    shutil.copy(corpus / REL, renamed)
    assert engine.claim(str(renamed), read_head(renamed)) == 0
    with pytest.raises(ExtractionError, match="not named .svs"):
        engine.extract(str(renamed))
    data = (corpus / REL).read_bytes()
    for at in (1600, int(len(data) * 0.9)):  # in IFD 1 (at 1590); in IFD 1's JPEG tables
        cut = tmp_path / f"cut{at}.svs"
        cut.write_bytes(data[:at])
        assert engine.claim(str(cut), read_head(cut)) == 0
        with pytest.raises(ExtractionError, match="damaged SVS"):
            engine.extract(str(cut))
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    with pytest.raises(ExtractionError):
        engine.extract(str(empty))


def test_damaged_headers_never_raise_anything_else(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(11)
    data = (corpus / REL).read_bytes()
    engine = SvsEngine()
    for i in range(150):
        raw = bytearray(data[:rng.choice([8, 300, 1600, 2000, len(data)])])
        for _ in range(6):
            at = rng.choice([rng.randrange(0, len(raw)), rng.randrange(270, min(len(raw), 420))
                             if len(raw) > 420 else 0])
            raw[at] = rng.randrange(256)
        raw[:4] = data[:4]
        damaged_copy_is_contained(engine, tmp_path / f"d{i}.svs", bytes(raw))


def test_java_split_drops_trailing_empty_strings() -> None:
    assert java_split("a|b||", "|") == ["a", "b"]
    assert java_split("|a", "|") == ["", "a"]
    assert java_split("", "|") == [""]
    assert java_split("||", "|") == []


def test_read_svs_reports_the_pyramid(corpus: Path) -> None:
    svs = read_svs(str(corpus / REL))
    assert [s.ifd.index for s in svs.series] == [0]
    assert svs.magnification == 20.0 and svs.left == 25.691574 and svs.top == 23.449873
