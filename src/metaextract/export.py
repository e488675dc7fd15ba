"""Results out to files and streams: a text table, JSON, CSV, Parquet, and OME-XML companion files.

Every writer streams from :class:`~metaextract.store.results.ExperimentResults` (one database page at a
time): JSON is written as an array one object at a time, CSV row by row, Parquet in row groups of
:data:`ROW_GROUP` rows, so a million results export in bounded memory.

``export(results, DIR, "ome-xml")`` writes ``DIR/<plate>/<acquisition>/<relative name>.ome.xml`` for
every file with OME-XML: the registered plate and acquisition, then the file's path below the
acquisition's root folder (two acquisitions may hold the same relative names). The table formats write
one file, ``DIR/summary.<json|csv|parquet>``, atomically (a temporary file renamed into place).

Nothing is ever written outside DIR: plate and acquisition names have ``/`` replaced, a relative name
with ``..`` or an absolute one is skipped, every directory below DIR is opened without following
symlinks (``O_NOFOLLOW``, ``dir_fd``) and so is every file; a symlink in the way is an error (or, with
``force``, replaced, never followed). POSIX only.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from metaextract.store.results import ROW_COLUMNS, ExperimentResults, FileResult, check_status

__all__ = ["FORMATS", "ROW_GROUP", "TABLE_FILES", "ExportError", "ExportReport", "export", "write_csv",
           "write_json", "write_table"]

FORMATS: tuple[str, ...] = ("ome-xml", "json", "csv", "parquet")
TABLE_FILES = {"json": "summary.json", "csv": "summary.csv", "parquet": "summary.parquet"}
ROW_GROUP = 10_000
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_OPEN_DIRS = 32


class ExportError(RuntimeError):
    """An export that would overwrite, follow a symlink or leave DIR; the message says which path."""


@dataclass
class ExportReport:
    """What one export wrote."""

    format: str
    directory: str
    files: int = 0  # files written
    records: int = 0  # OME-XML documents, JSON objects or table rows
    skipped: list[str] = field(default_factory=list)  # files not written, with why (first 100)
    skipped_count: int = 0
    seconds: float = 0.0

    def skip(self, name: str, why: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < 100:
            self.skipped.append(f"{name}: {why}")

    def __str__(self) -> str:
        what = {"ome-xml": "OME-XML files", "json": "JSON objects (one per file)"}.get(
            self.format, f"{self.format} rows (one per image)")
        return (f"wrote {self.records} {what} to {self.directory} ({self.seconds:.1f} s)"
                + (f"; skipped {self.skipped_count}" if self.skipped_count else ""))


# -- stream writers ----------------------------------------------------------------------------------------
def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return "|".join("" if v is None else str(v) for v in value)
    return "" if value is None else value


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One line per row (:data:`~metaextract.store.results.ROW_COLUMNS`); channel names, and notes, joined
    with ``|``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in ROW_COLUMNS])
        n += 1
    return n


def write_json(files: Iterable[FileResult], out: IO[str]) -> int:
    """A JSON array of :meth:`FileResult.to_dict` objects, written one object at a time."""
    n = 0
    out.write("[")
    for f in files:
        out.write(",\n" if n else "\n")
        out.write(json.dumps(f.to_dict(), ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _size_cell(row: dict[str, Any]) -> str:
    values = [row[f"physical_size_{a}"] for a in "xyz" if row[f"physical_size_{a}"] is not None]
    units = {row[f"physical_size_{a}_unit"] for a in "xyz" if row[f"physical_size_{a}"] is not None}
    if not values:
        return ""
    text = "×".join(f"{v:g}" for v in values)
    return f"{text} {units.pop()}" if len(units) == 1 else text


_TABLE = (("file", 64), ("#", 3), ("image", 20), ("plate", 16), ("well", 5), ("X", 6), ("Y", 6),
          ("Z", 4), ("C", 3), ("T", 4), ("type", 7), ("pixel size", 16), ("channels", 28),
          ("engine", 18), ("status", 11), ("error", 70), ("notes", 70))


def _table_cells(row: dict[str, Any]) -> list[str]:
    def s(v: Any) -> str:
        return "" if v is None else str(v)

    return [s(row["file"]), s(row["image"]), s(row["image_name"]), s(row["plate"]), s(row["well"]),
            *(s(row[f"size_{d}"]) for d in "xyzct"), s(row["pixel_type"]), _size_cell(row),
            ", ".join(s(c) for c in row["channels"] or []), s(row["engine"]), s(row["status"]),
            s(row["error"]), "; ".join(row["notes"] or [])]


def write_table(rows: Iterable[dict[str, Any]], out: IO[str], *, sample: int = 1000) -> int:
    """An aligned text table, one line per image. Column widths come from the first ``sample`` rows
    (capped); longer cells are cut with ``…``."""
    it = iter(rows)
    head: list[list[str]] = []
    for row in it:
        head.append(_table_cells(row))
        if len(head) >= sample:
            break
    widths = [min(cap, max([len(name)] + [len(r[i]) for r in head])) for i, (name, cap) in enumerate(_TABLE)]

    def line(cells: Sequence[str]) -> str:
        cut = [c if len(c) <= w else c[: w - 1] + "…" for c, w in zip(cells, widths, strict=True)]
        return "  ".join(c.ljust(w) for c, w in zip(cut, widths, strict=True)).rstrip() + "\n"

    out.write(line([name for name, _ in _TABLE]))
    out.write(line(["-" * w for w in widths]))
    n = 0
    for cells in head:
        out.write(line(cells))
        n += 1
    for row in it:
        out.write(line(_table_cells(row)))
        n += 1
    return n


def _arrow_schema() -> Any:
    import pyarrow as pa

    types: dict[str, Any] = {c: pa.string() for c in ROW_COLUMNS}
    types.update({c: pa.int64() for c in ("image", "size_x", "size_y", "size_z", "size_c", "size_t")})
    types.update({f"physical_size_{a}": pa.float64() for a in "xyz"})
    types.update({"channels": pa.list_(pa.string()), "notes": pa.list_(pa.string()), "valid": pa.bool_()})
    return pa.schema([(c, types[c]) for c in ROW_COLUMNS])


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ImportError("Parquet export needs pyarrow: pip install 'metaextract[parquet]' "
                          "(or pip install pyarrow)") from None


def write_parquet(rows: Iterable[dict[str, Any]], out: IO[bytes], *, row_group: int = ROW_GROUP) -> int:
    """A Parquet file of the rows, written in row groups of ``row_group`` rows (needs pyarrow)."""
    _need_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    n = 0
    with pq.ParquetWriter(out, schema) as writer:
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= row_group:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                n, chunk = n + len(chunk), []
        if chunk or not n:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            n += len(chunk)
    return n


# -- safe writing under DIR --------------------------------------------------------------------------------
def _component(name: str) -> str:
    """A plate or acquisition name as one path component."""
    name = name.replace("/", "_").replace("\\", "_").replace("\0", "_")
    return name if name not in ("", ".", "..") else "_" + name


def companion_parts(f: FileResult) -> list[str]:
    """``[plate, acquisition, *relative name parts + ".ome.xml"]``.

    Raises
    ------
    ExportError
        When the relative name is absolute, empty or has a ``.``/``..`` part.
    """
    rel = PurePosixPath(f.name)
    parts = list(rel.parts)
    if rel.is_absolute() or not parts or any(p in (".", "..") or "\0" in p for p in parts) or \
            os.path.normpath(f.name).startswith(".."):
        raise ExportError(f"unsafe relative name {f.name!r}")
    return [_component(f.plate), _component(f.acquisition), *parts[:-1], parts[-1] + ".ome.xml"]


class _SafeDir:
    """Creates directories and files below ``root`` through directory descriptors, never following a
    symlink below ``root``."""

    def __init__(self, root: Path, force: bool) -> None:
        self.root, self.force = root, force
        self._fds: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._fds[()] = os.open(root, os.O_RDONLY | os.O_DIRECTORY)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _dir(self, parts: tuple[str, ...]) -> int:
        if parts in self._fds:
            self._fds.move_to_end(parts)
            return self._fds[parts]
        parent = self._dir(parts[:-1])
        with suppress(FileExistsError):
            os.mkdir(parts[-1], 0o777, dir_fd=parent)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        except OSError as exc:  # ELOOP / ENOTDIR: a symlink or a file where a folder should be
            raise ExportError(f"{self.root.joinpath(*parts)}: not a directory (symlinks are not followed): "
                              f"{exc.strerror}") from None
        self._fds[parts] = fd
        while len(self._fds) > _OPEN_DIRS:
            key = next(k for k in self._fds if k and k != parts)
            os.close(self._fds.pop(key))
        return fd

    def exists(self, parts: Sequence[str]) -> bool:
        try:
            os.stat(parts[-1], dir_fd=self._dir(tuple(parts[:-1])), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def open(self, parts: Sequence[str], *, replace: bool | None = None) -> int:
        """A new file's descriptor (``replace``: overwrite what is there; default: ``force``)."""
        replace = self.force if replace is None else replace
        parent, name = self._dir(tuple(parts[:-1])), parts[-1]
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            return os.open(name, flags, 0o666, dir_fd=parent)
        except FileExistsError:
            if not replace:
                raise ExportError(f"{self.root.joinpath(*parts)} exists; use --force to overwrite") from None
        try:
            os.unlink(name, dir_fd=parent)  # a file or a symlink: replaced, never followed
        except IsADirectoryError:
            raise ExportError(f"{self.root.joinpath(*parts)} is a directory") from None
        return os.open(name, flags, 0o666, dir_fd=parent)

    def rename(self, src: Sequence[str], dst: Sequence[str]) -> None:
        os.replace(src[-1], dst[-1], src_dir_fd=self._dir(tuple(src[:-1])),
                   dst_dir_fd=self._dir(tuple(dst[:-1])))


def _open_root(directory: Path, force: bool, fmt: str) -> _SafeDir:
    directory = Path(directory).expanduser().absolute()
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"{directory} is not a directory")
    if fmt == "ome-xml" and not force and directory.is_dir() and any(directory.iterdir()):
        raise ExportError(f"{directory} is not empty; use --force to overwrite the files in it")
    directory.mkdir(parents=True, exist_ok=True)
    return _SafeDir(directory, force)


def _shared_document(f: FileResult) -> FileResult | None:
    """For a file whose document is its fileset's (an image member of a view-``"fileset"`` fileset): the
    fileset's document as one record named after its master (relative to the file's registered folder),
    to be written once for the whole fileset; None for any other file."""
    from metaextract import filesets

    fs = f.fileset
    if not fs or fs.get("id") is None or filesets.kind(str(fs["kind"])).view != "fileset":
        return None
    base = f.path[: len(f.path) - len(f.name)] if f.path.endswith(f.name) else os.path.dirname(f.path)
    return dataclasses.replace(f, name=os.path.relpath(str(fs["master"]), base).replace(os.sep, "/"))


def _export_ome_xml(results: ExperimentResults, root: _SafeDir, report: ExportReport, status: str,
                    valid_only: bool, per_file: bool = False) -> None:
    """One document per file, except that a fileset whose members share its document (view ``"fileset"``)
    is written once, under its master's name — unless ``per_file``."""
    written: set[int] = set()
    for each in results.files(status):
        shared = None if per_file or not each.omexml else _shared_document(each)
        if shared is not None:
            fs_id = int((shared.fileset or {})["id"])
            if fs_id in written:
                continue
            written.add(fs_id)
        f = shared or each
        if not f.omexml:
            continue
        if valid_only and not f.valid:
            report.skip(f.name, f"does not validate: {f.validation_error}")
            continue
        try:
            parts = companion_parts(f)
        except ExportError as exc:
            report.skip(f.name, str(exc))
            continue
        text = f.omexml if f.omexml.lstrip().startswith("<?xml") else XML_DECLARATION + f.omexml
        with os.fdopen(root.open(parts), "w", encoding="utf-8") as fh:
            fh.write(text)
        report.files += 1
        report.records += 1


def _export_table(results: ExperimentResults, root: _SafeDir, report: ExportReport, fmt: str,
                  status: str) -> None:
    final = [TABLE_FILES[fmt]]
    if not root.force and root.exists(final):
        raise ExportError(f"{root.root / final[0]} exists; use --force to overwrite")
    partial = [f".{final[0]}.{os.getpid()}.partial"]
    fd = root.open(partial, replace=True)
    try:
        if fmt == "parquet":
            with os.fdopen(fd, "wb") as fb:
                report.records = write_parquet(results.rows(status), fb)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                report.records = (write_json(results.files(status), fh) if fmt == "json"
                                  else write_csv(results.rows(status), fh))
        root.rename(partial, final)
    except BaseException:
        with suppress(OSError):
            os.unlink(partial[0], dir_fd=root._dir(()))
        raise
    report.files = 1


def export(results: ExperimentResults, directory: str | os.PathLike[str], fmt: str = "ome-xml", *,
           status: str = "all", force: bool = False, valid_only: bool = False,
           per_file: bool = False) -> ExportReport:
    """Write an experiment's results under ``directory`` (created when missing).

    Parameters
    ----------
    results : ExperimentResults
        From :func:`metaextract.open_experiment`.
    directory : path-like
        Where to write; nothing is written outside it.
    fmt : {"ome-xml", "json", "csv", "parquet"}
        ``ome-xml``: one ``<plate>/<acquisition>/<relative name>.ome.xml`` per file with OME-XML;
        the others: one ``summary.<fmt>`` (JSON: one object per file; CSV, Parquet: one row per image).
    status : {"all", "ok", "failed"}
        Which files.
    force : bool
        Overwrite existing files (and replace symlinks in the way without following them).
    valid_only : bool
        ``ome-xml``: skip documents that did not validate against the OME schema when extracted.
    per_file : bool
        ``ome-xml``: one document per file even where a fileset's members share the fileset's document
        (by default that document is written once per fileset, named after its master file).

    Returns
    -------
    ExportReport

    Raises
    ------
    ExportError
        When a file exists (without ``force``), or a symlink or file is where a folder should be.
    ImportError
        For ``parquet`` without pyarrow.
    ValueError
        For an unknown format or status.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    check_status(status)
    if fmt == "parquet":
        _need_pyarrow()
    t0 = time.perf_counter()
    root = _open_root(Path(directory), force, fmt)
    report = ExportReport(format=fmt, directory=str(root.root))
    try:
        if fmt == "ome-xml":
            _export_ome_xml(results, root, report, status, valid_only, per_file)
        else:
            _export_table(results, root, report, fmt, status)
    finally:
        root.close()
    report.seconds = time.perf_counter() - t0
    return report
