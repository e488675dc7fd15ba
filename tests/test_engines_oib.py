"""The oib engine against Bio-Formats 7.3.1's reference for the Olympus OIB file of the corpus.

``test.oib`` (FV10-ASW 2.0, 256 x 256, three channels of which one transmitted, one plane file each,
``PtyFileName`` plane list, an empty ROI file) is claimed and gives Bio-Formats' whole document, lasers,
detectors, filters and dichroics included. Copies edited in place (same byte lengths, through the OLE2
extents) show that kinds the engine has not been checked on are declined with the reason, and one edited
copy (a third channel activated, wavelengths and an enabled laser changed, a Z axis flagged in the first
plane file, the objective changed in the last) agrees with live Bio-Formats, as do OIBs written here from
the corpus file's texts (a compound document writer in tests/test_engines_ole.py): Z stacks, time series,
Z x T, one channel, and the ``IniFileNameN`` plane list.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.engines.ole.oib import CLAIM, OibEngine, parse_ini, read_oib
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate

from ._corpus import corpus_files
from ._engines import damaged_copy_is_contained, reads_as_the_reference
from .test_engines_ole import copy_of, patch_stream, utf16, write_ole

REL = "olympus-oib/test.oib"
OIF = "Stream00013"
FIRST_PTY, LAST_PTY, ROI = "Storage00001/Stream00010", "Storage00001/Stream00012", "Storage00001/Stream00007"


# -- OIB files written here from the corpus file's texts, with other Z/C/T sizes ----------------------------
FOLDER = "Cell 1 mitoEGFP.oif.files"


def _set(text: str, table: str, key: str, value: str) -> str:
    """``text`` with ``key=value`` in ``[table]`` (the key must be there)."""
    start = text.index(f"[{table}]")
    end = text.find("\r\n[", start + 1)
    end = len(text) if end < 0 else end
    block = re.sub(rf"(?m)^{re.escape(key)}=[^\r\n]*", lambda m: f"{key}={value}", text[start:end])
    assert f"{key}={value}" in block, (table, key)
    return text[:start] + block + text[end:]


def _utf16_file(text: str) -> bytes:
    return b"\xff\xfe" + text.encode("utf-16-le")


def write_oib(corpus: Path, path: Path, c: int = 3, z: int = 1, t: int = 1, listed: bool = False) -> Path:
    """An OIB of C x Z x T plane files (C fastest, then Z, then T) from the corpus file's .oif and first .pty:
    Z steps of 500 nm, T steps of 1500 ms, 3.5 ms between channels; ``listed`` names the plane files with
    ``IniFileNameN`` keys instead of the ``PtyFileName`` pattern."""
    from metaextract.engines.ole.storage import OleFile

    with OleFile(corpus / REL) as ole:
        oif = ole.read(OIF)[2:].decode("utf-16-le")
        pty = ole.read(FIRST_PTY)[2:].decode("utf-16-le")
        tiff = ole.read("Storage00001/Stream00001")
    for axis, key, value in ((2, "MaxSize", str(c)), (2, "EndPosition", f"{float(c)}"),
                             (3, "MaxSize", str(z if z > 1 else 0)), (3, "StartPosition", "0.0"),
                             (3, "EndPosition", f"{(z - 1) * 500.0}"), (4, "MaxSize", str(t if t > 1 else 0)),
                             (4, "EndPosition", f"{(t - 1) * 1500.0}")):
        oif = _set(oif, f"Axis {axis} Parameters Common", key, value)
    blocks = [("C", c)] + [(a, n) for a, n in (("Z", z), ("T", t)) if n > 1]
    names = []
    for index in range(c * z * t):
        pos, rest = {}, index
        for axis_name, n in blocks:
            pos[axis_name], rest = rest % n, rest // n
        names.append(("s_" + "".join(f"{a}{pos[a] + 1:03d}" for a, _ in blocks), pos))
    if listed:
        oif = oif.replace("PtyFileNameE=", "XPtyFileNameE=").replace("PtyFileNameS=", "XPtyFileNameS=")
        lines = "".join(f'IniFileName{i}="{FOLDER}\\{n}.pty"\r\n' for i, (n, _) in enumerate(names))
        oif = oif.replace("[ProfileSaveInfo]\r\n", "[ProfileSaveInfo]\r\n" + lines)
    else:
        oif = _set(oif, "ProfileSaveInfo", "PtyFileNameS", f'"{FOLDER}\\{names[0][0]}.pty"')
        oif = _set(oif, "ProfileSaveInfo", "PtyFileNameE", f'"{FOLDER}\\{names[-1][0]}.pty"')
        pattern = "s_" + "".join(f"{a}%03d" for a, _ in blocks) + ".pty"
        oif = _set(oif, "ProfileSaveInfo", "PtyFileNameT2", f'"{FOLDER}\\{pattern}"')
    streams = {("Stream00001",): _utf16_file(oif)}
    info = ["[OibSaveInfo]", "Version=2.0.0.0", f"Storage00001={FOLDER}", "Stream00001=Cell 1 mitoEGFP.oif"]
    for i, (name, pos) in enumerate(names):
        text = _set(pty, "Axis 2 Parameters", "Number", str(pos["C"] + 1))
        zi, ti = pos.get("Z", 0), pos.get("T", 0)
        z_line = f"AbsPositionValue={-994150.0 + 500.0 * zi}\r\nNumber={zi + 1}"
        t_line = f"AbsPositionValue={22766.0 + 1500.0 * ti + 3.5 * pos['C']}\r\nNumber={ti + 1}"
        text = re.sub(r'(\[Axis 3 Parameters\]\r\nAbsPositionUnitName="nm"\r\n)AbsPositionValue=[^\r]*\r\nNumber=\d+',
                      lambda m, line=z_line: m.group(1) + line, text)
        text = re.sub(r'(\[Axis 4 Parameters\]\r\nAbsPositionUnitName="ms"\r\n)AbsPositionValue=[^\r]*\r\nNumber=\d+',
                      lambda m, line=t_line: m.group(1) + line, text)
        text = _set(text, "File Info", "DataName", f'"{name}.tif"')
        streams[("Storage00001", f"Stream{i + 2:05d}")] = _utf16_file(text)
        streams[("Storage00001", f"Stream{i + 1000:05d}")] = tiff
        info += [f"Stream{i + 2:05d}=Storage00001/{name}.pty", f"Stream{i + 1000:05d}=Storage00001/{name}.tif"]
    streams[("OibInfo.txt",)] = _utf16_file("\n".join(info) + "\n")
    write_ole(path, streams)
    return path


def written(corpus: Path, tmp_path: Path) -> dict[str, Path]:
    """The written OIBs checked against live Bio-Formats (see the slow test)."""
    return {"c3z4": write_oib(corpus, tmp_path / "c3z4.oib", c=3, z=4),
            "c2t3": write_oib(corpus, tmp_path / "c2t3.oib", c=2, t=3),
            "c1z5": write_oib(corpus, tmp_path / "c1z5.oib", c=1, z=5),
            "listed": write_oib(corpus, tmp_path / "listed.oib", c=2, z=2, listed=True),
            "c2z2t2": write_oib(corpus, tmp_path / "c2z2t2.oib", c=2, z=2, t=2)}


def _nth(corpus: Path, table: str, text: str) -> int:
    """How many times ``text`` occurs in the .oif before the ``[table]`` header."""
    from metaextract.engines.ole.storage import OleFile

    with OleFile(corpus / REL) as ole:
        oif = ole.read(OIF)[2:].decode("utf-16-le")
    return oif[:oif.index(f"[{table}]")].count(text)


def test_the_corpus_oib_files_are_all_accounted_for(corpus: Path) -> None:
    assert [p for p in corpus_files(corpus) if p.endswith(".oib") or p.startswith("olympus-oib/")] == [REL]


def test_test_oib_is_claimed_and_equals_the_reference(corpus: Path, reference: Path) -> None:
    xml = reads_as_the_reference(OibEngine(), corpus, reference, REL, CLAIM)
    fields = key_fields(xml)["images"][0]
    assert fields["name"] == "Series 1" and fields["pixels"]["dimension_order"] == "XYCZT"
    assert [c["name"] for c in fields["channels"]] == ["CH1", "CH2", "TD1"]
    assert [p["delta_t"] for p in fields["planes"]] == [[22.766, "s"]] * 3
    assert key_fields(xml)["objectives"] == [{"nominal_magnification": 40.0, "lens_na": 0.75}]


def test_extract_without_claim_reads_the_file_itself(corpus: Path) -> None:
    image = read_oib(str(corpus / REL))
    assert image.size == (256, 256, 1, 3, 1) and image.bits == 12 and image.pixel_type == "uint16"
    assert key_fields(OibEngine().extract(str(corpus / REL)))["images"][0]["pixels"]["size_c"] == 3


def test_ini_parsing_follows_loci_iniparser() -> None:
    tables = parse_ini('junk\n[A]\n key = "v" \nPath="x\\\\\nNext=1\n[B\nk=1\nk=2\n')
    assert [t.header for t in tables] == ["", "A", "B"]
    assert tables[1] == {"key": '"v"', "Path": '"x\\ Next=1'}  # a trailing backslash joins the next line
    assert tables[2] == {"k": "2"}


@pytest.mark.parametrize(("stream", "old", "new", "nth", "reason"), [
    ("oif", "PtyFileNameS=", "IniFileNameX=", 0, "the number of IniFileNameX"),
    ("oif", 'UserName="Guest"', 'UserName="GSTst"', 0, "GST"),
    ("oif", 'DyeName="Alexa Fluor 546"', 'DyeName="HeNe           "', 1, "laser dye name"),
    ("oif", "\nMaxSize=3\r", "\nMaxSize=4\r", 0, "3 plane files are not Z 1 x C 4"),
    ("oif", "UserComment=", "UserComment\u00b5", 0, "non-ASCII"),
    ("oif", "[Reference Image Parameter]", "[Reference Image Paramete_]", 0, "Reference Image Parameter"),
    ("oif", "ImageDepth=2", "ImageDepth=3", 0, "ImageDepth 3"),
    ("oif", "CH Activate=1", "CH Activate=x", 0, "CH Activate"),
    ("roi", "[FileInformation]", "[ROIBase Body]\r\nX", 0, "ROI shapes"),
    ("pty", "AbsPositionValue=22766.0", "AbsPositionValue=22766.x", 0, "Axis 4 AbsPositionValue"),
    ("info", "Stream00013=Cell 1 mitoEGFP.oif", "Stream00013=Cell 1 mitoEGFP.oix", 0, "no .oif"),
])
def test_unchecked_kinds_are_declined(corpus: Path, tmp_path: Path, stream: str, old: str, new: str, nth: int,
                                      reason: str) -> None:
    path = copy_of(corpus, REL, tmp_path)
    name = {"oif": OIF, "roi": ROI, "pty": FIRST_PTY, "info": "OibInfo.txt"}[stream]
    if stream == "oif" and "Activate" in old:
        nth = _nth(corpus, "GUI Channel 2 Parameters", old)
    patch_stream(path, name, utf16(old), utf16(new), nth)
    engine = OibEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


@pytest.mark.parametrize(("table", "old", "new", "reason"), [
    ("Reference Image Parameter", "WidthConvertValue=0.177", "WidthConvertValue=1e-07", "at most 1e-6"),
    ("GUI Channel 1 Parameters", "ExcitationWavelength=488", "ExcitationWavelength=+88", r"spelled with a \+"),
    ("GUI Channel 1 Parameters", 'BF Name="BA505-525"', 'BF Name="BAxxx-525"', "digits on one side"),
])
def test_spellings_bioformats_reads_its_own_way_are_declined(corpus: Path, tmp_path: Path, table: str, old: str,
                                                             new: str, reason: str) -> None:
    """Found by tests/test_differential_ole.py against live Bio-Formats 7.3.1: it writes a pixel size of 1e-7 µm
    in nm, drops a wavelength or gain spelled with a ``+``, and keeps the cut-out alone of ``BA-505-525``."""
    path = copy_of(corpus, REL, tmp_path)
    patch_stream(path, OIF, utf16(old), utf16(new), _nth(corpus, table, old))
    engine = OibEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


def test_truncated_copies_are_refused(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / REL).read_bytes()
    engine = OibEngine()
    for cut in (300, 4096 * 200, len(data) - 4096 * 3):
        path = tmp_path / f"cut{cut}.oib"
        path.write_bytes(data[:cut])
        assert engine.claim(str(path), read_head(path)) == 0
        with pytest.raises(ExtractionError, match="OIB cannot be read"):
            engine.extract(str(path))


def test_other_names_and_formats_are_not_claimed(corpus: Path, tmp_path: Path) -> None:
    engine = OibEngine()
    renamed = copy_of(corpus, REL, tmp_path, "test.oif")
    assert engine.claim(str(renamed), read_head(renamed)) == 0
    zvi = copy_of(corpus, "zeiss-zvi/BlockSize4096.zvi", tmp_path, "zvi.oib")
    assert engine.claim(str(zvi), read_head(zvi)) == 0
    with pytest.raises(ExtractionError, match="no OibInfo.txt"):
        engine.extract(str(zvi))
    tiff = tmp_path / "x.oib"
    tiff.write_bytes(b"II*\x00" + bytes(2000))
    assert engine.claim(str(tiff), read_head(tiff)) == 0
    with pytest.raises(ExtractionError, match="no OLE2 signature"):
        engine.extract(str(tiff))


def test_damaged_copies_never_raise_anything_else(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(5)
    data = (corpus / REL).read_bytes()
    engine = OibEngine()
    for i in range(40):
        raw = bytearray(data)
        for _ in range(4):
            at = rng.choice([rng.randrange(8, 512), rng.randrange(4096, 8192), rng.randrange(len(raw))])
            raw[at] = rng.randrange(256)
        damaged_copy_is_contained(engine, tmp_path / f"d{i}.oib", bytes(raw))


def _edited(corpus: Path, tmp_path: Path) -> Path:
    path = copy_of(corpus, REL, tmp_path, "edited.oib")
    edits = [
        (OIF, "CH Activate=0", "CH Activate=1", _nth(corpus, "GUI Channel 3 Parameters", "CH Activate=0")),
        (OIF, "EmissionWavelength=0\r", "EmissionWavelength=5\r",
         _nth(corpus, "GUI Channel 1 Parameters", "EmissionWavelength=0\r")),
        (OIF, "ExcitationWavelength=488", "ExcitationWavelength=405",
         _nth(corpus, "GUI Channel 1 Parameters", "ExcitationWavelength=488")),
        (OIF, "Laser Enable=0", "Laser Enable=1", _nth(corpus, "Laser 3 Parameters", "Laser Enable=0")),
        (FIRST_PTY, "AbsPositionValue=-994150.0\r\nNumber=1", "AbsPositionValue=-994150.0\r\nNumber=2", 0),
        (FIRST_PTY, "AbsPositionValue=22766.0", "AbsPositionValue=12345.6", 0),
        (LAST_PTY, "ObjectiveLens NAValue=0.75", "ObjectiveLens NAValue=1.35", 0),
        (LAST_PTY, "Magnification=40.0", "Magnification=60.0", 0),
    ]
    for stream, old, new, nth in edits:
        patch_stream(path, stream, utf16(old), utf16(new), nth)
    return path


def test_an_edited_copy_reads_as_bioformats_read_it(corpus: Path, tmp_path: Path) -> None:
    """Pinned from live Bio-Formats 7.3.1 on this very copy (checked live, see the slow test below)."""
    path = _edited(corpus, tmp_path)
    engine = OibEngine()
    assert engine.claim(str(path), read_head(path)) == CLAIM
    xml = engine.extract(str(path))
    assert validate(xml, remember=False) == (True, None)
    fields = key_fields(xml)
    image = fields["images"][0]
    assert image["pixels"]["dimension_order"] == "XYZCT"  # Z flagged (Number > 1) before C in the first .pty
    assert [c["name"] for c in image["channels"]] == ["CH1", "CH2", "CH3"]  # the first three active channels
    assert image["channels"][0]["emission_wavelength"] == [5.0, "nm"]
    assert image["channels"][0]["excitation_wavelength"] == [405.0, "nm"]
    assert [p["delta_t"][0] for p in image["planes"]] == [12.345600000000001, 22.766, 22.766]
    assert fields["objectives"] == [{"nominal_magnification": 60.0, "lens_na": 1.35}]  # the last .pty's
    assert 'Wavelength="543.0" WavelengthUnit="nm"/>' in xml.split("<Detector")[0]  # the second enabled laser


def test_written_oibs_read_as_bioformats_read_them(corpus: Path, tmp_path: Path) -> None:
    """Pinned from live Bio-Formats 7.3.1 on these very files (checked live, see the slow test below)."""
    engine = OibEngine()
    fields = {}
    for name, path in written(corpus, tmp_path).items():
        assert engine.claim(str(path), read_head(path)) == CLAIM, name
        xml = engine.extract(str(path))
        assert validate(xml, remember=False) == (True, None), name
        fields[name] = key_fields(xml)["images"][0]
        fields[name]["xml"] = xml
    pixels = {name: f["pixels"] for name, f in fields.items()}
    assert {n: (p["size_z"], p["size_c"], p["size_t"], p["dimension_order"]) for n, p in pixels.items()} == {
        "c3z4": (4, 3, 1, "XYCZT"), "c2t3": (1, 2, 3, "XYCTZ"), "c1z5": (5, 1, 1, "XYZCT"),
        "listed": (2, 2, 1, "XYCZT"), "c2z2t2": (2, 2, 2, "XYCZT")}
    assert pixels["c3z4"]["physical_size_z"] == [0.5, "µm"] and pixels["c2t3"]["physical_size_z"] == [1.0, "µm"]
    assert 'TimeIncrement="1.5"' in fields["c2t3"]["xml"]
    planes = fields["c2z2t2"]["planes"]
    assert [p["delta_t"][0] for p in planes[:2]] == [22.766, 22.7695]
    assert [p["position_z"][0] for p in planes[::2]] == [-994150.0, -993650.0, -994150.0, -993650.0]


def test_a_laser_table_date_is_the_acquisition_date(corpus: Path, tmp_path: Path) -> None:
    """Checked live: Bio-Formats 7.3.1 prints this copy's date as 2011-02-03T04:05:06."""
    path = copy_of(corpus, REL, tmp_path)
    old = "Laser Enable=0\r\nLaserCombinerType=0\r\nLaserTransmissivity=10\r\nLaserWavelength=633\r\n"
    new = "Laser Enable=0\r\nImageCaputreDate='2011-02-03 04:05:06'\r\nLaserWavelength=633\r\n"
    patch_stream(path, OIF, utf16(old), utf16(new + " " * (len(old) - len(new))))
    xml = OibEngine().extract(str(path))
    assert key_fields(xml)["images"][0]["acquisition_date"] == "2011-02-03T04:05:06"
    assert validate(xml, remember=False) == (True, None)
    bad = copy_of(corpus, REL, tmp_path, "bad.oib")
    new = "Laser Enable=0\r\nImageCaputreDate='2011-13-03 04:05:06'\r\nLaserWavelength=633\r\n"
    patch_stream(bad, OIF, utf16(old), utf16(new + " " * (len(old) - len(new))))
    with pytest.raises(ExtractionError, match="not a valid date"):
        OibEngine().extract(str(bad))


def test_a_missing_plane_tiff_is_declined(corpus: Path, tmp_path: Path) -> None:
    """Bio-Formats 7.3.1 reads every plane TIFF's header at the end of initFile and fails without one."""
    path = write_oib(corpus, tmp_path / "c1z2.oib", c=1, z=2)
    patch_stream(path, "OibInfo.txt", utf16("s_C001Z002.tif"), utf16("s_C001Z002.tix"))
    engine = OibEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match="plane TIFF .* is not in the file"):
        engine.extract(str(path))


@pytest.mark.slow
def test_edited_and_written_files_agree_with_live_bioformats(corpus: Path, tmp_path: Path) -> None:
    from metaextract import engines

    for path in (_edited(corpus, tmp_path), *written(corpus, tmp_path).values()):
        ours, theirs = OibEngine().extract(str(path)), engines.get("bioformats").extract(str(path))
        assert key_fields(ours) == key_fields(theirs), path.name
        assert normalise(ours) == normalise(theirs), path.name


def test_a_copy_with_a_companion_name_is_still_one_file(corpus: Path, tmp_path: Path) -> None:
    """An OIB is a single file (Bio-Formats never groups it): files beside it change nothing."""
    path = copy_of(corpus, REL, tmp_path)
    shutil.copy(corpus / REL, tmp_path / "test.oif")
    assert OibEngine().claim(str(path), read_head(path)) == CLAIM
