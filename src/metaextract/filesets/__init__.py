"""Filesets: files that belong together (an HCS plate and its vendor files), found and read as one.

A fileset is what one Bio-Formats reader would read from its master file: an ImageXpress ``.HTD`` plate with
its ``TimePoint_*``/``ZStep_*`` TIFFs, a CellVoyager ``.wpi`` with its ``.mlf``/``.mrf`` and TIFFs, a Harmony
``Index.idx.xml`` with its TIFFs, ...; a lone file is a fileset of one. :mod:`.model` holds the contract every
kind follows: ``detect`` groups paths into :class:`~.model.FilesetSpec`, ``read`` turns one spec into a
:class:`~.model.FilesetRead` (one OME-XML document for the whole fileset, and each member's planes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Literal, NamedTuple

from metaextract.filesets.model import FilesetLayout, FilesetRead, FilesetSpec, Place

__all__ = ["KINDS", "FilesetLayout", "FilesetRead", "FilesetSpec", "Kind", "Place", "answered_by_read", "detect",
           "kind", "layout", "may_share_document", "read"]

#: How a member file's own document is had: ``"fileset"`` — Bio-Formats gives every member the whole
#: fileset's document (an ``.HTD`` plate, a Harmony index), so a file's document *is* the fileset's, stored
#: once; ``"own"`` — Bio-Formats reads each member alone (CellVoyager TIFFs, files grouped by their names
#: only), so each file is still extracted as a single file and the fileset adds the plate around them.
FileView = Literal["fileset", "own"]


class Kind(NamedTuple):
    """A kind of fileset: its name, the module that detects and reads it, and its members' view."""

    name: str
    module: str
    view: FileView
    label: str


#: Every kind, in the order detection runs: the vendor files that name their images first (CellVoyager's
#: ``.mlf``, Harmony's index, ScanR's descriptor), then MetaXpress, whose name-only grouping takes what is left.
KINDS: tuple[Kind, ...] = (
    Kind("cellvoyager", "metaextract.filesets.cellvoyager", "own", "Yokogawa CellVoyager (.wpi, .mlf, .mrf)"),
    Kind("harmony", "metaextract.filesets.harmony", "fileset", "PerkinElmer Harmony (Index.idx.xml)"),
    Kind("scanr", "metaextract.filesets.scanr", "own", "Olympus ScanR (experiment_descriptor.xml)"),
    Kind("scanr-names", "metaextract.filesets.scanr", "own", "Olympus ScanR TIFFs, layout from their names"),
    Kind("metaxpress-htd", "metaextract.filesets.metaxpress", "fileset", "Molecular Devices MetaXpress (.HTD)"),
    Kind("metaxpress-names", "metaextract.filesets.metaxpress", "own",
         "MetaXpress TIFFs without their .HTD, layout from their names"),
)
_BY_NAME = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    """The kind called ``name``.

    Raises
    ------
    ValueError
        For a name no kind has.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown fileset kind {name!r}; known: {', '.join(_BY_NAME)}") from None


def _detectors() -> list[Callable[[Sequence[str]], tuple[list[FilesetSpec], list[str]]]]:
    modules = dict.fromkeys(k.module for k in KINDS)  # each module once, in the kinds' order
    return [import_module(m).detect for m in modules]


def detect(paths: Sequence[str]) -> tuple[list[FilesetSpec], list[str]]:
    """Group the absolute ``paths`` of one acquisition folder into filesets, every kind in :data:`KINDS`'
    order, each taking what the ones before left; returns the filesets and the paths none took (lone files:
    each a fileset of one). Costs names and the vendor files' contents, no image file is opened."""
    specs: list[FilesetSpec] = []
    rest = list(paths)
    for found in _detectors():
        taken, rest = found(rest)
        specs += taken
    return specs, rest


def read(spec: FilesetSpec) -> FilesetRead:
    """Read the whole fileset ``spec`` once: its OME-XML document and every image member's planes."""
    reader: Callable[[FilesetSpec], FilesetRead] = import_module(kind(spec.kind).module).read
    return reader(spec)


def layout(spec: FilesetSpec) -> FilesetLayout:
    """Every image member's places in the fileset ``spec`` from names and vendor files alone (no image file
    is opened): what ``experiment add`` stores. Equal to :func:`read`'s places but for what only the image
    files say, which the layout's notes name."""
    planner: Callable[[FilesetSpec], FilesetLayout] = import_module(kind(spec.kind).module).layout
    return planner(spec)


def answered_by_read(kind_name: str) -> tuple[str, ...]:
    """The notes of a ``kind_name`` layout that its native read answers (e.g. MetaXpress' "stage positions
    and acquisition times are in each TIFF's header"): stale once that read has stored its places, so the
    store drops them then. A kind's module names them in ``ANSWERED_BY_READ`` (none where it does not)."""
    answered: tuple[str, ...] = getattr(import_module(kind(kind_name).module), "ANSWERED_BY_READ", ())
    return answered


def may_share_document(path: str) -> bool:
    """Whether the file at ``path`` may be an image member of a fileset whose members' document is the
    fileset's (view ``"fileset"``): a TIFF with an ``.HTD`` where its plate's master would sit, or with a
    Harmony index beside it. Names only (one or two folder listings); False says it cannot be, True only
    that it may."""
    from metaextract.filesets.harmony import INDEX_NAMES
    from metaextract.filesets.metaxpress_names import plate_root

    path = os.path.abspath(path)
    if not path.lower().endswith((".tif", ".tiff")):
        return False
    try:
        if any(name.lower().endswith(".htd") for name in os.listdir(plate_root(path)[0])):
            return True
        beside = set(os.listdir(os.path.dirname(path)))
    except OSError:
        return False
    return any(name in beside for name in INDEX_NAMES)
