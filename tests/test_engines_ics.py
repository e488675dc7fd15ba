"""The ICS engine: it claims the ICS headers whose document equals Bio-Formats' (the corpus pair
``testim.ics``/``testim.ids`` and synthetic headers of every rule it reproduces, compared whole with live
Bio-Formats), answers directly for a version-1 header whose ``.ids`` is missing (Bio-Formats fails on it)
with notes saying so, declines the rest, and still rescues, after Bio-Formats failed, a header with data
missing that it declines to claim.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from metaextract import engines
from metaextract.engines.base import ExtractionError
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.ics import CLAIM, MAX_HEADER, IcsEngine
from metaextract.extraction.pipeline import extract_file, read_head
from metaextract.ome import key_fields, normalise, validate

Line = list[str]


def ics_lines(order: list[str], sizes: list[int], *, fmt: str = "integer", sign: str = "unsigned",
              byte_order: list[str] | None = None, significant: int | None = None, scale: list[str] | None = None,
              units: list[str] | None = None, name: str = "img", extra: tuple[Line, ...] = ()) -> list[Line]:
    lines = [["filename", name], ["layout", "parameters", str(len(order))], ["layout", "order", *order],
             ["layout", "sizes", *map(str, sizes)], ["layout", "coordinates", "video"],
             ["layout", "significant_bits", str(significant or sizes[0])], ["representation", "format", fmt],
             ["representation", "sign", sign], ["representation", "compression", "uncompressed"],
             ["representation", "byte_order", *(byte_order or ["1", "2"])]]
    if byte_order == []:
        lines.pop()
    if scale is not None:
        lines.append(["parameter", "scale", *scale])
    if units is not None:
        lines.append(["parameter", "units", *units])
    return lines + list(extra)


def write_ics(folder: Path, name: str, lines: list[Line], *, version: str = "1.0", data: bool = True,
              seps: tuple[str, str] = ("\t", "\n"), end: bool = True, ext: str = ".ics") -> Path:
    """An ICS header (and its .ids, or for version 2 its data after the header) in a folder of its own."""
    folder = folder / name
    folder.mkdir()
    fs, ls = seps
    text = fs + ls + ls.join(fs.join(words) for words in [["ics_version", version], *lines]) + ls
    text += "end" + ls if end else ""
    path = folder / (name + ext)
    if version == "2.0":
        path.write_bytes(text.encode() + bytes(4096 if data else 0))
    else:
        path.write_bytes(text.encode())
        if data:
            (folder / (name + ext[:2] + chr(ord(ext[2]) + 1) + ext[3])).write_bytes(bytes(4096))
    return path


XY = ["bits", "x", "y"]
#: Headers of every rule the engine reproduces; each was compared whole with live Bio-Formats (and is again,
#: below). Comments say what Bio-Formats does there that the ICS definition would not suggest.
CLAIMED: dict[str, dict[str, object]] = {
    "z-stack": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2]},
    "no-byte-order": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "byte_order": []},  # BigEndian true
    "uint8": {"order": XY, "sizes": [8, 8, 6], "byte_order": ["1"]},
    "int8": {"order": XY, "sizes": [8, 8, 6], "sign": "signed", "byte_order": ["1"]},
    "uint32-1234": {"order": XY, "sizes": [32, 8, 6], "byte_order": ["1", "2", "3", "4"]},  # BigEndian true
    "int32-4321": {"order": XY, "sizes": [32, 8, 6], "sign": "signed", "byte_order": ["4", "3", "2", "1"]},
    "float": {"order": XY, "sizes": [32, 8, 6], "fmt": "real", "sign": "signed", "byte_order": ["1", "2", "3", "4"]},
    "float-4321": {"order": XY, "sizes": [32, 8, 6], "fmt": "real", "sign": "signed",
                   "byte_order": ["4", "3", "2", "1"]},
    "double": {"order": XY, "sizes": [64, 8, 6], "fmt": "real", "sign": "signed",
               "byte_order": [str(i) for i in range(1, 9)]},
    "real-16-bit": {"order": XY, "sizes": [16, 8, 6], "fmt": "real", "sign": "signed"},  # int16, big-endian
    "sign-Signed": {"order": XY, "sizes": [16, 8, 6], "sign": "Signed"},  # values are case-sensitive: uint16
    "significant-12": {"order": XY, "sizes": [16, 8, 6], "significant": 12},
    "x-y-t-z": {"order": [*XY, "t", "z"], "sizes": [16, 8, 6, 3, 2]},  # XYTZC
    "x-y-ch-z": {"order": [*XY, "ch", "z"], "sizes": [16, 8, 6, 3, 2]},  # Modulo along C
    "x-y-z-ch-t": {"order": [*XY, "z", "ch", "t"], "sizes": [16, 8, 6, 2, 3, 4]},
    "axis-u": {"order": [*XY, "u"], "sizes": [16, 8, 6, 2]},  # any other word is a channel axis
    "axis-Z-upper": {"order": [*XY, "Z"], "sizes": [16, 8, 6, 2]},  # axis names are case-sensitive: C
    "axis-time": {"order": [*XY, "time"], "sizes": [16, 8, 6, 2]},  # "time" is no T: C
    "two-t": {"order": [*XY, "t", "t"], "sizes": [16, 8, 6, 2, 3]},  # T = 6
    "two-channel-axes": {"order": [*XY, "ch", "c"], "sizes": [16, 8, 6, 2, 2]},  # C = 4, Modulo 0..1
    "two-channel-lengths": {"order": [*XY, "ch", "c"], "sizes": [16, 8, 6, 2, 3]},  # no Modulo
    "two-channel-kinds": {"order": [*XY, "ch", "u"], "sizes": [16, 8, 6, 2, 2]},  # no Modulo
    "scale-no-units": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "0.5", "0.25", "2"]},
    "scale-um": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "0.5", "0.25", "2"],
                 "units": ["relative", "um", "microns", "micrometers"]},
    "scale-micron-UM-nm": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "0.5", "0.25", "2"],
                           "units": ["relative", "micron", "UM", "nm"]},  # none of them
    "units-one-short": {"order": [*XY, "ch", "z"], "sizes": [16, 8, 6, 2, 2], "scale": ["1", "0.5", "0.25", "1", "2"],
                        "units": ["relative", "um", "um", "um"]},  # "nm" put in at ch
    "scale-short": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "0.5"],
                    "units": ["relative", "um", "um", "um"]},
    "scale-zero": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "0.5", "0.5", "0"],
                   "units": ["relative", "um", "um", "um"]},
    "time-s": {"order": [*XY, "t"], "sizes": [16, 8, 6, 3], "scale": ["1", "0.5", "0.5", "1.5"],
               "units": ["relative", "um", "um", "s"]},
    "time-seconds": {"order": [*XY, "t"], "sizes": [16, 8, 6, 3], "scale": ["1", "0.5", "0.5", "2"],
                     "units": ["relative", "um", "um", "seconds"]},
    "time-ms": {"order": [*XY, "t"], "sizes": [16, 8, 6, 3], "scale": ["1", "0.5", "0.5", "250"],
                "units": ["relative", "um", "um", "ms"]},
    "time-no-unit": {"order": [*XY, "t"], "sizes": [16, 8, 6, 3], "scale": ["1", "0.5", "0.5", "2"]},  # ms
    "time-min": {"order": [*XY, "z", "t"], "sizes": [16, 8, 6, 2, 3], "scale": ["1", "0.5", "0.5", "1", "2"],
                 "units": ["relative", "um", "um", "um", "min"]},  # no TimeIncrement
    "filename-other": {"order": XY, "sizes": [16, 8, 6], "name": "some other name"},
    "parameter-t": {"order": [*XY, "t"], "sizes": [16, 8, 6, 2], "extra": (["parameter", "t", "0.5", "1.5"],)},
    "layout-sizes-twice": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2],
                           "extra": (["layout", "sizes", "16", "9", "7", "3"],)},  # the last one
    "keys-upper-case": {"order": [*XY, "z"], "sizes": [16, 8, 6, 2],
                        "extra": (["LAYOUT", "SIZES", "16", "5", "4", "3"],)},
}
#: How each claimed header is written beyond its lines (version, separators, end line, extension).
LAYOUTS: dict[str, dict[str, object]] = {
    "version-2": {"version": "2.0"},
    "version-2-source-elsewhere": {"version": "2.0"},  # Bio-Formats ignores "source": the data follow "end"
    "crlf-separator": {"seps": ("\t", "\r")},
    "space-separator": {"seps": (" ", "\n")},
    "no-end-line": {"end": False},  # the last line (byte_order) is never read: BigEndian true
    "upper-case-name": {"ext": ".ICS"},
}


def _claimed_file(tmp_path: Path, name: str) -> Path:
    if name in LAYOUTS:
        extra = (["source", "file", "/nowhere.ics", "0"],) if "source" in name else ()
        return write_ics(tmp_path, name, ics_lines([*XY, "z"], [16, 8, 6, 2], name=name, extra=extra),
                         **LAYOUTS[name])  # type: ignore[arg-type]
    spec = {"name": name, **CLAIMED[name]}
    return write_ics(tmp_path, name, ics_lines(**spec))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bioformats() -> BioFormatsEngine:
    return BioFormatsEngine()


def test_corpus_pair_is_claimed_and_equals_the_reference_whole(corpus: Path, reference: Path) -> None:
    for name in ("testim.ics", "testim.ids"):
        path = str(corpus / "ics" / name)
        engine = IcsEngine()
        assert engine.claim(path, read_head(path)) == CLAIM
        assert engines.choose(path, read_head(path), "auto").name == "ics"
        expected = (reference / "ics" / f"{name}.xml").read_text("utf-8")
        for xml in (engine.extract(path), IcsEngine().extract(path)):  # claimed, and read afresh
            assert normalise(xml) == normalise(expected)
            assert key_fields(xml) == key_fields(expected)
            assert validate(xml) == (True, None)
        result = extract_file(path, "auto")
        assert result.status == "ok" and result.engine == "ics" and result.notes == []
        assert normalise(result.omexml or "") == normalise(expected)


def test_missing_ids_in_the_corpus_is_answered_without_bioformats(corpus: Path, reference: Path,
                                                                  bioformats: BioFormatsEngine) -> None:
    path = corpus / "ics" / "testim_c.ics"
    assert not (corpus / "ics" / "testim_c.ids").exists()
    with pytest.raises(ExtractionError, match=r"FormatException: IDS file not found\."):
        bioformats.extract(str(path))  # what the engine's note quotes
    assert engines.choose(str(path), read_head(str(path)), "auto").name == "ics"
    result = extract_file(str(path), "auto")
    assert result.status == "ok", result.error
    assert result.engine == "ics"
    assert result.valid, result.validation_error
    assert result.notes == [
        f"read by ics {IcsEngine().version()} because Bio-Formats cannot read it "
        "(Bio-Formats failed: FormatException: IDS file not found.)",
        "ICS pixel data not found (its .ids file); metadata from the header alone"]
    # testim.ics has the same header but its filename line, and Bio-Formats reads it: the same document
    same = (reference / "ics" / "testim.ics.xml").read_text("utf-8").replace('Name="testim"', 'Name="testim_c"')
    assert normalise(result.omexml or "") == normalise(same)
    # the rescue (after a Bio-Formats failure) gives the same document
    xml, notes = IcsEngine().rescue(str(path))
    assert xml == result.omexml and notes == result.notes[1:]


@pytest.mark.parametrize("name", sorted([*CLAIMED, *LAYOUTS]))
def test_claimed_headers_equal_live_bioformats_whole(name: str, tmp_path: Path, bioformats: BioFormatsEngine) -> None:
    path = _claimed_file(tmp_path, name)
    expected = bioformats.extract(str(path))
    engine = IcsEngine()
    assert engine.claim(str(path), read_head(str(path))) == CLAIM
    mine = engine.extract(str(path))
    assert normalise(mine) == normalise(expected)
    assert validate(mine) == (True, None)
    if name == "z-stack":  # the .ids names the same dataset
        ids = str(path.with_suffix(".ids"))
        assert engine.claim(ids, read_head(ids)) == CLAIM
        assert normalise(engine.extract(ids)) == normalise(bioformats.extract(ids))


#: Headers Bio-Formats reads that the engine declines (checked live: Bio-Formats reads every one of them,
#: and where the engine's rules would give a different document the comment says how).
DECLINED: dict[str, tuple[dict[str, object], str]] = {
    "history": ({"order": XY, "sizes": [16, 8, 6], "extra": (["history", "author", "Jane", "Doe"],)},
                "does not reproduce"),  # Bio-Formats adds an Experimenter
    "sensor": ({"order": XY, "sizes": [16, 8, 6], "extra": (["sensor", "s_params", "LambdaEm", "520"],)},
               "does not reproduce"),
    "parameter-ch": ({"order": [*XY, "ch"], "sizes": [16, 8, 6, 2], "extra": (["parameter", "ch", "a", "b"],)},
                     "does not reproduce"),  # channel names
    "channel-first": ({"order": ["bits", "ch", "x", "y"], "sizes": [16, 3, 8, 6]}, "layout order"),  # interleaved
    "phase-axis": ({"order": [*XY, "p"], "sizes": [16, 8, 6, 2]}, "phase"),  # Modulo type phase
    "12-bit": ({"order": XY, "sizes": [12, 8, 6]}, "12-bit"),
    "24-bit": ({"order": XY, "sizes": [24, 8, 6]}, "24-bit"),  # uint8 with SignificantBits 24
    "tiny-pixel": ({"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "1e-7", "0.5", "1"],
                    "units": ["relative", "um", "um", "um"]}, "physical size"),  # written in nm
    "odd-number": ({"order": [*XY, "z"], "sizes": [16, 8, 6, 2], "scale": ["1", "abc", "0.5", "1"]},
                   "read differently"),
    "no-format": ({"order": XY, "sizes": [16, 8, 6], "fmt": "complex"}, "representation format"),
}


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_declined_headers(name: str, tmp_path: Path) -> None:
    spec, reason = DECLINED[name]
    path = write_ics(tmp_path, name, ics_lines(name=name, **spec))  # type: ignore[arg-type]
    engine = IcsEngine()
    assert engine.claim(str(path), read_head(str(path))) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))
    ids = str(path.with_suffix(".ids"))
    assert engine.claim(ids, read_head(ids)) == 0


def test_declined_layouts(tmp_path: Path) -> None:
    engine = IcsEngine()
    lines = ics_lines([*XY, "z"], [16, 8, 6, 2])
    # Bio-Formats 7.3.1 never returns on a version-2 header without "end" (checked live: it had to be killed)
    v2 = write_ics(tmp_path, "v2-no-end", lines, version="2.0", end=False)
    assert engine.claim(str(v2), read_head(str(v2))) == 0
    with pytest.raises(ExtractionError, match="without an 'end' line"):
        engine.extract(str(v2))
    nameless = write_ics(tmp_path, "no-filename", [line for line in lines if line[0] != "filename"])
    with pytest.raises(ExtractionError, match="no filename"):  # Bio-Formats names it "no-filename.ics"
        engine.extract(str(nameless))
    # not an .ics/.ids name, or an .ids without its header: not ICS at all
    other = tmp_path / "header.txt"
    shutil.copy(write_ics(tmp_path, "renamed", lines), other)
    assert engine.claim(str(other), read_head(str(other))) == 0
    lone = tmp_path / "lone.ids"
    lone.write_bytes(bytes(64))
    assert engine.claim(str(lone), read_head(str(lone))) == 0
    with pytest.raises(ExtractionError):
        engine.extract(str(lone))


def test_missing_data_is_claimed_only_where_bioformats_certainly_fails(tmp_path: Path,
                                                                      bioformats: BioFormatsEngine) -> None:
    engine = IcsEngine()
    lines = ics_lines([*XY, "z"], [16, 8, 6, 2])
    # version 1 without its .ids, and a "version 2" header with a space separator (Bio-Formats takes it for
    # version 1): Bio-Formats fails on both (checked live here), the engine answers with notes
    for path in (write_ics(tmp_path, "v1-no-ids", lines, data=False),
                 write_ics(tmp_path, "v2-space", lines, version="2.0", seps=(" ", "\n"))):
        with pytest.raises(ExtractionError, match="IDS file not found"):
            bioformats.extract(str(path))
        assert engine.claim(str(path), read_head(str(path))) == CLAIM
        xml, notes = engine.extract_noted(str(path))
        assert "IDS file not found" in notes[0] and "pixel data not found" in notes[1]
        assert validate(xml) == (True, None)
    # a version 2 header without data after it: Bio-Formats reads the header (-nopix) and so does the engine
    bare = write_ics(tmp_path, "v2-no-data", lines, version="2.0", data=False)
    assert engine.claim(str(bare), read_head(str(bare))) == CLAIM
    assert engine.extract_noted(str(bare))[1] == []
    assert normalise(engine.extract(str(bare))) == normalise(bioformats.extract(str(bare)))


def test_rescue_of_a_declined_header_with_data_missing(tmp_path: Path) -> None:
    path = write_ics(tmp_path, "hist", ics_lines(XY, [16, 8, 6], name="hist",
                                                 extra=(["history", "author", "Jane"],)), data=False)
    assert IcsEngine().claim(str(path), read_head(str(path))) == 0
    result = extract_file(str(path), "auto")  # Bio-Formats fails ("IDS file not found"), the rescue reads it
    assert result.status == "ok" and result.engine == "ics"
    assert result.notes[0].startswith("read by ics ") and "IDS file not found" in result.notes[0]
    assert result.notes[1:] == ["ICS pixel data not found (its .ids file); metadata from the header alone",
                                "header lines not reproduced: history author jane"]
    # a header it cannot map leaves Bio-Formats' failure
    odd = write_ics(tmp_path, "odd", ics_lines(["bits", "ch", "x", "y"], [16, 2, 4, 3]), data=False)
    result = extract_file(str(odd), "auto")
    assert result.status == "failed" and result.error and "IDS file not found" in result.error
    assert result.engine == "bioformats"


def test_hostile_headers_are_declined_quickly(tmp_path: Path) -> None:
    engine = IcsEngine()
    cases = {
        "huge-planes": ics_lines([*XY, "z", "t"], [16, 8, 6, 100000, 100000]),
        "zero-size": ics_lines([*XY, "z"], [16, 8, 6, 0]),
        "bad-size": ics_lines([*XY, "z"], [16, 8, 6, -2]),
        "long-size": ics_lines([*XY, "z"], [16, 8, 6, 10**12]),
        "sizes-short": [["filename", "x"], ["layout", "order", *XY, "z"], ["layout", "sizes", "16", "8"],
                        ["representation", "format", "integer"]],
        "no-layout": [["filename", "x"], ["representation", "format", "integer"]],
        "bad-byte-order": ics_lines(XY, [16, 8, 6], byte_order=["one", "two"]),
        "bad-significant": ics_lines(XY, [16, 8, 6], significant=40),
    }
    start = time.perf_counter()
    for name, lines in cases.items():
        path = write_ics(tmp_path, name, lines)
        assert engine.claim(str(path), read_head(str(path))) == 0, name
        with pytest.raises(ExtractionError):
            engine.extract(str(path))
    garbage = tmp_path / "garbage.ics"
    garbage.write_bytes(b"\t\nics_version\t1.0\n" + bytes(range(256)) * 64)
    endless = tmp_path / "endless.ics"
    endless.write_bytes(b"\t\nics_version\t2.0\n" + b"layout\tsizes\t8\n" * (MAX_HEADER // 10))
    for path in (garbage, endless):
        assert engine.claim(str(path), read_head(str(path))) == 0
        with pytest.raises(ExtractionError):
            engine.extract(str(path))
    assert time.perf_counter() - start < 10
