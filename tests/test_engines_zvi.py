"""The zvi engine against Bio-Formats 7.3.1's reference for the Zeiss ZVI file of the corpus.

``BlockSize4096.zvi`` (Apache POI's test file: an AxioVision document cut to its metadata, with tag
streams but no plane data) is claimed and gives Bio-Formats' whole document, quirks included: with no
plane header the bytes per pixel stay 0, which Bio-Formats takes for RGB (SizeC 3, one channel of 3
samples) of its default pixel type ``int8``. Copies edited in place (same byte lengths, through the OLE2
extents) show the kinds the engine has not been checked on are declined with the reason, and two edited
copies (another channel index, exposure, date, stage position, colour and scale) agree with live
Bio-Formats, as do ZVIs with plane data written here (a compound document writer in
tests/test_engines_ole.py): two channels by three sections, RGB, 8-bit time series, Z series, one-based
channel indices, zlib-flagged 16-bit RGB.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from metaextract.engines.base import ExtractionError
from metaextract.engines.ole.storage import OleFile
from metaextract.engines.ole.zvi import (
    CLAIM,
    ZviEngine,
    image_number,
    iso_ms,
    read_tags,
    read_zvi,
    timestamp_millis,
)
from metaextract.extraction.pipeline import read_head
from metaextract.ome import key_fields, normalise, validate

from ._corpus import corpus_files
from ._engines import damaged_copy_is_contained, reads_as_the_reference
from .test_engines_ole import copy_of, patch_stream, rename_entry, utf16, write_ole

REL = "zeiss-zvi/BlockSize4096.zvi"
ITEM = "Image/Item(0)/Tags/Contents"
DOC = "Image/Tags/Contents"
TIME = 40246.63016265098  # the camera acquisition time of the corpus file, in days


# -- ZVI files written here: tag streams and plane headers as AxioVision lays them out --------------------
def v_int(value: int) -> bytes:
    return struct.pack("<hi", 3, value)


def v_double(value: float, kind: int = 5) -> bytes:
    return struct.pack("<hd", kind, value)


def v_text(text: str) -> bytes:
    raw = (text + "\x00").encode("utf-16-le")
    return struct.pack("<hi", 8, len(raw)) + raw


def tag_stream(tags: list[tuple[bytes, int]]) -> bytes:
    out = bytearray(b"\x03\x00\x00\x10\x00\x20\x03\x00") + struct.pack("<i", len(tags))
    for value, key in tags:
        out += value + b"\x03\x00" + struct.pack("<i", key) + bytes(6)
    return bytes(out)


def plane_stream(zct: tuple[int, int, int], size: tuple[int, int], bpp: int, valid: int = 2, mark: bytes = b"    ",
                 tile: int = 0) -> bytes:
    out = b"".join(v_int(0) for _ in range(11)) + bytes(2) + struct.pack("<i", 28) + bytes(8)
    out += struct.pack("<3i", *zct) + bytes(4) + struct.pack("<i", tile) + b"".join(v_int(0) for _ in range(5))
    out += bytes(4) + struct.pack("<2i", *size) + bytes(4) + struct.pack("<i", bpp) + bytes(4)
    return out + struct.pack("<i", valid) + mark + bytes(size[0] * size[1] * bpp)


def write_zvi(path: Path, planes: list[tuple[int, int, int]], bpp: int = 2, names: tuple[str, ...] = ("DAPI", "GFP"),
              colors: tuple[int, ...] = (16711680, 65280), extra: object = None, size: tuple[int, int] = (64, 48),
              **plane_args: object) -> Path:
    """A ZVI of ``size`` planes (item n has indices ``planes[n]``) with per-item names, colours, stage positions,
    times, exposures and wavelengths; ``extra(n, z, c, t)`` adds item tags."""
    streams = {("Image", "Tags", "Contents"): tag_stream([
        (v_int(size[0]), 515), (v_int(size[1]), 516), (v_double(0.5), 769), (v_double(0.5), 772),
        (v_double(2.0), 775), (v_text("A comment"), 1540)])}
    for n, (z, c, t) in enumerate(planes):
        streams[("Image", f"Item({n})", "Contents")] = plane_stream((z, c, t), size, bpp, **plane_args)  # type: ignore[arg-type]
        tags = [(v_int(size[0]), 515), (v_int(size[1]), 516), (v_int(c), 2820), (v_int(z), 2819), (v_int(t), 2821),
                (v_double(100.0 + n), 2073), (v_double(-50.0 - 2 * n), 2074), (v_double(TIME + n * 0.0001234, 7), 1025),
                (v_double(10.0 * (c + 1) + 0.5), 2564), (v_text(names[c % len(names)]), 1284),
                (v_int(400 + 100 * c), 16777488), (v_int(450 + 100 * c), 16777489),
                (v_int(colors[c % len(colors)]), 1282), (v_double(63.0), 2076), (v_double(1.4), 2077),
                (v_double(190.0), 2151)]
        if callable(extra):
            tags += extra(n, z, c, t)
        streams[("Image", f"Item({n})", "Tags", "Contents")] = tag_stream(tags)
    write_ole(path, streams)
    return path


def written(tmp_path: Path) -> dict[str, Path]:
    """The written ZVIs checked against live Bio-Formats (see the slow test)."""
    return {
        "c2z3": write_zvi(tmp_path / "c2z3.zvi", [(z, c, 0) for z in range(3) for c in range(2)]),
        "rgb": write_zvi(tmp_path / "rgb.zvi", [(0, 0, 0)], bpp=3, names=("Brightfield",), colors=(255,)),
        "t2c2": write_zvi(tmp_path / "t2c2.zvi", [(0, c, t) for c in range(2) for t in range(2)], bpp=1),
        "z4": write_zvi(tmp_path / "z4.zvi", [(z, 0, 0) for z in range(4)]),
        "one-based": write_zvi(tmp_path / "one.zvi", [(0, c, 0) for c in range(3)], names=("A", "B", "C"),
                               colors=(255, 65280, 16711680),
                               extra=lambda n, z, c, t: [(v_int(c + 1), 2820), (v_int(1000 + c), 1282),
                                                         (v_text(f"ch{c + 1}"), 1284), (v_double(5.0 + c), 2564)]),
        "rgb16-zlib": write_zvi(tmp_path / "wzl.zvi", [(0, 0, t) for t in range(2)], bpp=6, names=("RGB",),
                                colors=(0,), valid=1, mark=b"WZL\x00"),
    }


def _int_tag(value: int, tag: int) -> bytes:
    return struct.pack("<hi", 3, value) + b"\x03\x00" + struct.pack("<i", tag)


def test_the_corpus_zvi_files_are_all_accounted_for(corpus: Path) -> None:
    assert [p for p in corpus_files(corpus) if p.endswith(".zvi") or p.startswith("zeiss-zvi/")] == [REL]


def test_blocksize4096_is_claimed_and_equals_the_reference(corpus: Path, reference: Path) -> None:
    xml = reads_as_the_reference(ZviEngine(), corpus, reference, REL, CLAIM)
    image = key_fields(xml)["images"][0]
    assert image["acquisition_date"] == "2010-03-09T15:07:26.053"
    assert image["pixels"]["type"] == "int8" and image["pixels"]["size_c"] == 3
    assert image["channels"][0]["name"] == "DsRed" and image["channels"][0]["samples_per_pixel"] == 3
    assert image["planes"][0]["exposure_time"] == [0.3328, "s"]


def test_extract_without_claim_reads_the_file_itself(corpus: Path) -> None:
    image = read_zvi(str(corpus / REL))
    assert (image.state.size_x, image.state.size_y) == (2787, 4096)
    assert image.state.channel_name == {2: "DsRed", 0: "DsRed"}  # the document's tags say channel 2
    assert key_fields(ZviEngine().extract(str(corpus / REL)))["images"][0]["name"] == "BlockSize4096.zvi"


def test_tags_dates_and_item_numbers(corpus: Path) -> None:
    with OleFile(corpus / REL) as ole:
        tags = read_tags(ole.read(ITEM))
    assert len(tags) == 132 and (tags[1].key, tags[1].value) == (515, "2787")
    assert iso_ms(timestamp_millis(str(TIME))) == "2010-03-09T15:07:26.053"
    assert image_number("Root Entry/Image/Item(12)/Tags/Contents", -1) == 12
    assert image_number("Root Entry/Image/Tags/Contents", -1) == -1
    assert image_number("Root Entry/Image/DisplayItem/Contents", 0) == 0


def _resize(path: Path, name: str, size: int) -> None:
    raw = bytearray(path.read_bytes())
    shift = struct.unpack_from("<H", raw, 0x1E)[0]
    at = (struct.unpack_from("<I", raw, 0x30)[0] + 1) << shift
    with OleFile(path) as ole:
        entry = ole.entry(name)
        assert entry is not None
        struct.pack_into("<I", raw, at + 128 * entry.index + 120, size)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(("stream", "old", "new", "nth", "reason"), [
    (ITEM, struct.pack("<h", 3) + struct.pack("<i", 0) + b"\x03\x00" + struct.pack("<i", 2823),
     struct.pack("<h", 99) + struct.pack("<i", 0) + b"\x03\x00" + struct.pack("<i", 2823), 0, "VARIANT type 99"),
    (ITEM, utf16("DsRed"), utf16("DsR\u00e9d"), 1, "non-ASCII"),
    (DOC, struct.pack("<i", 1794), struct.pack("<i", 1793), 0, "acquisition date tag"),
    ("Image/Layers/Item(0)/Shapes/Contents", bytes.fromhex("00000000"), bytes.fromhex("01000000"), 0, "ROI shapes"),
])
def test_unchecked_kinds_are_declined(corpus: Path, tmp_path: Path, stream: str, old: bytes, new: bytes, nth: int,
                                      reason: str) -> None:
    path = copy_of(corpus, REL, tmp_path)
    if stream.endswith("Shapes/Contents"):  # the shape count is the short at byte 16
        with OleFile(path) as ole:
            data = ole.read(stream)
        old, new = data[14:18], data[14:16] + struct.pack("<h", 1)
    patch_stream(path, stream, old, new, nth)
    engine = ZviEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match=reason):
        engine.extract(str(path))


def test_a_scale_factor_at_most_1e6_is_declined(corpus: Path, tmp_path: Path) -> None:
    """Found by tests/test_differential_ole.py: live Bio-Formats 7.3.1 writes a 1e-7 µm pixel size in nm."""
    path = copy_of(corpus, REL, tmp_path)
    patch_stream(path, DOC, struct.pack("<hd", 5, 0.22639345896102386), struct.pack("<hd", 5, 1e-7))
    engine = ZviEngine()
    assert engine.claim(str(path), read_head(path)) == 0
    with pytest.raises(ExtractionError, match="Scale Factor for X 1e-07 is positive but at most 1e-6"):
        engine.extract(str(path))


def test_plane_data_and_extra_tag_streams_are_declined(corpus: Path, tmp_path: Path) -> None:
    engine = ZviEngine()
    planes = copy_of(corpus, REL, tmp_path, "planes.zvi")
    _resize(planes, "Image/Contents", 2000)  # an image header with plane data after it
    assert engine.claim(str(planes), read_head(planes)) == 0
    with pytest.raises(ExtractionError, match="plane data"):
        engine.extract(str(planes))
    two = copy_of(corpus, REL, tmp_path, "two.zvi")
    rename_entry(two, "Shapes", "Tags")  # Image/Layers/Item(0)/Tags/Contents: a second item tag stream
    assert engine.claim(str(two), read_head(two)) == 0
    with pytest.raises(ExtractionError, match="two tag streams for one item"):
        engine.extract(str(two))
    bad = copy_of(corpus, REL, tmp_path, "bad.zvi")
    rename_entry(bad, "Item(0)", "Item(x)")
    with pytest.raises(ExtractionError, match="Bio-Formats fails on its number"):
        engine.extract(str(bad))


def test_truncated_copies_are_refused(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / REL).read_bytes()
    engine = ZviEngine()
    for cut in (300, 4096 * 3, len(data) - 4096 * 2):
        path = tmp_path / f"cut{cut}.zvi"
        path.write_bytes(data[:cut])
        assert engine.claim(str(path), read_head(path)) == 0
        with pytest.raises(ExtractionError, match="ZVI cannot be read"):
            engine.extract(str(path))


def test_other_names_and_formats_are_not_claimed(corpus: Path, tmp_path: Path) -> None:
    engine = ZviEngine()
    renamed = copy_of(corpus, REL, tmp_path, "x.oib")
    assert engine.claim(str(renamed), read_head(renamed)) == 0
    oib = copy_of(corpus, "olympus-oib/test.oib", tmp_path, "oib.zvi")
    assert engine.claim(str(oib), read_head(oib)) == 0
    with pytest.raises(ExtractionError, match="no Image storage"):
        engine.extract(str(oib))
    tiff = tmp_path / "x.zvi"
    tiff.write_bytes(b"II*\x00" + bytes(2000))
    assert engine.claim(str(tiff), read_head(tiff)) == 0
    with pytest.raises(ExtractionError, match="no OLE2 signature"):
        engine.extract(str(tiff))


def test_damaged_copies_never_raise_anything_else(corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(9)
    data = (corpus / REL).read_bytes()
    with OleFile(corpus / REL) as ole:
        tag_bytes = [a + rng.randrange(n) for a, n in ole.extents(ITEM) + ole.extents(DOC) for _ in range(3)]
    engine = ZviEngine()
    for i in range(60):
        raw = bytearray(data)
        for _ in range(4):
            at = rng.choice([rng.randrange(8, 512), rng.choice(tag_bytes), rng.randrange(len(raw))])
            raw[at] = rng.randrange(256)
        damaged_copy_is_contained(engine, tmp_path / f"d{i}.zvi", bytes(raw))


def test_written_zvis_read_as_bioformats_read_them(tmp_path: Path) -> None:
    """Pinned from live Bio-Formats 7.3.1 on these very files (checked live, see the slow test below)."""
    files = written(tmp_path)
    engine = ZviEngine()
    fields = {}
    for name, path in files.items():
        assert engine.claim(str(path), read_head(path)) == CLAIM, name
        xml = engine.extract(str(path))
        assert validate(xml, remember=False) == (True, None), name
        fields[name] = key_fields(xml)["images"][0]
    c2z3 = fields["c2z3"]
    assert (c2z3["pixels"]["dimension_order"], c2z3["pixels"]["type"]) == ("XYCZT", "uint16")
    assert (c2z3["pixels"]["size_z"], c2z3["pixels"]["size_c"]) == (3, 2)
    assert [c["name"] for c in c2z3["channels"]] == ["DAPI", "GFP"]
    # the first camera time is counted twice: plane k gets item k+1's time, the last plane none
    assert [p["delta_t"] for p in c2z3["planes"]][:2] == [[0.0, "ms"], [10662.0, "ms"]]
    assert c2z3["planes"][-1]["delta_t"] is None
    assert [p["position_x"][0] for p in c2z3["planes"]] == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    assert c2z3["acquisition_date"] == "2010-03-09T15:07:36.715"
    assert fields["t2c2"]["pixels"]["dimension_order"] == "XYTCZ" and fields["t2c2"]["pixels"]["type"] == "uint8"
    assert fields["z4"]["pixels"]["dimension_order"] == "XYZCT"
    rgb = fields["rgb"]
    assert (rgb["pixels"]["size_c"], rgb["channels"][0]["samples_per_pixel"], rgb["pixels"]["type"]) == (3, 3, "uint8")
    assert [c["name"] for c in fields["one-based"]["channels"]] == ["A", "B", "C"]  # indices 0..3 named, first 3
    assert fields["rgb16-zlib"]["pixels"]["type"] == "uint16" and fields["rgb16-zlib"]["pixels"]["size_t"] == 2
    xml = engine.extract(str(files["c2z3"]))
    assert 'Color="65535"' in xml and 'Color="16711935"' in xml  # 0xFF0000 and 0x00FF00 read as BGR


def test_written_kinds_not_checked_are_declined(tmp_path: Path) -> None:
    engine = ZviEngine()
    cases = {
        "JPEG": write_zvi(tmp_path / "jpeg.zvi", [(0, 0, 0)], valid=1),
        "tiles": write_zvi(tmp_path / "tiles.zvi", [(0, 0, 0), (0, 0, 0)]),
        "bytes per pixel": write_zvi(tmp_path / "bpp.zvi", [(0, 0, 0)], bpp=4),
        "experimenter": write_zvi(tmp_path / "user.zvi", [(0, 0, 0)],
                                  extra=lambda n, z, c, t: [(v_text("Ada Lovelace"), 1801)]),
    }
    for reason, path in cases.items():
        assert engine.claim(str(path), read_head(path)) == 0, reason
        with pytest.raises(ExtractionError, match=reason):
            engine.extract(str(path))


def _edited(corpus: Path, tmp_path: Path) -> tuple[Path, Path]:
    first = copy_of(corpus, REL, tmp_path, "first.zvi")
    patch_stream(first, ITEM, _int_tag(0, 2820), _int_tag(1, 2820))  # the item's channel index 0 -> 1
    patch_stream(first, ITEM, struct.pack("<hd", 5, 332.8), struct.pack("<hd", 5, 12.5))
    patch_stream(first, ITEM, struct.pack("<hd", 7, TIME), struct.pack("<hd", 7, 40000.123456))
    patch_stream(first, ITEM, utf16("Plan-Apochromat 40x/0.95 Korr"), utf16("EC Plan-Neofluar 63x/1.25 Oil"))
    patch_stream(first, ITEM, struct.pack("<hd", 5, -21346.20236833209), struct.pack("<hd", 5, 1234.5))
    second = copy_of(corpus, REL, tmp_path, "second.zvi")
    patch_stream(second, ITEM, struct.pack("<hi", 3, 255), struct.pack("<hi", 3, 65280))  # green
    patch_stream(second, ITEM, struct.pack("<hd", 7, TIME), struct.pack("<hd", 7, 40246.5))  # noon, no milliseconds
    patch_stream(second, DOC, struct.pack("<hd", 5, 0.22639345896102386), struct.pack("<hd", 5, 0.5))
    return first, second


def test_edited_copies_read_as_bioformats_read_them(corpus: Path, tmp_path: Path) -> None:
    """Pinned from live Bio-Formats 7.3.1 on these very copies (checked live, see the slow test below)."""
    first, second = _edited(corpus, tmp_path)
    engine = ZviEngine()
    assert engine.claim(str(first), read_head(first)) == CLAIM
    xml = engine.extract(str(first))
    assert validate(xml, remember=False) == (True, None)
    image = key_fields(xml)["images"][0]
    assert image["acquisition_date"] == "2009-07-06T02:57:46.598"
    assert image["channels"][0]["name"] == "DsRed"  # channel 1 is the first named one
    assert 'Color="' not in xml  # the colour of channel 1 is not kept while the effective SizeC is 1
    assert image["planes"][0]["exposure_time"] == [0.0125, "s"]
    assert image["planes"][0]["position_x"] == [1234.5, "reference frame"]
    assert key_fields(xml)["objectives"] == [{"nominal_magnification": 40.0, "lens_na": 0.95}]  # tags 2076/7 last
    xml = engine.extract(str(second))
    assert 'Color="16711935"' in xml  # 0x00FF00 as Bio-Formats' RGBA int
    assert key_fields(xml)["images"][0]["acquisition_date"] == "2010-03-09T12:00:00"  # no ".000"
    assert key_fields(xml)["images"][0]["pixels"]["physical_size_x"] == [0.5, "µm"]


@pytest.mark.slow
def test_edited_and_written_files_agree_with_live_bioformats(corpus: Path, tmp_path: Path) -> None:
    from metaextract import engines

    for path in (*_edited(corpus, tmp_path), *written(tmp_path).values()):
        ours, theirs = ZviEngine().extract(str(path)), engines.get("bioformats").extract(str(path))
        assert key_fields(ours) == key_fields(theirs)
        assert normalise(ours) == normalise(theirs)
