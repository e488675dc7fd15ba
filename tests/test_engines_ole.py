"""The OLE2 (compound document) reader under the oib and zvi engines, on the corpus files and broken copies.

A looping FAT, a looping directory tree, a truncated file, a bad signature and random damage must all end
in :class:`OleError` (a ValueError with a one-line reason), never a hang, another exception or a read
past what the file holds. ``patch_stream`` (used by the oib and zvi tests) edits a stream of a copy in
place, byte for byte, through the extents the reader reports.
"""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest

from metaextract.engines.ole.storage import (
    MAGIC,
    JavaNumberError,
    OleError,
    OleFile,
    is_ole,
    parse_double,
    parse_int,
    strip_string,
)
from metaextract.ome.writer import jfloat, jtrim

OIB = "olympus-oib/test.oib"
ZVI = "zeiss-zvi/BlockSize4096.zvi"


def copy_of(corpus: Path, rel: str, tmp_path: Path, name: str | None = None) -> Path:
    path = tmp_path / (name or Path(rel).name)
    shutil.copy(corpus / rel, path)
    path.chmod(0o644)
    return path


def patch_stream(path: Path, stream: str, old: bytes, new: bytes, nth: int = 0) -> None:
    """Replace the ``nth`` occurrence of ``old`` in ``stream`` by ``new`` (same length) in the file itself."""
    assert len(old) == len(new), (old, new)
    with OleFile(path) as ole:
        pieces = ole.extents(stream)
        data = ole.read(stream)
    at = -1
    for _ in range(nth + 1):
        at = data.find(old, at + 1)
        assert at >= 0, f"{old!r} not found in {stream}"
    data = data[:at] + new + data[at + len(old):]
    raw = bytearray(path.read_bytes())
    pos = 0
    for offset, length in pieces:
        raw[offset:offset + length] = data[pos:pos + length]
        pos += length
    path.write_bytes(bytes(raw))


def rename_entry(path: Path, old: str, new: str) -> None:
    """Rename a directory entry in place (the name field and its byte length)."""
    raw = bytearray(path.read_bytes())
    shift = struct.unpack_from("<H", raw, 0x1E)[0]
    at = (struct.unpack_from("<I", raw, 0x30)[0] + 1) << shift
    for i in range(4096 // 128):
        entry = at + 128 * i
        length = struct.unpack_from("<H", raw, entry + 64)[0]
        if raw[entry:entry + length - 2].decode("utf-16-le", "replace") == old:
            name = (new + "\x00").encode("utf-16-le")
            raw[entry:entry + 64] = name + bytes(64 - len(name))
            struct.pack_into("<H", raw, entry + 64, len(name))
            path.write_bytes(bytes(raw))
            return
    raise AssertionError(f"no entry {old}")


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def write_ole(path: Path, streams: dict[tuple[str, ...], bytes]) -> None:
    """A version 3 compound document (512-byte sectors) holding ``streams``, each padded to 4096 bytes or more
    so that none goes to the mini stream; each storage's children are chained as right siblings."""
    sector = 512
    names: list[tuple[str, ...]] = [()]
    for stream in streams:
        for depth in range(1, len(stream) + 1):
            if stream[:depth] not in names:
                names.append(stream[:depth])
    data = {p: raw + bytes(max(0, 4096 - len(raw))) for p, raw in streams.items()}
    n_dir = (len(names) * 128 + sector - 1) // sector
    n_data = sum((len(raw) + sector - 1) // sector for raw in data.values())
    n_fat = 1
    while n_fat * (sector // 4) < n_fat + n_dir + n_data:
        n_fat += 1
    fat = [0xFFFFFFFD] * n_fat
    first_dir = len(fat)
    fat += [len(fat) + i + 1 for i in range(n_dir - 1)] + [0xFFFFFFFE]
    starts: dict[tuple[str, ...], int] = {}
    body = b""
    for p, raw in data.items():
        count = (len(raw) + sector - 1) // sector
        starts[p] = len(fat)
        fat += [len(fat) + i + 1 for i in range(count - 1)] + [0xFFFFFFFE]
        body += raw + bytes(count * sector - len(raw))
    fat += [0xFFFFFFFF] * (n_fat * sector // 4 - len(fat))
    entries = bytearray(n_dir * sector)
    for index, p in enumerate(names):
        kids = [names.index(q) for q in names if len(q) == len(p) + 1 and q[:len(p)] == p]
        siblings = [names.index(q) for q in names if len(q) == len(p) and q[:-1] == p[:-1] and q != p]
        right = min((i for i in siblings if i > index), default=0xFFFFFFFF)
        name = ("Root Entry" if not p else p[-1]) + "\x00"
        encoded = name.encode("utf-16-le")
        at = index * 128
        entries[at:at + len(encoded)] = encoded
        kind = 5 if not p else 2 if p in data else 1
        struct.pack_into("<HBB", entries, at + 64, len(encoded), kind, 1)
        struct.pack_into("<III", entries, at + 68, 0xFFFFFFFF, right, kids[0] if kids else 0xFFFFFFFF)
        start, size = (starts[p], len(data[p])) if p in data else (0xFFFFFFFE if not p else 0, 0)
        struct.pack_into("<II", entries, at + 116, start, size)
    header = bytearray(512)
    header[:8] = MAGIC
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIII", header, 0x2C, n_fat, first_dir, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
    difat = list(range(n_fat)) + [0xFFFFFFFF] * (109 - n_fat)
    struct.pack_into("<109I", header, 0x4C, *difat)
    path.write_bytes(bytes(header) + struct.pack(f"<{len(fat)}I", *fat) + bytes(entries) + body)


def test_the_corpus_documents_list_their_streams(corpus: Path) -> None:
    with OleFile(corpus / OIB) as ole:
        assert ole.sector_size == 4096
        assert ("OibInfo.txt",) in ole.streams() and ("Stream00013",) in ole.streams()
        assert ole.storages() == [("Storage00001",)]
        assert [e.name for e in ole.listdir("Storage00001")][:3] == ["Stream00001", "Stream00002", "Stream00003"]
        info = ole.read("OibInfo.txt")
        assert info[:2] == b"\xff\xfe" and len(info) == 1532
        assert ole.read("Storage00001/Stream00001", 4) == b"II*\x00"  # a TIFF plane, read only as far as asked
    with OleFile(corpus / ZVI) as ole:
        assert ole.sector_size == 4096  # a version 3 header with 4096-byte sectors, as AxioVision writes
        assert ("Image", "Item(0)", "Tags", "Contents") in ole.streams()
        assert ole.entry("Image/Item(0)/Contents") is None
        tags = ole.read("Image/Tags/Contents")
        assert len(tags) == 3346 and struct.unpack_from("<i", tags, 8)[0] == 148


@pytest.mark.parametrize("rel", [OIB, ZVI])
def test_extents_cover_each_stream_exactly(rel: str, corpus: Path) -> None:
    raw = (corpus / rel).read_bytes()
    with OleFile(corpus / rel) as ole:
        for path in ole.streams():
            pieces = ole.extents(path)
            entry = ole.entry(path)
            assert entry is not None
            assert sum(n for _, n in pieces) == entry.size
            assert b"".join(raw[a:a + n] for a, n in pieces) == ole.read(path)


def test_a_written_document_reads_back(tmp_path: Path) -> None:
    streams = {("A", "B", "Contents"): b"x" * 5000, ("A", "Tags"): b"y" * 10, ("Top",): bytes(range(256)) * 20}
    path = tmp_path / "w.ole"
    write_ole(path, streams)
    with OleFile(path) as ole:
        assert sorted(ole.streams()) == sorted(streams)
        assert ole.read("A/B/Contents") == b"x" * 5000
        assert ole.read("A/Tags")[:10] == b"y" * 10 and len(ole.read("A/Tags")) == 4096  # padded
        assert ole.read(("Top",)) == bytes(range(256)) * 20


def test_is_ole() -> None:
    assert is_ole(MAGIC + b"\x00" * 8) and not is_ole(b"II*\x00")


def test_a_wrong_signature_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.oib"
    path.write_bytes(b"II*\x00" + bytes(600))
    with pytest.raises(OleError, match="not an OLE2"):
        OleFile(path)


def _fat_offset(raw: bytes) -> int:
    shift = struct.unpack_from("<H", raw, 0x1E)[0]
    first_fat = struct.unpack_from("<I", raw, 0x4C)[0]
    return (first_fat + 1) << shift


def test_a_looping_fat_chain_is_refused(corpus: Path, tmp_path: Path) -> None:
    path = copy_of(corpus, OIB, tmp_path)
    with OleFile(path) as ole:
        entry = ole.entry("Storage00001/Stream00001")  # 131412 bytes: 33 regular sectors
        assert entry is not None
        start = entry.start
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, _fat_offset(raw) + 4 * (start + 2), start)  # third sector links to the first
    path.write_bytes(bytes(raw))
    with OleFile(path) as ole:
        with pytest.raises(OleError, match="loops"):
            ole.read("Storage00001/Stream00001")
        assert ole.read("OibInfo.txt")[:2] == b"\xff\xfe"  # other streams still read


def test_a_looping_directory_chain_is_refused(corpus: Path, tmp_path: Path) -> None:
    path = copy_of(corpus, ZVI, tmp_path)
    raw = bytearray(path.read_bytes())
    first_dir = struct.unpack_from("<I", raw, 0x30)[0]
    struct.pack_into("<I", raw, _fat_offset(raw) + 4 * first_dir, first_dir)
    path.write_bytes(bytes(raw))
    with pytest.raises(OleError, match="directory chain loops"):
        OleFile(path)


def test_a_looping_directory_tree_is_refused(corpus: Path, tmp_path: Path) -> None:
    path = copy_of(corpus, ZVI, tmp_path)
    raw = bytearray(path.read_bytes())
    shift = struct.unpack_from("<H", raw, 0x1E)[0]
    directory = (struct.unpack_from("<I", raw, 0x30)[0] + 1) << shift
    root_child = struct.unpack_from("<I", raw, directory + 76)[0]
    struct.pack_into("<I", raw, directory + 128 * root_child + 68, root_child)  # its own left sibling
    path.write_bytes(bytes(raw))
    with pytest.raises(OleError, match="tree loops"):
        OleFile(path)


def test_a_truncated_file_fails_where_it_is_cut(corpus: Path, tmp_path: Path) -> None:
    raw = (corpus / OIB).read_bytes()
    with OleFile(corpus / OIB) as ole:
        pieces = ole.extents("Stream00013")  # the .oif, in the last sectors of the file
    cut = tmp_path / "cut.oib"
    cut.write_bytes(raw[:pieces[5][0] + 100])
    with OleFile(cut) as ole:
        assert ole.read("Storage00001/Stream00010")[:2] == b"\xff\xfe"  # whole streams before the cut read
        assert len(ole.read("Stream00013", 4096 * 5)) == 4096 * 5  # so does the part of one before it
        with pytest.raises(OleError, match="truncated|leaves the file"):
            ole.read("Stream00013")
    before_minifat = tmp_path / "minifat.oib"
    before_minifat.write_bytes(raw[:200 * 4096])
    with pytest.raises(OleError, match="mini FAT chain leaves the file"):
        OleFile(before_minifat)
    header_only = tmp_path / "header.oib"
    header_only.write_bytes(raw[:300])
    with pytest.raises(OleError, match="truncated OLE2 header"):
        OleFile(header_only)


def test_two_entries_with_one_name_are_refused(corpus: Path, tmp_path: Path) -> None:
    path = copy_of(corpus, ZVI, tmp_path)
    rename_entry(path, "Layers", "Scaling")  # a second Image/Scaling
    with pytest.raises(OleError, match="same name"):
        OleFile(path)


def test_header_counts_beyond_the_file_are_refused(corpus: Path, tmp_path: Path) -> None:
    path = copy_of(corpus, ZVI, tmp_path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 0x2C, 10**6)  # FAT sectors
    path.write_bytes(bytes(raw))
    with pytest.raises(OleError, match="more FAT"):
        OleFile(path)


@pytest.mark.parametrize("rel", [OIB, ZVI])
def test_random_damage_raises_only_ole_errors(rel: str, corpus: Path, tmp_path: Path) -> None:
    rng = random.Random(11)
    data = (corpus / rel).read_bytes()
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    directory = (struct.unpack_from("<I", data, 0x30)[0] + 1) << shift
    areas = [(8, 512), (_fat_offset(data), 1024), (directory, 1024)]  # header, FAT, directory
    for i in range(60):
        raw = bytearray(data[:rng.choice([600, 5000, 20000, len(data)])])
        for _ in range(6):
            start, width = rng.choice(areas)
            at = start + rng.randrange(width)
            if at < len(raw):
                raw[at] = rng.randrange(256)
        path = tmp_path / f"d{i}"
        path.write_bytes(bytes(raw))
        try:
            with OleFile(path) as ole:
                for stream in ole.streams():
                    try:
                        ole.read(stream, 1 << 20)
                    except OleError as exc:
                        assert "\n" not in str(exc)
        except OleError as exc:
            assert "\n" not in str(exc)


def test_java_spellings() -> None:
    assert jtrim("\x00 a b\t\x1f") == "a b"
    assert strip_string(" [a\x00b] \x00") == "[ab]"
    assert parse_int("-12") == -12
    for bad in ("1.0", "", " 1", "2147483648", "١"):
        with pytest.raises(JavaNumberError):
            parse_int(bad)
    assert parse_double(" 1.5f ") == 1.5 and parse_double(".5") == 0.5 and parse_double("2.") == 2.0
    for bad in ("NaN", "Infinity", "0x1p3", "1_0", "", "1e999"):
        with pytest.raises(JavaNumberError):
            parse_double(bad)
    assert jfloat(struct.unpack("<f", struct.pack("<f", 0.1))[0]) == "0.1"
    assert jfloat(struct.unpack("<f", struct.pack("<f", 1.5e-5))[0]) == "1.5E-5"
