"""A hostile corpus that the tests build themselves: what a facility's folders really hold.

:func:`build` writes every case under ``root`` (the folder that gets registered) and a few canaries under
``root.parent / "outside"`` (never registered: nothing may read them), and returns one :class:`Case`
per hostile input with the outcome the tool must give for it. Cases whose damage happens after
registration (a file that vanishes, turns into a directory, loses its read permission) carry an
``after_init`` action.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OUTSIDE = "outside"
#: The unique text every canary carries: it must appear nowhere in what the tool stores.
TOKEN = "CANARY-" + uuid.uuid4().hex
NOT_OK = frozenset({"failed", "unsupported", "timeout"})
#: "metadata": registered as a sidecar (a cut that leaves only text), recorded in metadata_files.
ANY = frozenset({"ok", "failed", "unsupported", "timeout", "metadata"})

# One real file per single-file corpus format (each reads cleanly in the Bio-Formats reference).
TRUNCATED_SOURCES = (
    "andor-sif/raman1.sif",
    "cellomics-c01/iamac01file.c01",
    "czi/100x100.czi",
    "dicom/seg_image_sm_dots_tiled_full.dcm",
    "dv/toxo.dv",
    "imagej-tiff/5channel.tif",
    "lif/LeicaLASX_xz-plane_example.lif",
    "metamorph-stk/MetamorphImage.tif",
    "micromanager-mmstack/Cos7_A647_WF1/Cos7_A647_WF1_MMStack_Pos0.ome.tif",
    "nd2/cluster.nd2",
    "olympus-oib/test.oib",
    "ome-tiff/grey.ome.tiff",
    "ome-tiff-spec-samples/18x24y5z5t2c8b-text.ome.tiff",
    "ome-xml-reference/single-image.ome.xml",
    "spe/spestack_test.spe",
    "svs/small.svs",
    "tiff/AS_09125_050116030001_D03f00d0.tif",
    "zeiss-lsm/test.lsm",
    "zeiss-zvi/BlockSize4096.zvi",
)
#: Fractions of the size at which each source is cut (plus a cut 8 bytes after the start).
CUTS = (0.5, 0.9)
TIFF_FAMILY = (".tif", ".tiff", ".svs", ".lsm", ".stk")
KNOWN_EXTENSIONS = (".tif", ".tiff", ".ome.tiff", ".czi", ".nd2", ".lif", ".dcm", ".dv", ".ics", ".sif",
                    ".c01", ".oib", ".spe", ".svs", ".lsm", ".zvi", ".stk", ".png", ".jpg", ".jp2", ".ome.xml")


@dataclass
class Case:
    """One hostile input and what the tool must make of it.

    Attributes
    ----------
    name : str
        What it is (test id).
    rel : bytes
        Its path relative to the registered folder, as bytes (names need not be UTF-8).
    statuses : frozenset of str
        Stored statuses that are right for it; empty when the file must not be registered at all.
    error : tuple of str
        Substrings the stored one-line error must hold (case-insensitive), besides the file's name.
    after_init : callable, optional
        Damage done after ``init`` and before ``run``.
    """

    name: str
    rel: bytes
    statuses: frozenset[str]
    error: tuple[str, ...] = ()
    after_init: Callable[[Path], None] | None = field(default=None, repr=False)

    @property
    def registered(self) -> bool:
        return bool(self.statuses)

    def path(self, root: Path) -> Path:
        return Path(os.fsdecode(os.fsencode(root) + b"/" + self.rel))


# -- TIFF writing -------------------------------------------------------------------------------------------
def _entry(tag: int, typ: int, count: int, value: int) -> bytes:
    return struct.pack("<HHII", tag, typ, count, value)


def tiff_bytes(width: int = 4, height: int = 4, description: bytes | None = None, *, pages: int = 1,
               next_ifd: int | None = None, strip_offset: int | None = None) -> bytes:
    """A little-endian 8-bit grey TIFF of ``pages`` uncompressed pages, optionally with an ImageDescription.

    ``next_ifd`` replaces the last IFD's next-IFD offset (loops); ``strip_offset`` replaces every
    page's strip offset (pixels beyond the end of the file).
    """
    desc = (description + b"\0") if description is not None else b""
    n_tags = 10 if description is not None else 9
    ifd_size = 2 + 12 * n_tags + 4
    pixels = width * height
    desc_at = 8
    first_ifd = (desc_at + len(desc) + 1) & ~1
    ifd_at = [first_ifd + i * (ifd_size + (pixels if pixels < 1 << 20 else 16)) for i in range(pages)]
    out = bytearray(b"II*\x00" + struct.pack("<I", first_ifd) + desc)
    for i, at in enumerate(ifd_at):
        out += b"\0" * (at - len(out))
        data_at = at + ifd_size
        count = pixels if pixels < 1 << 20 else 16  # a "huge" image declares far more than it holds
        entries = [_entry(256, 4, 1, width), _entry(257, 4, 1, height), _entry(258, 3, 1, 8),
                   _entry(259, 3, 1, 1), _entry(262, 3, 1, 1)]
        if description is not None and i == 0:
            entries.append(_entry(270, 2, len(desc), desc_at))
        entries += [_entry(273, 4, 1, strip_offset if strip_offset is not None else data_at),
                    _entry(277, 3, 1, 1), _entry(278, 4, 1, height), _entry(279, 4, 1, count)]
        last = i == pages - 1
        nxt = (next_ifd if next_ifd is not None else 0) if last else ifd_at[i + 1]
        out += struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", nxt)
        out += bytes(count)
    return bytes(out)


def ome_xml(body: str = "", *, name: str = "hostile", size_z: int = 1, size_x: int = 4, size_y: int = 4,
            tiffdata: str = '<TiffData IFD="0" PlaneCount="1"/>', doctype: str = "") -> bytes:
    """A small OME-XML document (one image), with an optional DOCTYPE in front."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}'
            '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
            f'<Image ID="Image:0" Name="{name}"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" '
            f'SizeX="{size_x}" SizeY="{size_y}" SizeZ="{size_z}" SizeC="1" SizeT="1">'
            f'<Channel ID="Channel:0:0" SamplesPerPixel="1"/>{tiffdata}</Pixels></Image>{body}</OME>'
            ).encode()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- the corpus -------------------------------------------------------------------------------------------
def _canaries(outside: Path) -> dict[str, Path]:
    outside.mkdir(parents=True, exist_ok=True)
    text = outside / "canary.txt"
    text.write_text(f"{TOKEN}\n")
    tif = outside / "canary.ome.tif"
    tif.write_bytes(tiff_bytes(description=ome_xml(name=TOKEN)))
    companion = outside / "canary.companion.ome"
    companion.write_bytes(ome_xml(name=TOKEN, tiffdata='<TiffData IFD="0" PlaneCount="1">'
                                  '<UUID FileName="binary.ome.tif">urn:uuid:1</UUID></TiffData>'))
    return {"text": text, "tif": tif, "companion": companion}


def build(root: Path, corpus: Path, *, http_port: int = 9) -> list[Case]:
    """Write the hostile corpus under ``root`` (canaries in ``root.parent/"outside"``).

    Parameters
    ----------
    root : Path
        The folder to register (created).
    corpus : Path
        The real corpus, for the truncated copies and the format lies.
    http_port : int
        A local TCP port that external entities name as their ``http://`` URL (a test listens there).

    Returns
    -------
    list of Case
    """
    root.mkdir(parents=True, exist_ok=True)
    canary = _canaries(root.parent / OUTSIDE)
    cases: list[Case] = []

    def add(name: str, rel: str | bytes, data: bytes | None, statuses: frozenset[str], *error: str,
            after_init: Callable[[Path], None] | None = None) -> None:
        relb = rel if isinstance(rel, bytes) else rel.encode()
        if data is not None:
            target = os.fsencode(root) + b"/" + relb
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
        cases.append(Case(name, relb, statuses, tuple(error), after_init))

    # empty and truncated files
    add("zero-byte", "empty/zero.tif", b"", NOT_OK, "empty file")
    add("zero-byte-czi", "empty/zero.czi", b"", NOT_OK, "empty file")
    for src in TRUNCATED_SOURCES:
        data = (corpus / src).read_bytes()
        fmt, base = src.split("/")[0], src.rsplit("/", 1)[-1]
        for label, cut in [("8b", 8)] + [(f"{int(f * 100)}pct", int(len(data) * f)) for f in CUTS]:
            tiff_like = base.lower().endswith(TIFF_FAMILY)
            # A TIFF cut anywhere loses IFDs or pixels it declares: it must never be stored as healthy.
            expect = NOT_OK if tiff_like else ANY
            add(f"truncated-{fmt}-{label}", f"truncated/{fmt}-{label}/{base}", data[:cut], expect)

    # random bytes under every known extension
    rng = random.Random(7)
    for ext in KNOWN_EXTENSIONS:
        add(f"random{ext}", f"random/noise{ext}", rng.randbytes(3000), NOT_OK | {"metadata"})

    # names that lie about the format
    lies = {
        "czi-as-tif": ("czi/100x100.czi", "lies/really_czi.tif"),
        "nd2-as-tif": ("nd2/cluster.nd2", "lies/really_nd2.tif"),
        "tiff-as-czi": ("tiff/AS_09125_050116030001_D03f00d0.tif", "lies/really_tiff.czi"),
        "ome-xml-as-nd2": ("ome-xml-reference/single-image.ome.xml", "lies/really_omexml.nd2"),
        "dicom-as-jpg": ("dicom/seg_image_sm_dots_tiled_full.dcm", "lies/really_dicom.jpg"),
    }
    for name, (src, rel) in lies.items():
        # read by what the bytes are, or refused with a clear error; never a crash or a hang
        add(name, rel, (corpus / src).read_bytes(), frozenset({"ok", "failed", "unsupported"}))
    add("text-as-tif", "lies/notes.tif", b"these are my notes, not an image\n" * 40, frozenset({"metadata"}))

    # untrusted XML in the ImageDescription
    file_url = canary["text"].as_uri()
    ent = '<!DOCTYPE OME [<!ENTITY x SYSTEM "{}">]>'
    add("xxe-local-file", "xml/xxe_file.ome.tif",
        tiff_bytes(description=ome_xml(name="&x;", doctype=ent.format(file_url))), ANY)
    add("xxe-http", "xml/xxe_http.ome.tif",
        tiff_bytes(description=ome_xml(name="&x;", doctype=ent.format(f"http://127.0.0.1:{http_port}/x"))), ANY)
    add("xxe-parameter-entity", "xml/xxe_param.ome.tif",
        tiff_bytes(description=ome_xml(doctype=f'<!DOCTYPE OME [<!ENTITY % p SYSTEM '
                                               f'"http://127.0.0.1:{http_port}/p"> %p;]>')), ANY)
    lol = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    add("billion-laughs", "xml/lol.ome.tif",
        tiff_bytes(description=ome_xml(name="&l9;", doctype=f'<!DOCTYPE OME [<!ENTITY l0 "lol">{lol}]>')), ANY)
    deep = "<a>" * 100_000 + "</a>" * 100_000
    add("deep-nesting", "xml/deep.ome.tif",
        tiff_bytes(description=ome_xml(body=f'<StructuredAnnotations><XMLAnnotation ID="Annotation:0"><Value>'
                                            f'{deep}</Value></XMLAnnotation></StructuredAnnotations>')), ANY)
    add("companion-outside", "xml/binary.ome.tif",
        tiff_bytes(description=('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.'
                                'org/Schemas/OME/2016-06" UUID="urn:uuid:1"><BinaryOnly MetadataFile='
                                f'"../../{OUTSIDE}/canary.companion.ome" UUID="urn:uuid:2"/></OME>').encode()),
        ANY)
    add("tiffdata-outside", "xml/split.ome.tif",
        tiff_bytes(description=ome_xml(size_z=2, tiffdata=(
            '<TiffData FirstZ="0" IFD="0" PlaneCount="1"/>'
            f'<TiffData FirstZ="1" IFD="0" PlaneCount="1"><UUID FileName="../../{OUTSIDE}/canary.ome.tif">'
            'urn:uuid:3</UUID></TiffData>')))
        , ANY)
    add("absolute-path-outside", "xml/abs.ome.tif",
        tiff_bytes(description=ome_xml(size_z=2, tiffdata=(
            '<TiffData FirstZ="0" IFD="0" PlaneCount="1"/>'
            f'<TiffData FirstZ="1" IFD="0" PlaneCount="1"><UUID FileName="{canary["tif"]}">'
            'urn:uuid:4</UUID></TiffData>')))
        , ANY)

    # declared sizes far beyond what the file holds
    add("2^31-planes", "sizes/planes.ome.tif",
        tiff_bytes(description=ome_xml(size_z=2**31 - 1, tiffdata="")), NOT_OK)
    add("2^40-pixels-ome", "sizes/pixels.ome.tif",
        tiff_bytes(description=ome_xml(size_x=2**20, size_y=2**20)), NOT_OK)
    add("2^40-pixels-tiff", "sizes/pixels.tif", tiff_bytes(width=2**20, height=2**20), NOT_OK)
    add("strips-beyond-eof", "sizes/strips.tif", tiff_bytes(strip_offset=1 << 30), NOT_OK)

    # IFD chains that loop or point nowhere
    one = tiff_bytes()
    add("ifd-self-loop", "ifd/self_loop.tif", tiff_bytes(next_ifd=struct.unpack("<I", one[4:8])[0]), NOT_OK)
    two = tiff_bytes(pages=2)
    add("ifd-two-cycle", "ifd/cycle.tif", tiff_bytes(pages=2, next_ifd=struct.unpack("<I", two[4:8])[0]),
        NOT_OK)
    add("ifd-beyond-eof", "ifd/beyond.tif", tiff_bytes(next_ifd=1 << 30), NOT_OK)
    add("first-ifd-beyond-eof", "ifd/first_beyond.tif", b"II*\x00" + struct.pack("<I", 1 << 30) + bytes(64),
        NOT_OK)

    # names and file-system objects
    healthy = tiff_bytes()
    add("non-utf8-name", b"names/caf\xe9_\xff\xfe.tif", healthy, frozenset({"ok", "failed"}))
    add("newline-in-name", "names/two\nlines.tif", healthy, frozenset({"ok"}))
    add("unreadable", "fs/unreadable.tif", healthy, frozenset({"failed"}), "permission denied",
        after_init=lambda p: p.chmod(0))
    add("vanished", "fs/vanished.tif", healthy, frozenset({"failed"}), "not found",
        after_init=lambda p: p.unlink())

    def to_dir(p: Path) -> None:
        p.unlink()
        p.mkdir()
        (p / "inner.txt").write_text("x")

    add("became-directory", "fs/became_dir.tif", healthy, frozenset({"failed"}), "directory",
        after_init=to_dir)
    (root / "fs" / "folder.tif").mkdir(parents=True)
    add("directory-named-like-image", "fs/folder.tif", None, frozenset())
    (root / "fs" / "folder.ome.tiff").mkdir()
    add("file-in-directory-named-like-image", "fs/folder.ome.tiff/inner.tif", healthy, frozenset({"ok"}))
    os.symlink("loop_b.tif", root / "fs" / "loop_a.tif")
    os.symlink("loop_a.tif", root / "fs" / "loop_b.tif")
    add("symlink-loop", "fs/loop_a.tif", None, frozenset())
    os.symlink(canary["tif"], root / "fs" / "outside_link.ome.tif")
    add("symlink-outside", "fs/outside_link.ome.tif", None, frozenset())
    os.symlink(f"../../{OUTSIDE}", root / "fs" / "outside_dir")
    add("symlinked-folder-outside", "fs/outside_dir/canary.ome.tif", None, frozenset())
    (root / "fs" / "inside_target.tif").write_bytes(healthy)
    cases.append(Case("symlink-inside", b"fs/inside_target.tif", frozenset({"ok"})))

    def retarget(p: Path) -> None:
        p.unlink()
        os.symlink(canary["tif"], p)

    os.symlink("inside_target.tif", root / "fs" / "retargeted.tif")
    add("symlink-retargeted-outside-after-init", "fs/retargeted.tif", None, NOT_OK, "outside",
        after_init=retarget)
    return cases


def damage(root: Path, cases: list[Case]) -> None:
    """Apply every case's ``after_init`` (call between ``init`` and ``run``)."""
    for case in cases:
        if case.after_init is not None:
            case.after_init(case.path(root))


def restore_permissions(root: Path) -> None:
    """Undo ``chmod 000`` so that pytest can remove the folder."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(folder, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


def copy_corpus_file(corpus: Path, rel: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / rel, dest)
    return dest
