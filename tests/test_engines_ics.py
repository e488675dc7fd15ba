"""The ICS header engine: it reads what Bio-Formats cannot (an ICS header whose pixel data is missing),
never takes a file Bio-Formats reads, and writes what Bio-Formats writes for the same header.

Evidence for the mapping: synthetic ICS files (header + data, so that Bio-Formats reads them) compared
field by field with the live Bio-Formats engine; the corpus's ``testim_c.ics`` checked against its own
header and against the reference for ``testim.ics``, whose header is the same but for its name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metaextract import engines
from metaextract._extract import extract_file, read_head
from metaextract.engines.bioformats import BioFormatsEngine
from metaextract.engines.ics import IcsEngine, describe
from metaextract.ome import key_fields, normalise, validate

from ._corpus import corpus_files

#: name -> (axes after "bits", sizes after bits, bits, format, sign, byte order, units, scales, ICS version)
SYNTHETIC: dict[str, tuple[list[str], list[int], int, str, str, list[int], list[str], list[float], str]] = {
    "uint8-2d": (["x", "y"], [20, 10], 8, "integer", "unsigned", [1], [], [], "1.0"),
    "uint16-zch-microns": (["x", "y", "z", "ch"], [20, 10, 3, 2], 16, "integer", "unsigned", [1, 2],
                           ["micrometers"] * 3 + ["undefined"], [0.5, 0.5, 2, 1], "1.0"),
    "float-tz-um": (["x", "y", "t", "z"], [8, 6, 4, 3], 32, "real", "signed", [1, 2, 3, 4],
                    ["um", "um", "s", "um"], [0.1, 0.2, 1.5, 0.3], "1.0"),
    "int16-big-endian-ct": (["x", "y", "c", "t"], [8, 6, 2, 5], 16, "integer", "signed", [2, 1], [], [], "1.0"),
    "double": (["x", "y"], [4, 3], 64, "real", "signed", list(range(1, 9)), [], [], "1.0"),
    "int32-unit-undefined": (["x", "y", "z"], [8, 6, 2], 32, "integer", "signed", [1, 2, 3, 4],
                             ["undefined"] * 3, [0.5, 0.25, 3], "1.0"),
    "uint16-nm-and-mixed": (["x", "y", "z"], [8, 6, 2], 16, "integer", "unsigned", [1, 2],
                            ["nm", "meters", "microns"], [50, 0.5, 3], "1.0"),
    "version-2-one-file": (["x", "y", "z"], [8, 6, 2], 16, "integer", "unsigned", [1, 2],
                           ["micrometers"] * 3, [0.5, 0.5, 1], "2.0"),
}


def write_ics(folder: Path, name: str, spec: tuple, *, with_data: bool = True) -> Path:  # type: ignore[type-arg]
    axes, sizes, bits, fmt, sign, byte_order, units, scales, version = spec
    lines = [f"ics_version\t{version}", f"filename\t{name}", f"layout\tparameters\t{len(axes) + 1}",
             "layout\torder\tbits\t" + "\t".join(axes), "layout\tsizes\t" + "\t".join(map(str, [bits, *sizes])),
             "layout\tcoordinates\tvideo", f"layout\tsignificant_bits\t{bits}", f"representation\tformat\t{fmt}",
             f"representation\tsign\t{sign}", "representation\tcompression\tuncompressed",
             "representation\tbyte_order\t" + "\t".join(map(str, byte_order))]
    if units:
        lines += ["parameter\tscale\t1.0\t" + "\t".join(map(str, scales)),
                  "parameter\tunits\trelative\t" + "\t".join(units)]
    count = bits // 8
    for size in sizes:
        count *= size
    path = folder / f"{name}.ics"
    if version.startswith("2"):
        def header(offset: int) -> bytes:
            return ("\t\n" + "\n".join([*lines, f"source\tfile\t{path}\t{offset}"]) + "\nend\n").encode()
        offset = len(header(0))
        offset = len(header(offset))
        path.write_bytes(header(offset) + bytes(count if with_data else 0))
    else:
        path.write_text("\t\n" + "\n".join(lines) + "\nend\n")
        if with_data:
            (folder / f"{name}.ids").write_bytes(bytes(count))
    return path


@pytest.fixture(scope="module")
def bioformats() -> BioFormatsEngine:
    return BioFormatsEngine()


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_header_engine_agrees_with_bioformats(name: str, tmp_path: Path, bioformats: BioFormatsEngine) -> None:
    path = write_ics(tmp_path, name, SYNTHETIC[name])
    expected = bioformats.extract(str(path))
    mine = IcsEngine().extract(str(path))
    assert key_fields(mine) == key_fields(expected)
    assert validate(mine) == (True, None)
    axes, _, bits, fmt, *_ = SYNTHETIC[name]
    if (bits, fmt) == (32, "integer"):
        # Bio-Formats takes byte_order 1 2 3 4 of 32-bit integers as big-endian (of every other sample
        # kind as little-endian, as the ICS definition has it: 1 is the least significant byte); the
        # engine follows the definition. BigEndian is no key field.
        assert 'BigEndian="true"' in expected and 'BigEndian="false"' in mine
        expected = expected.replace('BigEndian="true"', 'BigEndian="false"')
    if not {"c", "ch", "t"} & set(axes):
        # with C > 1 Bio-Formats adds a Modulo annotation, with a time scale a TimeIncrement: not key fields
        assert normalise(mine) == normalise(expected)


def _own_header(path: Path) -> dict[str, list[str]]:
    """The header read the simplest way: the first two bytes are the separators."""
    raw = path.read_bytes()
    field_sep, line_sep = chr(raw[0]), chr(raw[1])
    out = {}
    for line in raw[2:].decode("latin-1").split(line_sep):
        words = line.split(field_sep)
        if len(words) > 2:
            out[" ".join(words[:2])] = words[2:]
    return out


def test_compressed_ics_in_the_corpus_is_read_from_its_header(corpus: Path, reference: Path) -> None:
    path = corpus / "ics" / "testim_c.ics"
    assert extract_file(str(path), "bioformats").status == "failed"  # "IDS file not found", as showinf
    result = extract_file(str(path), "auto")
    assert result.status == "ok", result.error
    assert result.engine.startswith("ics ")
    assert result.valid, result.validation_error
    assert result.notes[0].startswith("read by ics ") and "IDS file not found" in result.notes[0]
    assert any("pixel data not found" in n for n in result.notes)
    header = _own_header(path)
    order, sizes = header["layout order"], [int(s) for s in header["layout sizes"]]
    assert order == ["bits", "x", "y", "z"]
    assert header["representation format"] == ["integer"] and header["representation sign"] == ["unsigned"]
    assert header["representation byte_order"] == ["1", "2"]  # little-endian
    pixels = key_fields(result.omexml or "")["images"][0]["pixels"]
    assert (pixels["size_x"], pixels["size_y"], pixels["size_z"], pixels["size_c"], pixels["size_t"]) == (
        sizes[1], sizes[2], sizes[3], 1, 1)
    assert pixels["type"] == f"uint{sizes[0]}" and pixels["significant_bits"] == int(
        header["layout significant_bits"][0])
    # testim.ics has the same header (but its name) and Bio-Formats reads it: the same key fields
    same = key_fields((reference / "ics" / "testim.ics.xml").read_text("utf-8"))
    same["images"][0]["name"] = "testim_c"
    assert key_fields(result.omexml or "") == same


def test_missing_data_is_noted_for_both_versions(tmp_path: Path) -> None:
    for version in ("1.0", "2.0"):
        spec = (*SYNTHETIC["uint8-2d"][:-1], version)
        path = write_ics(tmp_path, f"v{version[0]}", spec, with_data=version == "2.0")
        notes = describe(str(path)).notes
        assert notes == ([] if version == "2.0" else
                         ["ICS pixel data not found (its .ids file); metadata from the header alone"])


def test_never_claims_a_file(corpus: Path) -> None:
    engine = IcsEngine()
    for rel in corpus_files(corpus):
        path = str(corpus / rel)
        assert engine.claim(path, read_head(path)) == 0
    readable = str(corpus / "ics" / "testim.ics")
    assert engines.choose(readable, read_head(readable), "auto").name == "bioformats"
    assert extract_file(readable, "auto").engine.startswith("bioformats ")


def test_a_header_it_cannot_map_leaves_the_bioformats_failure(tmp_path: Path) -> None:
    path = write_ics(tmp_path, "odd", (["x", "y", "u"], [4, 3, 2], 16, "integer", "unsigned", [1, 2], [], [], "1.0"),
                     with_data=False)
    result = extract_file(str(path), "auto")
    assert result.status == "failed" and result.error and "Bio-Formats failed" in result.error
    assert result.engine.startswith("bioformats ")
