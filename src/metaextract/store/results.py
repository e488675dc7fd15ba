"""Extracted results out of the database: :func:`open_experiment` → files, their OME-XML, key fields, rows.

Everything streams. Files come from the database in pages (keyset pagination on ``image_files.id``, one
short read per page, at most :data:`PAGE` rows and about :data:`PAGE_BYTES` of OME-XML a page), so
going through a million results holds one page at a time; only :meth:`ExperimentResults.to_pandas`
gathers everything, because a DataFrame does.

The plate and well of an image come from the OME-XML's ``Plate/Well/WellSample/ImageRef`` when it has
one; otherwise the plate is the registered plate's name and the well is read from the file name when
that holds a ``_B03_``-style token (as MetaXpress, CellVoyager and most HCS exports name files), else
it is unknown (None).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import Connection, func, select

from metaextract.ome import OME_NS, UnsafeXMLError, image_summaries, parse
from metaextract.store import Store, StoreHolder, open_store
from metaextract.store.experiments import find_experiment
from metaextract.store.filesets import SINGLE, file_filesets, fileset_documents, list_filesets, plate_map
from metaextract.store.jobs import split_notes
from metaextract.store.models import acquisitions, image_files, plates

if TYPE_CHECKING:
    import pandas
    from ome_types import OME

__all__ = ["PAGE", "ROW_COLUMNS", "STATUS_FILTERS", "ExperimentResults", "FileResult", "check_status",
           "open_experiment"]

#: Most files per page read from the database.
PAGE = 1000
#: Pages shrink (down to one file) while a page's OME-XML exceeds this many bytes.
PAGE_BYTES = 64 * 2**20
#: ``--status`` choices → the file states they select (None: every file, pending ones included).
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "ok": ("ok",), "failed": ("failed", "timeout", "unsupported"), "all": None,
}
#: The columns of the one-row-per-image table (:meth:`ExperimentResults.rows`, CSV, Parquet, pandas).
ROW_COLUMNS: tuple[str, ...] = (
    "plate", "acquisition", "file", "path", "image", "image_name", "well",
    "size_x", "size_y", "size_z", "size_c", "size_t", "pixel_type",
    "physical_size_x", "physical_size_x_unit", "physical_size_y", "physical_size_y_unit",
    "physical_size_z", "physical_size_z_unit", "channels", "engine", "status", "valid", "error", "notes",
)
_NS = {"o": OME_NS}
_WELL_IN_NAME = re.compile(r"(?:^|[_\-. ])([A-Pa-p])(\d{2})(?=[_\-. ])")


def _label(index: int, convention: str | None, *, letter: bool) -> str:
    """A 0-based well row or column as a label: letters (A, ..., Z, AA, ...) or a 1-based number."""
    if (convention or ("letter" if letter else "number")).lower() == "number":
        return f"{index + 1:02d}"
    out, n = "", index
    while True:
        out = chr(65 + n % 26) + out
        n = n // 26 - 1
        if n < 0:
            return out


def _wells(root: etree._Element) -> dict[str, tuple[str | None, str | None]]:
    """Image ID → (plate name, well label) from the OME-XML's plates."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for plate in root.findall("o:Plate", _NS):
        rows, cols = plate.get("RowNamingConvention"), plate.get("ColumnNamingConvention")
        for well in plate.findall("o:Well", _NS):
            try:
                r, c = int(well.get("Row", "")), int(well.get("Column", ""))
            except ValueError:
                label = None
            else:
                label = _label(r, rows, letter=True) + _label(c, cols, letter=False)
            for ref in well.findall("o:WellSample/o:ImageRef", _NS):
                out.setdefault(ref.get("ID", ""), (plate.get("Name") or None, label))
    return out


@dataclass(eq=False)
class FileResult:
    """One registered image file and its extraction result (``status`` "pending" until extracted).

    ``path`` is the absolute location; ``name`` is relative to the acquisition's root folder.
    """

    id: int
    plate: str
    acquisition: str
    name: str
    path: str
    status: str
    engine: str | None = None
    engine_version: str | None = None
    error: str | None = None
    valid: bool | None = None
    validation_error: str | None = None
    seconds: float | None = None
    extracted_at: datetime | None = None
    omexml: str | None = field(default=None, repr=False)
    #: What the extraction found worth knowing that is no error (:attr:`metaextract.result.Result.notes`),
    #: e.g. that a rescue engine read the file because Bio-Formats cannot
    notes: list[str] = field(default_factory=list)
    #: The file's fileset (id, kind, master); a lone file is a fileset of one: ``{"id": None, "kind":
    #: "single", "master": <the file>}``.
    fileset: dict[str, Any] | None = None
    #: Each plane the file holds and its place in its fileset (image, plate, well, field, z, c, t), as
    #: registration laid it out; empty for a lone file.
    planes: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def ome(self) -> OME | None:
        """The OME-XML as an :class:`ome_types.OME` (parsed on first use; None without OME-XML).

        The XML is parsed without DTD, entities or network (a DOCTYPE is refused), and not validated.
        """
        if self.omexml is None:
            return None
        import ome_types

        parse(self.omexml)  # refuses DTDs and entities before ome-types' parser sees the text
        return ome_types.from_xml(self.omexml.encode("utf-8"), validate=False)

    @cached_property
    def images(self) -> list[dict[str, Any]]:
        """Key fields of each image (:func:`metaextract.ome.image_summaries`) with its ``plate`` and
        ``well``; empty without (well-formed) OME-XML."""
        if not self.omexml:
            return []
        try:
            summaries, wells, ids = _document_images(self.omexml)
        except (etree.XMLSyntaxError, UnsafeXMLError):
            return []
        images = [dict(im) for im in summaries]
        guess = _WELL_IN_NAME.search(os.path.basename(self.name))
        fallback = f"{guess[1].upper()}{guess[2]}" if guess else None
        for im in images:
            plate, well = wells.get(ids[im["image"]], (None, None)) if wells else (None, None)
            im["plate"] = plate or self.plate
            im["well"] = well or (None if wells else fallback)
        return images

    @property
    def engine_label(self) -> str:
        return " ".join(x for x in (self.engine, self.engine_version) if x)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``summary --format json``: the file, its result and its ``images``."""
        return {
            "id": self.id, "plate": self.plate, "acquisition": self.acquisition, "name": self.name,
            "path": self.path, "status": self.status, "engine": self.engine,
            "engine_version": self.engine_version, "error": self.error, "valid": self.valid,
            "validation_error": self.validation_error, "seconds": self.seconds,
            "extracted_at": self.extracted_at.isoformat() if self.extracted_at else None,
            "notes": list(self.notes), "images": self.images,
            "fileset": self.fileset or {"id": None, "kind": SINGLE, "master": self.path},
            "planes": self.planes,
        }

    def rows(self) -> Iterator[dict[str, Any]]:
        """One flat row (:data:`ROW_COLUMNS`) per image; one row with empty image fields when none."""
        base = {"plate": self.plate, "acquisition": self.acquisition, "file": self.name, "path": self.path}
        tail = {"engine": self.engine_label or None, "status": self.status, "valid": self.valid,
                "error": self.error, "notes": list(self.notes)}
        if not self.images:
            yield {**dict.fromkeys(ROW_COLUMNS), **base, **tail}
            return
        for im in self.images:
            row = {**base, "plate": im["plate"], "image": im["image"], "image_name": im["name"],
                   "well": im["well"], **{k: im.get(k) for k in ("size_x", "size_y", "size_z", "size_c",
                                                                  "size_t")},
                   "pixel_type": im.get("type"), "channels": im.get("channels", [])}
            for axis in "xyz":
                value = im.get(f"physical_size_{axis}")
                if isinstance(value, list):
                    row[f"physical_size_{axis}"], row[f"physical_size_{axis}_unit"] = value
                else:  # no unit attribute: the schema's default unit
                    row[f"physical_size_{axis}"] = value
                    row[f"physical_size_{axis}_unit"] = "µm" if value is not None else None
            row.update(tail)
            yield {c: row.get(c) for c in ROW_COLUMNS}


_COLUMNS = (image_files.c.id, plates.c.name.label("plate"), acquisitions.c.name.label("acquisition"),
            image_files.c.name, image_files.c.location, image_files.c.status, image_files.c.engine,
            image_files.c.engine_version, image_files.c.error, image_files.c.valid,
            image_files.c.validation_error, image_files.c.seconds, image_files.c.extracted_at,
            image_files.c.omexml, image_files.c.notes)


def check_status(status: str) -> None:
    """Raise ValueError unless ``status`` is one of :data:`STATUS_FILTERS`."""
    if status not in STATUS_FILTERS:
        raise ValueError(f"status must be one of {', '.join(STATUS_FILTERS)}, not {status!r}")


@lru_cache(maxsize=4)
def _document_images(omexml: str) -> tuple[list[dict[str, Any]], dict[str, tuple[str | None, str | None]], list[str]]:
    """A document's image summaries, its wells by image ID and its image IDs, parsed once for the members
    of a fileset that share it (their rows come one after another); callers copy the rows they change."""
    wells: dict[str, tuple[str | None, str | None]] = {}
    ids: list[str] = []
    images = image_summaries(omexml)
    if "<Plate" in omexml:
        root = parse(omexml)
        wells = _wells(root)
        ids = [im.get("ID", "") for im in root.findall("o:Image", _NS)]
    return images, wells, ids


class ExperimentResults(StoreHolder):
    """The files of one experiment and their results, streamed from the database.

    Iterating gives :class:`FileResult` objects in registration order. Use it as a context manager (or
    call :meth:`close`) to close the database it opened.
    """

    def __init__(self, store: Store, experiment_id: int, name: str, *, own_store: bool = False) -> None:
        self.store, self.id, self.name = store, experiment_id, name
        self._own_store = own_store

    def __repr__(self) -> str:
        return f"ExperimentResults({self.id}, {self.name!r}, {self.store.url!r})"


    def _where(self, status: str) -> list[Any]:
        check_status(status)
        states = STATUS_FILTERS[status]
        cond = [image_files.c.experiment_id == self.id]
        return cond if states is None else [*cond, image_files.c.status.in_(states)]

    def _page(self, conn: Connection, where: list[Any], after: int, limit: int) -> list[Any]:
        q = (select(*_COLUMNS)
             .join_from(image_files, acquisitions, image_files.c.acquisition_id == acquisitions.c.id)
             .join(plates, acquisitions.c.plate_id == plates.c.id)
             .where(*where, image_files.c.id > after).order_by(image_files.c.id).limit(limit))
        return list(conn.execute(q).all())

    def files(self, status: str = "all") -> Iterator[FileResult]:
        """Every file with its result, in pages; ``status`` is ``"ok"``, ``"failed"`` (failed, timeout or
        unsupported) or ``"all"`` (pending files included)."""
        where, after, limit = self._where(status), 0, PAGE
        while True:
            with self.store.connect() as conn:
                page = self._page(conn, where, after, limit)
                sets = file_filesets(conn, [r.id for r in page])
                docs = fileset_documents(conn, [r.id for r in page if r.omexml is None and r.status == "ok"])
            if not page:
                return
            after = page[-1].id
            size = sum(len(r.omexml or "") for r in page)
            limit = max(1, limit // 2) if size > PAGE_BYTES else min(PAGE, limit * 2)
            for r in page:
                yield FileResult(id=r.id, plate=r.plate, acquisition=r.acquisition, name=r.name,
                                 path=r.location, status=r.status, engine=r.engine,
                                 engine_version=r.engine_version, error=r.error, valid=r.valid,
                                 validation_error=r.validation_error, seconds=r.seconds,
                                 extracted_at=r.extracted_at, omexml=docs.get(r.id, r.omexml),
                                 notes=split_notes(r.notes),
                                 fileset=sets[r.id][0] if r.id in sets else None,
                                 planes=sets[r.id][1] if r.id in sets else [])

    def __iter__(self) -> Iterator[FileResult]:
        return self.files()

    def __len__(self) -> int:
        return self.count()

    def filesets(self) -> list[dict[str, Any]]:
        """Every fileset of the experiment: id, kind, master, view, plate, acquisition, status, notes and
        counts (image and metadata members, planes). Lone files are not listed (each a fileset of one)."""
        with self.store.connect() as conn:
            return list_filesets(conn, self.id)

    def plate_map(self, plate: str | None = None) -> list[dict[str, Any]]:
        """The plate map of each fileset (of ``plate`` only when given), as ``EXP plate --format json``
        prints it: see :func:`metaextract.store.filesets.plate_map`."""
        with self.store.connect() as conn:
            return plate_map(conn, self.id, plate)

    def count(self, status: str = "all") -> int:
        """How many files ``status`` selects."""
        with self.store.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(image_files)
                                    .where(*self._where(status))).scalar_one())

    def counts(self) -> dict[str, int]:
        """Files per state (``ok``, ``failed``, ``pending``, ...)."""
        with self.store.connect() as conn:
            rows = conn.execute(select(image_files.c.status, func.count()).where(*self._where("all"))
                                .group_by(image_files.c.status)).all()
        return {str(s): int(n) for s, n in rows}

    def rows(self, status: str = "all") -> Iterator[dict[str, Any]]:
        """One flat row per image of every selected file (columns :data:`ROW_COLUMNS`)."""
        for f in self.files(status):
            yield from f.rows()

    def to_pandas(self, status: str = "all") -> pandas.DataFrame:
        """The rows of :meth:`rows` as a DataFrame (held in memory; ``channels`` holds lists).

        Raises
        ------
        ImportError
            When pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install 'metaextract[pandas]' "
                              "(or pip install pandas)") from None
        frame = pd.DataFrame.from_records(list(self.rows(status)), columns=list(ROW_COLUMNS))
        for col in ("image", "size_x", "size_y", "size_z", "size_c", "size_t"):
            frame[col] = frame[col].astype("Int64")
        return frame


def open_experiment(name_or_id: int | str, db: str | Store | None = None) -> ExperimentResults:
    """The files and results of one experiment.

    Parameters
    ----------
    name_or_id : int or str
        The experiment: its name, or an id as an ``int`` or ``"#3"``.
    db : str or Store, optional
        Database URL (default ``METAEXTRACT_DB``, else the user data directory), or an open Store.

    Returns
    -------
    ExperimentResults
        Iterate over it for :class:`FileResult` objects; ``rows()`` and ``to_pandas()`` give a table.

    Raises
    ------
    metaextract.experiment.NotFoundError
        For an unknown experiment.
    """
    own = not isinstance(db, Store)
    store = db if isinstance(db, Store) else open_store(db)
    try:
        exp_id, name = find_experiment(store, name_or_id)
    except Exception:
        if own:
            store.close()
        raise
    return ExperimentResults(store, exp_id, name, own_store=own)
