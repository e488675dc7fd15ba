"""Cheap checks on a file that catch what an engine does not: damage it read past, and references it
should never follow.

:func:`check` runs after every successful read: a truncated OME-TIFF that Bio-Formats reads "fine" as a
plain TIFF is caught by walking the TIFF's IFD chain with bounds checks (IFDs, strips and tiles beyond
the end of the file, loops) and by comparing the planes the OME-XML maps to IFDs with the IFDs present.
:func:`refuse` runs before the engine: embedded XML that declares a DTD or entities, or that names files
outside the image's folder, is never handed to Bio-Formats (whose XML parser would fetch them). Besides a
TIFF's ImageDescription and an XML file's text, every other file's bytes (up to :data:`MAX_SCAN`) are searched
for ``<!DOCTYPE``/``<!ENTITY`` in UTF-8 and UTF-16 (the XML inside CZI, LIF, ND2, … segments), and an OLE2
compound document's streams one by one (their sectors need not lie in order in the file).

Both read a few kilobytes at most per IFD, stop after :data:`MAX_IFDS` IFDs, and never raise.
"""

from __future__ import annotations

import mmap
import os
import re

from metaextract.engines.tiff.ifd import KINDS, MAX_DESCRIPTION, MAX_IFDS, Survey, mapped, survey
from metaextract.extraction.snapshot import Snapshot

_DESCRIPTION = 270
_TIFFDATA = re.compile(r"<(?:\w+:)?TiffData\b([^>]*?)(/>|>(.*?)</(?:\w+:)?TiffData>)", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_FILENAME = re.compile(r'<(?:\w+:)?UUID\b[^>]*?\bFileName="([^"]*)"')
_REFERENCES = re.compile(rb'\b(?:FileName|MetadataFile)\s*=\s*["\']([^"\']*)["\']')
_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.I)
#: ``<!DOCTYPE`` and ``<!ENTITY`` as bytes of embedded XML: UTF-8/ASCII, and UTF-16 (one pattern serves
#: little and big endian: ``"<\0!\0D\0…E"`` lies inside both). XML keywords are case-sensitive, so a
#: parser refuses any other spelling. One regular expression searches ~2.5 GB/s, three times four ``find``s.
_DTD_MARKERS = re.compile(rb"<!(?:DOCTYPE|ENTITY)|<\x00!\x00(?:" + "DOCTYPE".encode("utf-16-le")[:-1] + b"|"
                          + "ENTITY".encode("utf-16-le")[:-1] + b")")
MAX_SCAN = 16 << 30  # bytes of a file searched for DTD markers (mmap + regex: ~2.5 GB/s); the rest is left to
#: the JVM's own refusal (metaextract.engines.bioformats.jvm.xml_options) and the sandbox
DTD_REFUSED = "declares a DTD or entities; refused, nothing was expanded or fetched"



def _planes_mapped(omexml: str, own_name: str) -> int:
    """The number of IFDs the OME-XML maps to planes of this file (1 + the highest IFD index named)."""
    highest = 0
    for m in _TIFFDATA.finditer(omexml):
        attrs = dict(_ATTR.findall(m.group(1)))
        inner = m.group(3) or ""
        ref = _FILENAME.search(inner)
        if ref is not None and os.path.basename(ref.group(1)) != own_name:
            continue  # a plane of another file of the set
        try:
            first = int(attrs.get("IFD", "0"))
            count = int(attrs.get("PlaneCount", "1"))
        except ValueError:
            continue
        highest = max(highest, first + max(count, 1))
    return highest


_PIXELS = re.compile(r"<(?:\w+:)?Pixels\b([^>]*)>(.*?)</(?:\w+:)?Pixels>", re.S)


def _plane_size_mismatch(path: str, first_size: tuple[int, int] | None, omexml: str) -> str | None:
    """An OME-TIFF whose first image, stored from IFD 0 of this file, declares another plane size than
    IFD 0 has (e.g. 2^20 x 2^20 pixels over a 4 x 4 strip): the embedded XML is forged or damaged."""
    m = _PIXELS.search(omexml)
    if m is None or first_size is None:
        return None
    td = _TIFFDATA.search(m.group(2))
    if td is None:
        return None  # not an OME-TIFF's XML: the sizes come from the TIFF itself
    attrs, ref = dict(_ATTR.findall(td.group(1))), _FILENAME.search(td.group(3) or "")
    if attrs.get("IFD", "0") != "0" or (ref is not None and os.path.basename(ref.group(1)) != os.path.basename(path)):
        return None
    pixels = dict(_ATTR.findall(m.group(1)))
    try:
        size_x, size_y = int(pixels["SizeX"]), int(pixels["SizeY"])
    except (KeyError, ValueError):
        return None
    width, height = first_size
    if (size_x, size_y) != (width, height):
        return (f"OME-TIFF's OME-XML declares planes of {size_x} x {size_y} pixels but its IFD 0 holds "
                f"{width} x {height}: the embedded metadata is damaged or forged")
    return None



def survey_of(path: str, kind: tuple[str, bool], held: Snapshot | None = None) -> Survey:
    """The walk of ``path`` (:func:`~metaextract.engines.tiff.ifd.survey`), once per extraction: kept with
    ``held``, the bytes held for it (:mod:`metaextract.extraction.snapshot`), so the checks before and after
    the engine and the TIFF header reader share one walk; walked afresh without them."""
    snap = held if held is not None and held.path == path else None
    if snap is None:
        return survey(path, kind)
    walked: Survey | None = snap.derived.get(("survey", kind))
    if walked is None:
        walked = snap.derived[("survey", kind)] = survey(path, kind, snap.data if snap.complete else None)
    return walked


def check(path: str, head: bytes, omexml: str, held: Snapshot | None = None) -> str | None:
    """Return a one-line description of damage, or None when the file looks whole.

    Parameters
    ----------
    path : str
        The file that was read.
    head : bytes
        Its first bytes (4096, as the engine chooser read them).
    omexml : str
        What the engine produced for it.
    held : Snapshot, optional
        The bytes the extraction holds of it (their walk is shared with :func:`refuse` and the engine).
    """
    try:
        kind = KINDS.get(head[:4])
        if kind is None:
            return None
        walked = survey_of(path, kind, held)
        if walked.damage is not None or walked.ifds >= MAX_IFDS:
            return walked.damage
        if "TiffData" not in omexml:
            return None  # no plane is mapped to an IFD: nothing more to compare
        wanted = _planes_mapped(omexml, os.path.basename(path))
        if wanted > walked.ifds:
            return f"truncated OME-TIFF: its OME-XML maps planes to {wanted} IFDs but the file holds {walked.ifds}"
        return _plane_size_mismatch(path, walked.first_size, omexml)
    except Exception as exc:  # noqa: BLE001 - a check must never cost the file its result
        return f"could not check the file: {type(exc).__name__}: {exc}"


def _escapes(ref: str) -> bool:
    """Whether a file reference leaves the folder of the file that holds it."""
    if ref.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]|^[a-z][a-z0-9+.-]*://", ref, re.I):
        return True
    return ".." in re.split(r"[\\/]", ref)


def refuse(path: str, head: bytes, held: Snapshot | None = None) -> str | None:
    """Return why the file must not be handed to an engine, or None.

    Embedded XML (a TIFF's ImageDescription, or an XML file itself) that declares a DTD or entities is
    refused, since the engine's XML parser would resolve them (files, URLs, entity bombs); so is
    OME-XML whose ``FileName``/``MetadataFile`` references leave the file's folder, and a TIFF whose
    IFD chain loops or points beyond the end of the file (Bio-Formats would loop until out of memory).
    """
    try:
        return _refuse(path, head, held)
    except Exception as exc:  # noqa: BLE001 - never raise; the engine then reports on the file
        return f"could not check the file: {type(exc).__name__}: {exc}"


def declares_dtd(data: bytes | mmap.mmap, end: int | None = None) -> bool:
    """Whether ``data[:end]`` holds ``<!DOCTYPE`` or ``<!ENTITY`` in UTF-8/ASCII or UTF-16 (a few GB/s)."""
    return _DTD_MARKERS.search(data, 0, len(data) if end is None else end) is not None


def _ole_dtd(path: str) -> str | None:
    """The first stream of an OLE2 compound document (OIB, ZVI) that declares a DTD or entities, or None."""
    from metaextract.engines.ole.storage import OleError, OleFile

    budget = MAX_SCAN
    try:
        with OleFile(path) as ole:
            for stream in ole.streams():
                data = ole.read(stream, budget)
                budget -= len(data)
                if declares_dtd(data):
                    return "/".join(stream)
                if budget <= 0:
                    break
    except (OleError, OSError):
        return None  # damaged: the engine says so on its own terms (the file's bytes were scanned too)
    return None


def _bytes_dtd(path: str, head: bytes, held: Snapshot | None) -> str | None:
    """Why a file that is not a TIFF must be refused for DTD markup in its bytes (or its OLE streams)."""
    snap = held if held is not None and held.path == path else None
    if snap is not None and snap.complete:
        found = declares_dtd(snap.data)
    else:
        try:
            with mapped(path) as data:
                found = declares_dtd(data, min(len(data), MAX_SCAN))
        except ValueError:  # an empty file cannot be mapped
            found = False
    if found:
        return f"its embedded XML {DTD_REFUSED}"
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        stream = _ole_dtd(path)
        if stream is not None:
            return f"its embedded XML (OLE stream {stream!r}) {DTD_REFUSED}"
    return None


def _refuse(path: str, head: bytes, held: Snapshot | None) -> str | None:
    kind = KINDS.get(head[:4])
    if kind is None:
        found = _bytes_dtd(path, head, held)
        if found is not None:
            return found
    walked = survey_of(path, kind, held) if kind else None
    text: bytes | None = walked.description if walked else None
    if kind is None and head.lstrip()[:1] == b"<":
        with open(path, "rb") as fh:
            text = fh.read(MAX_DESCRIPTION)
    where = "its embedded XML (TIFF ImageDescription)" if kind else "its XML"
    if not text:
        return walked.damage if walked else None
    if b"<!" in text and _DTD.search(text):  # (the cheap test first: a plate's descriptions have neither)
        return f"{where} {DTD_REFUSED}"
    refs = _REFERENCES.findall(text) if b"FileName" in text or b"MetadataFile" in text else []
    for ref in refs:
        name = ref.decode("utf-8", "replace")
        if _escapes(name):
            return f"{where} references {name!r}, outside the file's folder; refused, not followed"
    return walked.damage if walked else None
