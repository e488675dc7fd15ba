"""Experiments and their files: create, register folders (image files vs metadata sidecars), list, delete.

Registration walks a folder with :func:`os.scandir`, tells image files from metadata files by their
first bytes where the name lies, and inserts rows in batches of :data:`INSERT_BATCH` as the walk goes
(never the whole listing in memory); re-adding a folder inserts only files not yet registered.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from metaextract.extraction import snapshot
from metaextract.store import Store
from metaextract.store.bulk import bulk
from metaextract.store.experiments import (
    NotFoundError,
    acquisition_counts,
    acquisition_of,
    delete_experiment,
    find_experiment,
    insert_experiment,
    insert_new,
    list_experiments,
    parse_ref,
    resolve,
    show_experiment,
)

# re-exported: where they used to be defined
__all__ = ["NotFoundError", "delete_experiment", "find_experiment", "list_experiments", "parse_ref", "resolve",
           "show_experiment"]

INSERT_BATCH = 5000
SNIFF_BYTES = 4096
DEFAULT_ACQUISITION = "default"

# First bytes of image formats (offset, magic).
_IMAGE_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"II*\x00", "tiff"), (0, b"MM\x00*", "tiff"), (0, b"II+\x00", "bigtiff"), (0, b"MM\x00+", "bigtiff"),
    (0, b"ZISRAWFILE", "czi"), (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (0, b"\xda\xce\xbe\x0a", "nd2"), (0, b"\x00\x00\x00\x0cjP  ", "jp2"), (0, b"\x70\x00\x00\x00", "lif"),
    (128, b"DICM", "dicom"), (0, b"\x89HDF\r\n\x1a\n", "hdf5"), (0, b"\x89PNG", "png"),
    (0, b"\xff\xd8\xff", "jpeg"), (0, b"Andor Technology", "sif"), (0, b"SIMPLE  =", "fits"),
    (0, b"BM", "bmp"),
)
# Text formats that are images (or image sets) for Bio-Formats.
_TEXT_IMAGE_MARKERS: tuple[tuple[bytes, str], ...] = (
    (b"<OME", "ome-xml"), (b":OME ", "ome-xml"), (b"ics_version", "ics"), (b"ObjectType", "metaimage"),
)
# Sidecars: registered as metadata files unless their bytes say image.
_METADATA_NAMES = {"ndtiff.index": "ndtiff-index", "display_settings.txt": "display-settings",
                   "metadata.txt": "micromanager", "thumbs.db": "thumbnails", ".ds_store": "finder"}
_METADATA_SUFFIXES = {".mlf": "yokogawa-mlf", ".mrf": "yokogawa-mrf", ".mes": "yokogawa-mes",
                      ".nd": "metamorph-nd", ".htd": "metaxpress-htd", ".index": "index", ".json": "json",
                      ".csv": "csv", ".tsv": "tsv", ".md": "text", ".log": "log", ".txt": "text",
                      ".ini": "text", ".cfg": "text", ".yaml": "yaml", ".yml": "yaml", ".pdf": "pdf"}


@dataclass
class Registration:
    """What one ``experiment add`` did."""

    experiment_id: int
    plate: str
    acquisition: str
    image_files: int = 0
    metadata_files: int = 0
    already_registered: int = 0
    excluded: int = 0
    symlinks_skipped: int = 0
    #: Filesets the acquisition holds after this add (all of it re-detected; lone files are not counted).
    filesets: int = 0
    #: Files and folders that could not be listed or examined (a folder that cannot be read, a path longer
    #: than the system allows, a file gone mid-walk): how many, and the first :data:`SKIPPED_KEPT` of them
    #: as ``(path, reason)``. A skipped folder's contents are not registered, nor counted.
    skipped: int = 0
    skipped_paths: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sniff(path: str | os.PathLike[str], size: int | None = None) -> bytes:
    """The first :data:`SNIFF_BYTES` of a file (b"" when it cannot be read), with plain system calls: a
    Python file object costs more than the read itself, and ``add`` reads the head of every file."""
    try:
        return snapshot.read_prefix(path, SNIFF_BYTES, size)
    except OSError:
        return b""


def classify(path: str | os.PathLike[str], head: bytes | None = None, size: int | None = None) -> tuple[str, str]:
    """Tell an image file from a metadata file: ``("image" | "metadata", kind)``.

    The first bytes decide where they are known (a ``.txt`` that is OME-XML is an image; a sidecar named
    like an image but holding plain text is metadata); otherwise the name does; an unknown binary file
    is an image (the engine then says whether it can read it). ``size``, the file's size when known,
    spares a read at its end.
    """
    path = os.fspath(path)
    name = path[path.rfind(os.sep) + 1:].lower()
    if head is None:
        head = _sniff(path, size)
    for offset, magic, kind in _IMAGE_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return "image", kind
    if head[96:98] in (b"\xa0\xc0", b"\xc0\xa0"):  # DeltaVision / MRC
        return "image", "dv"
    is_text = bool(head) and b"\x00" not in head
    if is_text:
        for marker, kind in _TEXT_IMAGE_MARKERS:
            if marker in head:
                return "image", kind
    if name in _METADATA_NAMES:
        return "metadata", _METADATA_NAMES[name]
    if name.endswith("_metadata.txt"):
        return "metadata", "micromanager"
    suffix = os.path.splitext(name)[1]
    if suffix in _METADATA_SUFFIXES:
        return "metadata", _METADATA_SUFFIXES[suffix]
    if is_text:
        return "metadata", "xml" if head.lstrip().startswith(b"<") else "text"
    return "image", suffix.lstrip(".") or "unknown"


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


#: How many skipped paths a Registration keeps (the count is always exact).
SKIPPED_KEPT = 1000


@dataclass
class _WalkStats:
    excluded: int = 0
    symlinks_skipped: int = 0
    skipped: int = 0
    skipped_paths: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str, exc: OSError) -> None:
        """Count a path the walk could not list or examine, keeping why (the first SKIPPED_KEPT)."""
        self.skipped += 1
        if len(self.skipped_paths) < SKIPPED_KEPT:
            reason = exc.strerror or type(exc).__name__
            self.skipped_paths.append((storable_name(path), reason))


_NAME = attrgetter("name")
_DESCEND = object()  # walk(): "this entry is a folder to enter"


def walk(root: str | os.PathLike[str], include: Sequence[str] = (), exclude: Sequence[str] = (),
         stats: _WalkStats | None = None) -> Iterator[tuple[str, str, int, float]]:
    """Yield ``(relative name, absolute path, size, mtime)`` of every file under ``root``, sorted.

    Symlinks are followed only while they stay inside ``root``; a directory is entered once. A folder or
    file that cannot be listed or examined is counted in ``stats.skipped`` with its reason, never dropped
    without a word.
    """
    stats = stats if stats is not None else _WalkStats()
    top = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()

    def inside(p: str) -> bool:
        real = os.path.realpath(p)
        return real == top or real.startswith(top + os.sep)

    def visit(folder: str, prefix: str) -> Iterator[tuple[str, str, int, float]]:
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=_NAME)
        except OSError as exc:  # unreadable, or longer than PATH_MAX: said, never silently dropped
            stats.skip(folder, exc)
            return
        for entry in entries:
            rel = prefix + entry.name
            found = examine(entry, rel)
            if found is None:
                continue
            if found is _DESCEND:
                yield from visit(entry.path, rel + "/")
            else:
                yield found  # type: ignore[misc]

    def examine(entry: os.DirEntry[str], rel: str) -> tuple[str, str, int, float] | object | None:
        """The file's row, _DESCEND for a folder to enter, None for anything passed over (counted where
        it should be). A plain function, not a generator: it runs once per file."""
        try:
            if entry.is_symlink() and not inside(entry.path):
                stats.symlinks_skipped += 1
                return None
            if entry.is_dir():
                if exclude and _matches(rel, exclude):
                    stats.excluded += 1
                    return None
                return _DESCEND
            if not entry.is_file():  # a device, a FIFO, a socket, a broken link: no image file
                return None
            if (include and not _matches(rel, include)) or (exclude and _matches(rel, exclude)):
                stats.excluded += 1
                return None
            info = entry.stat()
        except OSError as exc:  # gone mid-walk, or its path too long to examine
            stats.skip(entry.path, exc)
            return None
        return rel, entry.path, info.st_size, info.st_mtime  # absolute and normal: under realpath(root)

    yield from visit(top, "")


def storable_name(name: str) -> str:
    """A file name any database takes: bytes that are not UTF-8 are kept as ``\\xNN`` escapes.

    Such a file is registered (so it is counted and reported), and its extraction records that the
    name must be fixed; see :func:`metaextract.extraction.pipeline.undecodable_name`.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


# -- experiments ------------------------------------------------------------------------------------------
#: Words an experiment may not be named: ``metaextract WORD ...`` must stay a command, and an experiment named
#: like a step command would read as one. Kept in step with the CLI (a test checks every command is here).
RESERVED_NAMES = frozenset({
    "show", "compare", "experiment", "step", "help", "create", "add", "list", "delete",
    "init", "run", "submit", "resubmit", "info", "log", "status", "summary", "export", "cleanup", "plate", "serve",
})


def check_name(name: str) -> str:
    """``name`` stripped, or ValueError when it could be read as something else: empty, all digits (an id
    is ``#N``), starting with ``#``, or a command word (:data:`RESERVED_NAMES`)."""
    name = name.strip()
    if not name:
        raise ValueError("an experiment needs a name")
    if name.isdigit() or name.startswith("#"):
        raise ValueError(f"experiment name {name!r} would read as an id: use a name that is not all digits "
                         f"and does not start with '#'")
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"experiment name {name!r} is a command word of metaextract: choose another name")
    return name


def create_experiment(store: Store, name: str, description: str | None = None) -> int:
    """Create an experiment; returns its id.

    Raises
    ------
    ValueError
        When the name is taken or refused by :func:`check_name` (empty, all digits, ``#…``, a command word).
    """
    return insert_experiment(store, check_name(name), description)


def ensure_experiment(store: Store, name: str) -> tuple[int, bool]:
    """``(id, created)`` of the experiment ``name`` refers to, created first when there is none (``experiment
    add --create``: a new plate registered in one command instead of two).

    Raises
    ------
    NotFoundError
        For an id (``#3``) that names no experiment: an id is never created.
    ValueError
        For a name :func:`check_name` refuses.
    """
    try:
        return find_experiment(store, name)[0], False
    except NotFoundError:
        if parse_ref(name)[0] == "id":
            raise
    try:
        return create_experiment(store, name), True
    except ValueError:
        try:  # another process created it meanwhile
            return find_experiment(store, name)[0], False
        except NotFoundError:
            pass
        raise


# -- registration ---------------------------------------------------------------------------------------
def _register(store: Store, experiment_id: int, acquisition_id: int, root: Path, include: Sequence[str],
              exclude: Sequence[str], stats: _WalkStats) -> int:
    """Insert a row for every file under ``root`` that the acquisition does not hold yet; returns how many
    files were seen."""
    batch: dict[str, list[dict[str, Any]]] = {"image": [], "metadata": []}
    seen = 0
    for rel, path, size, mtime in walk(root, include, exclude, stats):
        seen += 1
        what, kind = classify(path, size=size)
        row: dict[str, Any] = {"experiment_id": experiment_id, "acquisition_id": acquisition_id,
                               "name": storable_name(rel), "location": storable_name(path), "size": size,
                               "mtime": mtime}
        if what == "image":
            row["status"] = "pending"
        else:
            row["kind"] = kind
        batch[what].append(row)
        if len(batch[what]) >= INSERT_BATCH:
            insert_new(store, what, batch[what])
            batch[what] = []
    for what, rows in batch.items():
        if rows:
            insert_new(store, what, rows)
    return seen


def add_folder(store: Store, experiment: int | str, folder: str | os.PathLike[str], *,
               plate: str | None = None, acquisition: str | None = None,
               include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Registration:
    """Register every file under ``folder`` (recursively) into one plate and acquisition.

    Parameters
    ----------
    store : Store
    experiment : int or str
        Its name, or an id as an ``int`` or ``"#3"``.
    folder : path-like
        The acquisition's root; names are stored relative to it.
    plate : str, optional
        Plate name (default: the folder's name).
    acquisition : str, optional
        Acquisition name, unique per plate (default ``"default"``).
    include, exclude : sequence of str
        Glob patterns matched against the relative path and the file name.

    Returns
    -------
    Registration
        Counts of what was added and skipped; ``skipped`` and ``skipped_paths`` name what could not be read
        (an unreadable folder, a path longer than PATH_MAX), which is then not registered.

    Raises
    ------
    NotFoundError
        For an unknown experiment.
    ValueError
        When ``folder`` is not a directory, or the acquisition was registered from another folder.
    """
    t0 = time.perf_counter()
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{folder}: not a directory")
    plate = plate or root.name
    acquisition = acquisition or DEFAULT_ACQUISITION
    exp_id, acq_id, acq_root = acquisition_of(store, experiment, plate, acquisition, str(root))
    if acq_root and acq_root != str(root):
        raise ValueError(f"acquisition {acquisition!r} of plate {plate!r} holds files from {acq_root}; "
                         f"add {root} as another acquisition (--acquisition NAME)")
    reg = Registration(experiment_id=exp_id, plate=plate, acquisition=acquisition)
    before = acquisition_counts(store, acq_id)
    stats = _WalkStats()
    with bulk():
        seen = _register(store, exp_id, acq_id, root, include, exclude, stats)
    after = acquisition_counts(store, acq_id)
    reg.image_files = after["image_files"] - before["image_files"]
    reg.metadata_files = after["metadata_files"] - before["metadata_files"]
    reg.already_registered = seen - reg.image_files - reg.metadata_files
    reg.excluded, reg.symlinks_skipped = stats.excluded, stats.symlinks_skipped
    reg.skipped, reg.skipped_paths = stats.skipped, stats.skipped_paths
    reg.filesets = register_filesets(store, exp_id, acq_id)
    reg.seconds = time.perf_counter() - t0
    return reg


def register_filesets(store: Store, experiment_id: int, acquisition_id: int) -> int:
    """Detect the filesets among all the acquisition's registered files and store each with its members
    and its layout's planes, replacing what the acquisition had; returns how many. Reads only the vendor
    files (detection and layout open no image file); a fileset whose layout fails is stored with a note
    naming the file and why, and no planes."""
    from metaextract import filesets
    from metaextract.store.filesets import FilesetFound, acquisition_paths, replace_filesets

    specs, _lone = filesets.detect(acquisition_paths(store, acquisition_id))
    found = []
    for spec in specs:
        try:
            found.append(FilesetFound(spec, filesets.kind(spec.kind).view, filesets.layout(spec)))
        except Exception as exc:  # a bad vendor file: the fileset is kept, its note says why  # noqa: BLE001
            note = f"no layout: {' '.join(str(exc).split()) or type(exc).__name__}"
            found.append(FilesetFound(spec, filesets.kind(spec.kind).view, None, [note]))
    return replace_filesets(store, experiment_id, acquisition_id, found)
